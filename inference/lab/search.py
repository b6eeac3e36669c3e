"""A policy search on recorded runs, start to end: what `aimo lab` does, without the printing.

    setup = load_search(["runs/rec"], {"samples": "4,8", "agree": "2,3"})
    found = search_policies(setup, replicates=100, out=Path("runs/lab"))
    found.best, found.front, found.report

`load_search` raises `RecordingError` or `ValueError` for runs or choices it cannot use.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..voting import ENTROPY_SELECTORS, SELECTORS, STOP_RULES
from .recording import Recording, load_runs
from .replay import Policy, ReplayCheck, replay_recorded_policy
from .report import write_lab
from .score import PolicyScore, best, grid, pareto, parse_choices, random_search, score_policy
from .timing import Timing, fit_timing


@dataclass(frozen=True)
class SearchSetup:
    """Recorded runs ready to search: their timing, the choices to try and the recorded policy's replay."""

    recording: Recording
    timing: Timing
    choices: dict[str, list]
    base: Policy  # the recorded policy (defaults when runs were pooled): what the choices vary
    check: ReplayCheck | None  # the replay of the recorded policy against the recorded run
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SearchResult:
    scores: list[PolicyScore]
    front: list[PolicyScore]  # the Pareto front, fastest first
    best: PolicyScore | None  # None: no policy fits the time asked
    recorded: PolicyScore | None  # the recorded policy, scored like the others
    report: Path  # lab.html (lab.csv beside it)


def load_search(runs: Sequence[Path | str], given: dict[str, str | None]) -> SearchSetup:
    """The recording of `runs` and the comma-separated choices `given` (policy field -> "4,8,16")."""
    recording = load_runs(list(runs))
    choices = parse_choices(given)
    timing = fit_timing(recording)
    base = Policy.recorded(recording.policy) if recording.policy else Policy()
    for name, known in (("selector", SELECTORS), ("stop", STOP_RULES)):
        if unknown := set(choices.get(name, [])) - set(known):
            raise ValueError(f"unknown {name} {', '.join(sorted(unknown))}; known: {', '.join(known)}")
    warnings = []
    votes = [s.vote for p in recording.problems for s in p.samples if s.vote]
    wanted = set(choices.get("selector", []))
    if wanted & ENTROPY_SELECTORS and not any(v.mean_entropy is not None for v in votes):
        warnings.append("the recording has no logprobs (record with --selector entropy): the entropy "
                        "selectors count every vote as 1, like majority")
    elif any(s.endswith("-tail") for s in wanted) and not any(v.tail_entropy is not None for v in votes):
        warnings.append("the recording has no last-256-token entropies (recorded before they were): the "
                        "-tail selectors use each sample's mean entropy")
    check = replay_recorded_policy(recording, timing) if recording.policy else None
    return SearchSetup(recording, timing, choices, base, check, warnings)


def search_policies(setup: SearchSetup, *, out: Path, random_count: int = 0, replicates: int = 100,
                    scoring: str = "single", max_seconds: float | None = None, seed: int = 0,
                    progress: Callable[[Iterable[Policy]], Iterable[Policy]] = iter) -> SearchResult:
    """Score the grid of choices (or `random_count` policies drawn from it) and write the report to `out`."""
    recording, base = setup.recording, setup.base
    policies = random_search(base, setup.choices, random_count, seed) if random_count else grid(base, setup.choices)
    score = functools.partial(score_policy, recording, timing=setup.timing, replicates=replicates, seed=seed,
                              scoring=scoring)
    scores = [score(p) for p in progress(policies)]
    recorded = None
    if recording.policy:  # the recorded policy, scored like the others (already, when the grid holds it)
        recorded = next((s for s in scores if s.policy == base), None) or score(base)
    per_problem = sum(len(p.samples) for p in recording.problems) / len(recording.problems)
    note = (f"{len(recording.problems)} problems ({len(recording.graded)} graded), {per_problem:.1f} recorded samples "
            f"each; {replicates} simulated runs per policy; scoring: {scoring}")
    report = write_lab(out, scores, setup.timing, recording_note=note, check=setup.check, recorded=recorded)
    return SearchResult(scores, pareto(scores), best(scores, max_seconds), recorded, report)
