#!/usr/bin/env bash
# Starts the release server on a fresh SQLite database with a high open-file limit,
# runs one recordsync-bench scenario against it (with --url and --server-pid), then
# stops the server.
#
#   cargo build --release --workspace
#   bench/with-server.sh query
#   bench/with-server.sh fanout --subscribers 10000 --connections 1000 --rate 10 --ceiling
#
# BENCH_PORT picks the port (default 18743); server flags go in RECORDSYNC_* variables.
set -euo pipefail
cd "$(dirname "$0")/.."

port=${BENCH_PORT:-18743}
dir=$(mktemp -d)
# Each connection is a file descriptor in the server. Raising the hard limit needs
# CAP_SYS_RESOURCE; without it, take the hard limit and say so.
if ! ulimit -n 200000 2>/dev/null; then
    ulimit -n "$(ulimit -Hn)"
    echo "with-server.sh: open-file limit is $(ulimit -n) (cannot raise it to 200000)" >&2
fi

RUST_LOG=${RUST_LOG:-warn} target/release/recordsync \
    --database-url "sqlite://$dir/bench.db" --listen "127.0.0.1:$port" 2>"$dir/server.log" &
pid=$!
stop() {
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
}
trap stop EXIT

for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.1
done

target/release/recordsync-bench --url "http://127.0.0.1:$port/graphql" --server-pid "$pid" "$@"
