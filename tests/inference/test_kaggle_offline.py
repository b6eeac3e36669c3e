"""The offline install, really offline: `scripts/build-wheelhouse.sh`, then the notebook's own pip line into
a fresh venv with no network at all (a network namespace with no route: `unshare -n`; where that cannot
run, an index and proxies that point nowhere), then the installed predictor answers on the tiny model
through the gateway double, still without a network.

vLLM and torch are not in the wheelhouse (the Kaggle image provides them): after the install, the fresh
venv sees this venv's packages behind its own, as a Kaggle notebook sees the image's. The install itself
runs before that, into a venv that has nothing but pip, so every dependency came from the wheelhouse.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import polars as pl
import pytest

from inference.kaggle_notebook import install_args
from inference.problems import synthetic_problems
from tests.inference.conftest import KAGGLE_DOUBLE as DOUBLE
from tests.inference.conftest import MODEL
from tests.inference.kaggle_scoring import score_submission

ROOT = Path(__file__).resolve().parents[2]
NOWHERE = "http://127.0.0.1:9/"  # the discard port: nothing answers


def no_network_prefix() -> list[str]:
    """A command prefix that runs its command in a new network namespace with only loopback, when it can."""
    try:
        subprocess.run(["unshare", "-n", "true"], check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    return ["unshare", "-n", "sh", "-c", 'ip link set lo up 2>/dev/null; exec "$@"', "offline"]


def offline_env(**extra: str) -> dict[str, str]:
    """No pip configuration of this machine (its mirrors and find-links), and every address pointing nowhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") and k != "PYTHONPATH"}
    # Loopback is not the network: the gateway double's gRPC channel (which honours the proxy variables)
    # goes to 127.0.0.1 directly.
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": NOWHERE, "HTTP_PROXY": NOWHERE,
            "HTTPS_PROXY": NOWHERE, "http_proxy": NOWHERE, "https_proxy": NOWHERE, "NO_PROXY": "127.0.0.1",
            "no_proxy": "127.0.0.1", **extra}


# As a notebook would: configure, serve. A script with a main guard, since vLLM's engine process is
# spawned and re-imports the main module (a kernel is such a module; `python -c` is not).
RUN_IN_FRESH_VENV = """
import json
import sys


def main():
    import inference
    from inference import kaggle

    kaggle.predictor.configure(model=sys.argv[1], samples=2, agree=2)
    kaggle.serve(test_csv=sys.argv[2])
    print(json.dumps({"inference": inference.__file__}), flush=True)  # vLLM logs on stdout too


if __name__ == "__main__":
    main()
"""


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_wheelhouse_installs_offline_and_the_predictor_answers_from_it(tmp_path):
    offline = no_network_prefix()
    wheelhouse = tmp_path / "wheelhouse"
    built = subprocess.run(["bash", "scripts/build-wheelhouse.sh", str(wheelhouse)], cwd=ROOT, capture_output=True,
                           text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    assert any(wheelhouse.glob("aimo_tir-*.whl"))

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)  # pip from ensurepip
    python = venv / "bin" / "python"
    installed = subprocess.run([*offline, str(python), "-m", "pip", *install_args(str(wheelhouse))],
                               env=offline_env(), capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-3000:]

    # The engine, as the Kaggle image provides it: this venv's packages, behind the fresh venv's own.
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.check_output([str(python), "-c", purelib], text=True).strip())
    (site / "zz-engine-from-the-image.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    problems = synthetic_problems(3, seed=4242)
    csv = tmp_path / "test.csv"
    pl.DataFrame({"id": [p.id for p in problems], "problem": [p.problem for p in problems]}).write_csv(csv)
    work = tmp_path / "notebook"
    work.mkdir()
    script = work / "notebook.py"
    script.write_text(RUN_IN_FRESH_VENV)
    ran = subprocess.run([*offline, str(python), str(script), str(MODEL), str(csv)], cwd=work,
                         env=offline_env(PYTHONPATH=str(DOUBLE), KAGGLE_DOUBLE_OUT=str(work),
                                         KAGGLE_DOUBLE_STARTUP_LIMIT_S="120"),
                         capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr[-4000:]
    where = json.loads(next(line for line in ran.stdout.splitlines() if line.startswith('{"inference"')))
    assert where["inference"].startswith(str(venv)), where  # the installed wheel, not this checkout
    submission = score_submission(work / "submission.parquet", csv)
    truth = {p.id: p.answer for p in problems}
    assert sum(answer == truth[ident] for ident, answer in submission.iter_rows()) >= 2, ran.stderr[-3000:]
