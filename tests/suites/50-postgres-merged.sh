#!/usr/bin/env bash
# 50-postgres-merged.sh -- the conformance suite against the postgres backend
# with merged deductions: --quick for the semantics, then, in a release
# build, the full sellout (exactly 10,000 of 200,000 attempts succeed).
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/harness/pg.sh
trap pg_stop EXIT
pg_start
echo "primary $PG_URI (pid $PG_PID)"
modes=("?stock_merge=1")
for mode in "${modes[@]}"; do
    pg_conformance "$mode"
done


# Merged runs look their line ids up through the flow table's key: a plan that
# scans the whole table makes every batch cost more than the last as the table
# grows. Statistics are reset, then a sellout runs on the (already filled)
# store, with the URI's defaults: the backend must have merged its
# deductions (merging is the default) and must not have read inventory_flow
# sequentially once.
echo "== by default, deductions are merged and the flow table is read by its index only"
pg_psql -c "ALTER SYSTEM SET track_functions = 'pl'" -c "SELECT pg_reload_conf()" >/dev/null
pg_psql -c "SELECT pg_stat_reset()" >/dev/null
"$BUILD/tests/conformance" --filter 'sellout*' "$PG_URI" >/dev/null 2>&1
sleep 1   # statistics reach the cumulative view within PGSTAT_MIN_INTERVAL (1 s)
read -r seq_scans index_scans < <(pg_psql -F ' ' -c "SELECT seq_scan, coalesce(idx_scan, 0)
    FROM pg_stat_user_tables WHERE relname = 'inventory_flow'")
echo "inventory_flow: $seq_scans sequential scans, $index_scans index scans"
[ "$seq_scans" -eq 0 ] && [ "$index_scans" -gt 0 ] ||
    { echo "FAIL: the backend scanned inventory_flow sequentially"; exit 1; }
read -r merged single < <(pg_psql -F ' ' -c "SELECT
    coalesce(sum(calls) FILTER (WHERE funcname = 'stock_deduct_run'), 0),
    coalesce(sum(calls) FILTER (WHERE funcname = 'stock_deduct'), 0) FROM pg_stat_user_functions")
echo "stock_deduct_run: $merged calls, stock_deduct: $single calls"
[ "$merged" -gt 0 ] && [ "$single" -eq 0 ] ||
    { echo "FAIL: the default URI did not merge deductions"; exit 1; }
