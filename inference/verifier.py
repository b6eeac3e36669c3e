"""Verifier reranking: a process reward model scores each finished sample, step by step.

The interface is that of Qwen2.5-Math-PRM-7B served by vLLM as a pooling model: the sample's text with a
step tag after every step (`<extra_0>` for Qwen's PRM), one forward pass, and per tag the probability that
the steps so far are right (`Qwen2ForProcessRewardModel`, STEP pooling, `token_classify`). Here a step is
one model turn (the reasoning and code up to a tool call, or the final answer); the tool's replies sit
between the steps untagged. The per-step scores aggregate to one per sample (min, last or product), and
the `verifier` selector sums them per answer: a vote weighted by how right the verifier thinks it is.

    verifier = VLLMVerifier("models/tiny-verifier", step_tag="<|pad|>")   # the bundled tiny one, on a CPU
    solver = Solver(engine, dialect, sandbox, SolverConfig(selector="verifier"), verifier=verifier)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import asdict

from .dialects import Dialect
from .engine import EngineError
from .sft import sample_segments
from .trace import SampleTrace
from .vllm_engine import cpu_engine_args

AGGREGATES: dict[str, Callable[[list[float]], float]] = {
    "min": min,  # a chain is as right as its weakest step (Qwen's recommendation for best-of-n)
    "last": lambda scores: scores[-1],
    "product": math.prod,
}


def step_ids(dialect: Dialect, problem: str, trace: SampleTrace, step_tag_id: int) -> list[int]:
    """The sample as the verifier reads it: prompt, then each model turn followed by the step tag, with the
    tool's replies between (the same segments `aimo export-sft` writes)."""
    ids: list[int] = []
    for segment in sample_segments(dialect, problem, asdict(trace), max_tool_calls=0):
        ids += dialect.tokenizer.encode(segment["text"], add_special_tokens=False)
        if segment["train"]:  # a model turn: one step
            ids.append(step_tag_id)
    return ids


class VLLMVerifier:
    """A process reward model in vLLM, in-process (the GPU build or the CPU one)."""

    def __init__(self, model: str, *, step_tag: str = "<extra_0>", aggregate: str = "min", max_model_len: int = 1024,
                 cpu: bool | None = None, **engine_args) -> None:
        from transformers import AutoTokenizer
        from vllm.config import PoolerConfig
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        if aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {sorted(AGGREGATES)}")
        self.aggregate = AGGREGATES[aggregate]
        self.step_tag_id = AutoTokenizer.from_pretrained(model).convert_tokens_to_ids(step_tag)
        if cpu is None:
            import torch

            cpu = not torch.cuda.is_available()
        if cpu:  # float32: the scores match plain torch on the same weights (a test checks)
            engine_args = cpu_engine_args(dtype="float32", **engine_args)
        args = AsyncEngineArgs(model=model, runner="pooling", max_model_len=max_model_len,
                               pooler_config=PoolerConfig(step_tag_id=self.step_tag_id), disable_log_stats=True,
                               **engine_args)
        self.llm = AsyncLLM.from_engine_args(args)
        self.max_model_len = max_model_len
        self._ids = itertools.count()

    async def step_scores(self, ids: list[int]) -> list[float]:
        """P(right so far) at each step tag in `ids`."""
        from vllm import PoolingParams

        ids = ids[-self.max_model_len:]  # the end holds the answer; a long prompt loses its start
        final = None
        try:
            async for out in self.llm.encode({"prompt_token_ids": ids}, PoolingParams(task="token_classify"),
                                             f"verify-{next(self._ids)}"):
                final = out
        except Exception as exc:
            if type(exc).__name__ in ("EngineDeadError", "EngineGenerateError"):
                raise EngineError(f"the verifier failed: {exc}") from exc
            raise
        data = final.outputs.data if final is not None else None
        return [] if data is None or data.numel() == 0 else data[:, 1].tolist()

    async def score(self, dialect: Dialect, problem: str, trace: SampleTrace) -> float | None:
        """The sample's aggregate score (None when it has no step to score)."""
        scores = await self.step_scores(step_ids(dialect, problem, trace, self.step_tag_id))
        return self.aggregate(scores) if scores else None

    async def close(self) -> None:
        self.llm.shutdown()
