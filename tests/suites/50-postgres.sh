#!/usr/bin/env bash
# 50-postgres.sh -- the postgres backend against a real PostgreSQL 15 (and a
# streaming replica of it), started by tests/harness/pg.sh on loopback:
#   - the conformance suite in every mode: plain, merged, buckets, merged with
#     buckets, merged with a read replica (--quick for the semantics, then the
#     full sellout: exactly 10,000 of 200,000 attempts succeed);
#   - a client killed with SIGKILL mid-batch leaves only whole orders and
#     balanced SKUs (pg_crash), three times at different moments;
#   - with the primary stopped, the replica alone turns away a sold-out SKU
#     (pg_replica; last, since it stops the primary).
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/harness/pg.sh
writer=""
cleanup() {
    [ -z "$writer" ] || kill -KILL "$writer" 2>/dev/null || true
    pg_stop
}
trap cleanup EXIT

pg_start
pg_start_replica
echo "primary $PG_URI (pid $PG_PID), replica $PG_REPLICA_URI (pid $PG_REPLICA_PID)"

# The replica URI as a query parameter value.
replica_param=$(printf '%s' "$PG_REPLICA_URI" | sed -e 's/%/%25/g' -e 's/:/%3A/g' \
    -e 's|/|%2F|g' -e 's/@/%40/g' -e 's/?/%3F/g' -e 's/&/%26/g' -e 's/=/%3D/g')
modes=("" "?stock_merge=1" "?stock_buckets=4" "?stock_merge=1&stock_buckets=8"
       "?stock_merge=1&stock_replica=$replica_param")
for mode in "${modes[@]}"; do
    echo "== conformance ${mode:-(plain)}"
    "$BUILD/tests/conformance" --quick "$PG_URI$mode" >"$PG_DIR/conformance.log" 2>&1 ||
        { cat "$PG_DIR/conformance.log"; exit 1; }
    tail -n 1 "$PG_DIR/conformance.log"
    "$BUILD/tests/conformance" --filter 'sellout*' "$PG_URI$mode" 2>&1 | tail -n 1
    [ "${PIPESTATUS[0]}" -eq 0 ]
done

for delay in 0.3 1 2; do
    echo "== SIGKILL a writer after ${delay}s of committed batches"
    "$BUILD/tests/pg_crash" write "$PG_URI?stock_merge=1" >"$PG_DIR/writer.out" 2>&1 &
    writer=$!
    for ((i = 0; i < 300; i++)); do
        grep -q ready "$PG_DIR/writer.out" 2>/dev/null && break
        kill -0 "$writer" 2>/dev/null || { cat "$PG_DIR/writer.out"; exit 1; }
        sleep 0.1
    done
    grep -q ready "$PG_DIR/writer.out" || { echo "the writer never committed"; exit 1; }
    sleep "$delay"
    kill -KILL "$writer"
    wait "$writer" 2>/dev/null || true
    writer=""
    "$BUILD/tests/pg_crash" check "$PG_URI"
done

echo "== replica pre-check with the primary stopped"
"$BUILD/tests/pg_replica" "$PG_URI" "$PG_REPLICA_URI" "$PG_PID"
PG_PID=""   # stopped by pg_replica
echo "50-postgres: all passed"
