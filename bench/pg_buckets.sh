#!/usr/bin/env bash
# pg_buckets.sh -- what hot-SKU buckets buy: several stores (processes) on
# one database deducting the SAME SKU at once, which is when they wait on one
# another's row lock. Runs STORES bench/pg_bench processes sharing a SKU,
# with 1 and 8 buckets, merged and not, on a throwaway PostgreSQL 15.
#
# usage: bench/pg_buckets.sh [STORES [SECONDS]]
#        bench/pg_buckets.sh -h|--help
#   STORES   processes sharing the SKU, 1..32 (default 4); each holds one
#            connection and the throwaway server allows 64
#   SECONDS  length of each run, a whole number in 1..3600 (default 8)
#
# Prints each process's line and the sum per configuration.
# Environment: BUILD (default build). Needs `make bench` (build/bench/pg_bench)
# and root or the postgres user for initdb (runuser).
set -eu
cd "$(dirname "$0")/.."
. bench/common.sh
bench_help "$@"
[ $# -le 2 ] || { echo "pg_buckets.sh: takes at most two arguments, STORES and SECONDS (see --help)" >&2; exit 2; }
stores=${1:-4}
seconds=${2:-8}
bench_whole STORES "$stores" 1 32
bench_whole SECONDS "$seconds" 1 3600
. tests/harness/pg.sh
trap pg_stop EXIT
pg_start
for query in "?stock_merge=0&stock_buckets=1" "?stock_merge=0&stock_buckets=8" \
             "?stock_merge=1&stock_buckets=1" "?stock_merge=1&stock_buckets=8"; do
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
