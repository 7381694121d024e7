# tests/harness/events.sh -- what the stock events suites (72-events,
# 73-events-stores, 74-outbox-trim) share: stockevents run in the background, the events
# stream read back through tests/events_client. Source it from bash after
# setting dir (the suite's temporary folder; stockevents logs to
# $dir/events.log) and BIN (where use_binaries copied events_client); the
# suite starts stockevents itself and keeps its PID in events_pid.
#
#   fail MESSAGE...   prints it and the tail of the stockevents log, exits 1
#   start_events_store URI [OPTIONS...]  stockevents --store URI in the
#                     background (events_pid), until it says where it
#                     publishes from (on postgres, its registration: moves
#                     are recorded from then on), 15 s at most
#   kill_events       SIGKILL the publisher, waiting for it to be gone
#   stop_stockd       SIGTERM the stockd of $stockd_pid, waiting for it
#   dump              the stream STOCK_EVENTS as "ID JSON" lines into
#                     $dir/dump.txt
#   wait_events N     until the stream holds N events (60 s), failing if
#                     the publisher exits meanwhile
#   events_cleanup [STOP...]  the suites' exit trap: SIGKILL stockevents and
#                     stockd ($stockd_pid), nats_stop, each STOP function
#                     given (pg_stop, redis_stop), $dir copied to $KEEP
#                     when set, then removed

fail() {
    echo "FAIL: $*"
    echo "--- stockevents log (tail)"
    tail -n 20 "$dir/events.log" 2>/dev/null || true
    exit 1
}

start_events_store() {
    local store=$1 before
    shift
    touch "$dir/events.log"
    before=$(grep -c "publishing to" "$dir/events.log" || true)
    "$BIN/stockevents" --store "$store" --broker "$NATS_URL" --poll-ms 5 "$@" >>"$dir/events.log" 2>&1 &
    events_pid=$!
    for _ in $(seq 300); do
        [ "$(grep -c "publishing to" "$dir/events.log")" -gt "$before" ] && return 0
        kill -0 "$events_pid" 2>/dev/null || fail "stockevents exited"
        sleep 0.05
    done
    fail "stockevents did not start publishing in 15 s"
}

stop_stockd() {
    kill "$stockd_pid" 2>/dev/null || true
    wait "$stockd_pid" 2>/dev/null || true
    stockd_pid=""
}

kill_events() {
    kill -9 "$events_pid" 2>/dev/null || true
    wait "$events_pid" 2>/dev/null || true
    events_pid=""
}

dump() {
    "$BIN/events_client" dump "$NATS_URL" STOCK_EVENTS >"$dir/dump.txt" || fail "reading the stream failed"
}

wait_events() {
    for _ in $(seq 600); do
        dump
        [ "$(wc -l <"$dir/dump.txt")" -ge "$1" ] && return 0
        kill -0 "$events_pid" 2>/dev/null || fail "stockevents exited"
        sleep 0.1
    done
    fail "the stream holds $(wc -l <"$dir/dump.txt") events, not $1, after 60 s"
}

events_cleanup() {
    local pid stop
    for pid in $events_pid $stockd_pid; do
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    nats_stop
    for stop in "$@"; do "$stop"; done
    [ -z "${KEEP:-}" ] || cp -r "$dir" "$KEEP"
    rm -rf "$dir"
}
