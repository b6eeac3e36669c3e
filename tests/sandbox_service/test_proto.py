"""The generated code in aimo/ must match proto/: regenerate and compare."""

from __future__ import annotations

import filecmp
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_is_in_sync_with_the_proto(tmp_path):
    spec = importlib.util.spec_from_file_location("gen_proto", ROOT / "scripts" / "gen_proto.py")
    gen_proto = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_proto)
    gen_proto.generate(tmp_path)
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.py*"))
    assert generated, "protoc produced nothing"
    for relative in generated:
        committed = ROOT / relative
        if not filecmp.cmp(committed, tmp_path / relative, shallow=False):
            pytest.fail(f"{relative} is stale: run {sys.executable} scripts/gen_proto.py")
