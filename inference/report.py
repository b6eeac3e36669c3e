"""report.html: plots and a trace viewer in one self-contained file (images inlined; no server needed)."""

from __future__ import annotations

import base64
import html
import io
import json
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def majority_at_k(rows, results, k: int) -> float | None:
    """Accuracy had each problem voted on only its first k samples."""
    graded = [(r, res) for r, res in zip(rows, results, strict=True) if r.expected is not None]
    if not graded:
        return None
    hits = 0
    for row, result in graded:
        answers = [s.answer for s in result.samples[:k] if s.answer is not None]
        if answers:
            top = Counter(answers).most_common()
            best = min(a for a, c in top if c == top[0][1])
            hits += best == row.expected
    return hits / len(graded)


def plots(rows, results) -> list[tuple[str, str]]:
    figures = []
    most = max((len(r.samples) for r in results), default=0)
    if most and any(r.expected is not None for r in rows):
        ks = list(range(1, most + 1))
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.plot(ks, [majority_at_k(rows, results, k) for k in ks], marker="o")
        ax.set(xlabel="samples voted (first k)", ylabel="accuracy", ylim=(0, 1.05), title="Accuracy vs samples")
        figures.append(("accuracy-vs-samples", png(fig)))
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(range(len(rows)), [r.seconds for r in rows],
           color=["tab:green" if r.correct else "tab:red" if r.correct is False else "tab:gray" for r in rows])
    ax.set(xlabel="problem", ylabel="seconds", title="Time per problem (green: correct)")
    figures.append(("time-per-problem", png(fig)))
    margins = []
    for row in rows:
        counts = [*sorted(json.loads(row.votes).values(), reverse=True), 0, 0]
        margins.append(counts[0] - counts[1])
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(range(len(rows)), margins)
    ax.set(xlabel="problem", ylabel="leader - runner-up", title="Vote margins")
    figures.append(("vote-margins", png(fig)))
    return figures


def _trace_html(row, result) -> str:
    mark = {True: "✔", False: "✘", None: "·"}[row.correct]
    parts = [f"<details class='problem' id='problem-{html.escape(row.id)}'><summary>{mark} "
             f"<b>{html.escape(row.id)}</b>: answer {row.answer} (expected {row.expected}), "
             f"votes {html.escape(row.votes)}, {row.seconds:.1f} s</summary>"
             f"<p class='statement'>{html.escape(result.problem)}</p>"]
    for sample in result.samples:
        parts.append(f"<details class='sample'><summary>sample {sample.index}: {sample.finish}, answer "
                     f"{sample.answer}, {sample.tool_calls} code calls</summary>")
        for turn in sample.turns:
            parts.append(f"<pre class='model'>{html.escape(turn.text)}</pre>")
            if turn.code is not None:
                parts.append(f"<div class='tool'><b>{html.escape(turn.status or '')}</b>"
                             f"<pre class='code'>{html.escape(turn.code)}</pre>"
                             f"<pre class='output'>{html.escape(turn.output or '')}</pre></div>")
        if sample.error:
            parts.append(f"<p class='error'>{html.escape(sample.error)}</p>")
        parts.append("</details>")
    parts.append("</details>")
    return "".join(parts)


# Marks the page with how many plots decoded: what the browser test reads (and harmless otherwise).
RENDER_CHECK = ("<script>addEventListener('load', () => { document.body.dataset.plotsRendered = "
                "[...document.images].filter(i => i.naturalWidth > 0).length; });</script>")
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 70em; }
.plots img { margin: 0.5em; border: 1px solid #ddd; }
pre { white-space: pre-wrap; background: #f6f6f6; padding: 0.5em; margin: 0.3em 0; }
pre.code { background: #eef4ff; } pre.output { background: #effaef; }
details { margin: 0.3em 0; } details.sample { margin-left: 1.5em; }
table { border-collapse: collapse; } td, th { padding: 0.2em 0.8em; border-bottom: 1px solid #ddd; }
"""


def write_report(out: Path, rows, results, summary: dict) -> Path:
    table = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                    for k, v in summary.items() if k != "failures")
    images = "".join(f"<img id='{name}' alt='{name}' src='{src}'>" for name, src in plots(rows, results))
    traces = "".join(_trace_html(row, result) for row, result in zip(rows, results, strict=True))
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>aimo eval report</title>"
            f"<style>{STYLE}</style></head><body><h1>Evaluation report</h1><table>{table}</table>"
            f"<h2>Plots</h2><div class='plots'>{images}</div><h2>Traces</h2>{traces}{RENDER_CHECK}</body></html>")
    path = out / "report.html"
    path.write_text(page)
    return path
