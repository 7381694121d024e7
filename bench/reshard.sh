#!/usr/bin/env bash
# bench/reshard.sh -- how long `stockctl reshard` takes to add a third
# member to a sharded store of 2 (docs/sharded.md, "Adding a shard"), for
# a store of plain SKUs and for one whose every SKU is hot (hot=2:*, two
# pieces each). Each store is filled by stockbench's uniform workload over
# SKUS SKUs for SECONDS (its SKUs set, then deductions: lines on every
# piece), in databases of its own on 3 PostgreSQL 15 primaries started by
# tests/harness/pg.sh (pg_start_many), all on this machine. Prints, per
# store, what the move carried (SKUs or pieces, lines, directory entries)
# and its wall time.
#
#   bench/reshard.sh [SKUS] [SECONDS]     (default 2000 SKUs, 5 s)
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SKUS=${1:-2000}
SECONDS_PER_RUN=${2:-5}
. tests/harness/pg.sh
trap pg_stop EXIT
pg_start_many 3
member() { echo "${PG_MANY_URIS[$1]%/postgres}/$2"; }
for db in plain hot; do
    for k in 0 1 2; do
        PG_PSQL_URI=${PG_MANY_URIS[$k]} pg_psql -c "CREATE DATABASE $db" >/dev/null
    done
done

# $1 the label, $2 the hot= segment (with its ';') or "", $3 the database
move() {
    local old="shards:$2$(member 0 "$3");$(member 1 "$3")" new start end out
    new="$old;$(member 2 "$3")"
    "$BUILD/stockbench" --store "$old" --workload uniform --skus "$SKUS" -d "$SECONDS_PER_RUN" \
        --no-progress --json >/dev/null
    start=$(date +%s%N)
    out=$("$BUILD/stockctl" --json reshard "$old" "$new" 2>/dev/null)
    end=$(date +%s%N)
    python3 -c 'import json, sys; r = json.loads(sys.argv[2]); s = int(sys.argv[3]) / 1e9; print("%-28s %6d moved (SKUs or pieces), %7d lines, %7d directory entries: %6.2f s, %6.0f moved/s" % (sys.argv[1], r["skus"], r["lines"], r["ids"], s, r["skus"] / s))' \
        "$1" "$out" "$((end - start))"
}

date -u +"%Y-%m-%d %H:%M UTC, $(nproc) CPUs, $SKUS SKUs, $SECONDS_PER_RUN s of uniform deductions"
move "plain SKUs, 2 -> 3" "" plain
move "every SKU hot (hot=2:*), 2 -> 3" "hot=2:*;" hot
