"""solve(problem) -> Result: N concurrent samples, voted, stopped early, always an integer back.

    solver = Solver(engine, dialect, sandbox, SolverConfig(samples=8))
    result = await solver.solve("What is 2**10 mod 1000?", budget_s=60)
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field

from .dialects import Dialect
from .engine import Engine
from .sample import SamplingConfig, run_sample
from .trace import Result, SampleTrace
from .voting import SELECTORS, Ballot, Vote

FALLBACK_ANSWER = 0  # what a problem gets when no sample answered: some integer beats none
STOP_GRACE_S = 2.0
RECANCEL_S = 0.05  # how often a stopped sample that is still running is cancelled again


@dataclass(frozen=True)
class SolverConfig:
    samples: int = 8
    agree: int = 4  # stop once this many samples agree (or the leader cannot be caught); 0: never early
    selector: str = "majority"  # "majority", "entropy" or "code"
    seed: int = 0
    sampling: SamplingConfig = field(default_factory=SamplingConfig)


class Solver:
    def __init__(self, engine: Engine, dialect: Dialect, sandbox, config: SolverConfig | None = None) -> None:
        self.engine = engine
        self.dialect = dialect
        self.sandbox = sandbox
        self.config = config or SolverConfig()
        if self.config.selector not in SELECTORS:
            raise ValueError(f"selector must be one of {sorted(SELECTORS)}")
        self._problem_ids = itertools.count()

    async def solve(self, problem: str, *, budget_s: float | None = None, samples: int | None = None) -> Result:
        """Solve within `budget_s` seconds (None: no limit) with `samples` samples (default: the config's)."""
        started, origin = time.monotonic(), time.perf_counter()
        deadline = None if budget_s is None else started + budget_s
        n = samples or self.config.samples
        if not problem.strip():
            return self._result(problem, Ballot(n, self.config.agree), [], started, failure="empty problem")
        prompt_ids = self.dialect.prompt_ids(problem)
        if len(prompt_ids) >= self.engine.max_model_len - 16:
            return self._result(problem, Ballot(n, self.config.agree), [], started,
                                failure=f"problem is {len(prompt_ids)} tokens; the context holds "
                                        f"{self.engine.max_model_len}")
        config = self.config.sampling
        if self.config.selector == "entropy" and not config.logprobs:
            config = SamplingConfig(**{**config.__dict__, "logprobs": 5})
        ballot = Ballot(n, self.config.agree, SELECTORS[self.config.selector])
        prefix = f"p{next(self._problem_ids)}"
        traces = [SampleTrace(index=i, seed=self.config.seed * 10_007 + i) for i in range(n)]
        tasks = {
            asyncio.create_task(run_sample(self.engine, self.dialect, self.sandbox, prompt_ids, trace,
                                           request_prefix=prefix, config=config, origin=origin)): trace
            for trace in traces
        }
        failure = None
        pending = set(tasks)
        try:
            while pending and not ballot.decided():
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                done, pending = await asyncio.wait(pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if not done:
                    failure = f"time budget of {budget_s:.0f} s ran out"
                    break
                for task in done:
                    trace = tasks[task]
                    if task.exception() is not None:
                        trace.finish, trace.error = "error", repr(task.exception())
                    ballot.add(_vote(trace))
        finally:
            await self._stop(pending, tasks, prefix)
        errors = [t.error for t in traces if t.finish == "error"]
        if errors and len(errors) == ballot.finished and not ballot.votes:
            failure = failure or f"every finished sample failed: {errors[0]}"
        elif errors:
            failure = failure or f"{len(errors)} sample(s) failed: {errors[0]}"
        return self._result(problem, ballot, traces, started, failure=failure, early=bool(pending))

    async def _stop(self, pending: set[asyncio.Task], tasks: dict, prefix: str) -> None:
        """Abort what is still running: engine requests first, then the tasks (which closes their sessions)."""
        if not pending:
            return
        request_ids = [f"{prefix}-s{tasks[t].index}-t{turn}" for t in pending
                       for turn in range(self.config.sampling.max_tool_calls + 2)]
        try:
            await self.engine.abort(request_ids)
        except Exception:  # noqa: BLE001 - a dead engine has nothing left to abort
            pass
        # Cancel again until they end: code that swallows a cancellation (wait_for on Python 3.11 does, when
        # its result lands at the same moment) must not leave a stopped sample generating. Bounded, so that
        # a task that never ends cannot hold the answer past the deadline.
        running, stop_by = set(pending), time.monotonic() + STOP_GRACE_S
        while running and (left := stop_by - time.monotonic()) > 0:
            for task in running:
                task.cancel()
            _, running = await asyncio.wait(running, timeout=min(left, RECANCEL_S))
        for task in pending:  # after the wait: a sample that ran on past its cancel was still not counted
            tasks[task].finish = "aborted"

    def _result(self, problem: str, ballot: Ballot, traces: list[SampleTrace], started: float, *,
                failure: str | None = None, early: bool = False) -> Result:
        winner = ballot.winner()
        return Result(problem=problem, answer=FALLBACK_ANSWER if winner is None else winner,
                      answered=winner is not None, votes=ballot.counts(), samples=traces,
                      elapsed_s=time.monotonic() - started, early_stopped=early, failure=failure)


def _vote(trace: SampleTrace) -> Vote | None:
    if trace.answer is None:
        return None
    return Vote(trace.answer, trace.mean_entropy, trace.code_ok, trace.tool_calls - trace.code_ok)
