# Independent peers for conformance tests. Source it from .ci/run:
#
#     . ci/peers.sh
#
# It creates (once) a virtualenv with VPP's own Python binding, vpp_papi
# 2.4.2 from PyPI, and exports MAGLEV_PYTHON for the maglev-vpp peer test
# (maglev-vpp/tests/papi_peer.rs), plus MAGLEV_REQUIRE_PEERS=1 so that
# test fails instead of skipping when the peer is missing.
# Needs python3 with the venv module (Debian: python3-venv).

maglev_peers_dir="${MAGLEV_PEERS_DIR:-${TMPDIR:-/tmp}/maglev-peers}"
maglev_papi_venv="$maglev_peers_dir/papi-venv"

if ! "$maglev_papi_venv/bin/python" -c 'import vpp_papi' >/dev/null 2>&1; then
    if ! python3 -m venv --help >/dev/null 2>&1; then
        apt-get install -y -q python3-venv >/dev/null
    fi
    mkdir -p "$maglev_peers_dir"
    python3 -m venv "$maglev_papi_venv"
    "$maglev_papi_venv/bin/pip" install -q --disable-pip-version-check 'vpp-papi==2.4.2'
fi

export MAGLEV_PYTHON="$maglev_papi_venv/bin/python"
export MAGLEV_REQUIRE_PEERS=1
