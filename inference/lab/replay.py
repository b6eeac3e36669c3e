"""Replaying a recording under a policy: the solver's own ballot and time budget, on a simulated clock.

A problem's samples start together and decode together at the fitted rate (`Timing`); a sample's tool
calls take what they took when recorded. The first finished samples vote, in the order they would
have finished, until the ballot is decided or the problem's time runs out, exactly as `Solver.solve`
does; the set runs under `TimeBudget`, exactly as `aimo eval` does.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, fields

from ..budget import BudgetConfig, TimeBudget
from ..solver import FALLBACK_ANSWER
from ..voting import SELECTORS, Ballot
from .recording import RecordedProblem, RecordedSample, Recording
from .timing import Timing


@dataclass(frozen=True)
class Policy:
    samples: int = 8
    agree: int = 4
    selector: str = "majority"
    stop: str = "uncatchable"  # voting.STOP_RULES: "agree" only, or also once the leader cannot be caught
    slots: int = 0  # samples decoding at once (the engine's max_num_seqs); 0: all of them
    total_s: float = 5 * 3600.0  # the global deadline
    problems: int = 0  # problems the budget expects; 0: as many as are run
    base_share: float = 0.8
    base_s: float = 0.0
    bank_slack: bool = False
    ceiling_factor: float = 3.0
    minimum_share: float = 0.25
    safety_s: float = 5.0
    min_samples: int = 2

    def budget(self, problems: int) -> BudgetConfig:
        return BudgetConfig(total_s=self.total_s, problems=self.problems or problems, base_share=self.base_share,
                            base_s=self.base_s, bank_slack=self.bank_slack,
                            ceiling_factor=self.ceiling_factor, minimum_share=self.minimum_share,
                            safety_s=self.safety_s, max_samples=self.samples,
                            min_samples=min(self.min_samples, self.samples))

    @classmethod
    def recorded(cls, policy: dict) -> Policy:
        """The policy a recorded run used (its summary.json's "policy")."""
        # The budget's fields that a policy shares by name (max_samples is the policy's `samples`).
        shared = {f.name for f in fields(cls)} & set(policy["budget"])
        return cls(samples=policy["samples"], agree=policy["agree"], selector=policy["selector"],
                   stop=policy.get("stop", "uncatchable"),  # recordings from before the rule was a switch
                   **{name: policy["budget"][name] for name in shared})


@dataclass(frozen=True)
class ProblemRun:
    answer: int | None  # None: no sample answered in time (the solver then answers its fallback)
    seconds: float
    pass_at_n: bool  # some drawn sample, run to its end, had the right answer (early stop or not)
    truncated: int  # drawn samples whose recording ended (aborted) before the replay was done with them


def run_problem(samples: Sequence[RecordedSample], policy: Policy, seconds: float, timing: Timing,
                expected: int | None = None) -> ProblemRun:
    """One problem: `samples` run together for at most `seconds`; the ballot decides when to stop."""
    n = len(samples)
    ballot = Ballot(n, policy.agree, SELECTORS[policy.selector], policy.stop)
    slots = policy.slots or n
    segment = [0] * n
    remaining = [float(s.segments[0].tokens) if s.segments else 0.0 for s in samples]
    ready_at = [timing.turn_ms] * n  # when each sample next wants to decode; inf while it decodes or is done
    decoding: list[int] = []
    deadline = seconds * 1000
    now, truncated = 0.0, 0
    while not ballot.decided():
        # Samples whose tool call (or prefill) is over join the batch while there are slots.
        waiting = sorted((t, i) for i, t in enumerate(ready_at) if t <= now)
        for _, i in waiting[: slots - len(decoding)]:
            decoding.append(i)
            ready_at[i] = math.inf
        token_ms = timing.token_ms(len(decoding))
        next_token_done = now + min(remaining[i] for i in decoding) * token_ms if decoding else math.inf
        later = [t for t in ready_at if now < t < math.inf]
        step_to = min(next_token_done, min(later, default=math.inf), deadline)
        if step_to == math.inf:
            break
        for i in decoding:
            remaining[i] -= (step_to - now) / token_ms
        now = step_to
        if now >= deadline:
            break
        for i in [i for i in decoding if remaining[i] <= 1e-9]:
            decoding.remove(i)
            sample, seg = samples[i], segment[i]
            if seg + 1 < len(sample.segments):  # a tool call, then the next turn
                segment[i] = seg + 1
                remaining[i] = float(sample.segments[seg + 1].tokens)
                ready_at[i] = now + sample.segments[seg].tool_ms + timing.turn_ms
            elif sample.complete:
                ballot.add(sample.vote)
            else:  # the recording stops here: what it would have answered is unknown, so it leaves the vote
                ballot.total -= 1
                truncated += 1
            if ballot.decided():
                break
    return ProblemRun(answer=ballot.winner(), seconds=min(now, deadline) / 1000 + timing.problem_ms / 1000,
                      pass_at_n=expected is not None and any(s.complete and s.answer == expected for s in samples),
                      truncated=truncated)


@dataclass(frozen=True)
class SetRun:
    answers: list[int]  # per problem, in the order given (the solver's fallback where none answered)
    correct: list[bool]
    seconds: list[float]
    pass_at_n: list[bool]
    truncated: int


def run_set(problems: Sequence[RecordedProblem], policy: Policy, timing: Timing,
            rng: random.Random | None = None) -> SetRun:
    """The problems in the order given, under the policy's time budget on a simulated clock.

    With `rng`, each problem's samples are a random draw from its recorded ones; without, its first ones
    (which is how the recorded run drew them).
    """
    now = 0.0
    budget = TimeBudget(policy.budget(len(problems)), clock=lambda: now)
    answers, correct, seconds, passed, truncated = [], [], [], [], 0
    for problem in problems:
        plan = budget.plan()
        count = min(plan.samples, len(problem.samples))
        drawn = rng.sample(problem.samples, count) if rng else problem.samples[:count]
        run = run_problem(drawn, policy, plan.seconds, timing, problem.expected)
        now += run.seconds
        budget.record(run.seconds)
        answers.append(FALLBACK_ANSWER if run.answer is None else run.answer)
        correct.append(run.answer is not None and run.answer == problem.expected)
        seconds.append(run.seconds)
        passed.append(run.pass_at_n)
        truncated += run.truncated
    return SetRun(answers, correct, seconds, passed, truncated)


@dataclass(frozen=True)
class ReplayCheck:
    """The recorded run against the lab's replay of the recorded run's own policy."""
    recorded_correct: int
    predicted_correct: int
    recorded_s: float
    predicted_s: float
    answers_differ: list[str]  # problem ids where the replay answered otherwise

    @property
    def time_ratio(self) -> float:
        return self.predicted_s / self.recorded_s if self.recorded_s else math.nan


def replay_recorded_policy(recording: Recording, timing: Timing) -> ReplayCheck:
    if recording.policy is None:
        raise ValueError("the recording does not say which policy it ran (pooled runs, or an old summary.json)")
    policy = Policy.recorded(recording.policy)
    run = run_set(recording.problems, policy, timing)
    graded = [(p, c) for p, c in zip(recording.problems, run.correct, strict=True) if p.expected is not None]
    differ = [p.id for p, answer in zip(recording.problems, run.answers, strict=True) if answer != p.answer]
    return ReplayCheck(recorded_correct=sum(p.answer == p.expected for p, _ in graded),
                       predicted_correct=sum(c for _, c in graded),
                       recorded_s=sum(p.elapsed_s for p in recording.problems), predicted_s=sum(run.seconds),
                       answers_differ=differ)
