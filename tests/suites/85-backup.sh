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
# stockd restarts on its folder, and a backup after that is good again. A
# restore that fails part-way leaves no folder behind.
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

use_binaries "$dir/bin" stockd stockctl tests/server_crash_client tests/server_crash_check
BIN=$dir/bin
store="file:$dir/data?snapshot_log_bytes=1048576"
start() {
    start_stockd "$port" "$store" "$dir/stockd.log" || fail "stockd did not start"
    stockd_pid=$STOCKD_PID
}
# mark NAME: the number of whole lines of each client log now.
mark() {
    local c
    for c in 1 2; do
        tr -dc '\n' <"$dir/client-$c.log" | wc -c >"$dir/$1-$c.lines"
    done
}

# backup_logs I: the client logs as backup I must match them: every line
# written before it started, then only the tries of what came later.
backup_logs() {
    local c n
    for c in 1 2; do
        n=$(cat "$dir/before-$1-$c.lines")
        awk -v n="$n" 'NR <= n || !/^ack/' "$dir/client-$c.log" >"$dir/check-$1-$c.log"
    done
}

# absent_after I RESTORED: deductions first tried after backup I answered
# (ids never seen before in the log) are not in it.
absent_after() {
    local c n id checked=0
    for c in 1 2; do
        n=$(cat "$dir/after-$1-$c.lines")
        for id in $(awk -v n="$n" '$1 == "try" && $2 == "D" { if (NR > n && !($3 in seen)) print $3; seen[$3] = 1 }' \
            "$dir/client-$c.log" | head -n 25); do
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
start
now=$(crash_client_acks "$dir")
wait_for_crash_client_acks "$dir" "$now" || fail "no acknowledged ops after the restart"
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

echo "== restore and check each backup"
for i in $(seq "$backups"); do
    restored="$dir/restored-$i"
    "$BIN/stockctl" restore "$dir/backup-$i" "$restored" >"$dir/restore-$i.out" 2>&1 ||
        fail "restore of backup $i: $(cat "$dir/restore-$i.out")"
    backup_logs "$i"
    "$BIN/server_crash_check" "$restored" "$skus" "$level" "$dir"/check-"$i"-*.log ||
        fail "backup $i: the check found violations"
    echo "  backup $i: every op acknowledged before it is there, I1-I5 hold"
    if [ -e "$dir/after-$i-1.lines" ]; then
        absent_after "$i" "$restored"
    fi
done

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
echo "backup test passed"
