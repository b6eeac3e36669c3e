"""Time across a problem set: a base per problem, a bank of unused time, a ceiling, and a reserve so the
problems still to come always keep their minimum.

    budget = TimeBudget(BudgetConfig(total_s=5 * 3600, problems=50))
    plan = budget.plan()                 # before each problem: seconds and samples for it
    ...solve within plan.seconds...
    budget.record(used_s)                # after it
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class BudgetConfig:
    total_s: float = 5 * 3600.0  # the global deadline, from when the budget is made
    problems: int = 50  # how many problems are expected in all
    base_share: float = 0.8  # a problem's base is this share of the even split; the rest seeds the bank
    base_s: float = 0.0  # a problem's base in seconds, when given (then base_share is not used)
    # True: the time beyond every problem's base is in the bank from the start, so that with
    # minimum_share 1 a problem gets clamp(time left - later problems x base, ..., ceiling): AIMO3's rule.
    bank_slack: bool = False
    ceiling_factor: float = 3.0  # no problem gets more than this many bases
    minimum_share: float = 0.25  # the reserve keeps this share of a base for each problem still to come
    safety_s: float = 5.0  # kept back from the very end, for returning the last answer
    max_samples: int = 8
    min_samples: int = 2


@dataclass(frozen=True)
class Plan:
    seconds: float  # this problem's deadline, from now
    samples: int


class TimeBudget:
    def __init__(self, config: BudgetConfig | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config or BudgetConfig()
        self.clock = clock
        self.deadline = clock() + self.config.total_s
        c = self.config
        self.base = c.base_s or c.base_share * c.total_s / c.problems
        # Seconds earlier problems left unused (negative after overruns), plus the slack when it is banked.
        self.bank = max(0.0, c.total_s - c.safety_s - c.problems * self.base) if c.bank_slack else 0.0
        self.done = 0

    def remaining_s(self) -> float:
        return max(0.0, self.deadline - self.clock() - self.config.safety_s)

    def plan(self) -> Plan:
        """The time and samples for the next problem."""
        c = self.config
        left = max(1, c.problems - self.done)
        reserve = (left - 1) * c.minimum_share * self.base  # what the later problems are guaranteed
        remaining = self.remaining_s()
        # Once the reserve can no longer be kept, what is left is split evenly.
        available = max(remaining - reserve, remaining / left)
        wanted = min(c.ceiling_factor * self.base, self.base + max(0.0, self.bank))
        seconds = min(wanted, available)
        # When time is short, fewer samples finish within it: scale them with the time given.
        scale = min(1.0, seconds / self.base) if self.base > 0 else 1.0
        samples = max(c.min_samples, round(c.max_samples * scale)) if seconds > 0 else c.min_samples
        return Plan(seconds=seconds, samples=min(samples, c.max_samples))

    def record(self, used_s: float) -> None:
        """Account for a finished problem: unused base goes to the bank, overruns come out of it."""
        self.bank += self.base - used_s
        self.done += 1
