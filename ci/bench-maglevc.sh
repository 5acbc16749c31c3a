#!/bin/sh
# maglevc one-shot latency: `maglevc show frontends` (startup, connect, one
# ListFrontends of N frontends, render, exit) against a release maglevd on
# the VPP simulator, measured with hyperfine. Figures go to
# docs/performance.md (maglevc section).
#
#   ci/bench-maglevc.sh [N]        N frontends, default 1000
set -eu
N=${1:-1000}
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "hyperfine not installed (apt-get install hyperfine)" >&2; exit 1; }
cargo build --release -q -p maglev-bin --bin maglevd --bin maglevc --bin maglev-vppsim
BIN=target/release
DIR=$(mktemp -d)
PORT=19090
trap 'kill $SIM $DAEMON 2>/dev/null || true; rm -rf "$DIR"' EXIT INT TERM

{
  cat <<YAML
maglev:
  vpp:
    lb:
      ipv4-src-address: 192.0.2.254
      ipv6-src-address: 2001:db8::fe
      startup-min-delay: 0s
      startup-max-delay: 0s
  backends:
YAML
  for b in $(seq 1 16); do echo "    b$b: { address: 10.0.0.$b }"; done
  echo "  frontends:"
  i=0
  while [ $i -lt "$N" ]; do
    echo "    fe$i:"
    echo "      address: 198.18.$((i / 250)).$((i % 250 + 1))"
    echo "      protocol: tcp"
    echo "      port: 80"
    echo "      pools:"
    echo "        - name: primary"
    echo "          backends: { b$((i % 16 + 1)): {}, b$(((i + 1) % 16 + 1)): {}, b$(((i + 2) % 16 + 1)): {}, b$(((i + 3) % 16 + 1)): {} }"
    i=$((i + 1))
  done
} > "$DIR/maglev.yaml"

$BIN/maglev-vppsim --api-socket "$DIR/api.sock" --stats-socket "$DIR/stats.sock" >"$DIR/sim.log" 2>&1 &
SIM=$!
while [ ! -S "$DIR/api.sock" ]; do sleep 0.1; done
$BIN/maglevd --config "$DIR/maglev.yaml" --vpp-api-addr "$DIR/api.sock" \
  --vpp-stats-addr "$DIR/stats.sock" --grpc-addr "127.0.0.1:$PORT" --metrics-addr "" \
  --log-format text --log-level warn >"$DIR/maglevd.log" 2>&1 &
DAEMON=$!
until $BIN/maglevc --server "127.0.0.1:$PORT" show frontends >/dev/null 2>&1; do sleep 0.2; done
ROWS=$($BIN/maglevc --server "127.0.0.1:$PORT" show frontends | wc -l)
BYTES=$($BIN/maglevc --server "127.0.0.1:$PORT" show frontends --json | wc -c)
echo "daemon up: $((ROWS - 1)) frontends; --json reply $BYTES bytes"
hyperfine -N --warmup 10 --runs 100 \
  "$BIN/maglevc --server 127.0.0.1:$PORT show version" \
  "$BIN/maglevc --server 127.0.0.1:$PORT show frontends" \
  "$BIN/maglevc --server 127.0.0.1:$PORT sh fr" \
  "$BIN/maglevc --server 127.0.0.1:$PORT show frontends --json" \
  "$BIN/maglevc --server 127.0.0.1:$PORT show frontend fe500" \
  --export-markdown "$DIR/maglevc.md"
cat "$DIR/maglevc.md"
