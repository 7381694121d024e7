#!/usr/bin/env bash
# 83-network-redis.sh -- network faults between the redis backend and
# a Redis 7 server (appendfsync always), through the harness's fault-injecting TCP proxy
# (tests/harness/fault_proxy.py: every connection is closed, delayed then
# closed, black-holed, reset mid-reply or half-closed after 0..16 KiB toward
# the client). Two server_crash_client processes deduct, order and refund
# through the proxy with a 1 s reply timeout (timeout_ms=1000) for
# NETWORK_SECONDS (default 8) and until every kind of fault has struck,
# retrying every op left UNAVAILABLE with the
# same id. Then, straight to Redis, server_crash_check verifies that
# every acknowledged op is there exactly once with its acknowledged result
# and that I1-I5 hold. Every kind of fault must have struck, the clients
# must have met UNAVAILABLE and settled it (tests/system/server_helpers.sh
# proxy_start and proxy_clients).
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/harness/redis.sh
. tests/system/server_helpers.sh
seconds=${NETWORK_SECONDS:-8}
skus=4
level=1000000000
dir=$(mktemp -d)
proxy_pid=""
cleanup() {
    stop_pids "${PROXY_CLIENTS[@]}" "$proxy_pid"
    redis_stop
    rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

redis_start
direct="$REDIS_URI"
for i in $(seq 0 $((skus - 1))); do
    "$BUILD/stockctl" --store "$direct" set "S$i" "$level" >/dev/null
done

proxy_port=$(pick_port 17680 17689)
# Opening a store reads the function library back (about 24 KiB) to compare
# it: faults strike after up to 48 KiB, so that about half the opens get
# through.
proxy_start "$proxy_port" "$REDIS_PORT" "$dir" 49152
proxy_pid=$PROXY_PID
proxy_clients "$BUILD/tests/server_crash_client" \
    "redis://127.0.0.1:$proxy_port?timeout_ms=1000" r "$skus" \
    "$dir" "$seconds"
proxy_pid=""

echo "== every acknowledged op there once, I1-I5, checked straight at Redis"
"$BUILD/tests/server_crash_check" "$direct" "$skus" "$level" "$dir"/client-*.log ||
    fail "the check found violations"
echo "83-network-redis: passed"
