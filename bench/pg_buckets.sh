#!/usr/bin/env bash
# pg_buckets.sh -- what hot-SKU buckets buy: several stores (processes) on
# one database deducting the SAME SKU at once, which is when they wait on one
# another's row lock. Runs `stores` bench/pg_bench processes sharing a SKU,
# with 1 and 8 buckets, merged and not, on a throwaway PostgreSQL 15.
#
#   bench/pg_buckets.sh [stores] [seconds]      (default 4 stores, 8 s)
#
# Prints each process's line and the sum per configuration.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
stores=${1:-4}
seconds=${2:-8}
. tests/harness/pg.sh
trap pg_stop EXIT
pg_start
for query in "?stock_buckets=1" "?stock_buckets=8" "?stock_merge=1&stock_buckets=1" \
             "?stock_merge=1&stock_buckets=8"; do
    token="k$RANDOM$$"
    out=$(mktemp "$PG_DIR/buckets.XXXXXX")
    pids=()
    for ((i = 0; i < stores; i++)); do
        "$BUILD/bench/pg_bench" "$PG_URI$query" hot 4 4 16 "$seconds" "$token" >>"$out" 2>&1 &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do
        wait "$pid" || true
    done
    sed 's/^/  /' "$out"
    total=$(sed -n 's/.*: \([0-9]*\) deductions\/s.*/\1/p' "$out" | awk '{s += $1} END {print s}')
    echo "$stores stores $query: $total deductions/s together"
done
