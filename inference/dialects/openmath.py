"""<tool_call> code </tool_call>, outputs in ```output blocks (OpenMath-Nemotron, the AIMO2 winner).

The reply also tells the model how many code executions it has left, as its training data did.
"""

from __future__ import annotations

from .base import Dialect, Turn, trim_overshoot
from .markdown import MarkdownDialect

CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
SYSTEM_PROMPT = ("Solve the following math problem, integrating natural language reasoning with Python code "
                 "executions. Put the final answer inside \\boxed{}.")


class OpenMathDialect(MarkdownDialect):
    name = "openmath"
    stop_strings = (CALL_CLOSE,)
    shows_calls_left = True

    def __init__(self, tokenizer, system_prompt: str | None = SYSTEM_PROMPT) -> None:
        super().__init__(tokenizer, system_prompt)

    def code_of(self, turn: Turn) -> str | None:
        if turn.finish_reason != "stop" or not turn.text.endswith(CALL_CLOSE):
            return None
        start = turn.text.rfind(CALL_OPEN)
        if start < 0:
            return None
        code = turn.text[start + len(CALL_OPEN): -len(CALL_CLOSE)].strip("\n")
        return code.removeprefix("```python\n").removesuffix("```").rstrip() or None

    def continuation_ids(self, turn: Turn, output: str, calls_left: int | None) -> list[int]:
        reply = "\n```output\n" + output.rstrip("\n") + "\n```\n"
        if calls_left is not None:
            reply += (f"Remaining code executions: {calls_left}. You will not be able to call code when you "
                      "run out of executions, so use it wisely. Note that you can still continue solving the "
                      "problem without code after that.\n")
        return trim_overshoot(self.tokenizer, turn.token_ids, turn.text) + self.tokenizer.encode(
            reply, add_special_tokens=False)


__all__ = ["Dialect", "OpenMathDialect"]
