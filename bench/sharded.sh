#!/usr/bin/env bash
# bench/sharded.sh -- the sharded backend against the plain postgres backend
# on this machine (docs/sharded.md, "Figures"): stockbench's uniform
# workload over 100,000 SKUs, its cart workload and its hot SKU, on one
# plain postgres store, on a sharded store of 1 member and of 3 members,
# and the hot SKU once more spread over the 3 members ("hot=3:*",
# docs/sharded.md, "Hot SKUs across shards").
# Every database is a PostgreSQL 15 primary started by tests/harness/pg.sh
# (pg_start_many: its own data folder and port, fsync and
# synchronous_commit on), all on this machine, so the shards share its CPUs
# and disk. Prints one line per run; then the latency of a cart whose two
# SKUs live on one member against one whose SKUs live on two (3 members,
# one cart at a time: bench/shard_carts.c).
#
#   bench/sharded.sh [SECONDS]      (default 10 per run, 0: only the carts;
#                                    needs `make bench`)
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SECONDS_PER_RUN=${1:-10}
CONNECTIONS=${CONNECTIONS:-8}
PIPELINE=${PIPELINE:-16}
. tests/harness/pg.sh
trap pg_stop EXIT
pg_start_many 5
P=${PG_MANY_URIS[0]}
ONE="shards:${PG_MANY_URIS[1]}"
THREE="shards:${PG_MANY_URIS[2]};${PG_MANY_URIS[3]};${PG_MANY_URIS[4]}"
SPREAD="shards:hot=3:*;${THREE#shards:}"

run() {
    local label=$1 uri=$2 workload=$3
    shift 3
    local out
    out=$("$BUILD/stockbench" --store "$uri" --workload "$workload" -c "$CONNECTIONS" \
          -P "$PIPELINE" -d "$SECONDS_PER_RUN" --no-progress --json "$@") ||
        { echo "$label: stockbench failed: $out"; return 1; }
    python3 -c 'import json,sys; r=json.loads(sys.argv[2]); print("%-22s %8.0f ops/s  p50 %7.2f ms  p99 %7.2f ms  check %s" % (sys.argv[1], r["ops_per_s"], r["latency_ms"]["p50"], r["latency_ms"]["p99"], "passed" if r["check"]["passed"] else "FAILED"))' "$label" "$out"
}

date -u +"%Y-%m-%d %H:%M UTC, $(nproc) CPUs, -c $CONNECTIONS -P $PIPELINE, $SECONDS_PER_RUN s per run"
for workload in uniform cart hot; do
    [ "$SECONDS_PER_RUN" -gt 0 ] || break
    skus=()
    [ "$workload" != uniform ] || skus=(--skus 100000)
    run "$workload postgres" "$P" "$workload" "${skus[@]}"
    run "$workload sharded 1" "$ONE" "$workload" "${skus[@]}"
    run "$workload sharded 3" "$THREE" "$workload" "${skus[@]}"
    [ "$workload" != hot ] || run "hot spread over 3" "$SPREAD" hot
done

"$BUILD/bench/shard_carts" "$THREE" 200
