# tests/harness/intake.sh -- what the stockintake suites (70-nats,
# 71-nats-cluster) share: it sources nats.sh (and so server_helpers.sh and
# the LeakSanitizer suppressions for libnats), and defines the functions
# below, which expect
#   dir      the suite's temporary folder (stockintake's log: $dir/intake.log)
#   client   the intake_client helper binary
# and NATS_URL from nats_start or nats_start_cluster.

. "$(dirname "${BASH_SOURCE[0]}")/nats.sh"

INTAKE_DUPLICATE_WAIT_S=3   # past any --ack-wait a suite gives stockintake

# fail MESSAGE: says why, shows the end of stockintake's log, exits 1.
fail() {
    echo "FAIL: $*"
    echo "--- stockintake log (tail)"
    tail -n 20 "$dir/intake.log" 2>/dev/null || true
    exit 1
}

# intake_wait_results N SECONDS: waits until the results stream holds N
# results, while stockintake ($intake_pid) lives.
intake_wait_results() {
    local want=$1 seconds=$2 count=0
    for _ in $(seq $((seconds * 10))); do
        count=$("$client" count "$NATS_URL" STOCK_RESULTS) || count=0
        [ "$count" -ge "$want" ] && return 0
        kill -0 "$intake_pid" 2>/dev/null || fail "stockintake exited"
        sleep 0.1
    done
    fail "only $count of $want results after $seconds s"
}

# intake_check_once N ACK_LOG [consumer]: once N results are in and a
# redelivery would have come: exactly one result per request, and nothing
# left to deliver or to acknowledge. The results' acknowledged lines go to
# ACK_LOG, the summary to $dir/results.txt. The intake stream must be empty
# too, except with "consumer" (after nats-server was killed: it may keep
# messages whose acknowledgement it recorded in the consumer but whose
# removal it had not yet written; they are answered, and never delivered
# again).
intake_check_once() {
    local want=$1 ack_log=$2 view=${3:-stream}
    sleep "$INTAKE_DUPLICATE_WAIT_S"
    "$client" results "$NATS_URL" "$ack_log" >"$dir/results.txt"
    cat "$dir/results.txt"
    grep -qx "results $want" "$dir/results.txt" || fail "not one result for each of $want requests"
    grep -qx "duplicates 0" "$dir/results.txt" || fail "a request was answered twice"
    "$client" pending "$NATS_URL" | grep -q "^pending 0 unacknowledged 0 " ||
        fail "the consumer has messages to deliver or to see acknowledged"
    [ "$view" = consumer ] || [ "$("$client" count "$NATS_URL" STOCK_INTAKE)" -eq 0 ] ||
        fail "the intake stream did not drain"
}
