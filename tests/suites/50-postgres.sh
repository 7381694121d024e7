#!/usr/bin/env bash
# 50-postgres.sh -- the conformance suite against the postgres backend on a
# real PostgreSQL 15 (tests/harness/pg.sh), plain (?stock_merge=0:
# docs/schemes.md's scheme, one conditional update per deduction): --quick for the semantics, then the full
# sellout (exactly 10,000 of 200,000 attempts succeed); and the URI options
# (pg_options). 50-postgres-merged.sh, -buckets.sh and -replica.sh cover the
# other modes, 50-postgres-faults.sh the crash, session-loss, stockd and
# replica-failover checks.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/harness/pg.sh
trap pg_stop EXIT
pg_start
echo "primary $PG_URI (pid $PG_PID)"
echo "== options and an unreachable server"
"$BUILD/tests/pg_options" "$PG_URI"
modes=("?stock_merge=0")
for mode in "${modes[@]}"; do
    pg_conformance "$mode"
done

