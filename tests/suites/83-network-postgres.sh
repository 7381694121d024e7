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
# must have met UNAVAILABLE and settled it, and no prepared or open
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
pids=()
proxy_pid=""
cleanup() {
    stop_pids "${pids[@]}" "$proxy_pid"
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
seed=${NETWORK_SEED:-$RANDOM}
echo "proxy seed $seed (NETWORK_SEED=$seed replays its choices)"
/usr/bin/python3 tests/harness/fault_proxy.py "$proxy_port" "$PG_PORT" "$dir/proxy.stats" "$seed" \
    >"$dir/proxy.out" 2>&1 &
proxy_pid=$!
for _ in $(seq 100); do
    grep -q listening "$dir/proxy.out" 2>/dev/null && break
    sleep 0.05
done
grep -q listening "$dir/proxy.out" || fail "the proxy did not start: $(cat "$dir/proxy.out")"

via_proxy="postgresql://postgres@127.0.0.1:$proxy_port/postgres?stock_timeout_ms=1000"
for c in 1 2; do
    "$BUILD/tests/server_crash_client" "$via_proxy" "p$c" "$skus" "$dir/client-$c.log" \
        >"$dir/client-$c.out" 2>"$dir/client-$c.err" &
    pids+=($!)
done
sleep "$seconds"
# A black hole costs a client its 1 s deadline and a reconnection up to
# libpq's 2 s connect_timeout, so connections are few: go on (up to 90 s
# more) until every kind of fault has struck.
for _ in $(seq 180); do
    struck=$(sed -n 's/^fault //p' "$dir/proxy.out" | sort -u | wc -l)
    [ "$struck" -ge 5 ] && break
    sleep 0.5
done
for pid in "${pids[@]}"; do kill -TERM "$pid"; done
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { cat "$dir/client-$((i + 1)).err"; fail "client $((i + 1)) broke a rule or could not settle"; }
done
pids=()
cat "$dir"/client-*.out
retried=$(sed -n 's/.*, \([0-9]*\) outcomes left unknown.*/\1/p' "$dir"/client-*.out |
    awk '{ sum += $1 } END { print sum + 0 }')
[ "$retried" -gt 0 ] || fail "no op was ever left unknown: the faults did not reach the clients"
kill -TERM "$proxy_pid"
wait "$proxy_pid" || true
proxy_pid=""
echo "faults injected:"; sed 's/^/  /' "$dir/proxy.stats"
while read -r name count; do
    [ "$count" -gt 0 ] || fail "the proxy never injected '$name'"
done <"$dir/proxy.stats"
acked=$(cat "$dir"/client-*.log | grep -c '^ack' || true)
echo "$acked ops acknowledged through the proxy"
[ "$acked" -gt 20 ] || fail "too little got through the proxy ($acked acknowledged)"

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
