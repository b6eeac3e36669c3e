#!/usr/bin/env bash
# The one test command: install what is missing (the tests' extras too), then lint and run every test.
#   scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
