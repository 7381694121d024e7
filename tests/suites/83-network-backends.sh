#!/usr/bin/env bash
# 83-network-backends.sh -- network faults between libstock's backends and
# their servers, PostgreSQL then Redis (appendfsync always), through the
# harness's fault-injecting TCP proxy (tests/harness/fault_proxy.py: every
# connection is closed, delayed then closed, black-holed, reset mid-reply or
# half-closed after some bytes toward the client). For each, two
# server_crash_client processes deduct, order and refund through the proxy
# with a 1 s bound per batch (postgres: stock_timeout_ms=1000, redis:
# timeout_ms=1000) for NETWORK_SECONDS (default 8) and until every kind of
# fault has struck, retrying every op left UNAVAILABLE with the same id
# (tests/system/server_helpers.sh proxy_start and proxy_clients). Then,
# straight to the server, server_crash_check verifies that every
# acknowledged op is there exactly once with its acknowledged result and
# that I1-I5 hold; on PostgreSQL no session may be left inside a
# transaction.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/harness/pg.sh
. tests/harness/redis.sh
. tests/system/server_helpers.sh
seconds=${NETWORK_SECONDS:-8}
skus=4
level=1000000000
dir=$(mktemp -d)
proxy_pid=""
cleanup() {
    stop_pids "${PROXY_CLIENTS[@]}" "$proxy_pid"
    pg_stop
    redis_stop
    rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

# through NAME DIRECT_URI PROXIED_URI SERVER_PORT PROXY_PORT [AFTER_MAX]:
# one round of faults on the way to one server, then the check.
through() {
    local name=$1 direct=$2 proxied=$3 server_port=$4 proxy_port=$5 after_max=${6:-}
    echo "== $name"
    mkdir -p "$dir/$name"
    for i in $(seq 0 $((skus - 1))); do
        "$BUILD/stockctl" --store "$direct" set "S$i" "$level" >/dev/null
    done
    proxy_start "$proxy_port" "$server_port" "$dir/$name" $after_max
    proxy_pid=$PROXY_PID
    proxy_clients "$BUILD/tests/server_crash_client" "$proxied" "$name" "$skus" "$dir/$name" \
        "$seconds"
    proxy_pid=""
    echo "== $name: every acknowledged op there once, I1-I5, checked straight at the server"
    "$BUILD/tests/server_crash_check" "$direct" "$skus" "$level" "$dir/$name"/client-*.log ||
        fail "$name: the check found violations"
}

pg_start
port=$(pick_port 17650 17659)
through postgres "$PG_URI" "postgresql://postgres@127.0.0.1:$port/postgres?stock_timeout_ms=1000" \
    "$PG_PORT" "$port"
# Sessions the proxy cut are gone once the server notices; none may be left
# inside a transaction holding row locks.
for _ in $(seq 50); do
    open=$(pg_psql -tAc "select count(*) from pg_stat_activity where state like 'idle in transaction%'")
    [ "$open" -eq 0 ] && break
    sleep 0.2
done
[ "$open" -eq 0 ] || fail "$open sessions left idle in a transaction"
pg_stop

redis_start
port=$(pick_port 17680 17689)
# Opening a store reads the function library back to compare it, and the
# library grows: faults strike after up to twice its size, so that about
# half the opens get through (with a fixed 48 KiB, a library of 35 KiB left
# the clients hardly any connection that opened).
library=$(wc -c <src/backend/redis_functions.lua)
through redis "$REDIS_URI" "redis://127.0.0.1:$port?timeout_ms=1000" "$REDIS_PORT" "$port" \
    $((library * 2))
echo "83-network-backends: passed"
