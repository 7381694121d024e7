#!/usr/bin/env bash
# intake.sh -- the message-queue intake (docs/intake.md) against direct RESP,
# on the same store and workload, in one run: the sellout (ORDERS requests
# for one SKU of 10,000 units) into one stockd over the embedded engine
# (durable: fsync before every acknowledgement)
#
#   direct   stockbench --workload sellout through stockd:// (4 connections,
#            16 deductions per batch: a client that waits for each answer)
#   intake   ORDERS one-line orders published to NATS JetStream as fast as
#            the publisher can (the burst), while stockintake drains them into
#            the same stockd
#
# and prints, per path, the rate at which the store took the requests and
# the latency: for direct, from sending to the answer; for the intake, from
# the broker storing a request to its storing the result (the queue's wait
# included). For the intake also the burst's publish rate, and whether the
# queue kept the store at its own pace (drain rate vs publish rate).
#
# usage: bench/intake.sh [ORDERS]      (after make tests; ORDERS 20000..10000000,
#                                       default 200000)
#        bench/intake.sh -h|--help
#
# INTAKE_FLAGS adds flags to stockintake's command line (e.g. --batch 1024).
#
# Everything runs on 127.0.0.1 (nats-server on 17520-17559 through
# tests/harness/nats.sh, stockd on 17560-17569), in a temporary folder,
# stopped by PID at the end.
set -eu
cd "$(dirname "$0")/.."
. bench/common.sh
bench_help "$@"
[ $# -le 1 ] || { echo "intake.sh: takes at most one argument (see --help)" >&2; exit 2; }
orders=${1:-200000}
bench_whole ORDERS "$orders" 20000 10000000
units=10000
. tests/harness/nats.sh
bench_need "make tests" stockd stockctl stockintake stockbench tests/intake_client

dir=$(mktemp -d)
stockd_pid="" intake_pid=""
cleanup() {
    for pid in $intake_pid $stockd_pid; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    nats_stop
    rm -rf "$dir"
}
trap cleanup EXIT
client="$BUILD/tests/intake_client"

port=$(pick_port 17560 17569)
uri="stockd://127.0.0.1:$port"
start_stockd "$port" "$dir/data" "$dir/stockd.log"
stockd_pid=$STOCKD_PID
nats_start

echo "== direct: stockbench sellout, $orders deductions through RESP"
"$BUILD/stockbench" --store "$uri" --workload sellout -n "$orders" --json --no-progress \
    >"$dir/direct.json"
direct=$(jq -r '"\(.ops_per_s|floor) \(.latency_ms.p50) \(.latency_ms.p99) \(.check.passed)"' "$dir/direct.json")
read -r direct_rate direct_p50 direct_p99 direct_ok <<<"$direct"

echo "== intake: $orders orders published to JetStream, drained by stockintake"
"$BUILD/stockctl" --store "$uri" set S0 "$units" >/dev/null
"$BUILD/stockintake" --store "$uri" --broker "$NATS_URL" ${INTAKE_FLAGS:-} 2>"$dir/intake.log" &
intake_pid=$!
until "$client" count "$NATS_URL" STOCK_DEAD >/dev/null 2>&1; do sleep 0.1; done
publish=$("$client" publish "$NATS_URL" "$orders" 1 bench "$dir/try.log")
publish_rate=$(echo "$publish" | sed -n 's/.*(\([0-9]*\)\/s)$/\1/p')
while [ "$("$client" count "$NATS_URL" STOCK_RESULTS)" -lt "$orders" ]; do sleep 0.2; done
"$client" results "$NATS_URL" "$dir/ack.log" >"$dir/results.txt"
read -r _ intake_p50 intake_p99 _ span_s < <(grep '^latency_ms ' "$dir/results.txt")
sold=$(sed -n 's/^OK //p' "$dir/results.txt")
intake_rate=$(awk -v n="$orders" -v s="$span_s" 'BEGIN { printf "%d", n / s }')

echo
printf '| path | requests | store rate (req/s) | p50 ms | p99 ms | check |\n|---|---|---|---|---|---|\n'
printf '| direct RESP (stockbench sellout, -c 4 -P 16) | %s | %s | %.2f | %.2f | %s |\n' \
    "$orders" "$direct_rate" "$direct_p50" "$direct_p99" \
    "$([ "$direct_ok" = true ] && echo "I1-I5 passed" || echo FAILED)"
printf '| intake (burst published at %s/s) | %s | %s | %.1f | %.1f | %s sold of %s |\n' \
    "$publish_rate" "$orders" "$intake_rate" "$intake_p50" "$intake_p99" "$sold" "$units"
echo
echo "intake: drain rate $intake_rate/s vs publish rate $publish_rate/s: the queue held" \
     "$(awk -v p="$publish_rate" -v d="$intake_rate" -v n="$orders" \
        'BEGIN { b = n - n * d / p; printf "%d", (b > 0 ? b : 0) }') orders when the burst ended"
[ "$sold" = "$units" ] || { echo "intake.sh: $sold orders sold, not $units" >&2; exit 1; }
