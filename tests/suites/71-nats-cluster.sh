#!/usr/bin/env bash
# 71-nats-cluster.sh -- stockintake (docs/intake.md) on a three-node NATS
# JetStream cluster (tests/harness/nats.sh), its streams replicated three
# times: ORDERS one-line orders over four SKUs are queued, and while
# stockintake drains them into the embedded engine one node is killed with
# SIGKILL (the one serving the intake's stream is as likely as any). The
# intake must resume through the other two: every order answered exactly
# once, the queue drained, I1-I5 on the store (server_crash_check).
set -eu
BUILD=${BUILD:-build}
here=$(dirname "$0")
. "$here/../harness/intake.sh"

orders=20000
case "$BUILD" in
*san*) orders=4000 ;;
esac
level=$((orders / 8))   # half the orders sell out
drain_seconds=300

dir=$(mktemp -d)
intake_pid=""
cleanup() {
    if [ -n "$intake_pid" ]; then
        kill -9 "$intake_pid" 2>/dev/null || true
        wait "$intake_pid" 2>/dev/null || true
    fi
    nats_stop_cluster
    rm -rf "$dir"
}
trap cleanup EXIT
BIN="$dir/bin"
use_binaries "$BIN" stockctl stockintake tests/intake_client tests/server_crash_check
client="$BIN/intake_client"

nats_start_cluster || fail "the cluster did not start"
store="$dir/data"
for s in 0 1 2 3; do
    "$BIN/stockctl" --store "$store" set "S$s" "$level" >/dev/null
done

# The cluster elects its JetStream leader after the nodes meet; until then
# stockintake waits to make its streams. It says when it consumes.
"$BIN/stockintake" --store "$store" --broker "$NATS_URL" --replicas 3 --batch 32 \
    --ack-wait 2 >>"$dir/intake.log" 2>&1 &
intake_pid=$!
for _ in $(seq 600); do
    grep -q "^stockintake: consuming" "$dir/intake.log" && break
    kill -0 "$intake_pid" 2>/dev/null || fail "stockintake exited at start-up"
    sleep 0.1
done
grep -q "^stockintake: consuming" "$dir/intake.log" || fail "stockintake did not consume within 60 s"

echo "== $orders orders, one node of three killed while they drain"
# On an idle machine the intake drains 20,000 orders in well under a second,
# so a kill timed by a sleep can land after the queue is empty. Instead the
# intake is frozen (SIGSTOP) while the orders are queued, runs for a moment,
# and is frozen again: the node dies with the drain provably under way, and
# the intake meets the dead node in the middle of its work when it resumes.
kill -STOP "$intake_pid"
"$client" publish "$NATS_URL" "$orders" 4 cluster "$dir/try.log" || {
    kill -CONT "$intake_pid"
    fail "publishing failed"
}
kill -CONT "$intake_pid"
sleep 0.05
kill -STOP "$intake_pid"
at_kill=$("$client" count "$NATS_URL" STOCK_RESULTS)
victim=$((RANDOM % 3))
nats_kill_node "$victim"
kill -CONT "$intake_pid"
echo "node $victim killed with $at_kill of $orders results published"
[ "$at_kill" -lt "$orders" ] || fail "the queue had drained before the kill: the test proved nothing"
intake_wait_results "$orders" "$drain_seconds"
intake_check_once "$orders" "$dir/ack.log"
kill -TERM "$intake_pid"
wait "$intake_pid" || fail "stockintake exited with status $? after SIGTERM"
intake_pid=""
"$BIN/server_crash_check" "$store" 4 "$level" "$dir/try.log" "$dir/ack.log" ||
    fail "the store does not match the results"
echo "PASS"
