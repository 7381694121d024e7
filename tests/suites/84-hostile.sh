#!/usr/bin/env bash
# 84-hostile.sh -- hostile clients against stockd (tests/harness/
# hostile_clients.py, which documents each check): 10,000 idle connections
# (memory per connection measured, all closed at the idle timeout),
# slowloris on the RESP and HTTP ports, one request sent byte by byte for
# longer than the idle timeout, clients that flood ECHOs and never read their
# replies (closed, with a WARN line naming the unread bytes), a pipeline of
# 100,000 DEDUCTs, a half-closed socket, an oversize bulk string and 100,000
# nested arrays; then a well-behaved client's p99 alone and under all of it.
# stockd runs with --idle-timeout 2 so that the timeouts come within seconds.
set -eu
BUILD=${BUILD:-build}
. "$(dirname "$0")/../system/server_helpers.sh"
dir=$(mktemp -d)
stockd_pid=""
cleanup() {
    stop_pids "$stockd_pid"
    rm -rf "$dir"
}
trap cleanup EXIT
fail() { fail_with_log "$dir/stockd.log" "$@"; }
idle=10000
case "$BUILD" in
*san*) idle=2000 ;;   # ASan's shadow memory makes each connection dearer
esac
# Per process: stockd and the clients each hold one end of every connection.
ulimit -n "$((idle + 1500))" 2>/dev/null || fail "cannot raise the open-file limit to $((idle + 1500))"
use_binaries "$dir/bin" stockd
BIN=$dir/bin
port=$(pick_port 17640 17649)
http_port=$(pick_port 17650 17659)
start_stockd "$port" "$dir/data" "$dir/stockd.log" --http-port "$http_port" \
    --idle-timeout 2 --maxclients $((idle + 1000)) || fail "stockd did not start"
stockd_pid=$STOCKD_PID
timeout 600 /usr/bin/python3 "$ROOT/tests/harness/hostile_clients.py" "$port" "$http_port" \
    "$stockd_pid" 2 "$idle" || fail "a hostile client got through"
grep -q "WARN client [0-9]*: its replies went unread for more than 2 s ([0-9]* bytes waiting), closing the connection" \
    "$dir/stockd.log" || fail "no log line for the clients that never read"
kill -0 "$stockd_pid" || fail "stockd died"
