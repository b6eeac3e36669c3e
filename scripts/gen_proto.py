"""Regenerate the Python code for proto/ into the repository root (package `aimo`).

    python scripts/gen_proto.py [OUT_DIR]

tests/sandbox_service/test_proto.py regenerates into a temporary folder and compares, so a proto change that
was not regenerated fails the tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = sorted(str(p.relative_to(ROOT / "proto")) for p in (ROOT / "proto").rglob("*.proto"))


def generate(out: Path) -> None:
    args = ["protoc", f"-I{ROOT / 'proto'}", f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}"]
    if protoc.main(args + PROTOS) != 0:
        raise SystemExit("protoc failed")
    for folder in {(out / p).parent for p in PROTOS}:  # make the generated folders regular packages
        while folder != out:
            (folder / "__init__.py").touch()
            folder = folder.parent


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT)
