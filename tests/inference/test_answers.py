"""Answer extraction and voting: pure functions, checked on the cases that bite."""

from __future__ import annotations

import pytest

from inference.answers import extract_answer, last_boxed, shown_in
from inference.voting import (
    Ballot,
    Vote,
    code_verified,
    entropy_weighted,
    executed,
    majority,
    supported,
    verifier_weighted,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so \\boxed{42}.", 42),
        ("first \\boxed{1} then \\boxed{7}", 7),
        ("\\boxed{\\text{12}}", 12),
        ("\\boxed{1,234}", 1234),
        ("\\boxed{99999}", 99999),
        ("\\boxed{100000}", None),  # out of range, and no implicit modulus
        ("\\boxed{-3}", None),
        ("\\boxed{\\frac{1}{2}}", None),
        ("\\boxed{3.5}", None),
        ("\\boxed{12.0}", 12),
        ("no box at all: 42", None),
        ("cut off \\boxed{12", None),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_last_boxed_balances_nested_braces():
    assert last_boxed("\\boxed{\\frac{a}{b}}") == "\\frac{a}{b}"


def test_majority_and_ties_are_deterministic():
    ballot = Ballot(total=4, agree=3)
    for answer in (5, 3, 5, 3):
        ballot.add(Vote(answer))
    assert ballot.counts() == {5: 2, 3: 2}
    assert ballot.winner() == 3  # equal votes: the smaller answer, so reruns agree


def test_entropy_weighting_prefers_confident_samples():
    votes = [Vote(1, mean_entropy=2.0), Vote(1, mean_entropy=2.0), Vote(9, mean_entropy=0.1)]
    assert max(majority(votes), key=majority(votes).get) == 1
    scores = entropy_weighted(votes)
    assert max(scores, key=scores.get) == 9


def test_code_verified_weighting_prefers_samples_whose_code_ran():
    votes = [Vote(1, code_failed=2), Vote(1, code_failed=1), Vote(2, code_ok=3)]
    assert max(majority(votes), key=majority(votes).get) == 1
    scores = code_verified(votes)
    assert scores == {1: 1.0, 2: 1.5}


def test_execution_filters_drop_unbacked_votes_but_never_all_of_them():
    votes = [Vote(7), Vote(7), Vote(3, code_ok=1, supported=True)]
    assert max(majority(votes), key=majority(votes).get) == 7
    assert executed(votes) == {3: 1.0}
    assert supported(votes) == {3: 1.0}
    unbacked = [Vote(7), Vote(7), Vote(3)]
    assert executed(unbacked) == majority(unbacked) == supported(unbacked)  # none pass: all count


def test_weights_scale_every_selector():
    votes = [Vote(1), Vote(2, weight=2.5, code_ok=1, supported=True)]
    assert majority(votes) == {1: 1.0, 2: 2.5}
    assert code_verified(votes) == {1: 0.5, 2: 3.75}
    assert entropy_weighted(votes)[2] == 2.5


def test_the_verifier_reranks_the_vote_and_falls_back_to_majority_unscored():
    votes = [Vote(1, verifier=0.1), Vote(1, verifier=0.2), Vote(2, verifier=0.9, weight=0.5)]
    assert majority(votes)[1] == 2.0
    assert verifier_weighted(votes) == pytest.approx({1: 0.3, 2: 0.45})
    assert verifier_weighted([Vote(1), Vote(1), Vote(2)]) == {1: 2.0, 2: 1.0}


def test_merged_rounds_vote_together():
    first, second = Ballot(total=4, agree=3), Ballot(total=2, agree=0)
    for answer in (5, 3, 3):
        first.add(Vote(answer))
    first.add(None)
    for _ in range(2):
        second.add(Vote(5, weight=1.0))
    first.merge(second)
    assert (first.total, first.finished, first.counts()) == (6, 6, {5: 3, 3: 2})
    assert first.winner() == 5


@pytest.mark.parametrize(("answer", "outputs", "shown"), [
    (42, ["\\boxed{42}"], True),
    (12345, ["total: 12,345\n"], True),
    (12345, ["123456"], False),
    (5, ["15 25"], False),
    (5, [], False),
])
def test_an_answer_is_supported_only_by_a_whole_number_in_an_output(answer, outputs, shown):
    assert shown_in(answer, outputs) is shown


def test_early_stop_when_k_agree():
    ballot = Ballot(total=8, agree=3)
    for answer in (4, 4):
        ballot.add(Vote(answer))
    assert not ballot.decided()
    ballot.add(Vote(4))
    assert ballot.decided()


def test_early_stop_when_the_leader_cannot_be_caught():
    ballot = Ballot(total=5, agree=5)
    for vote in (Vote(1), Vote(1), Vote(1), None):
        ballot.add(vote)
    assert ballot.decided()  # 3 votes against at most 1 remaining
    undecided = Ballot(total=5, agree=5)
    for vote in (Vote(1), Vote(2)):
        undecided.add(vote)
    assert not undecided.decided()


def test_agree_zero_never_stops_early():
    ballot = Ballot(total=3, agree=0)
    for vote in (Vote(1), Vote(1)):
        ballot.add(vote)
        assert not ballot.decided()  # even when the leader cannot be caught: the last sample still runs
    ballot.add(Vote(2))
    assert ballot.decided() and ballot.winner() == 1


def test_no_votes_means_no_winner():
    ballot = Ballot(total=2, agree=2)
    ballot.add(None)
    ballot.add(None)
    assert ballot.decided() and ballot.winner() is None


def test_the_stop_rules_agree_and_uncatchable():
    for stop, decided_after in (("agree", None), ("uncatchable", 6)):
        ballot = Ballot(total=8, agree=5, stop=stop)
        for finished, answer in enumerate([7, 7, 7, 7, 8, None, 9], 1):
            ballot.add(None if answer is None else Vote(answer))
            assert ballot.decided() == (decided_after is not None and finished >= decided_after), (stop, finished)
    with pytest.raises(ValueError, match="stop rule"):
        Ballot(total=8, agree=4, stop="never")
