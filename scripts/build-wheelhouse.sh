#!/usr/bin/env bash
# Build an offline wheelhouse for Kaggle (no network there): the project and every dependency of its
# inference side, as wheels for the notebook's Python. Upload the folder as a Kaggle dataset, then in
# the notebook:  !pip install --no-index --find-links /kaggle/input/<dataset>/wheelhouse "aimo-tir[inference]"
# vLLM and torch are not included: use the ones the Kaggle image or a vLLM dataset provides.
#   scripts/build-wheelhouse.sh [OUT_DIR] [PYTHON_VERSION]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-wheelhouse}
python_version=${2:-3.11}
mkdir -p "$out"
.venv/bin/pip wheel --no-deps --wheel-dir "$out" .
.venv/bin/pip download --dest "$out" --only-binary=:all: --python-version "$python_version" \
  --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 --platform any \
  grpcio grpcio-health-checking grpcio-reflection prometheus-client protobuf sympy mpmath numpy ipython \
  typer rich polars matplotlib openai httpx transformers tokenizers
echo "wheelhouse: $(ls "$out" | wc -l) files in $out"
