#!/usr/bin/env bash
# Install the sandbox service: the jail interpreter (scripts/install-jail-python.sh, when root) and the
# service itself, the project's 'sandbox' extra under docker/constraints-sandbox.txt, into VENV.
# The Dockerfile's sandbox target runs it; so does scripts/setup.sh for .venv-sandbox, so CI runs the
# same install step that the image does. Idempotent.
#   docker/install-sandbox.sh VENV [PYTHON]      PYTHON: >= 3.12 for nsjail mode (default: python3)
#   AIMO_EDITABLE=1 installs the project in editable mode (a development checkout).
set -euo pipefail
venv=${1:?usage: docker/install-sandbox.sh VENV [PYTHON]}
python=${2:-python3}
here=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" = 0 ]; then
  "$here/scripts/install-jail-python.sh"
fi
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
project=("${here}[sandbox]")
if [ "${AIMO_EDITABLE:-0}" = 1 ]; then project=(-e "${here}[sandbox]"); fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check \
  -c "$here/docker/constraints-sandbox.txt" "${project[@]}"
echo "sandbox service ready: $venv/bin/python -m sandbox_service"
