"""The lab against what is known exactly: synthetic recordings from a stated distribution, where the
best policy can be worked out by hand (or by enumerating every way the samples can finish)."""

from __future__ import annotations

import itertools
import json
import random

import pytest

from inference.lab import Policy, score_policy
from inference.lab.recording import Recording, RecordingError, load_runs
from inference.lab.replay import run_problem
from inference.lab.score import best, grid, pareto
from inference.lab.synthetic import SyntheticSpec, make_problem, make_sample, synthetic_recording
from inference.lab.timing import Timing
from inference.trace import TRACE_FORMAT
from inference.voting import Vote

SECONDS_PER_TOKEN = Timing(step_ms=1.0, per_sequence_ms=0.0, turn_ms=0.0, problem_ms=0.0)
RIGHT, TRAP, WRONG = "right", "trap", "wrong"


def staggered_recording(problems: int, accuracy: float, trap: float, seed: int = 0, samples: int = 8):
    """`samples` samples per problem; sample j (in a random order) finishes at j seconds. Each is right with
    probability `accuracy`, else the trap answer with probability `trap`, else an answer of its own."""
    r = random.Random(seed)
    recorded = []
    for number in range(problems):
        drawn = []
        for finish_s in r.sample(range(1, samples + 1), samples):
            roll = r.random()
            kind = RIGHT if roll < accuracy else TRAP if roll < accuracy + (1 - accuracy) * trap else WRONG
            answer = {RIGHT: 7, TRAP: 8}.get(kind, 100 + len(drawn))
            drawn.append(make_sample(answer, [finish_s * 1000]))
        recorded.append(make_problem(f"p{number}", 7, drawn))
    return Recording(tuple(recorded), policy=None)


def stop_and_winner(answers: list[int], agree: int) -> tuple[int, int]:
    """The voting rule as documented, written here apart from `inference.voting` so that the oracle does
    not share the code under test: stop once `agree` answers agree or the leader cannot be caught (or all
    have finished); the most-given answer wins, ties to the smaller. Returns (winner, samples waited for)."""
    counts: dict[int, int] = {}
    for position, answer in enumerate(answers, 1):
        counts[answer] = counts.get(answer, 0) + 1
        ranked = [*sorted(counts.values(), reverse=True), 0]
        if position == len(answers) or ranked[0] >= agree or ranked[0] > ranked[1] + len(answers) - position:
            break
    return min(counts, key=lambda a: (-counts[a], a)), position


def exact(agree: int, accuracy: float, trap: float, samples: int = 8) -> tuple[float, float]:
    """Expected score and seconds per problem under the stated distribution: every sequence of finishes,
    weighted by its probability, through the rule above."""
    weights = {RIGHT: accuracy, TRAP: (1 - accuracy) * trap, WRONG: (1 - accuracy) * (1 - trap)}
    score = seconds = 0.0
    for kinds in itertools.product(weights, repeat=samples):
        probability = 1.0
        for kind in kinds:
            probability *= weights[kind]
        winner, waited = stop_and_winner([{RIGHT: 7, TRAP: 8}.get(k, 100 + i) for i, k in enumerate(kinds)], agree)
        score += probability * (winner == 7)
        seconds += probability * waited
    return score, seconds


# Three samples, right 0.5, trap 0.3, an answer of its own 0.2, enumerated by hand:
# agree 1 stops at the first: 0.5 right, 1 s. Agree 2 stops at two when the first two agree (RR 0.25,
# TT 0.09), else waits for the third; a three-way tie goes to the smallest answer, the right one (7):
# right = RR .25 + {R,T} .3 x (R or W third) .7 + {R,W} .2 x 1 + {T,W} .12 x (R third) .5 + WW .04 x .5
# = 0.74; seconds = 2 x .34 + 3 x .66 = 2.66. Agree 3 is the same: two equal of three cannot be caught.
BY_HAND_3 = {1: (0.5, 1.0), 2: (0.74, 2.66), 3: (0.74, 2.66)}


def test_the_exact_oracle_agrees_with_the_hand_enumeration():
    for agree, (score, seconds) in BY_HAND_3.items():
        assert exact(agree, 0.5, 0.6, samples=3) == pytest.approx((score, seconds)), agree


