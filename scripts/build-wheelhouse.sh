#!/usr/bin/env bash
# Build an offline wheelhouse for Kaggle (no network there): the project's wheel and every dependency of
# its inference side, as binary wheels, at exactly the versions installed in .venv (the ones the tests
# ran on). Upload the folder as a Kaggle dataset; the notebook (`aimo kaggle-notebook`) installs it with
#   pip install --no-index --no-compile --find-links /kaggle/input/<dataset>/wheelhouse "aimo-tir[inference]"
# vLLM and torch are not included: the Kaggle image or a vLLM dataset provides them. Name more
# requirements after the output folder to add them (e.g. vllm==0.x torch==2.y for a GPU notebook).
#   scripts/build-wheelhouse.sh [--python-version 3.11] [--platform manylinux_2_28_x86_64] [OUT_DIR] [REQ...]
set -euo pipefail
cd "$(dirname "$0")/.."
python_version=""
platforms=()
while [ $# -gt 0 ]; do
  case $1 in
    --python-version) python_version=$2; shift 2 ;;
    --platform) platforms+=(--platform "$2"); shift 2 ;;
    *) break ;;
  esac
done
out=${1:-wheelhouse}
shift || true
mkdir -p "$out"

# setuptools builds in ./build and keeps what it copied there before: a module deleted since would ship.
rm -rf build
built=$(mktemp -d)
.venv/bin/pip wheel -q --no-deps --wheel-dir "$built" .
rm -rf build
wheel=$(find "$built" -name 'aimo_tir-*.whl')
cp "$wheel" "$out"/

# The closure of the wheel's own [inference] requirements, pinned to the versions installed in .venv.
pins=$(.venv/bin/python - "$wheel" <<'PY'
import re
import sys
import zipfile
from email.parser import Parser
from importlib import metadata

from packaging.markers import default_environment
from packaging.requirements import Requirement


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


with zipfile.ZipFile(sys.argv[1]) as wheel:
    path = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    own = Parser().parsestr(wheel.read(path).decode()).get_all("Requires-Dist") or []
seen, pins, todo = set(), set(), [("aimo-tir", {"inference"})]
while todo:
    name, extras = todo.pop()
    if (canonical(name), frozenset(extras)) in seen:
        continue
    seen.add((canonical(name), frozenset(extras)))
    if canonical(name) == "aimo-tir":
        requires = own
    else:
        dist = metadata.distribution(name)
        pins.add(f"{canonical(name)}=={dist.version}")
        requires = dist.requires or []
    for line in requires:
        req = Requirement(line)
        if any(req.marker is None or req.marker.evaluate({**default_environment(), "extra": e}) for e in extras | {""}):
            todo.append((req.name, set(req.extras)))
print("\n".join(sorted(pins)))
PY
)
rm -rf "$built"
target=()
[ -n "$python_version" ] && target+=(--python-version "$python_version")
[ ${#platforms[@]} -gt 0 ] && target+=("${platforms[@]}")
# --no-deps: the pins are the whole closure already; binary wheels only, since Kaggle cannot build.
# shellcheck disable=SC2086
.venv/bin/pip download -q --no-deps --only-binary=:all: --dest "$out" "${target[@]}" $pins "$@"
echo "wheelhouse: $(find "$out" -name "*.whl" | wc -l) wheels in $out"
