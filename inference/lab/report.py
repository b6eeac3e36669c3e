"""lab.csv and lab.html: every policy's score and time, the Pareto front as a plot, the replay check."""

from __future__ import annotations

import html
from dataclasses import asdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl

from ..report import STYLE, png
from .replay import Policy, ReplayCheck
from .score import POLICY_FIELDS, PolicyScore, pareto
from .timing import Timing


def varied(scores: list[PolicyScore]) -> list[str]:
    """The policy fields that differ between the scored policies (the ones worth showing)."""
    return [n for n in POLICY_FIELDS if len({getattr(s.policy, n) for s in scores}) > 1] or ["samples", "agree"]


def label(policy: Policy, names: list[str]) -> str:
    return " ".join(f"{n}={getattr(policy, n)}" for n in names)


def frame(scores: list[PolicyScore], front: list[PolicyScore]) -> pl.DataFrame:
    on_front = {id(s) for s in front}
    return pl.DataFrame([{**asdict(s.policy), "score": s.score, "score_low": s.low, "score_high": s.high,
                          "seconds": s.seconds, "problem_s_p10": s.problem_seconds[0],
                          "problem_s_p50": s.problem_seconds[1], "problem_s_p90": s.problem_seconds[2],
                          "pass_at_n": s.pass_at_n, "selection_loss": s.selection_loss,
                          "truncated_per_problem": s.truncated, "pareto": id(s) in on_front} for s in scores])


def pareto_plot(scores: list[PolicyScore], front: list[PolicyScore], marked: PolicyScore | None = None):
    names = varied(scores)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.scatter([s.seconds / 60 for s in scores], [s.score for s in scores], s=14, color="0.7", label="policies")
    ax.errorbar([s.seconds / 60 for s in front], [s.score for s in front],
                yerr=[[s.score - s.low for s in front], [s.high - s.score for s in front]],
                color="tab:blue", marker="o", capsize=3, label="Pareto front (95% interval)")
    for s in front:
        ax.annotate(label(s.policy, names), (s.seconds / 60, s.score), fontsize=7, xytext=(4, -10),
                    textcoords="offset points")
    if marked is not None:
        ax.scatter([marked.seconds / 60], [marked.score], marker="*", s=140, color="tab:red", zorder=3,
                   label="recorded policy")
    ax.set(xlabel="minutes for the whole set", ylabel="expected score", title="Score against time")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def write_lab(out: Path, scores: list[PolicyScore], timing: Timing, *, recording_note: str,
              check: ReplayCheck | None = None, recorded: PolicyScore | None = None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    front = pareto(scores)
    on_front = {id(s) for s in front}
    frame(scores, front).sort("score", descending=True).write_csv(out / "lab.csv")
    names = varied(scores)
    rows = "".join(
        f"<tr><td>{'★' if id(s) in on_front else ''}</td><td>{html.escape(label(s.policy, names))}</td>"
        f"<td>{s.score:.3f} [{s.low:.3f}, {s.high:.3f}]</td><td>{s.seconds / 60:.1f}</td>"
        f"<td>{s.problem_seconds[0]:.0f} / {s.problem_seconds[1]:.0f} / {s.problem_seconds[2]:.0f}</td>"
        f"<td>{s.pass_at_n:.3f}</td><td>{s.selection_loss:.3f}</td></tr>"
        for s in sorted(scores, key=lambda s: -s.score))
    replay = "" if check is None else (
        f"<h2>Replay of the recorded policy</h2><p>recorded {check.recorded_correct} right in "
        f"{check.recorded_s:.1f} s; the lab predicts {check.predicted_correct} right in {check.predicted_s:.1f} s "
        f"(time ratio {check.time_ratio:.2f}); answers that differ: {len(check.answers_differ)}</p>")
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>aimo lab</title><style>{STYLE}</style></head>"
        f"<body><h1>Policy lab</h1><p>{html.escape(recording_note)}</p>"
        f"<p>decode model: {timing.step_ms:.2f} ms per step + {timing.per_sequence_ms:.3f} ms per sequence in the "
        f"batch; {timing.turn_ms:.0f} ms per request; {timing.problem_ms:.0f} ms per problem</p>{replay}"
        f"<div class='plots'><img id='pareto' alt='pareto' src='{png(pareto_plot(scores, front, recorded))}'></div>"
        f"<h2>Policies</h2><table><tr><th></th><th>policy</th><th>score [95%]</th><th>minutes</th>"
        f"<th>s per problem p10 / p50 / p90</th><th>pass@n</th><th>selection loss</th></tr>{rows}</table>"
        f"</body></html>")
    path = out / "lab.html"
    path.write_text(page)
    return path
