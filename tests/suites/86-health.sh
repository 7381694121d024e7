#!/usr/bin/env bash
# 86-health.sh -- stockd's health checks (docs/operations.md, "Health"):
# /healthz (liveness), /readyz (readiness), PING, INFO's Health section and
# the /metrics gauges, each in four states:
#   - healthy: 200, 200, PONG, every flag 0;
#   - the disk below --disk-min-free (a threshold above any disk): alive
#     (200, PONG) but not ready (503, disk_low), and one WARN line that
#     says what to do;
#   - a snapshot that failed (fork failed by libfiu under a 4 KiB snapshot
#     threshold): still alive and ready, snapshot_failed and the failures
#     counted, a WARN line; once fork works again the next snapshot clears
#     the flag;
#   - failed closed (fdatasync failed with EIO by libfiu; the write
#     answers IOERR): 503, 503, -IOERR naming the failed call, store_failed
#     1, the ERROR line saying to restart; and a restart mends it.
set -eu
BUILD=${BUILD:-build}
. "$(dirname "$0")/../system/server_helpers.sh"
. "$(dirname "$0")/../harness/fiu.sh"
dir=$(mktemp -d "${TMPDIR:-/tmp}/stockd-health.XXXXXX")
stockd_pid=""
cleanup() {
    stop_pids "$stockd_pid"
    rm -rf "$dir"
}
trap cleanup EXIT
log=$dir/stockd.log
fail() { fail_with_log "$log" "$@"; }
use_binaries "$dir/bin" stockd
BIN=$dir/bin
EIO=5
EAGAIN=11

# start DATA [FLAGS...]: a stockd with RESP on $port and HTTP on $http.
start() {
    port=$(pick_port 17670 17674)
    http=$(pick_port 17675 17679)
    start_stockd "$port" "$1" "$log" --http-port "$http" "${@:2}" || fail "stockd did not start"
    stockd_pid=$STOCKD_PID
}
stop() {
    kill -TERM "$stockd_pid"
    wait "$stockd_pid" || true
    stockd_pid=""
}
code() { curl -s -o "$dir/body" -w '%{http_code}' "http://127.0.0.1:$http/$1"; }
info() { redis-cli -p "$port" INFO | tr -d '\r' | sed -n "s/^$1://p"; }
metric() { curl -s "http://127.0.0.1:$http/metrics" | sed -n "s/^$1 //p"; }

# expect LIVE READY PING_PATTERN FAILED READY_FLAG SNAPSHOT_FAILED DISK_LOW
expect() {
    [ "$(code healthz)" = "$1" ] || fail "/healthz: $(cat "$dir/body"), wanted $1"
    [ "$(code readyz)" = "$2" ] || fail "/readyz: $(cat "$dir/body"), wanted $2"
    jq -e --argjson failed "$4" --argjson snap "$6" --argjson low "$7" \
        '(.failure != "") == ($failed == 1) and .snapshot_failed == ($snap == 1) and .disk_low == ($low == 1)' \
        "$dir/body" >/dev/null || fail "/readyz body: $(cat "$dir/body")"
    redis-cli -p "$port" PING | grep -Eq "$3" || fail "PING: $(redis-cli -p "$port" PING)"
    [ "$(info store_failed)$(info ready)$(info snapshot_failed)$(info disk_low)" = "$4$5$6$7" ] ||
        fail "INFO's Health: $(redis-cli -p "$port" INFO | tr -d '\r' | sed -n '/# Health/,$p' | tr '\n' ' ')"
    [ "$(metric stockd_store_failed)$(metric stockd_ready)$(metric stockd_snapshot_failed)$(metric stockd_disk_low)" = "$4$5$6$7" ] ||
        fail "the health gauges of /metrics: $(curl -s "http://127.0.0.1:$http/metrics" | grep -E '^stockd_(store_failed|ready|snapshot_failed|disk_low) ' | tr '\n' ' ')"
}

# deduct_until PREFIX FLAG: 400 deductions (over 4 KiB of log: a snapshot
# is due), then waits up to 20 s for INFO's snapshot_failed to be FLAG.
deduct_until() {
    for i in $(seq 400); do echo "DEDUCT $1$i A 1"; done | redis-cli -p "$port" >/dev/null
    for _ in $(seq 200); do
        [ "$(info snapshot_failed)" = "$2" ] && return 0
        sleep 0.1
    done
}

echo "== healthy"
start "$dir/data"
expect 200 200 '^PONG$' 0 1 0 0
[ "$(metric stockd_disk_free_bytes)" -gt 0 ] || fail "stockd_disk_free_bytes is 0"
stop

echo "== the disk below --disk-min-free"
start "$dir/data" --disk-min-free 4611686018427387904
expect 200 503 '^PONG$' 0 0 0 1
jq -e '.status == "not ready" and .disk_min_free_bytes == 4611686018427387904' "$dir/body" >/dev/null ||
    fail "/readyz: $(cat "$dir/body")"
grep -q "WARN the store's disk has [0-9]* bytes free, below --disk-min-free 4611686018427387904: /readyz answers 503; free space or grow the disk now" "$log" ||
    fail "no WARN line for the low disk"
stop

echo "== a snapshot that failed"
# fdatasync fails below: the preload sees it only off io_uring.
fiu_wrap_stockd "$BIN" "$dir/fiu" --io-uring no
start "file:$dir/snap?snapshot_log_bytes=4096"
redis-cli -p "$port" SETSTOCK A 1000000 >/dev/null
fiu-ctrl -f "$dir/fiu" -c "enable name=posix/proc/fork,failinfo=$EAGAIN" "$stockd_pid" ||
    fail "fiu-ctrl could not reach stockd"
deduct_until s 1
expect 200 200 '^PONG$' 0 1 1 0
[ "$(metric stockd_snapshot_failures_total)" -ge 1 ] || fail "no snapshot failure counted"
grep -q "WARN libstock: starting a snapshot failed: cannot fork the snapshot writer: .*check free memory and disk" "$log" ||
    fail "no WARN line for the failed snapshot"
fiu-ctrl -f "$dir/fiu" -c "disable name=posix/proc/fork" "$stockd_pid"
deduct_until t 0
expect 200 200 '^PONG$' 0 1 0 0
echo "  failed, then cleared by the next snapshot ($(metric stockd_snapshot_failures_total) failed tries)"

echo "== failed closed: fdatasync fails"
fiu-ctrl -f "$dir/fiu" -c "enable name=posix/io/sync/fdatasync,failinfo=$EIO" "$stockd_pid" ||
    fail "fiu-ctrl could not reach stockd"
redis-cli -p "$port" DEDUCT f1 A 1 | grep -q '^IOERR' || fail "the write after the fault was not IOERR"
expect 503 503 '^IOERR .*fdatasync.*Input/output error' 1 0 0 0
jq -e '.status == "failed" and (.failure | test("fdatasync"))' "$dir/body" >/dev/null ||
    fail "/readyz of a failed store: $(cat "$dir/body")"
grep -q "ERROR libstock: the store broke: .*fix the disk .* and restart, recovery keeps every acknowledged operation" "$log" ||
    fail "the ERROR line does not say what to do"
stop
fiu_unwrap_stockd "$BIN"
start "file:$dir/snap?snapshot_log_bytes=4096"
expect 200 200 '^PONG$' 0 1 0 0
echo "  restarted: healthy again"
stop
echo "health test passed"
