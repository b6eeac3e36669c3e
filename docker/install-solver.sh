#!/usr/bin/env bash
# Install the solver side (the project's 'inference' extra, under docker/constraints-solver.txt) with
# PYTHON's pip. With --cpu, first vLLM's CPU build and the tiny model's stack from
# requirements/tiny-model.txt, torch from the PyTorch CPU index, as scripts/setup.sh does for .venv.
# The Dockerfile's solver and cpu-demo targets run it.
#   docker/install-solver.sh PYTHON [--cpu]
set -euo pipefail
python=${1:?usage: docker/install-solver.sh PYTHON [--cpu]}
mode=${2:-}
here=$(cd "$(dirname "$0")/.." && pwd)
pip=("$python" -m pip install -q --disable-pip-version-check --no-cache-dir)
if [ "$mode" = --cpu ]; then
  # torch==X in the requirements file takes X+cpu from this index (a local version sorts above X).
  "${pip[@]}" --extra-index-url "${AIMO_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}" \
    -r "$here/requirements/tiny-model.txt"
  # vLLM's CPU build pulls torchvision/torchaudio wheels built for another torch: they break imports.
  "$python" -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
elif [ -n "$mode" ]; then
  echo "install-solver: unknown mode $mode (only --cpu)" >&2
  exit 2
fi
"${pip[@]}" -c "$here/docker/constraints-solver.txt" "${here}[inference]"
"$python" -c 'import inference.cli, sandbox_service.client' >/dev/null
echo "solver ready: $("$python" -c 'import shutil; print(shutil.which("aimo"))')"
