#!/usr/bin/env bash
# 50-postgres-buckets.sh -- the conformance suite against the postgres backend
# with hot-SKU buckets, alone and with merging: --quick for the semantics,
# then, in a release build, the full sellout (exactly 10,000 of 200,000
# attempts succeed).
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/harness/pg.sh
trap pg_stop EXIT
pg_start
echo "primary $PG_URI (pid $PG_PID)"
modes=("?stock_buckets=4" "?stock_merge=1&stock_buckets=8")
for mode in "${modes[@]}"; do
    pg_conformance "$mode"
done

