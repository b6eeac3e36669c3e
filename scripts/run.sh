#!/usr/bin/env bash
# The main job, set-up free: install what is missing, then solve 20 fresh problems on the CPU with the
# bundled tiny model (vLLM's CPU build) and the sandbox service (nsjail where it works), printing the
# accuracy and writing results, traces and an HTML report to runs/latest. Extra args go to `aimo eval`
# (`--verbose`: vLLM's own log too; by default a progress bar and a summary table).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >&2
exec .venv/bin/aimo eval --synthetic 20 --samples 4 --agree 3 --sandbox spawn --out runs/latest "$@"
