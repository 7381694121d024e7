#!/usr/bin/env bash
# 83-network-postgres.sh -- network faults between the postgres backend and
# PostgreSQL, through the harness's fault-injecting TCP proxy
# (tests/harness/fault_proxy.py: every connection is closed, delayed then
# closed, black-holed, reset mid-reply or half-closed after 0..16 KiB toward
# the client). Two server_crash_client processes deduct, order and refund
# through the proxy with a 1 s deadline per batch (stock_timeout_ms=1000) for
# NETWORK_SECONDS (default 8) and until every kind of fault has struck,
# retrying every op left UNAVAILABLE with the
# same id. Then, straight to PostgreSQL, server_crash_check verifies that
# every acknowledged op is there exactly once with its acknowledged result
# and that I1-I5 hold. Every kind of fault must have struck, the clients
# must have met UNAVAILABLE and settled it (tests/system/server_helpers.sh
# proxy_start and proxy_clients), and no prepared or open
# transaction may be left behind.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/harness/pg.sh
. tests/system/server_helpers.sh
seconds=${NETWORK_SECONDS:-8}
skus=4
level=1000000000
dir=$(mktemp -d)
proxy_pid=""
cleanup() {
    stop_pids "${PROXY_CLIENTS[@]}" "$proxy_pid"
    pg_stop
    rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

pg_start
direct="$PG_URI"
for i in $(seq 0 $((skus - 1))); do
    "$BUILD/stockctl" --store "$direct" set "S$i" "$level" >/dev/null
done

proxy_port=$(pick_port 17650 17659)
proxy_start "$proxy_port" "$PG_PORT" "$dir"
proxy_pid=$PROXY_PID
proxy_clients "$BUILD/tests/server_crash_client" \
    "postgresql://postgres@127.0.0.1:$proxy_port/postgres?stock_timeout_ms=1000" p "$skus" \
    "$dir" "$seconds"
proxy_pid=""

echo "== every acknowledged op there once, I1-I5, checked straight at PostgreSQL"
"$BUILD/tests/server_crash_check" "$direct" "$skus" "$level" "$dir"/client-*.log ||
    fail "the check found violations"
# Sessions the proxy cut are gone once the server notices; none may be left
# inside a transaction holding row locks.
for _ in $(seq 50); do
    open=$(pg_psql -tAc "select count(*) from pg_stat_activity where state like 'idle in transaction%'")
    [ "$open" -eq 0 ] && break
    sleep 0.2
done
[ "$open" -eq 0 ] || fail "$open sessions left idle in a transaction"
echo "83-network-postgres: passed"
