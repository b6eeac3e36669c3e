#!/usr/bin/env bash
# Install the interpreter that runs cells inside the jail: Debian's python3 with a venv in a
# world-traversable folder (a jailed, unprivileged uid cannot enter root's home, where pyenv lives).
# Idempotent; run as root. Usage: scripts/install-jail-python.sh [PREFIX]
set -euo pipefail
prefix=${1:-${AIMO_SANDBOX_JAIL_PYTHON_PREFIX:-/opt/aimo-sandbox/python}}
here=$(cd "$(dirname "$0")/.." && pwd)
stamp="$prefix/.requirements"
if [ -x "$prefix/bin/python3" ] && cmp -s "$here/requirements/jail.txt" "$stamp"; then
  exit 0
fi
need=()
[ -x /usr/bin/python3 ] || need+=(python3)
/usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
rm -rf "$prefix"
/usr/bin/python3 -m venv "$prefix"
"$prefix/bin/pip" install -q --disable-pip-version-check -r "$here/requirements/jail.txt"
chmod -R a+rX "$prefix"
cp "$here/requirements/jail.txt" "$stamp"
echo "jail interpreter ready: $prefix/bin/python3"
