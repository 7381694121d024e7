#!/usr/bin/env bash
# 70-nats.sh -- stockintake (docs/intake.md) between a real NATS JetStream
# server (tests/harness/nats.sh) and a store.
#
#   burst      the sellout workload through the queue: ORDERS one-line orders
#              for one SKU of UNITS units, published while stockintake drains
#              them into the embedded engine: exactly UNITS succeed, every
#              order gets exactly one result, the queue drains, and I1-I5
#              hold on the store (server_crash_check); then messages that can
#              never apply land in the dead-letter stream with their reasons
#              while orders behind them still get their results
#   crash      orders over four SKUs into a stockd:// store while stockintake
#              is killed with SIGKILL at random moments, and stockd too every
#              other round, each restarted: every order applied once and
#              answered once, none lost, I1-I5 on the store; the consumer has
#              the --max-pending and --ack-wait given, and a stockintake asking
#              for another --max-pending is refused
#   restart    nats-server killed with SIGKILL while orders drain and started
#              again on its store: stockintake reconnects and goes on, every
#              order answered once
#   stockctl   `stockctl publish` gets each request's result (OK, INSUFFICIENT,
#              INVALID for a bad line, REPLAY for a repeat), and exits 11
#              when no consumer answers within --wait
#
# INTAKE_ORDERS and INTAKE_UNITS change the burst, INTAKE_DRAIN_SECONDS how
# long it waits for results (300 s), and KEEP=DIR keeps a copy of its
# folder (logs, stores) in DIR.
set -eu
BUILD=${BUILD:-build}
here=$(dirname "$0")
. "$here/../harness/intake.sh"

orders=${INTAKE_ORDERS:-200000} units=${INTAKE_UNITS:-10000} crash_orders=20000 rounds=6
restart_orders=10000
case "$BUILD" in
*san*) orders=20000 units=1000 crash_orders=4000 rounds=4 restart_orders=4000 ;;
esac
drain_seconds=${INTAKE_DRAIN_SECONDS:-300}

dir=$(mktemp -d)
intake_pid="" stockd_pid=""
cleanup() {
    stop_pids "$intake_pid" "$stockd_pid"
    nats_stop
    [ -z "${KEEP:-}" ] || cp -r "$dir" "$KEEP"
    rm -rf "$dir"
}
trap cleanup EXIT
BIN="$dir/bin"
use_binaries "$BIN" stockd stockctl stockintake tests/intake_client tests/server_crash_check
client="$BIN/intake_client"

# start_intake STORE [FLAGS...]: starts stockintake and waits until its
# streams exist.
start_intake() {
    local store=$1
    shift
    "$BIN/stockintake" --store "$store" --broker "$NATS_URL" "$@" >>"$dir/intake.log" 2>&1 &
    intake_pid=$!
    for _ in $(seq 100); do
        "$client" count "$NATS_URL" STOCK_DEAD >/dev/null 2>&1 && return 0
        kill -0 "$intake_pid" 2>/dev/null || fail "stockintake exited at start-up"
        sleep 0.1
    done
    fail "stockintake made no streams within 10 s"
}

stop_intake() {
    kill -TERM "$intake_pid"
    wait "$intake_pid" || fail "stockintake exited with status $? after SIGTERM"
    intake_pid=""
}

# expect_line FILE LINE: FILE has exactly the line LINE.
expect_line() {
    grep -qx "$2" "$1" || { cat "$1"; fail "no line '$2'"; }
}

nats_start || fail "nats-server did not start"

echo "== burst: $orders orders for one SKU of $units units"
store="$dir/burst"
"$BIN/stockctl" --store "$store" set S0 "$units" >/dev/null
start_intake "$store"
start=$(date +%s.%N)
"$client" publish "$NATS_URL" "$orders" 1 burst "$dir/burst-try.log" || fail "publishing failed"
intake_wait_results "$orders" "$drain_seconds"
drained=$(date +%s.%N)
awk -v a="$start" -v b="$drained" -v n="$orders" \
    'BEGIN { printf "drained in %.1f s from the first publish (%.0f orders/s)\n", b - a, n / (b - a) }'
