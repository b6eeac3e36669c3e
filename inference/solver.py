"""solve(problem) -> Result: N concurrent samples, voted, stopped early, always an integer back.

    solver = Solver(engine, dialect, sandbox, SolverConfig(samples=8))
    result = await solver.solve("What is 2**10 mod 1000?", budget_s=60)

Mixed sources: `Solver(..., sources=[Source("tir", ...), Source("cot", ..., share=0.25)])` draws each
problem's samples from several (engine, dialect, prompt, sampling) sources, voted together.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field, replace

from .answers import shown_in
from .dialects import Dialect
from .engine import Engine, EngineError
from .sample import SamplingConfig, request_ids, run_sample
from .sandbox import Sandbox
from .trace import Result, SampleTrace
from .voting import ENTROPY_SELECTORS, SELECTORS, STOP_RULES, Ballot, Vote

FALLBACK_ANSWER = 0  # what a problem gets when no sample answered: some integer beats none
STOP_GRACE_S = 2.0
RECANCEL_S = 0.05  # how often a stopped sample that is still running is cancelled again


REVISION_PROMPT = "{problem}\n\nEarlier attempts answered {answers}. Check them: one of them may be wrong.{code}"


@dataclass(frozen=True)
class RevisionConfig:
    """A second round when the first agrees too little: new samples see the leading answers and check them."""

    below: float = 0.0  # run it when the leader holds less than this share of the votes; 0: never
    samples: int = 4
    weight: float = 1.0  # each revision sample's weight in the vote (a first-round sample's is 1)
    candidates: int = 2  # leading answers the prompt shows
    show_code: bool = False  # and the last cell of a sample that gave each of them
    min_seconds: float = 5.0  # not with less than this left of the problem's budget
    prompt: str = REVISION_PROMPT  # with {problem}, {answers} and {code}


@dataclass(frozen=True)
class Source:
    """Where some of a problem's samples come from: a model (engine and dialect), how it is asked
    (`prompt`, with {problem}) and sampled, its `share` of the samples and its samples' `weight`."""

    name: str
    engine: Engine
    dialect: Dialect
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    share: float = 1.0
    weight: float = 1.0
    prompt: str = "{problem}"


def split(n: int, shares: list[float]) -> list[int]:
    """`n` samples over sources by share (largest remainder; ties to the earlier source)."""
    if n <= 0 or not shares or min(shares) < 0 or sum(shares) <= 0:
        raise ValueError(f"cannot split {n} samples by shares {shares}")
    exact = [n * share / sum(shares) for share in shares]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(shares)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    return counts


@dataclass(frozen=True)
class SolverConfig:
    samples: int = 8
    agree: int = 4  # stop once this many samples agree (or the leader cannot be caught); 0: never early
    selector: str = "majority"  # one of voting.SELECTORS
    stop: str = "uncatchable"  # one of voting.STOP_RULES: also stop once the leader cannot be caught
    seed: int = 0
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    revision: RevisionConfig = field(default_factory=RevisionConfig)


