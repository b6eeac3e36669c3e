"""The submission notebook, executed headless (nbclient, a kernel in this venv) against the gateway double:
ten problems on the tiny model, each answered with an integer before its deadline."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import polars as pl
from nbclient import NotebookClient
from typer.testing import CliRunner

from inference.cli import app
from inference.kaggle_notebook import DEFAULT_WHEELHOUSE, build_notebook, install_args, write_notebook
from inference.problems import synthetic_problems
from tests.inference.conftest import KAGGLE_DOUBLE as DOUBLE
from tests.inference.conftest import MODEL
from tests.inference.kaggle_scoring import score_submission

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 120  # the double's response timeout from the second problem on (the real one: 9 hours)


def test_the_notebook_is_valid_and_installs_offline():
    notebook = nbformat.reads(json.dumps(build_notebook("/kaggle/input/m", settings={"samples": 8, "agree": 4})),
                              as_version=4)
    nbformat.validate(notebook)
    install, settings, serve = (cell.source for cell in notebook.cells if cell.cell_type == "code")
    assert ", ".join(json.dumps(a) for a in install_args(DEFAULT_WHEELHOUSE)) in install and "--no-index" in install
    assert "model='/kaggle/input/m'" in settings and "samples=8" in settings and "agree=4" in settings
    assert "kaggle.serve(" in serve and "ai-mathematical-olympiad-progress-prize-3/test.csv" in serve
    for source in (install, settings, serve):
        compile(source, "cell", "exec")


def test_the_notebook_answers_ten_problems_through_the_gateway(tmp_path, monkeypatch):
    problems = synthetic_problems(10, seed=2222)
    csv = tmp_path / "test.csv"
    pl.DataFrame({"id": [p.id for p in problems], "problem": [p.problem for p in problems]}).write_csv(csv)
    path = write_notebook(tmp_path / "submission.ipynb", str(MODEL), test_csv=str(csv),
                          samples=2, agree=2, budget={"total_s": 1800, "problems": 10})
    # The kernel is this venv's Python; it imports this checkout's code and, as `kaggle_evaluation`, the double.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(DOUBLE), str(ROOT)]))
    monkeypatch.setenv("KAGGLE_DOUBLE_OUT", str(tmp_path))
    monkeypatch.setenv("KAGGLE_DOUBLE_RESPONSE_TIMEOUT_S", str(DEADLINE_S))
    monkeypatch.delenv("KAGGLE_IS_COMPETITION_RERUN", raising=False)
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
                   ).execute()
    install_output = "".join(o.get("text", "") for o in notebook.cells[1].outputs)
    assert "aimo-tir" in install_output and "is installed" in install_output  # this venv has it: no pip run
    submission = score_submission(tmp_path / "submission.parquet", csv)
    assert submission.height == 10 and submission["answer"].dtype == pl.Int64
    calls = json.loads((tmp_path / "gateway_calls.json").read_text())
    assert len(calls) == 10 and all(c["seconds"] < DEADLINE_S for c in calls[1:])
    log = "".join(o.get("text", "") for o in notebook.cells[3].outputs)
    assert log.count("aimo.kaggle INFO problem") == 10, log[-3000:]
    truth = {p.id: p.answer for p in problems}
    right = sum(answer == truth[ident] for ident, answer in submission.iter_rows())
    assert right >= 5, log[-3000:]  # the model answered them, not the fallback (it solves most of its kind)


def test_aimo_kaggle_notebook_writes_the_notebook(tmp_path):
    out = tmp_path / "submission.ipynb"
    done = CliRunner().invoke(app, ["kaggle-notebook", "--model", "/kaggle/input/m", "--out", str(out), "--preset",
                                    "aimo3-gpt-oss", "--samples", "6", "--wheelhouse", "/kaggle/input/w/wheelhouse"])
    assert done.exit_code == 0, done.output
    notebook = nbformat.read(out, as_version=4)
    nbformat.validate(notebook)
    install, settings, _ = (cell.source for cell in notebook.cells if cell.cell_type == "code")
    assert '"--find-links", "/kaggle/input/w/wheelhouse"' in install
    assert "preset='aimo3-gpt-oss'" in settings and "samples=6" in settings and "agree=" not in settings
