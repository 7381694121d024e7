#!/usr/bin/env bash
# 85-backup.sh -- online backups of a stockd under load (BACKUP over RESP,
# `stockctl backup` and `restore`), with segments rotating (a snapshot
# every MiB of log starts a new segment), and a kill -9 of stockd during a
# backup.
#
# Two server_crash_client processes deduct, order and refund through the
# remote backend and log every op before sending it ("try") and every reply
# ("ack"). Each backup is checked after its restore:
#   - stockctl restore opens it (every checksum, as any recovery);
#   - server_crash_check on the restored folder, with the client logs cut
#     at the backup's start (acks written later count as unknown): every
#     op acknowledged before the backup is there with its reply's result,
#     and I1-I5 hold (per SKU: deducted and refunded are the sums over the
#     lines, available = adjusted - deducted + refunded >= 0);
#   - ops first tried after the backup answered are not in it (a sample).
# The backup killed with stockd must not be restorable (no manifest);
# stockd restarts on its folder, and a backup after that is good again.
# The restarted stockd runs with tests/preload/slow_fsync.so, which makes
# each fsync of a backup named backup-slow* sleep 1 s: while such a backup
# copies, PING, GET /healthz and a DEDUCT on other connections answer
# before it does (INFO and /metrics say a backup runs), a second BACKUP
# answers BUSY, and a DEDUCT pipelined
# after BACKUP on its connection is answered after it; the slow backup
# is checked as the others; SIGTERM during a backup lets it finish and
# answer before stockd exits. A restore that fails part-way leaves no
# folder behind.
# Then a store with a 300 ms retention window under the same load: two
# backups, each taken after a retention move, name the cold store's copy
# (cold.mdb) in their manifest, and restore and check as above; in the
# restored store most lines are out of memory, and an old line answers and
# refunds up to its qty, then EXCEEDS.
set -eu
BUILD=${BUILD:-build}
. "$(dirname "$0")/../system/server_helpers.sh"
port=$(pick_port 17660 17669)
uri="stockd://127.0.0.1:$port"
skus=4
level=1000000000
backups=3
dir=$(mktemp -d "${TMPDIR:-/tmp}/stockd-backup.XXXXXX")
stockd_pid=""
client_pids=()
cleanup() {
    stop_pids "${client_pids[@]}" "$stockd_pid"
    rm -rf "$dir"
}
trap cleanup EXIT
fail() { fail_with_log "$dir/stockd.log" "$@"; }

use_binaries "$dir/bin" stockd stockctl tests/server_crash_client tests/server_crash_check \
    tests/slow_fsync.so
BIN=$dir/bin
slow_ms=1000
store="file:$dir/data?snapshot_log_bytes=1048576"
start() {
    start_stockd "$port" "$store" "$dir/stockd.log" || fail "stockd did not start"
    stockd_pid=$STOCKD_PID
}
# The folder of the client logs and their marks (a second run below
# keeps its own).
logs=$dir
# mark NAME: the number of whole lines of each client log now.
mark() {
    local c
    for c in 1 2; do
        tr -dc '\n' <"$logs/client-$c.log" | wc -c >"$logs/$1-$c.lines"
    done
}

# backup_logs I: the client logs as backup I must match them: every line
# written before it started, then only the tries of what came later.
backup_logs() {
    local c n
    for c in 1 2; do
        n=$(cat "$logs/before-$1-$c.lines")
        awk -v n="$n" 'NR <= n || !/^ack/' "$logs/client-$c.log" >"$logs/check-$1-$c.log"
    done
}

# absent_after I RESTORED: deductions first tried after backup I answered
# (ids never seen before in the log) are not in it.
absent_after() {
    local c n id checked=0
    for c in 1 2; do
        n=$(cat "$logs/after-$1-$c.lines")
        for id in $(awk -v n="$n" '$1 == "try" && $2 == "D" { if (NR > n && !($3 in seen)) print $3; seen[$3] = 1 }' \
            "$logs/client-$c.log" | head -n 25); do
            if "$BIN/stockctl" --store "$2" line "$id" >/dev/null 2>&1; then
                fail "backup $1 holds line $id, first tried after the backup answered"
            fi
            checked=$((checked + 1))
        done
    done
    [ "$checked" -gt 0 ] || fail "backup $1: no op was tried after it (the load stopped?)"
    echo "  $checked ops tried after it are not in it"
}

