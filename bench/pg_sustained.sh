#!/usr/bin/env bash
# pg_sustained.sh -- does the postgres backend keep its speed as its flow
# table grows? RUNS consecutive redis-benchmark runs of REQUESTS deductions
# each through one stockd over one PostgreSQL 15 store (one hot SKU,
# `redis-benchmark -c 50 -P 16`), with the plain database scheme measured by
# pgbench on the same server before and after as the yardstick.
#
# usage: bench/pg_sustained.sh [RUNS [REQUESTS [OPTIONS]]]
#        bench/pg_sustained.sh -h|--help
#   RUNS      consecutive runs on the same store, 2..100 (default 10)
#   REQUESTS  deductions per run, 1000..10000000 (default 200000)
#   OPTIONS   the store URI's query, e.g. "?stock_merge=0" (default none:
#             merged deductions)
# Environment: BUILD (default build). Needs root or the postgres user for
# initdb (runuser), pgbench, redis-benchmark (scripts/install-deps.sh) and
# `make` (build/stockd).
#
# Prints each run's deductions/s, the last run over the first (a cost that
# grows with the table shows as a ratio well under 1), each run over the
# plain scheme, how the flow table was read (sequential against index scans:
# a sequential scan per transaction is the bug this script was written to
# catch), and a check: the SKU's deducted total equals its flow rows.
set -eu
cd "$(dirname "$0")/.."
. bench/common.sh
bench_help "$@"
[ $# -le 3 ] || { echo "pg_sustained.sh: takes at most three arguments (see --help)" >&2; exit 2; }
runs=${1:-10} requests=${2:-200000} options=${3:-}
bench_whole RUNS "$runs" 2 100
bench_whole REQUESTS "$requests" 1000 10000000
case $options in ''|'?'*) ;; *) echo "pg_sustained.sh: OPTIONS must start with '?'" >&2; exit 2 ;; esac
[ -x "$BUILD/stockd" ] || { echo "pg_sustained.sh: no $BUILD/stockd (run make)" >&2; exit 2; }

. tests/harness/pg.sh
stockd_pid=""
work=$(mktemp -d /tmp/stockd-pgsustained.XXXXXX)
cleanup() {
    [ -z "$stockd_pid" ] || kill -TERM "$stockd_pid" 2>/dev/null || true
    pg_stop
    rm -rf "$work"
}
trap cleanup EXIT
pg_start

# The plain scheme on its own tables: one transaction per deduction.
pg_psql <<'SQL'
CREATE TABLE plain_inventory (sku_id text PRIMARY KEY, leaved_amount bigint NOT NULL CHECK (leaved_amount >= 0));
CREATE TABLE plain_flow (line_id text PRIMARY KEY, sku_id text NOT NULL, qty bigint NOT NULL, time_us bigint NOT NULL);
INSERT INTO plain_inventory VALUES ('hot', 1000000000000);
SQL
cat >"$work/plain.sql" <<'SQL'
BEGIN;
UPDATE plain_inventory SET leaved_amount = leaved_amount - 1 WHERE sku_id = 'hot' AND leaved_amount >= 1;
INSERT INTO plain_flow VALUES (gen_random_uuid()::text, 'hot', 1, (extract(epoch FROM clock_timestamp()) * 1e6)::bigint);
END;
SQL
plain() {
    "$PG_BIN/pgbench" -n -c 16 -j 2 -T 10 -f "$work/plain.sql" "$PG_URI" 2>/dev/null |
        sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}
plain_before=$(plain)
echo "plain scheme (pgbench -c 16 -j 2 -T 10, hot SKU): $plain_before deductions/s"

port=$(pg_free_port)
"$BUILD/stockd" --store "$PG_URI$options" --port "$port" --http-port 0 >"$work/stockd.log" 2>&1 &
stockd_pid=$!
for ((i = 0; i < 100; i++)); do
    redis-cli -p "$port" PING 2>/dev/null | grep -q PONG && break
    sleep 0.1
done
redis-cli -p "$port" SETSTOCK hot 1000000000000 >/dev/null

first=""
for ((run = 1; run <= runs; run++)); do
    rps=$(redis-benchmark -p "$port" -c 50 -P 16 -n "$requests" -r 1000000000 -q \
            DEDUCT "r$run-__rand_int__" hot 1 | tr '\r' '\n' |
          sed -n 's/.* \([0-9.]*\) requests per second.*/\1/p' | tail -n 1)
    [ -n "$rps" ] || { echo "pg_sustained.sh: redis-benchmark failed; stockd log:" >&2; tail "$work/stockd.log" >&2; exit 1; }
    [ -n "$first" ] || first=$rps
    # From the statistics, not count(*): a count would scan the table itself.
    rows=$(pg_psql -c "SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 'inventory_flow'")
    awk -v r="$run" -v rps="$rps" -v f="$first" -v p="$plain_before" -v rows="$rows" 'BEGIN {
        printf "run %2d: %10.0f deductions/s  %.2fx run 1  %5.0fx plain  (flow rows ~%d)\n",
               r, rps, rps / f, rps / p, rows }'
    last=$rps
done
plain_after=$(plain)
echo "plain scheme again, after the runs: $plain_after deductions/s"
awk -v l="$last" -v f="$first" -v p="$plain_after" 'BEGIN {
    printf "last run / first run: %.2f; last run / plain scheme after: %.0fx\n", l / f, l / p }'
pg_psql -F ' ' -c "SELECT 'inventory_flow: ' || seq_scan || ' sequential scans (' || seq_tup_read ||
    ' rows read), ' || coalesce(idx_scan, 0) || ' index scans' FROM pg_stat_user_tables
    WHERE relname = 'inventory_flow'"
check=$(pg_psql -c "SELECT (SELECT sum(deducted) FROM inventory WHERE sku_id = 'hot') =
                           (SELECT count(*) FROM inventory_flow WHERE sku_id = 'hot')")
[ "$check" = t ] && echo "check: passed (deducted total = flow rows)" ||
    { echo "check: FAILED (deducted total differs from the flow rows)"; exit 1; }
