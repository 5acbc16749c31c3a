#!/usr/bin/env bash
# Creates the Python virtualenv with the independent VPP peer (vpp_papi) that
# the conformance tests drive, and prints the path of its python.
#
#   export MAGLEV_PYTHON="$(bash ci/peers.sh)"
#
# The venv lives under target/ (ignored by git) and is reused when present.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${MAGLEV_VENV:-$PWD/target/peers-venv}"
if ! "$venv/bin/python" -c 'import vpp_papi' 2>/dev/null; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'vpp-papi==2.4.2' >&2
fi
echo "$venv/bin/python"
