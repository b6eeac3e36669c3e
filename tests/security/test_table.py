"""SECURITY.md's attack table is rendered from attacks.ATTACKS: it may not drift from what the tests assert."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.security.attacks import ATTACKS, BOUNDARIES, render_table

SECURITY_MD = Path(__file__).resolve().parents[2] / "SECURITY.md"
BOUNDARY_TESTS = Path(__file__).with_name("test_boundaries.py")
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


def boundaries_with_a_test() -> set[str]:
    """The attack names test_boundaries.py's `@boundary(...)` decorators give (its USED set), read from its
    source: a test module imports no other test module."""
    tree = ast.parse(BOUNDARY_TESTS.read_text())
    literals = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                literals[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "boundary":
            for arg in node.args:
                names.update(literals[arg.value.id] if isinstance(arg, ast.Starred) else [ast.literal_eval(arg)])
    return names


def test_every_trust_boundary_attack_has_its_test_in_both_modes():
    names = [b.name for b in BOUNDARIES]
    assert len(set(names)) == len(names)
    used = boundaries_with_a_test()
    assert used == set(names), set(names) ^ used
    assert {b.issue_class for b in BOUNDARIES} == set(range(1, 13))  # issue 29's twelve classes
    for b in BOUNDARIES:
        assert set(b.gaps) <= {"nsjail", "rlimit"} and b.now, b.name
