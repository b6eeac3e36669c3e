"""The submission notebook a user uploads to Kaggle: install cell, settings cell, serve cell.

    aimo kaggle-notebook --model /kaggle/input/gpt-oss-120b/transformers/default/1 --out submission.ipynb

The install cell is the offline one (`pip install --no-index --no-compile --find-links WHEELHOUSE
"aimo-tir[inference]"`,
the wheelhouse from `scripts/build-wheelhouse.sh` uploaded as a dataset) and is skipped when aimo-tir is
already installed; the settings cell configures `inference.kaggle.predictor`; the serve cell hands the
gateway `inference.kaggle.predict` (the inference server on Kaggle's rerun, a local gateway run on the
competition's test.csv otherwise). The notebook is written as nbformat 4 JSON, without nbformat itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .kaggle import COMPETITION_PATH

DEFAULT_WHEELHOUSE = "/kaggle/input/aimo-tir-wheels/wheelhouse"
REQUIREMENT = "aimo-tir[inference]"


def install_args(wheelhouse: str) -> list[str]:
    """pip's arguments in the install cell: nothing from an index, everything from the wheelhouse; no
    byte-compiling at install (Python compiles what it imports; on 2 busy cores this saved minutes)."""
    return ["install", "--no-index", "--no-compile", "--find-links", wheelhouse, REQUIREMENT]


def _code(source: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
            "source": source.strip("\n").splitlines(keepends=True)}


def _markdown(source: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": source.strip("\n").splitlines(keepends=True)}


def _install_cell(wheelhouse: str) -> str:
    command = ", ".join(json.dumps(arg) for arg in ["-m", "pip", *install_args(wheelhouse)])
    return f'''
# Install aimo-tir from the wheelhouse dataset (the rerun has no internet); skipped when it is installed.
import importlib.metadata
import subprocess
import sys

try:
    print("aimo-tir", importlib.metadata.version("aimo-tir"), "is installed")
except importlib.metadata.PackageNotFoundError:
    subprocess.run([sys.executable, {command}], check=True)
'''


def _settings_cell(settings: dict[str, Any], budget: dict[str, Any]) -> str:
    arguments = "".join(f"\n    {key}={value!r}," for key, value in settings.items())
    budget_line = ""
    if budget:
        fields = ", ".join(f"{key}={value!r}" for key, value in budget.items())
        budget_line = f"\n    budget=BudgetConfig({fields}),"
    return f'''
# Settings: any `aimo` option (model, samples, agree, selector, ...) and the time budget.
import logging

from inference import kaggle
from inference.budget import BudgetConfig

logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
logging.getLogger("aimo").setLevel(logging.INFO)  # one line per problem, and why an answer is a fallback
kaggle.predictor.configure({arguments}{budget_line}
)
'''


def _serve_cell(test_csv: str) -> str:
    return f'''
# Serve: Kaggle's rerun calls kaggle.predict once per problem; elsewhere a local gateway runs on test_csv.
kaggle.serve(test_csv={test_csv!r})
'''


def build_notebook(model: str, *, wheelhouse: str = DEFAULT_WHEELHOUSE, test_csv: str = COMPETITION_PATH,
                   settings: dict[str, Any] | None = None, budget: dict[str, Any] | None = None) -> dict:
    """The notebook as nbformat 4 JSON: `settings` are `aimo` options, `budget` BudgetConfig fields."""
    cells = [
        _markdown(f"# aimo-tir submission\n\nModel: `{model}`. Written by `aimo kaggle-notebook`; "
                  "attach the wheelhouse and model datasets, turn the internet off, submit."),
        _code(_install_cell(wheelhouse)),
        _code(_settings_cell({"model": model, **(settings or {})}, budget or {})),
        _code(_serve_cell(test_csv)),
    ]
    for number, cell in enumerate(cells):
        cell["id"] = f"aimo-{number}"  # nbformat 4.5 wants an id per cell
    return {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                         "language_info": {"name": "python"}}}


def write_notebook(path: str | Path, model: str, *, wheelhouse: str = DEFAULT_WHEELHOUSE,
                   test_csv: str = COMPETITION_PATH, budget: dict[str, Any] | None = None,
                   **settings: Any) -> Path:
    """`build_notebook` written to `path`; the keyword arguments past the named ones are `aimo` options."""
    options = {"wheelhouse": wheelhouse, "test_csv": test_csv, "settings": settings, "budget": budget}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(build_notebook(model, **options), indent=1) + "\n")
    return path
