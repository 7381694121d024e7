#!/usr/bin/env bash
# backup_ping.sh -- what a client of stockd waits for while RESP BACKUP
# copies the store: LINES deductions are piped into a fresh stockd (one
# SKU), then BACKUP runs on one connection while another sends PING after
# PING (each after the last reply) until the BACKUP has answered. Prints
# the store's size, how long the backup took, the PINGs answered meanwhile
# and the longest PING round trip.
#
# usage: bench/backup_ping.sh [LINES]   (after make; 1000..10000000,
#                                        default 2000000)
#        bench/backup_ping.sh -h|--help
# STOCKD=path runs another stockd binary (an older build, to compare).
set -eu
cd "$(dirname "$0")/.."
. bench/common.sh
bench_help "$@"
[ $# -le 1 ] || { echo "backup_ping.sh: takes at most one argument (see --help)" >&2; exit 2; }
lines=${1:-2000000}
bench_whole LINES "$lines" 1000 10000000
bench_need make stockd
stockd=${STOCKD:-$BUILD/stockd}
bench_temp stockd-backup-ping
. tests/system/server_helpers.sh
port=$(pick_port 17380 17394)
"$stockd" --store "$tmp/data" --port "$port" --http-port 0 --bind 127.0.0.1 >"$tmp/log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    redis-cli -p "$port" PING 2>/dev/null | grep -q PONG && break
    sleep 0.1
done
redis-cli -p "$port" SETSTOCK A 1000000000000 >/dev/null
for i in $(seq "$lines"); do printf 'DEDUCT l%d A 1\r\n' "$i"; done | redis-cli -p "$port" --pipe >/dev/null
echo "store: $(du -sh "$tmp/data" | cut -f1), $lines lines"
(
    start=${EPOCHREALTIME/./}
    redis-cli -p "$port" BACKUP "$tmp/backup" >"$tmp/backup.out"
    echo "backup: $(((${EPOCHREALTIME/./} - start) / 1000)) ms, $(sed -n 3p "$tmp/backup.out") files"
) &
backup=$!
exec 3<>"/dev/tcp/127.0.0.1/$port"
longest=0 count=0
while kill -0 "$backup" 2>/dev/null; do
    sent=${EPOCHREALTIME/./}
    printf 'PING\r\n' >&3
    IFS= read -r _ <&3
    took=$((${EPOCHREALTIME/./} - sent))
    count=$((count + 1))
    [ "$took" -le "$longest" ] || longest=$took
done
exec 3<&-
wait "$backup"
echo "PINGs answered during the backup: $count, longest round trip $((longest / 1000)) ms"