intake_check_once "$orders" "$dir/burst-ack.log"
expect_line "$dir/results.txt" "OK $units"
expect_line "$dir/results.txt" "INSUFFICIENT $((orders - units))"

echo "== dead letters"
bad=$("$client" bad "$NATS_URL") || fail "publishing the bad messages failed"
"$client" publish "$NATS_URL" 10 1 after "$dir/after-try.log" || fail "publishing failed"
intake_wait_results $((orders + 10)) "$drain_seconds"
for _ in $(seq 100); do
    [ "$("$client" count "$NATS_URL" STOCK_DEAD)" -ge "$bad" ] && break
    sleep 0.1
done
"$client" dead "$NATS_URL" >"$dir/dead.txt"
cat "$dir/dead.txt"
[ "$(wc -l <"$dir/dead.txt")" -eq "$bad" ] || fail "$bad bad messages, $(wc -l <"$dir/dead.txt") dead letters"
for reason in \
    "stock.dead.orders	the body is not valid JSON: .*" \
    "stock.dead.orders	the body must be a JSON object" \
    "stock.dead.orders	the body is empty: send a JSON object" \
    "stock.dead.orders	INVALID an order must have 1..100 lines" \
    "stock.dead.orders	INVALID order id must be .*" \
    "stock.dead.orders	INVALID line 1: qty must be .*" \
    "stock.dead.orders	unknown field 'colour'" \
    "stock.dead.refunds	INVALID line id must be .*" \
    "stock.dead.teleport	no request kind 'teleport': .*" \
    "stock.dead.orders	the message has 102400 bytes, over --max-message-bytes 65536"; do
    grep -qx "$reason" "$dir/dead.txt" || fail "no dead letter matching '$reason'"
done
stop_intake
"$BIN/server_crash_check" "$store" 1 "$units" "$dir/burst-try.log" "$dir/burst-ack.log" ||
    fail "the store does not match the results"

echo "== crash: $crash_orders orders, stockintake killed $rounds times, stockd every other time"
nats_stop
nats_start || fail "nats-server did not restart"
port=$(pick_port 17500 17509)
uri="stockd://127.0.0.1:$port"
level=$((crash_orders / 8))   # half the orders sell out
start_stockd "$port" "$dir/crash" "$dir/stockd.log" || fail "stockd did not start"
stockd_pid=$STOCKD_PID
for s in 0 1 2 3; do
    "$BIN/stockctl" --store "$uri" set "S$s" "$level" >/dev/null
done
start_intake "$uri" --ack-wait 2 --batch 32 --max-pending 64
"$client" pending "$NATS_URL" | grep -q " max_ack_pending 64 ack_wait_s 2$" ||
    fail "the consumer does not have --max-pending 64 --ack-wait 2"
status=0
timeout 30 "$BIN/stockintake" --store "$uri" --broker "$NATS_URL" --ack-wait 2 --max-pending 65 \
    2>"$dir/mismatch.err" || status=$?
[ "$status" -eq 1 ] && grep -q "consumer's value is 64" "$dir/mismatch.err" ||
    fail "a stockintake with another --max-pending than the consumer's was not refused ($status)"
chunk=$((crash_orders / rounds))
published=0 mid_drain=0
for round in $(seq "$rounds"); do
    count=$chunk
    [ "$round" -lt "$rounds" ] || count=$((crash_orders - chunk * (rounds - 1)))
    before=$("$client" count "$NATS_URL" STOCK_RESULTS)
    "$client" publish "$NATS_URL" "$count" 4 "crash$round" "$dir/crash-try-$round.log" &
    publisher=$!
    published=$((published + count))
    # The kill lands while the orders drain: 0-49 ms after this round's
    # first result (the new consumer first waits out the --ack-wait of what
    # the last kill left unacknowledged, which a fixed delay would hit).
    "$client" await "$NATS_URL" STOCK_RESULTS "$before" || fail "no result within 10 s"
    sleep "$(printf '0.0%02d' $((RANDOM % 50)))"
    kill -9 "$intake_pid"
    wait "$intake_pid" 2>/dev/null || true
    at_kill=$("$client" count "$NATS_URL" STOCK_RESULTS)
    [ "$at_kill" -lt "$published" ] && mid_drain=$((mid_drain + 1))
    wait "$publisher" || fail "publishing failed"
    if [ $((round % 2)) -eq 0 ]; then
        kill -9 "$stockd_pid"
        wait "$stockd_pid" 2>/dev/null || true
        start_stockd "$port" "$dir/crash" "$dir/stockd.log" || fail "stockd did not restart"
        stockd_pid=$STOCKD_PID
    fi
    echo "round $round: killed with $at_kill of $published results published"
    start_intake "$uri" --ack-wait 2 --batch 32 --max-pending 64
