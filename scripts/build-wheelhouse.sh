#!/usr/bin/env bash
# Build an offline wheelhouse for Kaggle (no network there): the project and every dependency of its
# inference side, as wheels, at exactly the versions installed in .venv (the ones the tests ran on).
# Upload the folder as a Kaggle dataset; the notebook (`aimo kaggle-notebook`) installs from it with
#   pip install --no-index --find-links /kaggle/input/<dataset>/wheelhouse "aimo-tir[inference]"
# vLLM and torch are not included: the Kaggle image or a vLLM dataset provides them. Name more
# requirements after the options to add them (e.g. vllm==0.x torch==2.y for a GPU notebook).
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

# The closure of aimo-tir[inference] in .venv, pinned: what pip resolved and the tests ran on.
pins=$(.venv/bin/python - <<'EOF'
import re
from importlib import metadata

from packaging.markers import default_environment
from packaging.requirements import Requirement


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


seen, pins, todo = set(), [], [("aimo-tir", {"inference"})]
while todo:
    name, extras = todo.pop()
    key = (canonical(name), frozenset(extras))
    if key in seen:
        continue
    seen.add(key)
    dist = metadata.distribution(name)
    if canonical(name) != "aimo-tir":
        pins.append(f"{canonical(name)}=={dist.version}")
    for line in dist.requires or []:
        req = Requirement(line)
        wanted = [e for e in extras | {""} if req.marker is None or req.marker.evaluate({**default_environment(), "extra": e})]
        if wanted:
            todo.append((req.name, set(req.extras)))
print("\n".join(sorted(set(pins))))
EOF
)
target=()
[ -n "$python_version" ] && target+=(--python-version "$python_version")
[ ${#platforms[@]} -gt 0 ] && target+=("${platforms[@]}")
# setuptools builds in ./build and keeps what it copied there before: a module deleted since would ship.
rm -rf build
.venv/bin/pip wheel -q --no-deps --wheel-dir "$out" .
rm -rf build
# --no-deps: the pins are the whole closure already; binary wheels only, since Kaggle cannot build.
# shellcheck disable=SC2086
.venv/bin/pip download -q --no-deps --only-binary=:all: --dest "$out" "${target[@]}" $pins "$@"
echo "wheelhouse: $(find "$out" -name "*.whl" | wc -l) wheels in $out"
