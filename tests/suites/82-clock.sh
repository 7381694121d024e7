#!/usr/bin/env bash
# 82-clock.sh -- the wall clock jumping while stockd runs, with libfaketime
# (preloaded; the fake time is read from a file at every call, so the test
# moves it while stockd runs; CLOCK_MONOTONIC is left real, as an NTP step
# or a `date -s` leaves it). The clock jumps back 2 hours, then forward 3
# hours, and after each jump:
#   - the relaxed sync timer still syncs a write within a second
#     (INFO syncs), and a sync's measured latency stays small;
#   - the idle timeout (--idle-timeout 3) closes an idle client after
#     about 3 s: not at once after a jump forward, not hours late after a
#     jump back; INFO uptime_in_seconds does not jump;
#   - a deduction's time_us is the (fake) wall clock: line times follow
#     the wall clock, back or forth (docs/faults.md);
#   - the remote backend's reply timeout (stockctl against a stopped
#     stockd, timeout_ms=1000) still returns UNAVAILABLE after about 1 s.
# Then retention's moves, which run every quarter window on
# CLOCK_MONOTONIC, go on after the clock is set back an hour: a second
# stockd with a 2 s window brings a cold line back into memory by reading
# it (LINEINFO), and the next move takes it out again (docs/engine.md,
# "What moves, and when"), where moves used to wait an hour.
set -eu
BUILD=${BUILD:-build}
. "$(dirname "$0")/../system/server_helpers.sh"
faketime_lib=/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1
[ -e "$faketime_lib" ] || { echo "FAIL: $faketime_lib missing (scripts/install-deps.sh)"; exit 1; }
dir=$(mktemp -d)
stockd_pid="" ret_pid=""
cleanup() {
    stop_pids "$stockd_pid" "$ret_pid"
    rm -rf "$dir"
}
trap cleanup EXIT
fail() { fail_with_log "$dir/stockd.log" "$@"; }
use_binaries "$dir/bin" stockd stockctl
BIN=$dir/bin
port=$(pick_port 17610 17619)
echo "+0" >"$dir/faketime"
# Only stockd runs under libfaketime (redis-cli hangs under it): start_stockd
# runs $BIN/stockd, a wrapper that execs the real one with the preload.
fake_preload=$faketime_lib
sanitizer_env=""
case "$BUILD" in
*san*) fake_preload="$(gcc -print-file-name=libasan.so) $faketime_lib"
       sanitizer_env="ASAN_OPTIONS=verify_asan_link_order=0" ;;
esac
mv "$BIN/stockd" "$BIN/stockd.real"
cat >"$BIN/stockd" <<WRAPPER
#!/bin/sh
exec env $sanitizer_env LD_PRELOAD="$fake_preload" FAKETIME_TIMESTAMP_FILE="$dir/faketime" \\
    FAKETIME_NO_CACHE=1 FAKETIME_DONT_FAKE_MONOTONIC=1 "$BIN/stockd.real" "\$@"
WRAPPER
chmod +x "$BIN/stockd"
start_stockd "$port" "$dir/data?durability=relaxed" "$dir/stockd.log" --idle-timeout 3 ||
    fail "stockd did not start under libfaketime"
stockd_pid=$STOCKD_PID
info() { redis-cli -p "$port" INFO | tr -d '\r' | sed -n "s/^$1://p"; }
now_s() { date +%s; }
redis-cli -p "$port" SETSTOCK A 1000000 >/dev/null

