#!/usr/bin/env bash
# reconcile.sh -- how fast, and in how much memory, `stockctl reconcile`
# compares two stores of LINES lines. Prints, for each pair: the lines
# compared, the seconds, the rate (lines compared per second) and the peak
# RSS of stockctl (/usr/bin/time -v, "Maximum resident set size").
#
#   embedded vs embedded   LINES operations of stockbench's mixed workload
#                          (about 89% deductions, the rest refunds, replays
#                          and reads; 1,000 SKUs) into one store, copied to
#                          a second folder. The
#                          embedded engine holds a store's whole state in
#                          memory, so the peak RSS is mostly the two open
#                          stores: the script also prints the peak RSS of
#                          opening them alone (a self-check of each,
#                          `stockctl reconcile A`, which opens one), so the
#                          difference is what the comparison holds
#   redis vs postgres      1,000 SKUs of LINES / 1,000 lines each, written
#                          directly into both (tests/harness/reconcile_fill.sh);
#                          there the stores live in their servers and the
#                          peak RSS is the comparison's own
#
# usage: bench/reconcile.sh [LINES]   (after make; 10000..10000000, default
#                                      1000000)
#        bench/reconcile.sh -h|--help
#
# Servers: redis-server and PostgreSQL 15 from tests/harness, on 127.0.0.1,
# in temporary folders, stopped by PID at the end.
set -eu
cd "$(dirname "$0")/.."
. bench/common.sh
bench_help "$@"
[ $# -le 1 ] || { echo "reconcile.sh: takes at most one argument (see --help)" >&2; exit 2; }
lines=${1:-1000000}
bench_whole LINES "$lines" 10000 10000000
bench_need make stockctl stockbench
. tests/harness/pg.sh
. tests/harness/redis.sh
. tests/harness/reconcile_fill.sh
bench_temp stockd-reconcile-bench
cleanup() {
    pg_stop
    redis_stop
    bench_cleanup
}
trap cleanup EXIT
ctl=$BUILD/stockctl

# measure NAME ARGS...: runs stockctl reconcile --json ARGS under
# /usr/bin/time -v; prints the figures (the compared lines from its output).
measure() {
    local name=$1 start end status=0
    shift
    start=$(date +%s.%N)
    /usr/bin/time -v -o "$tmp/time" "$ctl" reconcile --json "$@" >"$tmp/out.json" || status=$?
    end=$(date +%s.%N)
    [ "$status" = 0 ] || { echo "reconcile.sh: $name: exit $status: $(head -c 400 "$tmp/out.json")" >&2; exit 1; }
    local compared rss seconds
    compared=$(jq .lines "$tmp/out.json")
    rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$tmp/time")
    seconds=$(echo "$end - $start" | bc)
    printf '%-34s %9s lines  %7.2f s  %8.0f lines/s  peak RSS %6s KiB\n' "$name" "$compared" \
        "$seconds" "$(echo "$compared / $seconds" | bc)" "$rss"
}

echo "== $lines lines, embedded vs embedded (a copy)"
"$BUILD/stockbench" --store "$tmp/a" --workload mixed --skus 1000 --stock 100000000 \
    -n "$lines" -P 1000 -c 4 --durability relaxed --no-progress >/dev/null
cp -r "$tmp/a" "$tmp/b"
measure "embedded A alone (self-check)" "$tmp/a"
measure "embedded A vs embedded B" "$tmp/a" "$tmp/b"
du -sh "$tmp/a" | awk '{ print "(each store: " $1 " on disk)" }'
rm -rf "$tmp/a" "$tmp/b"

echo "== $lines lines, redis vs postgres"
pg_start >/dev/null
redis_start >/dev/null
redis_cli CONFIG SET appendfsync no >/dev/null
"$ctl" reconcile "$PG_URI" >/dev/null   # an open makes the schema
per=$((lines / 1000))
reconcile_fill 1000 "$per"
measure "redis vs postgres" "$REDIS_URI" "$PG_URI"
measure "postgres vs redis" "$PG_URI" "$REDIS_URI"
