"""The training script's smoke mode: a few steps of a tiny model, and the loss falls."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Each child's timeout sits inside the test's own (pytest-timeout's, which counts fixtures too), so a hung
# child is stopped by its own and fails with its output, instead of pytest killing the test silently.
TRAIN_S = 120
VERIFIER_S = 420  # collects real traces with vLLM first: a few minutes on a loaded CPU
MARGIN_S = 60


@pytest.mark.timeout(TRAIN_S + MARGIN_S)
def test_smoke_training_loss_falls(tmp_path: Path) -> None:
    out = tmp_path / "m"
    proc = subprocess.run(
        [sys.executable, "-m", "tiny_tir.train", "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TRAIN_S,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "smoke: loss" in proc.stdout
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()


@pytest.mark.timeout(VERIFIER_S + MARGIN_S)
def test_verifier_smoke_training_collects_real_traces_and_the_loss_falls(tmp_path: Path) -> None:
    out = tmp_path / "v"
    proc = subprocess.run([sys.executable, "-m", "tiny_tir.verifier", "--smoke", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=VERIFIER_S)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "collected" in proc.stdout and "smoke: loss" in proc.stdout
    config = (out / "config.json").read_text()
    assert "Qwen2ForProcessRewardModel" in config and (out / "model.safetensors").exists()
