"""SECURITY.md's attack table is rendered from attacks.ATTACKS: it may not drift from what the tests assert."""

from __future__ import annotations

from pathlib import Path

from . import test_boundaries
from .attacks import ATTACKS, BOUNDARIES, render_table

SECURITY_MD = Path(__file__).resolve().parents[2] / "SECURITY.md"
BEGIN, END = "<!-- attack-table:begin -->", "<!-- attack-table:end -->"


def test_security_md_table_matches_the_attacks():
    text = SECURITY_MD.read_text()
    table = text.split(BEGIN, 1)[1].split(END, 1)[0].strip() + "\n"
    assert table == render_table(), "SECURITY.md is stale: regenerate with `python -m tests.security.attacks`"


def test_at_least_thirty_attacks_each_with_both_modes_declared():
    assert len(ATTACKS) >= 30
    assert len({a.name for a in ATTACKS}) == len(ATTACKS)
    for attack in ATTACKS:
        for mode in ("nsjail", "rlimit"):
            outcome = attack.outcome(mode)
            assert outcome.statuses and (outcome.contained or outcome.note), attack.name


def test_every_trust_boundary_attack_has_its_test_in_both_modes():
    names = [b.name for b in BOUNDARIES]
    assert len(set(names)) == len(names)
    assert test_boundaries.USED == set(names), set(names) ^ test_boundaries.USED
    assert {b.issue_class for b in BOUNDARIES} == set(range(1, 13))  # issue 29's twelve classes
    for b in BOUNDARIES:
        assert set(b.gaps) <= {"nsjail", "rlimit"} and b.now, b.name
