#!/usr/bin/env bash
# 50-postgres-replica.sh -- the conformance suite against the postgres backend
# with merging and a read replica (a streaming replica made by pg_basebackup)
# for the sold-out pre-check: --quick for the semantics, then the full
# sellout (exactly 10,000 of 200,000 attempts succeed).
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/harness/pg.sh
trap pg_stop EXIT
pg_start
pg_start_replica
echo "primary $PG_URI (pid $PG_PID), replica $PG_REPLICA_URI (pid $PG_REPLICA_PID)"
# The replica URI as a query parameter value.
replica_param=$(printf '%s' "$PG_REPLICA_URI" | sed -e 's/%/%25/g' -e 's/:/%3A/g' \
    -e 's|/|%2F|g' -e 's/@/%40/g' -e 's/?/%3F/g' -e 's/&/%26/g' -e 's/=/%3D/g')
modes=("?stock_merge=1&stock_replica=$replica_param")
for mode in "${modes[@]}"; do
    pg_conformance "$mode"
done

