"""The time budget under a simulated clock, including adversarial problem sets."""

from __future__ import annotations

import pytest

from inference.budget import BudgetConfig, TimeBudget


class FakeClock:
    """A clock the test advances by hand (simulated time, named so)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run(hardness: list[float], config: BudgetConfig) -> tuple[list[float], FakeClock, TimeBudget]:
    """Each problem wants `hardness` seconds and takes min(wanted, its plan): a solver that always
    answers by its deadline. Returns the planned seconds per problem."""
    clock = FakeClock()
    budget = TimeBudget(config, clock)
    plans = []
    for wanted in hardness:
        plan = budget.plan()
        used = min(wanted, plan.seconds)
        clock.now += used
        budget.record(used)
        plans.append(plan.seconds)
        assert clock.now <= budget.deadline, "a problem ran past the global deadline"
    return plans, clock, budget


CONFIG = BudgetConfig(total_s=5000, problems=50)  # base = 80 s


def test_easy_problems_bank_time_for_hard_ones():
    plans, _, budget = run([10] * 10 + [10_000], CONFIG)
    assert plans[0] == pytest.approx(80)
    assert plans[-1] == pytest.approx(240)  # base + bank, capped at 3 bases
    assert budget.bank < 10 * 70


@pytest.mark.parametrize(
    "hardness",
    [
        [10_000] * 50,  # every problem would take forever
        [10_000] * 25 + [5] * 25,  # all the hard ones first
        [5] * 25 + [10_000] * 25,  # all the hard ones last
        [10_000, 1] * 25,  # alternating
    ],
)
def test_every_problem_gets_time_under_adversarial_sets(hardness):
    plans, clock, budget = run(hardness, CONFIG)
    assert len(plans) == 50 and all(p > 0 for p in plans)
    # the reserve holds: even the last problem gets at least its minimum share
    assert plans[-1] >= CONFIG.minimum_share * budget.base - 1e-6
    assert clock.now <= budget.deadline - CONFIG.safety_s + 1e-6


def test_samples_shrink_when_time_runs_short():
    clock = FakeClock()
    budget = TimeBudget(CONFIG, clock)
    assert budget.plan().samples == CONFIG.max_samples
    clock.now += 4900  # nearly everything spent on the first problem (a stuck sample, say)
    budget.record(4900)
    plan = budget.plan()
    assert 0 < plan.seconds < budget.base and plan.samples < CONFIG.max_samples
    assert plan.samples >= CONFIG.min_samples


def test_no_time_left_still_plans_an_answer():
    clock = FakeClock()
    budget = TimeBudget(CONFIG, clock)
    clock.now += 10_000
    plan = budget.plan()
    assert plan.seconds == 0 and plan.samples == CONFIG.min_samples