start
start_crash_clients "$uri" "$skus" "$level" "$dir"
wait_for_crash_client_acks "$dir" 0 || fail "no acknowledged ops"

echo "== $backups backups under load"
for i in $(seq "$backups"); do
    sleep 1
    mark "before-$i"
    "$BIN/stockctl" --json backup "$uri" "$dir/backup-$i" >"$dir/backup-$i.json" ||
        fail "backup $i failed: $(cat "$dir/backup-$i.json")"
    mark "after-$i"
    jq -e '.ok and .end_lsn > 0' "$dir/backup-$i.json" >/dev/null || fail "backup $i: $(cat "$dir/backup-$i.json")"
    echo "  backup $i: $(jq -c '{end_lsn, snapshot_lsn, files, bytes}' "$dir/backup-$i.json")"
    grep -q "INFO backup into $dir/backup-$i: done, holds the first $(jq .end_lsn "$dir/backup-$i.json") records" \
        "$dir/stockd.log" || fail "backup $i: no 'done' log line"
done
grep -q '^snapshot_lsn [0-9]' "$dir/backup-$backups/BACKUP" ||
    fail "the last backup starts from no snapshot: segments did not rotate under this load"

echo "== kill -9 of stockd during a backup"
mark before-killed
"$BIN/stockctl" backup "$uri" "$dir/backup-killed" >"$dir/killed.out" 2>&1 &
backup_pid=$!
# Killed once the copy has begun (its folder exists), so that the folder
# is left without a manifest.
for _ in $(seq 2000); do
    [ -d "$dir/backup-killed" ] && break
    sleep 0.005
done
kill -9 "$stockd_pid"
wait "$stockd_pid" 2>/dev/null || true
stockd_pid=""
if wait "$backup_pid"; then
    # The copy beat the kill: then it must be a whole backup.
    echo "  the backup finished before the kill; it is checked as the others"
    backups=$((backups + 1))
    mv "$dir/backup-killed" "$dir/backup-$backups"
    for c in 1 2; do cp "$dir/before-killed-$c.lines" "$dir/before-$backups-$c.lines"; done
else
    grep -q "the backup is unfinished (no manifest)" "$dir/killed.out" ||
        fail "stockctl backup did not say the backup is unfinished: $(cat "$dir/killed.out")"
    [ -d "$dir/backup-killed" ] || fail "the backup was killed before its copy began"
    [ ! -e "$dir/backup-killed/BACKUP" ] || fail "a killed backup has a manifest"
    echo "  killed with $(ls "$dir/backup-killed" | wc -l) files copied"
    if "$BIN/stockctl" restore "$dir/backup-killed" "$dir/restored-killed" >"$dir/restore-killed.out" 2>&1; then
        fail "an unfinished backup was restored"
    fi
    grep -q "not a finished backup" "$dir/restore-killed.out" ||
        fail "restore of an unfinished backup: $(cat "$dir/restore-killed.out")"
    [ ! -e "$dir/restored-killed" ] || fail "a refused restore made its folder"
    echo "  stockctl: $(cat "$dir/killed.out")"
