"""The training script's smoke mode: a few steps of a tiny model, and the loss falls."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_smoke_training_loss_falls(tmp_path: Path) -> None:
    out = tmp_path / "m"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train_tiny_tir.py"), "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "smoke: loss" in proc.stdout
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()