def test_the_lab_matches_the_hand_enumerated_score_and_time_on_three_samples():
    recording = staggered_recording(400, 0.5, 0.6, samples=3)
    for agree, (want_score, want_seconds) in BY_HAND_3.items():
        s = score_policy(recording, Policy(samples=3, agree=agree), SECONDS_PER_TOKEN, replicates=60)
        assert s.low <= want_score <= s.high, (agree, s.score, want_score)
        assert s.seconds / 400 == pytest.approx(want_seconds, rel=0.05), agree


def test_the_lab_matches_the_exact_score_and_time_for_every_agreement_threshold():
    accuracy, trap = 0.45, 0.6
    recording = staggered_recording(400, accuracy, trap)
    for agree in range(1, 9):
        s = score_policy(recording, Policy(samples=8, agree=agree), SECONDS_PER_TOKEN, replicates=60)
        want_score, want_seconds = exact(agree, accuracy, trap)
        assert s.low <= want_score <= s.high, (agree, s.score, want_score)
        assert s.seconds / 400 == pytest.approx(want_seconds, rel=0.05), agree


def test_the_search_recovers_the_best_agreement_threshold_within_a_time_limit():
    accuracy, trap = 0.45, 0.6
    truth = {agree: exact(agree, accuracy, trap) for agree in range(1, 9)}
    # The best threshold under a time limit per problem: the best score among those that fit. Put the limit
    # halfway between two thresholds' times, so the optimum is known and not a near tie.
    limit = (truth[3][1] + truth[4][1]) / 2
    optimum = max((a for a in truth if truth[a][1] <= limit), key=lambda a: truth[a][0])
    assert optimum == 3 and truth[3][0] > truth[2][0] + 0.02

    recording = staggered_recording(400, accuracy, trap)
    scores = [score_policy(recording, p, SECONDS_PER_TOKEN, replicates=40)
              for p in grid(Policy(samples=8), {"agree": list(range(1, 9))})]
    assert best(scores, max_seconds=limit * 400).policy.agree == optimum


def test_the_search_recovers_the_most_samples_the_deadline_allows():
    """Every sample takes 1000 tokens, and a step takes 1 ms + 0.25 ms per sequence: n samples take
    1 + 0.25 n seconds. A problem's base time is 0.8 of the even split, 2.6 s here, so 6 samples (2.5 s)
    fit and 7 (2.75 s) never finish: the budget's bank only grows from time a problem leaves unused."""
    timing = Timing(step_ms=1.0, per_sequence_ms=0.25, turn_ms=0.0, problem_ms=0.0)
    r = random.Random(3)
    problems = [make_problem(f"p{i}", 7, [make_sample(7 if r.random() < 0.6 else 100 + s, [1000]) for s in range(16)])
                for i in range(50)]
    recording = Recording(tuple(problems), policy=None)
    base = Policy(agree=99, total_s=2.6 * 50 / 0.8)
    scores = {s.policy.samples: s for s in (score_policy(recording, p, timing, replicates=30)
                                            for p in grid(base, {"samples": list(range(1, 13))}))}
    assert best(list(scores.values())).policy.samples == 6
    assert all(scores[n].score == 0 for n in range(7, 13))  # every problem runs out of time
    assert [scores[n].score for n in range(1, 7)] == sorted(scores[n].score for n in range(1, 7))
    assert scores[6].problem_seconds[1] == pytest.approx(2.5)


def test_aimo3_scoring_pays_half_for_one_right_run_of_two():
    coin = make_problem("coin", 7, [make_sample(7, [10]), make_sample(8, [10])])
    recording = Recording((coin,), policy=None)
    single = score_policy(recording, Policy(samples=1, agree=1), SECONDS_PER_TOKEN, replicates=400)
    twice = score_policy(recording, Policy(samples=1, agree=1), SECONDS_PER_TOKEN, replicates=400, scoring="aimo3")
    assert set(single.replicates) == {0.0, 1.0}
    assert set(twice.replicates) == {0.0, 0.5, 1.0}
    assert twice.replicates.count(0.5) / 400 == pytest.approx(0.5, abs=0.08)
    assert single.score == pytest.approx(0.5, abs=0.08) and twice.score == pytest.approx(0.5, abs=0.08)