n=0
after_jump() {
    local jump=$1 offset_s=$2
    echo "== wall clock $jump"
    echo "$jump" >"$dir/faketime"
    sleep 0.3
    n=$((n + 1))
    # The relaxed timer syncs the write within STOCK_RELAXED_SYNC_MS.
    local syncs
    syncs=$(info syncs)
    [ "$(redis-cli -p "$port" DEDUCT "L$n" A 1)" -ge 0 ] || fail "DEDUCT failed"
    sleep 1.2
    [ "$(info syncs)" -gt "$syncs" ] || fail "no relaxed sync within 1.2 s after the clock went $jump"
    local sum count
    sum=$(info sync_latency_us_sum) count=$(info syncs)
    [ $((sum / count)) -lt 1000000 ] || fail "mean sync latency $((sum / count)) us after the clock went $jump"
    # Line times follow the wall clock.
    local time_us expected
    time_us=$(redis-cli -p "$port" LINEINFO "L$n" | sed -n '/^time_us$/{n;p}')
    expected=$(( $(now_s) + offset_s ))
    [ $(( time_us / 1000000 - expected )) -le 5 ] && [ $(( expected - time_us / 1000000 )) -le 5 ] ||
        fail "line L$n has time_us $time_us, the fake wall clock is $expected s"
    echo "  a relaxed sync came, line time_us $time_us follows the wall clock"
    # The idle timeout measures real elapsed time.
    local uptime started closed
    uptime=$(info uptime_in_seconds)
    started=$(date +%s%N)
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    sleep 1
    redis-cli -p "$port" CLIENT LIST >/dev/null 2>&1 || true
    # Still open after 1 s: a read with a short timeout sees nothing yet.
    if read -r -t 0.2 -u 3 line; then fail "the idle client was answered after 1 s: $line"; fi
    read -r -t 10 -u 3 line || fail "the idle client was not closed within 11 s after the clock went $jump"
    closed=$(( ($(date +%s%N) - started) / 1000000 ))
    exec 3<&-
    echo "$line" | grep -q "idle for more than 3 s" || fail "the idle client got: $line"
    [ "$closed" -ge 2500 ] && [ "$closed" -le 8000 ] ||
        fail "an idle client was closed after $closed ms (idle timeout 3 s) after the clock went $jump"
    [ $(( $(info uptime_in_seconds) - uptime )) -le 15 ] || fail "uptime jumped with the clock"
    echo "  an idle client was closed after $closed ms; uptime did not jump"
}
after_jump "-2h" -7200
after_jump "+3h" 10800

echo "== the remote backend's reply timeout under a jumping clock"
kill -STOP "$stockd_pid"
started=$(date +%s%N)
set +e
env $sanitizer_env LD_PRELOAD="$fake_preload" FAKETIME_TIMESTAMP_FILE="$dir/faketime" \
    FAKETIME_NO_CACHE=1 FAKETIME_DONT_FAKE_MONOTONIC=1 "$BIN/stockctl" --store "stockd://127.0.0.1:$port?timeout_ms=1000" \
    deduct Lx A 1 >"$dir/stockctl.out" 2>&1 &
client=$!
sleep 0.3
echo "-5h" >"$dir/faketime"
wait "$client"
code=$?
set -e
elapsed=$(( ($(date +%s%N) - started) / 1000000 ))
kill -CONT "$stockd_pid"
cat "$dir/stockctl.out"
[ "$code" -eq 11 ] || fail "stockctl exited $code, expected 11 (UNAVAILABLE)"
[ "$elapsed" -ge 900 ] && [ "$elapsed" -le 5000 ] ||
    fail "the 1 s reply timeout took $elapsed ms with the clock set back meanwhile"
echo "  UNAVAILABLE after $elapsed ms"

echo "== retention: moves after the clock is set back an hour"
echo "+0" >"$dir/faketime"
ret_port=$(pick_port 17700 17709)
start_stockd "$ret_port" "$dir/ret?durability=relaxed&retention=2s" "$dir/stockd-ret.log" ||
    fail_with_log "$dir/stockd-ret.log" "the stockd with retention did not start"
ret_pid=$STOCKD_PID
ret_fail() { fail_with_log "$dir/stockd-ret.log" "$@"; }
ret() { redis-cli -p "$ret_port" "$@"; }
ret_lines() { ret INFO | tr -d '\r' | sed -n 's/^lines://p'; }
# Waits up to $1 tenths of a second, reading (reads wake the writer for
# the moves due), for at most $2 lines in memory.
wait_lines() {
    local tenths=$1 most=$2
    for _ in $(seq "$tenths"); do
        [ "$(ret_lines)" -le "$most" ] && return 0
        ret STOCK R >/dev/null
        sleep 0.1
    done
    return 1
}
ret SETSTOCK R 1000 >/dev/null
ret DEDUCT cold R 1 >/dev/null
wait_lines 200 0 || ret_fail "line cold still in memory 20 s after it was made (2 s window)"
# A younger line moves the store's clock on: after the jump, the store's
# time stays at that line's (it never goes back), 2 s past line cold.
sleep 2.2
ret DEDUCT young R 1 >/dev/null
echo "-1h" >"$dir/faketime"
sleep 0.3
[ "$(ret LINEINFO cold | sed -n '/^qty$/{n;p}')" = 1 ] || ret_fail "LINEINFO cold after the jump"
[ "$(ret_lines)" -eq 2 ] || ret_fail "line cold was not thawed by its read: $(ret_lines) lines in memory"
wait_lines 100 1 ||
    ret_fail "no move in 10 s after the clock went back an hour: $(ret_lines) lines in memory"
echo "  the thawed line left memory again after the clock went back an hour"
