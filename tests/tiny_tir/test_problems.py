"""The synthetic problem generator: deterministic, in range, and its reference cells are right."""

from __future__ import annotations

import contextlib
import io

import pytest

from tiny_tir.problems import ANSWER_MAX, KINDS, generate


def _run_cells(cells: tuple[str, ...]) -> list[str]:
    """Execute cells in one namespace (a stateful session), returning what each shows."""
    ns: dict = {"__name__": "__main__"}
    shown = []
    for code in cells:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            try:
                exec(compile(code, "<cell>", "exec"), ns)  # our own reference code
            except Exception as e:  # noqa: BLE001
                print(f"{type(e).__name__}: {e}")
        shown.append(buf.getvalue().rstrip("\n"))
    return shown


def test_deterministic_per_seed() -> None:
    assert generate(5, 60) == generate(5, 60)
    assert generate(5, 60) != generate(6, 60)


def test_all_kinds_appear_and_answers_in_range() -> None:
    problems = generate(11, 400)
    assert {p.kind for p in problems} == set(KINDS)
    for p in problems:
        assert 0 <= p.answer <= ANSWER_MAX
        assert len(p.cell_outputs()) == len(p.cells) == len(p.cell_lead_ins())
        assert len(p.text) < 200


@pytest.mark.parametrize("kind", KINDS)
def test_reference_cells_print_the_answer(kind: str) -> None:
    problems = [p for p in generate(23, 300) if p.kind == kind][:4]
    assert problems
    for p in problems:
        shown = _run_cells(p.cells)
        assert tuple(shown) == tuple(o.splitlines()[-1] for o in p.cell_outputs()), p.text
        assert shown[-1] == str(p.answer)


def test_two_cell_shapes() -> None:
    problems = generate(3, 300)
    stateful = [p for p in problems if p.kind in ("digitsum", "primesum", "fib")]
    failing = [p for p in problems if p.kind == "commas"]
    assert stateful and failing
    for p in stateful:
        # the second cell alone fails: it needs the first cell's variable
        assert "Error" in _run_cells(p.cells[1:])[0]
    for p in failing:
        assert _run_cells(p.cells[:1])[0].startswith("TypeError")


def test_cells_print_their_outputs_in_the_real_sandbox() -> None:
    """The cells as the model is trained to write them, run for real, each problem in its own session:
    they show exactly the outputs the model is trained to read (a failing first cell included)."""
    from inference.tool_output import render_result
    from sandbox_service import LocalSandbox
    from tiny_tir.traces import as_written

    problems = {}
    for p in generate(4242, 300):
        problems.setdefault(p.kind, p)
    with LocalSandbox(pool_size=1) as sandbox:
        for problem in map(as_written, problems.values()):
            with sandbox.session() as session:
                shown = []
                for code in problem.cells:
                    r = session.run(code, timeout_ms=30_000)
                    shown.append(render_result(r))
            assert tuple(shown) == problem.cell_outputs(), problem.kind
            assert shown[-1] == f"\\boxed{{{problem.answer}}}"
