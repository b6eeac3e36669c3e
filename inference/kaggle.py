"""Kaggle mode: the AIMO3 gateway's `predict(id_, problem, answer=None)` over the solver.

In a notebook:

    from inference.kaggle import KagglePredictor, serve
    predictor = KagglePredictor(model="/kaggle/input/gpt-oss-120b/transformers/default/1")
    serve(predictor.predict)   # inference server when rerun by Kaggle, a local gateway run otherwise

The model loads on the first call (the gateway wants the server listening within 15 minutes, and its
response deadline starts after the first answer); the sandbox is in-process (`LocalSandbox`, rlimit
mode: nsjail cannot run there); the clock is the competition's (5 hours, 50 problems) from the moment
the predictor is made. Every call returns an integer, whatever fails.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import replace

import polars as pl

from sandbox_service.bridge import LoopThread

from .assembly import Settings, build_solver
from .budget import BudgetConfig, TimeBudget
from .solver import FALLBACK_ANSWER

log = logging.getLogger("aimo.kaggle")
COMPETITION_PATH = "/kaggle/input/ai-mathematical-olympiad-progress-prize-3/test.csv"


def _scalar(value) -> object:
    """The gateway passes one-row polars Series (or frames); local callers may pass plain values."""
    if isinstance(value, pl.DataFrame):
        value = value.to_series(0)
    if isinstance(value, pl.Series):
        return value.item(0)
    return value


class KagglePredictor:
    def __init__(self, settings: Settings | None = None, budget: BudgetConfig | None = None, **overrides) -> None:
        self.settings = replace(settings or Settings(sandbox="local"), **overrides)
        self.budget = TimeBudget(budget or BudgetConfig(max_samples=self.settings.samples))
        self._thread = LoopThread("aimo-kaggle")
        self._stack: contextlib.AsyncExitStack | None = None
        self._solver = None

    async def _ensure_solver(self):
        if self._solver is None:
            self._stack = contextlib.AsyncExitStack()
            self._solver = await build_solver(self.settings, self._stack)
        return self._solver

    async def _solve(self, problem: str, seconds: float, samples: int) -> int:
        solver = await self._ensure_solver()
        result = await solver.solve(problem, budget_s=seconds, samples=samples)
        if result.failure:
            log.warning("answered %s with a note: %s", result.answer, result.failure)
        return result.answer

    def predict(self, id_, problem, answer=None) -> pl.DataFrame:
        """One problem in, the one-row frame (`id`, `answer`) the gateway expects out."""
        ident, text = _scalar(id_), str(_scalar(problem))
        started = time.monotonic()
        plan = self.budget.plan()
        try:
            value = self._thread.run(self._solve(text, plan.seconds, plan.samples))
        except Exception:
            log.exception("problem %s failed; answering %d", ident, FALLBACK_ANSWER)
            value = FALLBACK_ANSWER
        self.budget.record(time.monotonic() - started)
        return pl.DataFrame({"id": [ident], "answer": [int(value)]})

    def close(self) -> None:
        if self._stack is not None:
            self._thread.run(self._stack.aclose())
        self._thread.stop()


def serve(predict, test_csv: str = COMPETITION_PATH) -> None:
    """Run under Kaggle's evaluation server when it is importable: serve on a rerun, else a local gateway."""
    import kaggle_evaluation.aimo_3_inference_server as aimo3

    server = aimo3.AIMO3InferenceServer(predict)
    if os.environ.get("KAGGLE_IS_COMPETITION_RERUN"):
        server.serve()
    else:
        server.run_local_gateway((test_csv,))
