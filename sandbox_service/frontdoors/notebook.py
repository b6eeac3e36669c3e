"""A cell's result as a model reads it (the text a notebook shows) and as a program reads it (fields)."""

from __future__ import annotations

from typing_extensions import TypedDict  # pydantic builds schemas only from this one on Python 3.11

from ..result import ExecResult

NO_OUTPUT = "[no output: print() what you need, or end the cell with an expression to show its value]"
NOTES = {
    "TIMEOUT": "the cell ran past its time limit and was stopped",
    "MEMORY_EXCEEDED": "the cell ran out of memory and was stopped",
    "OUTPUT_LIMIT_EXCEEDED": "the cell printed past the output limit and was stopped (output kept head and tail)",
    "CRASHED": "the interpreter died",
    "REJECTED": "the cell was not run",
}


class CellError(TypedDict):
    type: str
    message: str
    traceback: str


class CellOutcome(TypedDict):
    """The structured content of every tool result: the sandbox's `ExecuteResult`, less its accounting."""

    status: str  # OK, ERROR, TIMEOUT, MEMORY_EXCEEDED, OUTPUT_LIMIT_EXCEEDED, CRASHED, REJECTED
    stdout: str
    stderr: str
    display: str  # the value of the cell's last bare expression, as Jupyter shows it
    error: CellError | None
    wall_ms: float
    cell_index: int  # in a session: 1 for the first cell of its interpreter; 0 for a stateless run
    state_rolled_back: bool  # in a session: the cell's effects were undone; the state is as before it
    new_session: bool  # in a session: this cell started a new interpreter (earlier variables are gone)
    message: str


def outcome(result: ExecResult, new_session: bool = False) -> CellOutcome:
    return CellOutcome(
        status=result.status, stdout=result.stdout, stderr=result.stderr, display=result.display,
        error=CellError(**result.error) if result.error else None, wall_ms=round(result.wall_ms, 3),
        cell_index=result.cell_index, state_rolled_back=result.state_rolled_back, new_session=new_session,
        message=result.message,
    )


def notebook_text(result: ExecResult, new_session: bool = False, restarted: bool = False) -> str:
    """stdout, the shown value, stderr, the traceback, then a bracketed note on anything unusual."""
    parts = []
    if restarted and new_session:
        parts.append("[a new interpreter: the previous one was closed, so earlier variables are gone]")
    if result.stdout:
        parts.append(result.stdout.rstrip("\n"))
    if result.display:
        parts.append(result.display)
    if result.stderr:
        parts.append(result.stderr.rstrip("\n"))
    if result.error:
        error = result.error
        parts.append((error.get("traceback") or f"{error.get('type')}: {error.get('message')}").rstrip("\n"))
    if result.status in NOTES:
        note = NOTES[result.status]
        parts.append(f"[{result.status}: {note}{'; ' + result.message if result.message else ''}]")
    if result.state_rolled_back:
        parts.append("[the cell's changes to the session were undone: variables are as before it]")
    return "\n".join(parts) if parts else NO_OUTPUT
