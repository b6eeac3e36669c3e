"""```python blocks, outputs in ```output blocks (NuminaMath, Qwen2.5-Math, DeepSeek-R1 prompted, tiny-tir).

The model writes the ```output opener itself; generation stops there, the sandbox output follows,
then the block is closed and the model continues.
"""

from __future__ import annotations

import re

from .base import Dialect, Turn, trim_overshoot

OUTPUT_OPENER = "```output"
_CODE = re.compile(r"```python[^\n]*\n(.*?)(?:```\s*)?```output\s*$", re.DOTALL)


class MarkdownDialect(Dialect):
    name = "markdown"
    stop_strings = (OUTPUT_OPENER,)

    def __init__(self, tokenizer, system_prompt: str | None = None) -> None:
        self.tokenizer = tokenizer
        self.system_prompt = system_prompt

    def prompt_ids(self, problem: str) -> list[int]:
        messages = [{"role": "user", "content": problem}]
        if self.system_prompt:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        rendered = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return self.tokenizer.encode(rendered, add_special_tokens=False)

    def code_of(self, turn: Turn) -> str | None:
        if turn.finish_reason != "stop" or not turn.text.endswith(OUTPUT_OPENER):
            return None
        start = turn.text.rfind("```python")
        if start < 0:
            return None
        match = _CODE.search(turn.text, start)
        return match.group(1).rstrip() if match else None

    def continuation_ids(self, turn: Turn, output: str, calls_left: int | None) -> list[int]:
        reply = "\n" + output.rstrip("\n") + "\n```\n"
        return trim_overshoot(self.tokenizer, turn.token_ids, turn.text) + self.tokenizer.encode(
            reply, add_special_tokens=False)

    def decode(self, token_ids: list[int]) -> str:
        return self.tokenizer.decode(token_ids, skip_special_tokens=False)
