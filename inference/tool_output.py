"""How a sandbox result is shown to the model: what a notebook would print, capped, never empty."""

from __future__ import annotations

from sandbox_service.result import ExecResult

NO_OUTPUT = "[no output; use print() to see values]"


def cap_chars(text: str, limit: int) -> str:
    """Keep the head and the tail, with a marker between, when `text` is longer than `limit`."""
    if len(text) <= limit:
        return text
    head = text[: limit // 2]
    tail = text[len(text) - limit // 2:]
    return f"{head}\n[... {len(text) - len(head) - len(tail)} characters omitted ...]\n{tail}"


def short_traceback(error: dict, max_lines: int = 6) -> str:
    """The exception line with the last few lines of its traceback: where it failed, not how we got there."""
    lines = (error.get("traceback") or "").rstrip("\n").splitlines()
    if not lines:
        return f"{error.get('type', 'Error')}: {error.get('message', '')}"
    if len(lines) > max_lines:
        lines = ["Traceback (most recent call last):", "  ...", *lines[-(max_lines - 1):]]
    return "\n".join(lines)


def render_result(result: ExecResult, max_chars: int = 2000) -> str:
    """The text spliced into the generation after a tool call."""
    parts = [result.stdout.rstrip("\n")] if result.stdout.strip() else []
    if result.display:
        parts.append(result.display)
    if result.status == "ERROR" and result.error:
        parts.append(short_traceback(result.error))
    elif result.status == "TIMEOUT":
        parts.append(f"TimeoutError: {result.message or 'the cell ran too long and was stopped'}")
    elif result.status == "MEMORY_EXCEEDED":
        parts.append(f"MemoryError: {result.message or 'the cell ran out of memory'}")
    elif result.status == "OUTPUT_LIMIT_EXCEEDED":
        parts.append("[output limit reached; the cell was stopped]")
    elif result.status in ("CRASHED", "REJECTED"):
        parts.append(f"[the Python process failed: {result.message}]")
    text = "\n".join(p for p in parts if p) or NO_OUTPUT
    return cap_chars(text, max_chars)
