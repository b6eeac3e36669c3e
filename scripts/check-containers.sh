#!/usr/bin/env bash
# Check the container files without a Docker engine (none runs on the project's machines):
#   1. hadolint on the Dockerfile, every finding down to "info" a failure (docker/hadolint.yaml);
#   2. compose.yaml and docker/compose.*.yaml against the Compose specification's JSON schema (the copy
#      that check-jsonschema ships, --builtin-schema vendor.compose-spec);
#   3. the install scripts the images run: bash -n and shellcheck.
# Installs requirements/lint.txt into .venv when a tool is missing. Exits non-zero on any failure.
#   scripts/check-containers.sh
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
venv=${AIMO_LINT_VENV:-.venv}
bin=$venv/bin
if ! [ -x "$bin/hadolint" ] || ! [ -x "$bin/check-jsonschema" ] || ! [ -x "$bin/shellcheck" ]; then
  [ -x "$bin/python" ] || python3 -m venv "$venv" || exit 1
  "$bin/python" -m pip install -q --disable-pip-version-check -r requirements/lint.txt || exit 1
fi

failed=()
step() {  # step NAME COMMAND...: run it, remember a failure, go on with the rest
  local name=$1; shift
  if "$@"; then echo "ok: $name"; else echo "FAILED: $name" >&2; failed+=("$name"); fi
}

step hadolint "$bin/hadolint" --config docker/hadolint.yaml Dockerfile
step compose-schema "$bin/check-jsonschema" --builtin-schema vendor.compose-spec compose.yaml docker/compose.*.yaml
scripts=(docker/install-sandbox.sh docker/install-solver.sh scripts/install-jail-python.sh scripts/setup.sh
         scripts/check-containers.sh)
for script in "${scripts[@]}"; do
  step "bash -n $script" bash -n "$script"
done
step shellcheck "$bin/shellcheck" "${scripts[@]}"

if [ ${#failed[@]} -gt 0 ]; then
  echo "check-containers: ${#failed[@]} failed: ${failed[*]}" >&2
  exit 1
fi
echo "check-containers: all passed"
