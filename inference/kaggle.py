"""Kaggle mode: the AIMO3 gateway's `predict(id_, problem, answer=None)` over the solver.

In a notebook:

    from inference import kaggle
    kaggle.predictor.configure(model="/kaggle/input/gpt-oss-120b/transformers/default/1", samples=8, agree=4)
    kaggle.serve()   # the inference server on Kaggle's rerun, a local gateway run on test.csv otherwise

The gateway accepts only plain functions as listeners (`types.FunctionType`, named, not a lambda), and
asks for the one named `predict`: a bound method such as `predictor.predict` is refused before the first
problem. So this module's `predict` is a module-level function over the module's `predictor`, and
`serve()` hands the gateway that function.

The model loads on the first call (the gateway wants the server listening within 15 minutes, and its
response deadline starts after the first answer); the sandbox is in-process (`LocalSandbox`, rlimit
mode: nsjail cannot run there); the clock is the competition's (5 hours, 50 problems) from the moment
the predictor is made. Every call returns the one-row `id`/`answer` frame with an integer, whatever
fails, and the log says why.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import replace
from pathlib import Path

import polars as pl

from sandbox_service.bridge import LoopThread

from .assembly import Settings, build_solver
from .budget import BudgetConfig, TimeBudget
from .solver import FALLBACK_ANSWER

log = logging.getLogger("aimo.kaggle")
COMPETITION_PATH = "/kaggle/input/ai-mathematical-olympiad-progress-prize-3/test.csv"
ANSWER_RANGE = (0, 99_999)


def _scalar(value) -> object:
    """The gateway passes one-row polars Series (or frames); local callers may pass plain values."""
    if isinstance(value, pl.DataFrame):
        value = value.to_series(0) if value.width else None
    if isinstance(value, pl.Series):
        return value.item(0) if len(value) else None
    return value


def _row_id(id_) -> str | int:
    ident = _scalar(id_)
    if isinstance(ident, str) or (isinstance(ident, int) and not isinstance(ident, bool)
                                  and -(2**63) <= ident < 2**63):  # an integer id stays one, if Int64 holds it
        return ident
    log.warning("an id of type %s (%r): answering under its text", type(ident).__name__, ident)
    return str(ident)


def _problem_text(problem) -> str:
    text = _scalar(problem)
    if isinstance(text, str):
        return text
    log.warning("a problem of type %s (%r), not text: solving its text", type(text).__name__, text)
    return "" if text is None else str(text)


def _model_problem(model: str) -> str | None:
    """Why this model cannot load, when that can be told without loading it (a folder that is missing)."""
    looks_local = model.startswith(("/", ".", "~"))  # not a hub name such as "openai/gpt-oss-120b"
    if looks_local and not Path(model).expanduser().exists():
        return f"the model folder {model} does not exist"
    return None


class KagglePredictor:
    """The solver behind `predict`, built on the first problem; `configure` it before serving."""

    def __init__(self, settings: Settings | None = None, budget: BudgetConfig | None = None, **overrides) -> None:
        self.made_at = time.monotonic()  # the budget's clock starts here
        self._thread: LoopThread | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._solver = None
        self._load_error: str | None = None
        self.settings = Settings(sandbox="local")
        self.budget = TimeBudget(BudgetConfig(max_samples=self.settings.samples))
        if settings or budget or overrides:
            self.configure(settings, budget, **overrides)

    def configure(self, settings: Settings | None = None, budget: BudgetConfig | None = None,
                  **overrides) -> KagglePredictor:
        """New settings (any `aimo` option: model, samples, agree, preset, ...) and budget, before the first
        problem. A preset brings its own values (and its time budget) beneath the ones given.

        The budget's clock keeps running from when the predictor was made: the notebook's 5 hours do not
        restart when the settings change."""
        if self._solver is not None:
            raise RuntimeError("the model is loaded: configure the predictor before the first problem")
        if overrides.get("preset"):  # a whole pipeline: its values beneath the ones given, as `aimo` does
            from .recipes import settings_defaults

            overrides = {**settings_defaults(overrides["preset"]), **overrides}
        self.settings = replace(settings or self.settings, **overrides)
        if budget is None and self.settings.preset:
            from .recipes import recipe_budget

            budget = recipe_budget(self.settings, self.settings.problems or BudgetConfig().problems)
        config = budget or replace(self.budget.config, max_samples=self.settings.samples)
        self.budget = TimeBudget(config)
        self.budget.deadline = self.made_at + config.total_s
        self._load_error = None
        if problem := _model_problem(self.settings.model):
            log.error("%s: every problem will be answered %d", problem, FALLBACK_ANSWER)
        return self

    @property
    def loaded(self) -> bool:
        """Whether the model and sandbox are up (after the first problem that needed them)."""
        return self._solver is not None

    async def _ensure_solver(self):
        if self._solver is None:
            self._stack = contextlib.AsyncExitStack()
            try:
                self._solver = await build_solver(self.settings, self._stack)
            except BaseException:
                await self._stack.aclose()
                self._stack = None
                raise
        return self._solver

    async def _solve(self, problem: str, seconds: float, samples: int) -> int:
        solver = await self._ensure_solver()
        result = await solver.solve(problem, budget_s=seconds, samples=samples)
        if result.failure:
            log.warning("answered %s with a note: %s", result.answer, result.failure)
        return result.answer

    def _answer(self, ident, text: str) -> int:
        if not text.strip():
            log.warning("problem %s is empty: answering %d", ident, FALLBACK_ANSWER)
            return FALLBACK_ANSWER
        if self._load_error is not None:  # a model that failed to load once is not loaded 50 times
            log.error("problem %s: the model failed to load (%s): answering %d", ident, self._load_error,
                      FALLBACK_ANSWER)
            return FALLBACK_ANSWER
        plan = self.budget.plan()
        if self._thread is None:
            self._thread = LoopThread("aimo-kaggle")
        try:
            value = self._thread.run(self._solve(text, plan.seconds, plan.samples))
        except Exception as exc:
            if self._solver is None:
                self._load_error = _model_problem(self.settings.model) or f"{type(exc).__name__}: {exc}"
            log.exception("problem %s failed; answering %d", ident, FALLBACK_ANSWER)
            return FALLBACK_ANSWER
        low, high = ANSWER_RANGE
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            log.error("problem %s: the solver answered %r, not an integer in %d..%d: answering %d", ident, value,
                      low, high, FALLBACK_ANSWER)
            return FALLBACK_ANSWER
        return value

    def predict(self, id_, problem, answer=None) -> pl.DataFrame:
        """One problem in, the one-row frame (`id`, `answer`) the gateway expects out."""
        started = time.monotonic()
        ident = _row_id(id_)
        try:
            value = self._answer(ident, _problem_text(problem))
        except Exception:  # the answer must come back whatever broke
            log.exception("problem %s: answering %d", ident, FALLBACK_ANSWER)
            value = FALLBACK_ANSWER
        self.budget.record(time.monotonic() - started)
        log.info("problem %s: %d (%.1f s)", ident, value, time.monotonic() - started)
        id_type = pl.Int64 if isinstance(ident, int) else pl.String
        return pl.DataFrame({"id": [ident], "answer": [value]}, schema={"id": id_type, "answer": pl.Int64})

    def close(self) -> None:
        if self._thread is not None:
            if self._stack is not None:
                self._thread.run(self._stack.aclose())
            self._thread.stop()
        self._thread = self._stack = self._solver = None


# The notebook's objects: configure `predictor`, hand `predict` to the gateway.
predictor = KagglePredictor()


def predict(id_, problem, answer=None) -> pl.DataFrame:
    """The gateway's listener: a plain module-level function named `predict` (the gateway checks both)."""
    return predictor.predict(id_, problem, answer)


def serve(listener=predict, test_csv: str = COMPETITION_PATH) -> None:
    """Serve `listener` under Kaggle's evaluation server: the inference server on the competition's
    rerun, a local gateway run on `test_csv` otherwise. Anything but a plain named function is refused
    by the gateway itself, with its own message."""
    import kaggle_evaluation.aimo_3_inference_server as aimo3

    try:
        server = aimo3.AIMO3InferenceServer(listener)
    except ValueError as exc:
        exc.add_note("inference.kaggle: pass a module-level function, e.g. serve() or serve(inference.kaggle.predict)")
        raise
    if os.environ.get("KAGGLE_IS_COMPETITION_RERUN"):
        server.serve()
    else:
        server.run_local_gateway((test_csv,))
