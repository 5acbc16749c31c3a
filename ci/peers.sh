#!/usr/bin/env bash
# Installs the independent peers the conformance tests talk to, and prints
# the python to use. Usage (from .ci/run, at the workspace root):
#
#   export MAGLEV_PYTHON="$(bash ci/peers.sh)"
#   export MAGLEV_REQUIRE_PEERS=1
#
# Peers:
# - vpp_papi 2.4.2 (PyPI `vpp-papi`), used by maglev-vpp/tests/stats_papi.rs
#   (VPPStats against the simulator's stats.sock);
# - grpcio and grpcio-reflection 1.85.1 (PyPI), used by
#   maglev-bin/tests/grpc_peer.rs (a gRPC client that knows maglev's API
#   only through server reflection).
# Idempotent: an existing venv that already imports them all is kept, and
# one missing a peer gets only what it lacks.
# Everything but the final path goes to stderr.
set -euo pipefail

venv="${1:-${MAGLEV_PEERS_VENV:-$(pwd)/target/peers-venv}}"
py="$venv/bin/python"

imports='import vpp_papi.vpp_stats, grpc, grpc_reflection.v1alpha.proto_reflection_descriptor_database'
packages=('vpp-papi==2.4.2' 'grpcio==1.85.1' 'grpcio-reflection==1.85.1')

if [ -x "$py" ] && "$py" -c "$imports" 2>/dev/null; then
  echo "$py"
  exit 0
fi

if [ -x "$py" ]; then
  : # A venv from before a peer was added: install what it lacks.
elif ! python3 -m venv "$venv" >&2 2>&1; then
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

"$py" -m pip install -q --disable-pip-version-check "${packages[@]}" >&2
"$py" -c "$imports" >&2
echo "$py"
