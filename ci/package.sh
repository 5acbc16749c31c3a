#!/usr/bin/env bash
# Builds the two Debian packages, vpp-maglevd (the daemon, its unit and
# conffiles) and vpp-maglev (maglevc, maglevt and the Prometheus rules),
# into DIR:
#
#   bash ci/package.sh [--profile release|dev] [--no-build] [--out DIR]
#
# Default: a release build, packages in target/debian. The man pages and
# shell completions are generated from the built binaries first, so they
# match the flags. Needs cargo-deb (`cargo install cargo-deb --locked`).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
build=1
out=
while [ $# -gt 0 ]; do
    case "$1" in
        --profile) profile=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        --out) out=$2; shift 2 ;;
        *) echo "package.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

target_dir=$(cargo metadata --format-version 1 --no-deps --offline |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
case "$profile" in
    dev) bin_dir="$target_dir/debug" ;;
    *) bin_dir="$target_dir/$profile" ;;
esac
out=${out:-$target_dir/debian}

if [ "$build" = 1 ]; then
    cargo build --locked --profile "$profile" -p maglev-bin --bin maglevd --bin maglevc --bin maglevt
fi

# Man pages and completions, where the packages' assets expect them
# (cargo-deb's target/release/package/ is this profile's package/).
gen="$bin_dir/package"
mkdir -p "$gen"
# Compressed here: cargo-deb compresses only man pages it did not build.
"$bin_dir/maglevd" --man | gzip -9n > "$gen/maglevd.8.gz"
"$bin_dir/maglevc" --man | gzip -9n > "$gen/maglevc.1.gz"
"$bin_dir/maglevt" --man | gzip -9n > "$gen/maglevt.1.gz"
for b in maglevd maglevc maglevt; do
    "$bin_dir/$b" --completions bash > "$gen/$b.bash"
    "$bin_dir/$b" --completions zsh > "$gen/_$b"
    "$bin_dir/$b" --completions fish > "$gen/$b.fish"
done

mkdir -p "$out"
# A dev build is for tests: quick compression.
fast=()
[ "$profile" = dev ] && fast=(--fast)
deb() {
    local log
    if ! log=$(cargo deb --no-build --profile "$profile" -p maglev-bin --output "$out" --locked "${fast[@]}" "$@" 2>&1); then
        echo "$log" >&2
        exit 1
    fi
    # cargo-deb warns that the dev profile is for tests only: that is its use.
    echo "$log" | grep -v 'dev profile is not supported\|doesn.t make sense to use it with dev\|debug symbols set\|Cargo also supports custom profiles' || true
}
deb
deb --variant daemon
