"""Answer extraction and voting: pure functions, checked on the cases that bite."""

from __future__ import annotations

import pytest

from inference.answers import extract_answer, last_boxed
from inference.voting import Ballot, Vote, code_verified, entropy_weighted, majority


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