fi
# slow_stockd: BIN/stockd becomes a script that runs the real one (moved
# to BIN/stockd.real, its pid stays stockd's own through exec) with
# slow_fsync.so preloaded (after the ASan runtime in a sanitizer build,
# which must come first) and an HTTP port ($http) after the flags it is given.
slow_stockd() {
    local preload=$BIN/slow_fsync.so asan=""
    case "$BUILD" in
    *san*) preload="$(gcc -print-file-name=libasan.so) $preload" asan=verify_asan_link_order=0 ;;
    esac
    http=$port
    while [ "$http" = "$port" ]; do http=$(pick_port 17660 17669); done
    mv "$BIN/stockd" "$BIN/stockd.real"
    printf '#!/bin/sh\nexec env ASAN_OPTIONS="%s" LD_PRELOAD="%s" SLOW_FSYNC_PATH=backup-slow SLOW_FSYNC_MS=%s "%s" "$@" --http-port %s\n' \
        "$asan" "$preload" "$slow_ms" "$BIN/stockd.real" "$http" >"$BIN/stockd"
    chmod +x "$BIN/stockd"
}
slow_stockd
start
mv "$BIN/stockd.real" "$BIN/stockd"   # the running stockd keeps the preload
now=$(crash_client_acks "$dir")
wait_for_crash_client_acks "$dir" "$now" || fail "no acknowledged ops after the restart"

echo "== the server answers other clients while a backup copies (each of its fsyncs takes ${slow_ms} ms)"
redis-cli -p "$port" SETSTOCK slow-sku 100 >/dev/null
mark before-slow
("$BIN/stockctl" --json backup "$uri" "$dir/backup-slow" >"$dir/backup-slow.json"
    echo $? >"$dir/backup-slow.rc") &
slow_pid=$!
for _ in $(seq 2000); do
    [ -d "$dir/backup-slow" ] && break
    sleep 0.005
done
[ -d "$dir/backup-slow" ] || fail "the slow backup did not begin"
began=$(date +%s%N)
redis-cli -p "$port" PING | grep -qx PONG || fail "PING during a backup: $(redis-cli -p "$port" PING)"
curl -sf "http://127.0.0.1:$http/healthz" >"$dir/healthz.json" || fail "GET /healthz failed during a backup"
jq -e '.status == "ok"' "$dir/healthz.json" >/dev/null || fail "/healthz during a backup: $(cat "$dir/healthz.json")"
[ "$(redis-cli -p "$port" DEDUCT slow-line-1 slow-sku 1)" = 99 ] || fail "DEDUCT during a backup did not answer 99"
redis-cli -p "$port" INFO | tr -d '\r' | grep -qx 'backup_running:1' || fail "INFO during a backup: no backup_running:1"
curl -s "http://127.0.0.1:$http/metrics" | grep -qx 'stockd_backup_running 1' ||
    fail "/metrics during a backup: no stockd_backup_running 1"
busy=$(redis-cli -p "$port" BACKUP "$dir/backup-busy")
took_ms=$((($(date +%s%N) - began) / 1000000))
[ ! -e "$dir/backup-slow.rc" ] ||
    fail "the backup answered before PING, /healthz and DEDUCT did (they took $took_ms ms): the loop waited for it"
echo "  PING, /healthz, DEDUCT answered in $took_ms ms while the backup copied"
case "$busy" in
"BUSY a backup into $dir/backup-slow is running"*) ;;
*) fail "a second BACKUP while one runs: $busy" ;;
esac
[ ! -e "$dir/backup-busy" ] || fail "a refused BACKUP made its folder"
echo "  a second BACKUP: $busy"
wait "$slow_pid"
[ "$(cat "$dir/backup-slow.rc")" = 0 ] || fail "the slow backup failed: $(cat "$dir/backup-slow.json")"
redis-cli -p "$port" INFO | tr -d '\r' | grep -qx 'backup_running:0' || fail "INFO after a backup: no backup_running:0"
curl -s "http://127.0.0.1:$http/metrics" | grep -qx 'stockd_backups_total 1' ||
    fail "/metrics after the first backup of this stockd: no stockd_backups_total 1"
mark after-slow
backups=$((backups + 1))
mv "$dir/backup-slow" "$dir/backup-$backups"
for c in 1 2; do
    cp "$dir/before-slow-$c.lines" "$dir/before-$backups-$c.lines"
    cp "$dir/after-slow-$c.lines" "$dir/after-$backups-$c.lines"
done
echo "  the backup: $(jq -c '{end_lsn, files, bytes}' "$dir/backup-slow.json")"

