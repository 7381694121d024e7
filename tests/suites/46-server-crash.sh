#!/usr/bin/env bash
# 46-server-crash.sh -- kill -9 stockd under load, restart it, and check that
# every acknowledged operation survived and I1-I5 hold.
#
# Two server_crash_client processes deduct and refund through the remote
# backend, logging every acknowledged reply. Each round kills stockd with
# SIGKILL mid-load and restarts it on the same data directory; the clients
# reconnect and retry the ops whose outcome the crash left unknown. Then
# server_crash_check verifies the acknowledged ops against the server, and
# once more after a final kill -9 of the idle server. Every start must log
# what its recovery did, and each restart after a kill must have replayed
# records. SERVER_CRASH_ROUNDS=N for more than the default 4 kills;
# SERVER_CRASH_SNAPSHOT_BYTES (below) and the clients' CRASH_CLIENT_PACE_US
# are for the soak (tests/soak).
set -eu
BUILD=${BUILD:-build}
. "$(dirname "$0")/../system/server_helpers.sh"
port=$(pick_port 17365 17379)
uri="stockd://127.0.0.1:$port"
rounds=4
case "$BUILD" in
*san*) rounds=3 ;;   # keeps the sanitizer run near a minute
esac
rounds=${SERVER_CRASH_ROUNDS:-$rounds}   # make soak asks for many more
skus=4
level=1000000000
dir=$(mktemp -d)
# SERVER_CRASH_SNAPSHOT_BYTES=N snapshots every N bytes of log instead of
# every 256 MiB: a long soak then stays quick to recover, and kills land
# during snapshots too.
store=$dir/data
[ -z "${SERVER_CRASH_SNAPSHOT_BYTES:-}" ] ||
    store="file:$dir/data?snapshot_log_bytes=$SERVER_CRASH_SNAPSHOT_BYTES"
stockd_pid=""
recovery=""   # the recovery line of the last start
client_pids=()
cleanup() {
    stop_pids "${client_pids[@]}" "$stockd_pid"
    rm -rf "$dir"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    echo "--- stockd log (tail)"
    tail -n 20 "$dir/stockd.log" || true
    exit 1
}

recovery_lines() { grep -c ' INFO recovery: ' "$dir/stockd.log" || true; }

# Restarts reuse the port, so the clients' URI stays valid. Each start must
# log exactly one recovery line in the documented format (docs/operations.md,
# "Logs"); check_recovery then looks at what it says.
restart_stockd() {
    touch "$dir/stockd.log"
    local before
    before=$(recovery_lines)
    start_stockd "$port" "$store" "$dir/stockd.log" ||
        fail "stockd did not start on port $port"
    stockd_pid=$STOCKD_PID
    [ "$(recovery_lines)" -eq $((before + 1)) ] || fail "this start logged no recovery line"
    recovery=$(grep ' INFO recovery: ' "$dir/stockd.log" | tail -n 1)
    echo "$recovery" | grep -Eq ' INFO recovery: (no snapshot|snapshot at lsn [0-9]+ loaded), [0-9]+ records replayed, [0-9]+ bytes of torn tail cut, [0-9]+ ms$' ||
        fail "the recovery line is not in the documented format: $recovery"
}

# check_recovery fresh|replayed: the last start found an empty folder, or
# replayed records after a kill -9 (snapshots come only every 256 MiB of
# log by default, far more than these rounds write, so the log since the
# last one is never empty here; with SERVER_CRASH_SNAPSHOT_BYTES a loaded
# snapshot counts too).
check_recovery() {
    case $1 in
    fresh)
        echo "$recovery" | grep -q ' INFO recovery: no snapshot, 0 records replayed, 0 bytes of torn tail cut, ' ||
            fail "a fresh folder's recovery: $recovery" ;;
    replayed)
        local records
        records=$(echo "$recovery" | sed -n 's/.*, \([0-9][0-9]*\) records replayed,.*/\1/p')
        [ "${records:-0}" -gt 0 ] || { [ -n "${SERVER_CRASH_SNAPSHOT_BYTES:-}" ] &&
            echo "$recovery" | grep -q 'snapshot at lsn [0-9]* loaded'; } ||
            fail "a restart after kill -9 replayed nothing: $recovery"
        echo "  $recovery" ;;
    esac
}

kill_stockd() {
    kill -9 "$stockd_pid"
    wait "$stockd_pid" 2>/dev/null || true
    stockd_pid=""
}

use_binaries "$dir/bin" stockd stockctl tests/server_crash_client tests/server_crash_check
BIN=$dir/bin
restart_stockd
check_recovery fresh
start_crash_clients "$uri" "$skus" "$level" "$dir"

before=0
for round in $(seq "$rounds"); do
    wait_for_crash_client_acks "$dir" "$before" || fail "round $round: no acknowledged ops since the last restart"
    sleep "1.$((RANDOM % 10))"
    now=$(crash_client_acks "$dir")
    echo "round $round: $now acknowledged so far; kill -9 stockd"
    kill_stockd
    sleep 0.$((RANDOM % 5))
    restart_stockd
    check_recovery replayed
    before=$now
done
wait_for_crash_client_acks "$dir" "$before" || fail "no acknowledged ops after the last restart"
sleep 1

stop_crash_clients "${client_pids[@]}" ||
    fail "a client reported a broken rule or could not settle its ops"
client_pids=()

echo "== check after $rounds crashes"
"$BIN/server_crash_check" "$uri" "$skus" "$level" "$dir"/client-*.log ||
    fail "the check found violations"
echo "== check after one more kill -9 of the idle server"
kill_stockd
restart_stockd
check_recovery replayed
"$BIN/server_crash_check" "$uri" "$skus" "$level" "$dir"/client-*.log ||
    fail "the check found violations after an idle restart"
echo "== the check itself catches a lost acknowledgement and a wrong reply"
# A slice of a log keeps this quick; the other lines of the server then
# count as unknown to the check, so only the named violations are looked for.
head -n 2000 "$dir/client-1.log" >"$dir/slice.log"
{ cat "$dir/slice.log"; echo "ack D never-applied S0 1 5 OK"; } >"$dir/forged.log"
! "$BIN/server_crash_check" "$uri" "$skus" "$level" "$dir/forged.log" \
    >"$dir/forged.out" || fail "the check missed a forged acknowledgement"
grep -q "acknowledged deduction never-applied is lost" "$dir/forged.out" ||
    fail "the check did not name the lost line"
sed '0,/^ack D \([^ ]*\) \([^ ]*\) \([^ ]*\) \([0-9]*\)/s//ack D \1 \2 \3 1\4/' \
    "$dir/slice.log" >"$dir/forged.log"
! "$BIN/server_crash_check" "$uri" "$skus" "$level" "$dir/forged.log" \
    >"$dir/forged.out" || fail "the check missed a wrong acknowledged available"
grep -q "available_after .*, acknowledged 1" "$dir/forged.out" ||
    fail "the check did not name the wrong available: $(head -3 "$dir/forged.out")"
echo "crash test passed"
