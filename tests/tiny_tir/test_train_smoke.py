"""The training script's smoke mode: a few steps of a tiny model, and the loss falls."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_smoke_training_loss_falls(tmp_path: Path) -> None:
    out = tmp_path / "m"
    proc = subprocess.run(
        [sys.executable, "-m", "tiny_tir.train", "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "smoke: loss" in proc.stdout
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()


def test_verifier_smoke_training_collects_real_traces_and_the_loss_falls(tmp_path: Path) -> None:
    out = tmp_path / "v"
    proc = subprocess.run([sys.executable, "-m", "tiny_tir.verifier", "--smoke", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "collected" in proc.stdout and "smoke: loss" in proc.stdout
    config = (out / "config.json").read_text()
    assert "Qwen2ForProcessRewardModel" in config and (out / "model.safetensors").exists()
