#!/usr/bin/env bash
# 83-network-holes.sh -- a PostgreSQL that stops answering one query costs a
# bounded wait, then a clear error, never a hang. The harness's fault proxy
# (tests/harness/fault_proxy.py --hole-on TEXT) passes every connection
# untouched until the client sends TEXT, then black-holes it: takes its
# bytes, passes nothing, closes nothing. Through it, with stock_timeout_ms=1000:
#   - a listing on a postgres store (stockctl reconcile lists the SKUs);
#   - the shard map read of a sharded store's open, and a listing on it;
#   - stockpersist --warm's read of the SKUs: it stops, exit 1;
#   - stockpersist's own set-up (its stock_outbox_* functions): it logs the
#     silence and retries, and still stops on SIGTERM;
#   - a batch of a postgres store silenced mid-transaction: once the network
#     heals, the store's next deduction on that SKU passes (the store ends
#     the silenced session, whose row lock the server would hold as long as
#     the silence lasts) and no session is left holding a transaction.
# Each runs under `timeout`, whose firing is a failure: before these waits
# were bounded, every one of them hung for good.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/harness/pg.sh
. tests/harness/redis.sh
. tests/system/server_helpers.sh
BOUND_S=20                  # far above 1 s of stock_timeout_ms, far below a hang
dir=$(mktemp -d)
proxy_pid=""
persist_pid=""
cleanup() {
    stop_pids "$proxy_pid" "$persist_pid"
    pg_stop
    redis_stop
    rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

pg_start
redis_start
port=$(pick_port 17690 17699)
proxied="postgresql://postgres@127.0.0.1:$port/postgres?stock_timeout_ms=1000"
"$BUILD/stockctl" --store "$PG_URI" set S0 5 >/dev/null

# hole TEXT: (re)starts the proxy in front of PostgreSQL, holing on TEXT.
hole() {
    stop_pids "$proxy_pid"
    mkdir -p "$dir/$1"
    /usr/bin/python3 tests/harness/fault_proxy.py "$port" "$PG_PORT" "$dir/$1/stats" \
        --hole-on "$1" >"$dir/$1/proxy.out" 2>&1 &
    proxy_pid=$!
    wait_for_text listening "$dir/$1/proxy.out" 50 || fail "the proxy did not start"
}

# bounded NAME WANT_CODE WANT_TEXT COMMAND...: runs COMMAND under timeout
# (SIGTERM, then SIGKILL 5 s later: a stockpersist stuck in a wait does not
# stop on SIGTERM); it must end within BOUND_S with exit code WANT_CODE and
# WANT_TEXT in its output.
bounded() {
    local name=$1 want_code=$2 want_text=$3 code=0 start end
    shift 3
    start=$(date +%s)
    timeout -k 5 "$BOUND_S" "$@" >"$dir/$name.out" 2>&1 || code=$?
    end=$(date +%s)
    echo "$name: exit $code after $((end - start)) s: $(grep -m1 "$want_text" "$dir/$name.out" ||
        tail -1 "$dir/$name.out")"
    [ "$code" -ne 124 ] && [ "$code" -ne 137 ] ||
        fail "$name hung (killed by timeout after $BOUND_S s)"
    [ "$code" -eq "$want_code" ] || fail "$name: exit $code, not $want_code"
    grep -q "$want_text" "$dir/$name.out" || fail "$name: no '$want_text' in its output"
}

echo "== postgres: a listing whose query is never answered"
hole "GROUP BY 1 ORDER BY 1"
bounded postgres-list 2 "UNAVAILABLE.*listing: no answer from the server" \
    "$BUILD/stockctl" reconcile "$proxied"

echo "== sharded: the shard map read at open, never answered"
hole "FROM stock_shard_map LIMIT 1"
bounded sharded-open 11 "cannot read its shard map: no answer from the server" \
    "$BUILD/stockctl" --store "shards:$proxied" get S0

echo "== sharded: a listing whose query is never answered"
hole "GROUP BY 1 ORDER BY 1"
bounded sharded-list 2 "UNAVAILABLE.*shard 0 (127.0.0.1:$port/postgres): postgres: listing: no answer from the server" \
    "$BUILD/stockctl" reconcile "shards:$proxied"

echo "== stockpersist --warm: its read of the SKUs never answered"
hole "GROUP BY sku_id ORDER BY sku_id"
bounded persist-warm 1 "warm stopped: .*postgres: no answer from the server" \
    "$BUILD/stockpersist" --redis "$REDIS_URI" --postgres "$proxied" --warm

echo "== stockpersist: its own set-up never answered"
hole "stock_outbox_position"
"$BUILD/stockpersist" --redis "$REDIS_URI" --postgres "$proxied" --stats-s 0 \
    >"$dir/persist.out" 2>&1 &
persist_pid=$!
wait_for_text "no answer" "$dir/persist.out" $((BOUND_S * 10)) || true
echo "stockpersist: $(grep -m1 "no answer" "$dir/persist.out" || true)"
grep -q "no answer from the server" "$dir/persist.out" ||
    fail "stockpersist did not report the silence within $BOUND_S s: $(cat "$dir/persist.out")"
kill -TERM "$persist_pid"
for _ in $(seq 50); do
    kill -0 "$persist_pid" 2>/dev/null || break
    sleep 0.1
done
! kill -0 "$persist_pid" 2>/dev/null || fail "stockpersist did not stop within 5 s of SIGTERM"
wait "$persist_pid" || fail "stockpersist exited $? on SIGTERM"
persist_pid=""

echo "== postgres: a batch silenced mid-transaction does not hold its SKU's row"
# pg_abandon's batch of 2,000 deductions reaches the server in pieces (the
# proxy reads 64 KiB at a time): the first takes the SKU's row lock, and
# the piece with the last line id is black-holed. The store gives up after
# stock_timeout_ms; the server's session stays in its transaction, row lock
# held, as long as the silence lasts. Once the network heals, the
# store's next deduction on that SKU must pass: it ends that session first.
"$BUILD/stockctl" --store "$PG_URI" set AB 100000 >/dev/null
hole "abandon-hole"
# Sessions holding a transaction (an xid: rows written or locked), this
# query's own aside: the silenced one reads the rest of its pipeline
# ("active", waiting on ClientRead) for as long as the silence lasts.
open_txns() {
    pg_psql -c "SELECT count(*) FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()"
}
(for _ in $(seq $((BOUND_S * 10))); do [ -e "$dir/healed" ] && break; sleep 0.1; done; echo go) |
    timeout -k 5 $((BOUND_S * 2)) "$BUILD/tests/pg_abandon" "$proxied&stock_merge=0" AB 2000 \
    abandon-hole \
    >"$dir/abandon.out" 2>&1 &
abandon_pid=$!
wait_for_text "^abandoned" "$dir/abandon.out" $((BOUND_S * 10)) || fail "pg_abandon: $(cat "$dir/abandon.out")"
held=$(open_txns)
echo "silenced batch: $(grep "^abandoned" "$dir/abandon.out"); sessions holding a transaction: $held"
[ "$held" -ge 1 ] || fail "no session was left holding its transaction: nothing to prove"
kill -USR1 "$proxy_pid"   # healed: new connections pass
touch "$dir/healed"
wait "$abandon_pid" || fail "pg_abandon: $(cat "$dir/abandon.out")"
grep "^next deduction" "$dir/abandon.out"
[ "$(open_txns)" -eq 0 ] || fail "$(open_txns) sessions still hold a transaction"
echo "83-network-holes: passed"
