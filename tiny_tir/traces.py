"""Render problems as TIR traces in the `markdown` dialect, with the loss mask.

One cell of assistant text:  LEAD```python\\nCODE\\n```\\n```output\\nOUT\\n```\\n
and after the last cell \\boxed{N}<|end|>. The last cell prints its result as `\\boxed{N}` and the
model copies N from after that token (see tiny_tir.tokenizer for why).
The engine stops generation on the stop string "```output" and appends "\\n" + OUT + "\\n```\\n"; that
appended span is exactly what the loss mask removes, so the model learns to write code and to read
outputs, never to invent them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from tiny_tir.problems import Problem
from tiny_tir.tokenizer import render_prompt

STOP = "```output"


def tool_reply(output: str) -> str:
    """The text the engine splices in after the stop string for a cell's displayed output."""
    return "\n" + output + "\n```\n"


def cell_text(lead_in: str, code: str) -> str:
    """What the model writes for one cell, up to and including the stop string."""
    return f"{lead_in}```python\n{code}\n```\n{STOP}"


def final_text(answer: int) -> str:
    return f"\\boxed{{{answer}}}"


@dataclass(frozen=True)
class Segment:
    text: str
    trained: bool  # False for the prompt and for tool outputs


def _error_display(shown: str, r: random.Random | None) -> str:
    """An error as the sandbox renders it (a short traceback), or now and then only its last line:
    sandboxes differ, and the model should recognise both (it is never trained to produce either)."""
    if r is not None and r.random() < 0.25:
        return shown.splitlines()[-1]
    return shown


def as_written(problem: Problem) -> Problem:
    """The problem with its cells as the model writes them: the last line prints `\\boxed{N}`."""
    head, _, last = problem.cells[-1].rpartition("\n")
    assert last.startswith("print(") and last.endswith(")"), last
    boxed = f'print("\\\\boxed{{%d}}" % ({last[6:-1]}))'
    cells = (*problem.cells[:-1], f"{head}\n{boxed}" if head else boxed)
    outputs = (*problem.cell_outputs()[:-1], final_text(problem.answer))
    return replace(problem, cells=cells, outputs=outputs)


def segments(problem: Problem, r: random.Random | None = None) -> list[Segment]:
    """The full training sequence of a problem as trained / untrained text segments."""
    problem = as_written(problem)
    segs = [Segment(render_prompt(problem.text), False)]
    for lead, code, out in zip(problem.cell_lead_ins(), problem.cells, problem.cell_outputs(), strict=True):
        if out.startswith("Traceback"):
            out = _error_display(out, r)
        segs.append(Segment(cell_text(lead, code), True))
        segs.append(Segment(tool_reply(out), False))
    segs.append(Segment(final_text(problem.answer), True))  # N copied from the last output
    return segs


def full_text(problem: Problem) -> str:
    """Prompt + assistant text (without eos) as one string, for inspection and tests."""
    return "".join(s.text for s in segments(problem))
