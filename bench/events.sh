#!/usr/bin/env bash
# events.sh -- the latency of a stock event (docs/events.md): from a
# change acknowledged by stockd (by default over the embedded engine,
# durable: fsync before every acknowledgement) to its event arriving from
# NATS JetStream, through stockevents following the store's flow. COUNT
# times, one after the other: a SKU set to 1 and deducted (a sell-out),
# then its sold_out event awaited on a subscription to
# stock.events.sold_out; then again over the same SKUs; prints p50, p99
# and the maximum of each pass.
#
# usage: bench/events.sh [COUNT]      (after make tests; COUNT 100..1000000,
#                                      default 2000)
#        bench/events.sh -h|--help
#
# EVENTS_POLL_MS sets stockevents' --poll-ms (default 10): how long it
# waits before looking again at a log with nothing new, the main term of
# the latency when the store is idle.
# EVENTS_STORE chooses the store under stockd: embedded (the default),
# postgres (a PostgreSQL 15 of tests/harness/pg.sh; stockevents reads its
# moves table) or redis (a Redis 7 of tests/harness/redis.sh, appendfsync
# always; stockevents reads its outbox).
#
# Everything runs on 127.0.0.1 (nats-server on 17520-17559 through
# tests/harness/nats.sh, stockd on 17560-17569, the database on the
# harness's ports), in a temporary folder, stopped by PID at the end.
set -eu
cd "$(dirname "$0")/.."
. bench/common.sh
bench_help "$@"
[ $# -le 1 ] || { echo "events.sh: takes at most one argument (see --help)" >&2; exit 2; }
count=${1:-2000}
bench_whole COUNT "$count" 100 1000000
poll_ms=${EVENTS_POLL_MS:-10}
bench_whole EVENTS_POLL_MS "$poll_ms" 1 10000
kind=${EVENTS_STORE:-embedded}
case $kind in
embedded | postgres | redis) ;;
*) echo "events.sh: EVENTS_STORE is embedded, postgres or redis, not '$kind'" >&2; exit 2 ;;
esac
. tests/harness/nats.sh
. tests/harness/pg.sh
. tests/harness/redis.sh
bench_need "make tests" stockd stockevents tests/events_client

dir=$(mktemp -d)
stockd_pid="" events_pid=""
cleanup() {
    for pid in $events_pid $stockd_pid; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    nats_stop
    [ "$kind" != postgres ] || pg_stop
    [ "$kind" != redis ] || redis_stop
    rm -rf "$dir"
}
trap cleanup EXIT

case $kind in
embedded) store=$dir/data source=(--data "$dir/data") ;;
postgres) pg_start; store=$PG_URI source=(--store "$PG_URI") ;;
redis) redis_start; store=$REDIS_URI source=(--store "$REDIS_URI") ;;
esac
port=$(pick_port 17560 17569)
start_stockd "$port" "$store" "$dir/stockd.log"
stockd_pid=$STOCKD_PID
nats_start
"$BUILD/stockevents" "${source[@]}" --broker "$NATS_URL" --poll-ms "$poll_ms" 2>"$dir/events.log" &
events_pid=$!
sleep 0.5

# Twice over the same SKUs: a redis store's first change in a slot makes
# that slot's outbox stream, which stockevents finds by its periodic scan
# (docs/events.md, "From Redis"); the second pass meets streams it reads.
rows=""
for pass in new again; do
    echo "== $kind: $count sell-outs ($pass SKUs), each awaited as a sold_out event (--poll-ms $poll_ms)"
    read -r _ p50 p99 max < <("$BUILD/tests/events_client" latency "$NATS_URL" "$port" "$count" bench "$pass")
    rows+=$(printf '| %s | %s | %s | %s | %.2f | %.2f | %.2f |' "$kind" "$pass" "$count" "$poll_ms" "$p50" "$p99" "$max")$'\n'
done
echo
printf '| store | SKUs | events | --poll-ms | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|---|\n'
printf '%s' "$rows"
