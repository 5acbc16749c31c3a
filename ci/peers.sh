#!/usr/bin/env bash
# Installs the independent peers the conformance tests talk to, and prints
# the python to use. Usage (from .ci/run, at the workspace root):
#
#   export MAGLEV_PYTHON="$(bash ci/peers.sh)"
#   export MAGLEV_REQUIRE_PEERS=1
#
# Peers: vpp_papi 2.4.2 (PyPI `vpp-papi`), used by
# maglev-vpp/tests/stats_papi.rs (VPPStats against the simulator's
# stats.sock). Idempotent: an existing venv that already imports it is kept.
# Everything but the final path goes to stderr.
set -euo pipefail

venv="${1:-${MAGLEV_PEERS_VENV:-$(pwd)/target/peers-venv}}"
py="$venv/bin/python"

if [ -x "$py" ] && "$py" -c 'import vpp_papi.vpp_stats' 2>/dev/null; then
  echo "$py"
  exit 0
fi

if ! python3 -m venv "$venv" >&2 2>&1; then
  # Debian splits venv support out of python3.
  if command -v apt-get >/dev/null; then
    echo "ci/peers.sh: installing python3-venv" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
  else
    echo "ci/peers.sh: python3 -m venv failed" >&2
    exit 1
  fi
fi

"$py" -m pip install -q --disable-pip-version-check 'vpp-papi==2.4.2' >&2
"$py" -c 'import vpp_papi.vpp_stats' >&2
echo "$py"
