"""What every TIR dialect provides: prompt rendering, the stop condition, code extraction, splicing."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass
class Turn:
    """One generation request's output: from the prompt (or the last tool reply) to a stop."""

    token_ids: list[int]
    text: str
    finish_reason: str  # "stop", "length", "abort"
    stop_reason: str | int | None = None  # the stop string or token that ended it, None for EOS


class Dialect(ABC):
    """A model family's way of writing code and reading outputs."""

    name: str = ""
    stop_strings: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    shows_calls_left = False  # whether the tool reply tells the model how many calls remain

    @abstractmethod
    def prompt_ids(self, problem: str) -> list[int]:
        """The prompt, rendered and tokenized, ending where the assistant starts writing."""

    @abstractmethod
    def code_of(self, turn: Turn) -> str | None:
        """The code of the tool call that ended `turn`, or None if it ended otherwise."""

    @abstractmethod
    def continuation_ids(self, turn: Turn, output: str, calls_left: int | None) -> list[int]:
        """The tokens to append after the prompt so far: the turn's own ids (with any stop overshoot
        trimmed) followed by the rendered tool reply. Never a re-rendering of the whole history."""

    @abstractmethod
    def decode(self, token_ids: list[int]) -> str:
        """Text of token ids, special tokens included."""

    def answer_text(self, turns: list[Turn]) -> str:
        """The text to look for the final answer in."""
        return "".join(turn.text for turn in turns)


def trim_overshoot(tokenizer, token_ids: list[int], text: str) -> list[int]:
    """The generated ids whose text is `text`.

    vLLM truncates `text` at a stop string, but a stop string that ends inside a token leaves the whole
    token in `token_ids`. Keep the longest prefix of ids whose decoding is a prefix of `text`, then
    encode just the remainder: the ids the model sampled stay as they were (so the prefix cache hits),
    and the text matches exactly what the model is shown.
    """
    k = len(token_ids)
    decoded = tokenizer.decode(token_ids, skip_special_tokens=False)
    if decoded == text:
        return list(token_ids)
    while k and not text.startswith(tokenizer.decode(token_ids[:k], skip_special_tokens=False)):
        k -= 1
    kept = tokenizer.decode(token_ids[:k], skip_special_tokens=False)
    return list(token_ids[:k]) + tokenizer.encode(text[len(kept):], add_special_tokens=False)
