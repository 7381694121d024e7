#!/usr/bin/env bash
# bench/sharded_fences.sh -- what the fence triggers of the sharded backend
# cost (docs/sharded.md, "One id, one winner"): stockbench's uniform workload
# over 100,000 SKUs on a sharded store of 3 members, with the triggers
# enabled and then disabled (ALTER TABLE ... DISABLE TRIGGER), ROUNDS times
# in turn, so that the machine's drift hits both alike. The databases are
# PostgreSQL 15 primaries started by tests/harness/pg.sh (pg_start_many),
# all on this machine. Prints one line per run.
#
#   bench/sharded_fences.sh [SECONDS] [ROUNDS]     (default 8 per run, 2 rounds)
#
# With BEFORE set to another build directory (of an earlier commit), each
# round runs that build's stockbench and this one's, the triggers on, in
# turn (the first of the two alternates from round to round, so that a
# machine getting busier hits both alike), instead: what a change costs, before and after in one run (each open
# installs its own build's functions and triggers).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SECONDS_PER_RUN=${1:-8}
ROUNDS=${2:-2}
. tests/harness/pg.sh
trap pg_stop EXIT
pg_start_many 3
THREE="shards:${PG_MANY_URIS[0]};${PG_MANY_URIS[1]};${PG_MANY_URIS[2]}"
port_of() { local rest=${1#*127.0.0.1:}; echo "${rest%%/*}"; }
psql_on() { "$PG_BIN/psql" -h 127.0.0.1 -p "$(port_of "$1")" -U postgres -d postgres -qtAX -c "$2"; }

run() {
    local out
    out=$("${2:-$BUILD}/stockbench" --store "$THREE" --workload uniform --skus 100000 -c 8 -P 16 \
          -d "$SECONDS_PER_RUN" --no-progress --json)
    python3 -c 'import json,sys; r=json.loads(sys.argv[2]); print("%-30s %8.0f ops/s  p50 %7.2f ms  p99 %7.2f ms  check %s" % (sys.argv[1], r["ops_per_s"], r["latency_ms"]["p50"], r["latency_ms"]["p99"], "passed" if r["check"]["passed"] else "FAILED"))' "$1" "$out"
}

# ENABLE or DISABLE the four fence triggers on every member.
triggers() {
    local uri table
    for uri in "${PG_MANY_URIS[@]}"; do
        for table in inventory_flow:l inventory_orders:o inventory_refunds:r inventory_adjustments:a; do
            psql_on "$uri" "ALTER TABLE ${table%:*} $1 TRIGGER stock_fence_${table#*:}" >/dev/null
        done
    done
}

"$BUILD/stockctl" --store "$THREE" get no-such-sku >/dev/null 2>&1 || true   # the schema and map
date -u +"%Y-%m-%d %H:%M UTC, $(nproc) CPUs, $SECONDS_PER_RUN s per run"
for ((round = 0; round < ROUNDS; round++)); do
    if [ -n "${BEFORE:-}" ] && ((round % 2 == 0)); then
        run "3 members, before ($BEFORE)" "$BEFORE"
        run "3 members, after ($BUILD)"
        continue
    elif [ -n "${BEFORE:-}" ]; then
        run "3 members, after ($BUILD)"
        run "3 members, before ($BEFORE)" "$BEFORE"
        continue
    fi
    triggers ENABLE
    run "3 members, fence triggers on"
    triggers DISABLE
    run "3 members, fence triggers off"
done
triggers ENABLE