echo "== a DEDUCT pipelined after BACKUP on the same connection is answered after it"
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'BACKUP %s\r\nDEDUCT slow-line-2 slow-sku 1\r\n' "$dir/backup-slow-2" >&3
replies=""
for _ in 1 2 3 4 5 6; do
    IFS= read -r -t 60 reply <&3 || fail "the pipelined replies stopped after: $replies"
    replies="$replies${reply%$'\r'} "
done
exec 3<&-
case "$replies" in
'*4 :'*' :98 ') ;;
*) fail "BACKUP then DEDUCT on one connection answered: $replies" ;;
esac
[ -e "$dir/backup-slow-2/BACKUP" ] || fail "the pipelined backup has no manifest"
echo "  replies in order: $replies"
mark before-last
"$BIN/stockctl" --json backup "$uri" "$dir/backup-last" >"$dir/backup-last.json" ||
    fail "the backup after the restart failed: $(cat "$dir/backup-last.json")"
backups=$((backups + 1))
mv "$dir/backup-last" "$dir/backup-$backups"
for c in 1 2; do cp "$dir/before-last-$c.lines" "$dir/before-$backups-$c.lines"; done
sleep 1
stop_crash_clients "${client_pids[@]}" ||
    fail "a client reported a broken rule or could not settle its ops"
client_pids=()

# restore_and_check COUNT: restores backups 1..COUNT of $logs and checks
# each against the client logs.
restore_and_check() {
    local i restored
    for i in $(seq "$1"); do
        restored="$logs/restored-$i"
        "$BIN/stockctl" restore "$logs/backup-$i" "$restored" >"$logs/restore-$i.out" 2>&1 ||
            fail "restore of backup $i: $(cat "$logs/restore-$i.out")"
        backup_logs "$i"
        "$BIN/server_crash_check" "$restored" "$skus" "$level" "$logs"/check-"$i"-*.log ||
            fail "backup $i: the check found violations"
        echo "  backup $i: every op acknowledged before it is there, I1-I5 hold"
        if [ -e "$logs/after-$i-1.lines" ]; then
            absent_after "$i" "$restored"
        fi
    done
}

echo "== restore and check each backup"
restore_and_check "$backups"

