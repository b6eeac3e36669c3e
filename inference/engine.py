"""The engine interface the loop needs: token ids in, a streamed generation out, abort by id.

Two implementations: `VLLMEngine` (in-process AsyncLLM, the Kaggle path) and `OpenAIEngine` (an
OpenAI-compatible completions server: `vllm serve`, SGLang; the compose path).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class GenerationRequest:
    request_id: str
    prompt_ids: list[int]
    max_tokens: int
    temperature: float = 0.7
    top_p: float = 1.0
    min_p: float = 0.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    logprobs: int = 0  # top-k logprobs per token (0: off); the entropy-weighted vote needs them


@dataclass
class Generation:
    token_ids: list[int] = field(default_factory=list)
    text: str = ""
    finish_reason: str = ""  # "stop", "length", "abort", or "error"
    stop_reason: str | int | None = None
    prompt_tokens: int = 0
    cached_tokens: int | None = None  # prompt tokens served from the prefix cache (None: not reported)
    entropy_sum: float = 0.0  # sum over tokens of the top-k logprob entropy
    entropy_tokens: int = 0
    entropies: list[float] = field(default_factory=list)  # per token, in order (for the tail-window vote)

    def add_entropy(self, top_logprobs: list[float]) -> None:
        """Shannon entropy (nats) of one token's top-k distribution, as the AIMO3 entries computed it (they
        used bits: a constant factor, which leaves every 1/entropy vote's ranking as it is)."""
        entropy = -sum(math.exp(lp) * lp for lp in top_logprobs if lp > -math.inf)
        self.entropy_sum += entropy
        self.entropy_tokens += 1
        self.entropies.append(entropy)


class EngineError(RuntimeError):
    """The engine failed or is gone; the solver reports it and keeps what it has."""


class Engine(Protocol):
    name: str
    max_model_len: int

    async def generate(self, request: GenerationRequest) -> Generation:
        """Run one request to its end; cancelling the awaiting task aborts it in the engine."""
        ...

    async def abort(self, request_ids: list[str]) -> None: ...

    async def close(self) -> None: ...
