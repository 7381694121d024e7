#!/usr/bin/env bash
# events.sh -- the latency of a stock event (docs/events.md): from a
# change acknowledged by stockd (over the embedded engine, durable: fsync
# before every acknowledgement) to its event arriving from NATS JetStream,
# through stockevents following the flow log. COUNT times, one after the
# other: a SKU set to 1 and deducted (a sell-out), then its sold_out event
# awaited on a subscription to stock.events.sold_out; prints p50, p99 and
# the maximum.
#
# usage: bench/events.sh [COUNT]      (after make tests; COUNT 100..1000000,
#                                      default 2000)
#        bench/events.sh -h|--help
#
# EVENTS_POLL_MS sets stockevents' --poll-ms (default 10): how long it
# waits before looking again at a log with nothing new, the main term of
# the latency when the store is idle.
#
# Everything runs on 127.0.0.1 (nats-server on 17520-17559 through
# tests/harness/nats.sh, stockd on 17560-17569), in a temporary folder,
# stopped by PID at the end.
set -eu
cd "$(dirname "$0")/.."
. bench/common.sh
bench_help "$@"
[ $# -le 1 ] || { echo "events.sh: takes at most one argument (see --help)" >&2; exit 2; }
count=${1:-2000}
bench_whole COUNT "$count" 100 1000000
poll_ms=${EVENTS_POLL_MS:-10}
bench_whole EVENTS_POLL_MS "$poll_ms" 1 10000
. tests/harness/nats.sh
bench_need "make tests" stockd stockevents tests/events_client

dir=$(mktemp -d)
stockd_pid="" events_pid=""
cleanup() {
    for pid in $events_pid $stockd_pid; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    nats_stop
    rm -rf "$dir"
}
trap cleanup EXIT

port=$(pick_port 17560 17569)
start_stockd "$port" "$dir/data" "$dir/stockd.log"
stockd_pid=$STOCKD_PID
nats_start
"$BUILD/stockevents" --data "$dir/data" --broker "$NATS_URL" --poll-ms "$poll_ms" 2>"$dir/events.log" &
events_pid=$!
sleep 0.5

echo "== $count sell-outs, each awaited as a sold_out event (--poll-ms $poll_ms)"
read -r _ p50 p99 max < <("$BUILD/tests/events_client" latency "$NATS_URL" "$port" "$count" bench)
echo
printf '| events | --poll-ms | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|\n'
printf '| %s | %s | %.2f | %.2f | %.2f |\n' "$count" "$poll_ms" "$p50" "$p99" "$max"
