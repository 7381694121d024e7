#!/usr/bin/env bash
# 50-postgres-faults.sh -- the postgres backend when things go wrong, on a real
# PostgreSQL 15 and a streaming replica (tests/harness/pg.sh):
#   - a client killed with SIGKILL mid-batch leaves only whole orders and
#     balanced SKUs (pg_crash), three times at different moments;
#   - the writer's sessions terminated under it (pg_terminate_backend): it
#     reconnects and goes on, and the database stays whole;
#   - stockd serves a postgres URI (--store postgres://...) over RESP;
#   - a frozen replica (SIGSTOP) delays a deduction by at most its timeout;
#     with the primary stopped, the replica alone turns away a sold-out SKU
#     (pg_replica; last, since it stops the primary).
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/harness/pg.sh
writer=""
stockd_pid=""
cleanup() {
    [ -z "$writer" ] || kill -KILL "$writer" 2>/dev/null || true
    [ -z "$stockd_pid" ] || kill -TERM "$stockd_pid" 2>/dev/null || true
    pg_stop
}
trap cleanup EXIT

pg_start
pg_start_replica
echo "primary $PG_URI (pid $PG_PID), replica $PG_REPLICA_URI (pid $PG_REPLICA_PID)"

for delay in 0.3 1 2; do
    echo "== SIGKILL a writer after ${delay}s of committed batches"
    # Emptied first: the last round's "ready" must not be read as this one's.
    : >"$PG_DIR/writer.out"
    "$BUILD/tests/pg_crash" write "$PG_URI?stock_merge=1" >"$PG_DIR/writer.out" 2>&1 &
    writer=$!
    for ((i = 0; i < 900; i++)); do   # 90 s: a loaded machine can take long over the first commit
        grep -q ready "$PG_DIR/writer.out" 2>/dev/null && break
        kill -0 "$writer" 2>/dev/null || { cat "$PG_DIR/writer.out"; exit 1; }
        sleep 0.1
    done
    grep -q ready "$PG_DIR/writer.out" || { echo "the writer never committed within 90 s"; tail -n 20 "$PG_DIR/writer.out"; exit 1; }
    sleep "$delay"
    kill -KILL "$writer"
    wait "$writer" 2>/dev/null || true
    writer=""
    "$BUILD/tests/pg_crash" check "$PG_URI"
done

echo "== the writer's sessions terminated under it, five times"
: >"$PG_DIR/writer.out"
"$BUILD/tests/pg_crash" write "$PG_URI?stock_merge=1" >"$PG_DIR/writer.out" 2>&1 &
writer=$!
for ((i = 0; i < 300; i++)); do
    grep -q ready "$PG_DIR/writer.out" 2>/dev/null && break
    sleep 0.1
done
grep -q ready "$PG_DIR/writer.out" || { cat "$PG_DIR/writer.out"; exit 1; }
for ((i = 0; i < 5; i++)); do
    pg_psql -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                WHERE application_name = 'libstock'" >/dev/null
    sleep 0.4
done
kill -0 "$writer" || { echo "the writer stopped:"; cat "$PG_DIR/writer.out"; exit 1; }
kill -KILL "$writer"
wait "$writer" 2>/dev/null || true
writer=""
grep -c "pg_crash: op" "$PG_DIR/writer.out" | sed 's/^/ops with an unknown outcome: /' || true
"$BUILD/tests/pg_crash" check "$PG_URI"

echo "== stockd --store postgres://..."
resp_port=$(pg_free_port)
"$BUILD/stockd" --store "$PG_URI?stock_merge=1" --port "$resp_port" --http-port 0 \
    >"$PG_DIR/stockd.log" 2>&1 &
stockd_pid=$!
cli() { redis-cli -p "$resp_port" "$@"; }
for ((i = 0; i < 100; i++)); do
    [ "$(cli PING 2>/dev/null)" = PONG ] && break
    kill -0 "$stockd_pid" 2>/dev/null || { cat "$PG_DIR/stockd.log"; exit 1; }
    sleep 0.1
done
sku="served-$$-$RANDOM"
[ "$(cli SETSTOCK "$sku" 3)" = 3 ]
[ "$(cli DEDUCT "$sku-l1" "$sku" 2)" = 1 ]
[ "$(cli DEDUCT "$sku-l1" "$sku" 2)" = 1 ]          # a replay answers as the original
cli DEDUCT "$sku-l2" "$sku" 2 | grep -q "^INSUFFICIENT sku=$sku available=1"
[ "$(cli STOCK "$sku")" = 1 ]
[ "$(PG_PSQL_URI=$PG_URI pg_psql -c "SELECT sum(leaved_amount) FROM inventory WHERE sku_id = '$sku'")" = 1 ]
kill -TERM "$stockd_pid"
wait "$stockd_pid"
stockd_pid=""
echo "stockd served the postgres store"

echo "== replica pre-check with the primary stopped"
"$BUILD/tests/pg_replica" "$PG_URI" "$PG_REPLICA_URI" "$PG_PID" "$PG_REPLICA_PID"
PG_PID=""   # stopped by pg_replica
echo "50-postgres: all passed"