echo "== a restore that fails part-way (a file size limit of half its largest file) leaves no folder"
largest=$(stat -c %s "$dir"/backup-1/*.* | sort -n | tail -n 1)
if (trap '' XFSZ; ulimit -f $((largest / 2048 + 1)); "$BIN/stockctl" restore "$dir/backup-1" "$dir/restored-cut") \
    >"$dir/cut.out" 2>&1; then
    fail "a restore past the file size limit succeeded"
fi
grep -q "cannot copy .*File too large" "$dir/cut.out" || fail "the failed restore: $(cat "$dir/cut.out")"
[ ! -e "$dir/restored-cut" ] || fail "a failed restore left $(ls "$dir/restored-cut")"
echo "  $(cat "$dir/cut.out")"

echo "== the check catches a backup that misses an acknowledged op"
last="$dir/check-$backups-1.log"
echo "ack D never-in-the-backup S0 1 5 OK" >>"$last"
! "$BIN/server_crash_check" "$dir/restored-$backups" "$skus" "$level" "$last" >"$dir/forged.out" ||
    fail "the check missed a lost acknowledgement"
grep -q "never-in-the-backup is lost" "$dir/forged.out" || fail "the check did not name the lost line"
echo "== SIGTERM during a backup: stockd finishes and answers it, then stops"
"$BIN/stockctl" --json backup "$uri" "$dir/backup-slow-stop" >"$dir/backup-slow-stop.json" &
stop_backup_pid=$!
for _ in $(seq 2000); do
    [ -d "$dir/backup-slow-stop" ] && break
    sleep 0.005
done
kill -TERM "$stockd_pid"
wait "$stockd_pid" || fail "stockd stopped during a backup with status $?"
stockd_pid=""
wait "$stop_backup_pid" || fail "the backup during the stop failed: $(cat "$dir/backup-slow-stop.json")"
[ -e "$dir/backup-slow-stop/BACKUP" ] || fail "the backup during the stop has no manifest"
grep -q "shutting down: no new clients, finishing [0-9]* batches in flight and the backup that is copying" \
    "$dir/stockd.log" || fail "the shutdown line does not name the backup"
echo "  $(jq -c '{end_lsn, files}' "$dir/backup-slow-stop.json"), then stockd exited 0"

echo "== a store with a cold store (retention=300ms): backups under load while moves run"
logs=$dir/cold
mkdir -p "$logs"
start_stockd "$port" "file:$logs/data?snapshot_log_bytes=1048576&retention=300ms" \
    "$logs/stockd.log" || fail "stockd with retention did not start"
stockd_pid=$STOCKD_PID
start_crash_clients "$uri" "$skus" "$level" "$logs"
wait_for_crash_client_acks "$logs" 0 || fail "no acknowledged ops with retention"
moves() { grep -c "retention: move .* took" "$logs/stockd.log" || true; }
cold_backups=2
for i in $(seq "$cold_backups"); do
    # Each backup after one more move, so that it copies a cold store
    # that moved since the last.
    before=$(moves)
    for _ in $(seq 100); do [ "$(moves)" -gt "$before" ] && break; sleep 0.1; done
    [ "$(moves)" -gt "$before" ] || fail "no retention move ran in 10 s: $(tail -n 3 "$logs/stockd.log")"
    mark "before-$i"
    "$BIN/stockctl" --json backup "$uri" "$logs/backup-$i" >"$logs/backup-$i.json" ||
        fail "backup $i of a store with a cold store: $(cat "$logs/backup-$i.json")"
    mark "after-$i"
    grep -q "^file cold.mdb [1-9]" "$logs/backup-$i/BACKUP" ||
        fail "backup $i names no cold store: $(cat "$logs/backup-$i/BACKUP")"
    echo "  backup $i after move $(moves): $(jq -c '{end_lsn, snapshot_lsn, files, bytes}' "$logs/backup-$i.json")"
done
sleep 1
stop_crash_clients "${client_pids[@]}" ||
    fail "a client reported a broken rule or could not settle its ops (retention)"
client_pids=()
restore_and_check "$cold_backups"

echo "== the restored store's cold lines: most lines are out of memory, the oldest answers and refunds"
restored=$logs/restored-$cold_backups
deducted=$(cat "$logs"/check-"$cold_backups"-*.log |
    awk '$1 == "ack" && ($2 == "D" || $2 == "O") && $NF == "OK" { seen[$3] = 1 } END { print length(seen) }')
held=$("$BIN/stockctl" --store "$restored" --json stats | jq .lines)
[ "$held" -lt "$deducted" ] ||
    fail "the restored store holds $held lines in memory for $deducted acknowledged lines: nothing is cold"
refunded=""
for id in $(awk '$1 == "ack" && $2 == "D" && $NF == "OK" { print $3 }' "$logs/check-$cold_backups-1.log" | head -n 50); do
    info=$("$BIN/stockctl" --store "$restored" --json line "$id") || fail "line $id of the restored store: $info"
    left=$(echo "$info" | jq '.qty - .refunded')
    [ "$left" -gt 0 ] || continue
    "$BIN/stockctl" --store "$restored" refund "cold-refund-$id" "$id" "$left" >/dev/null ||
        fail "refund of the rest of cold line $id ($left) failed"
    if "$BIN/stockctl" --store "$restored" --json refund "cold-refund-2-$id" "$id" 1 >"$logs/exceeds.json"; then
        fail "a second refund past cold line $id's qty: $(cat "$logs/exceeds.json")"
    fi
    jq -e '.code == "EXCEEDS"' "$logs/exceeds.json" >/dev/null || fail "refund past $id: $(cat "$logs/exceeds.json")"
    refunded=$id
    break
done
[ -n "$refunded" ] || fail "no early line with units left to refund"
echo "  $held lines in memory for $deducted acknowledged lines; cold line $refunded refunds to its qty, then EXCEEDS"
echo "backup test passed"