done
[ "$mid_drain" -gt 0 ] || fail "every kill came after its round had drained: the test proved nothing"
intake_wait_results "$crash_orders" "$drain_seconds"
intake_check_once "$crash_orders" "$dir/crash-ack.log"
"$BIN/server_crash_check" "$uri" 4 "$level" "$dir"/crash-try-*.log "$dir/crash-ack.log" ||
    fail "the store does not match the results"
sold=$(awk '$1 == "ack"' "$dir/crash-ack.log" | wc -l)
[ "$sold" -eq $((4 * level)) ] || fail "$sold orders succeeded, $((4 * level)) units were there"

echo "== broker restart: nats-server killed with SIGKILL while orders drain"
"$BIN/stockctl" --store "$uri" add S0 "$restart_orders" >/dev/null   # S0 sold out: restock it
"$client" publish "$NATS_URL" "$restart_orders" 1 restart "$dir/restart-try.log" ||
    fail "publishing failed"
at_kill=$("$client" count "$NATS_URL" STOCK_RESULTS)
nats_kill
sleep 1
nats_launch || fail "nats-server did not restart on its store"
echo "killed with $((at_kill - crash_orders)) of $restart_orders results published"
[ "$at_kill" -lt $((crash_orders + restart_orders)) ] || fail "drained before the kill: the test proved nothing"
intake_wait_results $((crash_orders + restart_orders)) "$drain_seconds"
intake_check_once $((crash_orders + restart_orders)) "$dir/restart-ack.log" consumer
echo "the intake stream keeps $("$client" count "$NATS_URL" STOCK_INTAKE) messages the consumer saw acknowledged"
deducted=$("$BIN/stockctl" --store "$uri" --json get S0 | jq .deducted)
[ "$deducted" -eq $((level + restart_orders)) ] ||
    fail "S0 deducted $deducted, not $level before and $restart_orders after the restock"

echo "== stockctl publish"
"$BIN/stockctl" --store "$uri" set P0 1 >/dev/null
order() { echo "{\"order_id\":\"$1\",\"lines\":[{\"line_id\":\"$1-1\",\"sku\":\"P0\",\"qty\":1}]}"; }
{ order pub-1; order pub-2; echo "not json"; } >"$dir/publish.in"
"$BIN/stockctl" publish orders "$dir/publish.in" --broker "$NATS_URL" --wait 20 >"$dir/publish.out" ||
    fail "stockctl publish exited with $?"
cat "$dir/publish.out"
[ "$(wc -l <"$dir/publish.out")" -eq 3 ] || fail "3 requests, $(wc -l <"$dir/publish.out") results"
for expected in '"order_id":"pub-1".*"available":0' '"code":"INSUFFICIENT".*"message":"sku=P0 available=0"' \
    '"code":"INVALID".*"message":"the body is not valid JSON'; do
    grep -q "$expected" "$dir/publish.out" || fail "no result matching '$expected'"
done
order pub-1 | "$BIN/stockctl" publish orders --broker "$NATS_URL" >"$dir/publish.out" ||
    fail "stockctl publish of a repeat exited with $?"
grep -q '"code":"REPLAY".*"available":0' "$dir/publish.out" || fail "a repeat is not answered REPLAY"
stop_intake
status=0
order pub-3 | "$BIN/stockctl" publish orders --broker "$NATS_URL" --wait 1 2>"$dir/publish.err" || status=$?
[ "$status" -eq 11 ] || fail "stockctl publish without a consumer exited with $status, not 11"
grep -q "1 of 1 requests have no result after 1 s" "$dir/publish.err" || fail "no word of the missing result"
echo "PASS"