class Solver:
    def __init__(self, engine: Engine, dialect: Dialect, sandbox: Sandbox, config: SolverConfig | None = None, *,
                 sources: list[Source] | None = None, verifier=None) -> None:
        """`engine` and `dialect` are the main model's: the one source, or (with `sources`) the revision
        round's. Each source's samples use its own sampling; without `sources`, the config's.
        `verifier` (a `verifier.VLLMVerifier`) scores every answered sample; the `verifier` selector needs one."""
        self.engine = engine
        self.dialect = dialect
        self.sandbox = sandbox
        self.config = config or SolverConfig()
        if self.config.selector not in SELECTORS:
            raise ValueError(f"selector must be one of {sorted(SELECTORS)}")
        if self.config.stop not in STOP_RULES:
            raise ValueError(f"stop must be one of {STOP_RULES}")
        if self.config.selector == "verifier" and verifier is None:
            raise ValueError("the verifier selector needs a verifier")
        self.verifier = verifier
        self.sources = sources or [Source("main", engine, dialect, self.config.sampling)]
        split(len(self.sources), [s.share for s in self.sources])  # shares must be usable
        self._problem_ids = itertools.count()

    async def solve(self, problem: str, *, budget_s: float | None = None, samples: int | None = None) -> Result:
        """Solve within `budget_s` seconds (None: no limit) with `samples` samples (default: the config's)."""
        started, origin = time.monotonic(), time.perf_counter()
        deadline = None if budget_s is None else started + budget_s
        n = samples or self.config.samples
        selector = SELECTORS[self.config.selector]
        ballot = Ballot(n, self.config.agree, selector, self.config.stop)
        if not problem.strip():
            return self._result(problem, ballot, [], started, failure="empty problem")
        main_ids = self.dialect.prompt_ids(problem)
        if not _fits(main_ids, self.engine):
            return self._result(problem, ballot, [], started,
                                failure=f"problem is {len(main_ids)} tokens; the context holds "
                                        f"{self.engine.max_model_len}")
        prefix = f"p{next(self._problem_ids)}"
        traces, plan = [], []
        for source, count in zip(self.sources, split(n, [s.share for s in self.sources]), strict=True):
            prompt_ids = source.dialect.prompt_ids(source.prompt.format(problem=problem))
            for _ in range(count):
                i = len(traces)
                traces.append(SampleTrace(index=i, seed=self.config.seed * 10_007 + i, source=source.name,
                                          weight=source.weight))
                plan.append((source, prompt_ids))
        failure, early = await self._round(plan, traces, ballot, prefix, origin, deadline, budget_s)
        revision = self.config.revision
        if self._wants_revision(ballot, deadline):
            checks = [SampleTrace(index=n + i, seed=self.config.seed * 10_007 + n + i, source="revision", round=1,
                                  weight=revision.weight) for i in range(revision.samples)]
            second = Ballot(len(checks), 0, selector)  # every check runs to its end (or the deadline)
            revision_ids = self.dialect.prompt_ids(self._revision_prompt(problem, ballot, traces))
            if _fits(revision_ids, self.engine):
                main = Source("revision", self.engine, self.dialect, self.config.sampling)
                failure_2, _ = await self._round([(main, revision_ids)] * len(checks), checks, second, prefix,
                                                 origin, deadline, budget_s)
                failure = failure or failure_2
                ballot.merge(second)
                traces += checks
        if self.verifier is not None:
            failure = failure or await self._verify(problem, traces, ballot, deadline)
        errors = [t.error for t in traces if t.finish == "error"]
        if errors and len(errors) == ballot.finished and not ballot.votes:
            failure = failure or f"every finished sample failed: {errors[0]}"
        elif errors:
            failure = failure or f"{len(errors)} sample(s) failed: {errors[0]}"
        return self._result(problem, ballot, traces, started, failure=failure, early=early)

    async def _round(self, plan: list[tuple[Source, list[int]]], traces: list[SampleTrace], ballot: Ballot,
                     prefix: str, origin: float, deadline: float | None,
                     budget_s: float | None) -> tuple[str | None, bool]:
        """Run each trace's sample (from its source, on its prompt) into `ballot` until it is decided or time
        is up: (failure, stopped early)."""
        tasks, sources = {}, {}
        for trace, (source, prompt_ids) in zip(traces, plan, strict=True):
            if not _fits(prompt_ids, source.engine):
                trace.finish, trace.error = "error", f"the prompt is {len(prompt_ids)} tokens, over its context"
                ballot.add(None)
                continue
            task = asyncio.create_task(run_sample(source.engine, source.dialect, self.sandbox, prompt_ids, trace,
                                                  request_prefix=prefix, config=self._sampling(source),
                                                  origin=origin))
            tasks[task], sources[task] = trace, source
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
                    ballot.add(vote_of(trace))
        finally:
            await self._stop(pending, tasks, sources, prefix)
        return failure, bool(pending)

    def _sampling(self, source: Source) -> SamplingConfig:
        config = source.sampling
        if self.config.selector in ENTROPY_SELECTORS and not config.logprobs:
            config = replace(config, logprobs=5)
        return config

    async def _verify(self, problem: str, traces: list[SampleTrace], ballot: Ballot,
                      deadline: float | None) -> str | None:
        """Score the counted samples with the verifier and put the scores on their votes."""
        counted = [t for t in traces if t.finish != "aborted" and t.answer is not None]  # the ballot's votes
        dialects = {s.name: s.dialect for s in self.sources}
        timeout = None if deadline is None else max(0.1, deadline - time.monotonic())
        try:
            async with asyncio.timeout(timeout):
                scores = await asyncio.gather(*(self.verifier.score(dialects.get(t.source, self.dialect), problem, t)
                                                for t in counted))
        except (TimeoutError, EngineError) as exc:  # the vote stands unscored: the answer is not lost
            return f"the verifier did not score the samples: {exc!r}"
        for trace, score in zip(counted, scores, strict=True):
            trace.verifier_score = score
        ballot.votes = [vote_of(t) for t in counted]
        return None

    def _wants_revision(self, ballot: Ballot, deadline: float | None) -> bool:
        revision = self.config.revision
        if revision.below <= 0 or revision.samples <= 0 or not ballot.votes:
            return False
        if deadline is not None and deadline - time.monotonic() < revision.min_seconds:
            return False
        return max(ballot.counts().values()) / len(ballot.votes) < revision.below

    def _revision_prompt(self, problem: str, ballot: Ballot, traces: list[SampleTrace]) -> str:
        revision = self.config.revision
        scores, counts = ballot.selector(ballot.votes), ballot.counts()
        leaders = sorted(scores, key=lambda a: (-scores[a], -counts.get(a, 0), a))[: revision.candidates]
        answers = " and ".join(str(a) for a in leaders) if len(leaders) < 3 else (
            ", ".join(str(a) for a in leaders[:-1]) + f" and {leaders[-1]}")
        code = ""
        if revision.show_code:
            for answer in leaders:
                cells = [t.code for s in traces if s.answer == answer for t in s.turns if t.code]
                if cells:
                    code += f"\n\nCode that gave {answer}:\n```python\n{cells[-1]}\n```"
        return revision.prompt.format(problem=problem, answers=answers, code=code)

    async def _stop(self, pending: set[asyncio.Task], tasks: dict, sources: dict, prefix: str) -> None:
        """Abort what is still running: engine requests first, then the tasks (which closes their sessions)."""
        if not pending:
            return
        for engine in {id(sources[t].engine): sources[t].engine for t in pending}.values():
            ids = [i for t in pending if sources[t].engine is engine
                   for i in request_ids(prefix, tasks[t].index, self._sampling(sources[t]))]
            try:
                await engine.abort(ids)
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


def _fits(prompt_ids: list[int], engine: Engine) -> bool:
    """Whether a prompt leaves the engine's context room to write anything."""
    return len(prompt_ids) < engine.max_model_len - 16


def vote_of(trace: SampleTrace) -> Vote | None:
    if trace.answer is None:
        return None
    outputs = [t.output for t in trace.turns if t.status == "OK"]
    return Vote(trace.answer, trace.mean_entropy, trace.code_ok, trace.tool_calls - trace.code_ok,
                supported=shown_in(trace.answer, outputs), weight=trace.weight, verifier=trace.verifier_score,
                tail_entropy=trace.tail_entropy)