def test_selection_loss_is_what_the_vote_throws_away():
    # Three samples: two agree on the trap, one is right. pass@3 is 1, the vote is wrong.
    trap = make_problem("trap", 7, [make_sample(8, [10]), make_sample(8, [20]), make_sample(7, [30])])
    s = score_policy(Recording((trap,), None), Policy(samples=3, agree=3), SECONDS_PER_TOKEN, replicates=5)
    assert (s.score, s.pass_at_n, s.selection_loss) == (0.0, 1.0, 1.0)


def test_a_sample_cut_off_in_the_recording_leaves_the_vote_instead_of_voting():
    cut = make_sample(None, [50])
    cut = type(cut)(cut.segments, Vote(9), "aborted", 0.0)  # an aborted sample: its "answer" is unknown
    problem = make_problem("cut", 7, [make_sample(7, [100]), cut, make_sample(7, [200])])
    run = run_problem(problem.samples, Policy(samples=3, agree=2), 60, SECONDS_PER_TOKEN, expected=7)
    assert (run.answer, run.truncated, run.seconds) == (7, 1, 0.2)


def test_samples_beyond_the_slots_wait_for_one():
    problem = make_problem("q", 7, [make_sample(7 + i, [1000]) for i in range(4)])  # no early stop
    one_slot = run_problem(problem.samples, Policy(samples=4, agree=4, slots=1), 60, SECONDS_PER_TOKEN)
    all_slots = run_problem(problem.samples, Policy(samples=4, agree=4), 60, SECONDS_PER_TOKEN)
    assert (one_slot.seconds, all_slots.seconds) == (4.0, 1.0)


def test_tool_calls_take_their_recorded_time_without_holding_the_batch():
    timing = Timing(step_ms=0.0, per_sequence_ms=1.0, turn_ms=0.0, problem_ms=0.0)  # k together: k ms a token
    tool_user = make_sample(7, [100, 100], tool_ms=[500])
    plain = make_sample(7, [400])
    run = run_problem([tool_user, plain], Policy(samples=2, agree=2), 60, timing)
    # Both decode at 2 ms a token for 100 tokens (0.2 s); while the first waits on its tool (0.5 s) the
    # second decodes alone at 1 ms a token: 300 tokens, done at 0.5 s; the first resumes at 0.7 s, alone.
    assert run.seconds == pytest.approx(0.8)


def test_pareto_front_keeps_only_undominated_policies():
    recording = synthetic_recording(SyntheticSpec(problems=20, samples=8))
    timing = Timing(step_ms=20.0, per_sequence_ms=0.5, turn_ms=50.0, problem_ms=100.0)
    scores = [score_policy(recording, p, timing, replicates=20)
              for p in grid(Policy(), {"samples": [2, 4, 8], "agree": [1, 2, 8]})]
    front = pareto(scores)
    assert front, "an empty front keeps nothing"
    for s in front:
        assert not any(o.score > s.score and o.seconds < s.seconds for o in scores)
    for s in scores:  # and it keeps every undominated one: each left out is beaten by one kept
        assert s in front or any(f.score >= s.score and f.seconds <= s.seconds for f in front), s.policy
    assert max(scores, key=lambda s: (s.score, -s.seconds)) in front
    assert min(scores, key=lambda s: (s.seconds, -s.score)) in front
    assert [s.seconds for s in front] == sorted(s.seconds for s in front)
    assert [s.score for s in front] == sorted(s.score for s in front)


def test_a_trace_of_another_format_is_refused_with_the_reason(tmp_path):
    (tmp_path / "traces.jsonl").write_text(json.dumps({"trace_format": TRACE_FORMAT + 1, "id": "x"}) + "\n")
    with pytest.raises(RecordingError, match="trace format"):
        load_runs([tmp_path])
    with pytest.raises(RecordingError, match=r"no traces\.jsonl"):
        load_runs([tmp_path / "missing"])
