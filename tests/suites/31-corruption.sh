#!/usr/bin/env bash
# 31-corruption: damage the embedded engine's files on purpose and check the
# recovery rules (docs/engine.md, "Recovery"): a bad byte before the tail
# refuses the open with CORRUPT naming the file and offset and changes
# nothing on disk; a torn tail is cut and every acknowledged op before it
# stays; a hole (zeroed record header, or a zero page starting inside a
# record) in the last segment cuts the log there, in a closed segment it
# is CORRUPT; a damaged newest snapshot falls back to the previous one; no
# valid snapshot at all is CORRUPT; a failed
# log write fails closed (IO for that group and everything after) and a
# reopen has exactly the acknowledged work. Also: the folder lock and URI
# validation. Segments go on with zeros after their records, so offsets
# are taken from the end of the records (crash_corrupt log-end), not from
# the file size.
set -eu
helper=$BUILD/tests/crash_corrupt
work=$(mktemp -d /tmp/stock-corrupt.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# Adds 1 to the byte at offset in file.
flip_byte() {
    local file=$1 offset=$2 byte
    byte=$(od -An -tu1 -j"$offset" -N1 "$file" | tr -d ' ')
    printf "\\$(printf %03o $(( (byte + 1) % 256 )))" |
        dd of="$file" bs=1 seek="$offset" conv=notrunc status=none
}

# Zeroes the 12-byte header of record n (from 0) of a segment; prints its offset.
zero_record_header() {
    local file=$1 n=$2 offset
    offset=$("$helper" record-at "$file" "$n") || exit 1
    dd if=/dev/zero of="$file" bs=1 count=12 seek="$offset" conv=notrunc status=none
    echo "$offset"
}

# A listing with checksums of every file but LOCK, to prove nothing changed.
fingerprint() { (cd "$1" && ls -l --time-style=+ | grep -v LOCK && sha256sum ./*.wal ./*.snap* 2>/dev/null) || true; }

# Runs "check" expecting a refusal; prints the message.
expect_corrupt() {
    local out rc=0
    out=$("$helper" check "$1" "$2") || rc=$?
    [ "$rc" -eq 3 ] || fail "open of $1 did not fail as CORRUPT (rc $rc): $out"
    echo "$out"
}

echo "== a bad byte in the middle of the log"
store=$work/middle
"$helper" fill "$store" 1000
segment=$(ls "$store"/log-*.wal)
end=$("$helper" log-end "$segment")
flip_byte "$segment" $((end / 2))
before=$(fingerprint "$store")
message=$(expect_corrupt "$store" 1000)
echo "$message"
echo "$message" | grep -q "^CORRUPT: $(basename "$segment"), offset [0-9]*: " ||
    fail "message does not name the file and offset"
offset=$(echo "$message" | sed -n 's/.*, offset \([0-9]*\):.*/\1/p')
[ "$offset" -le $((end / 2)) ] && [ $((end / 2 - offset)) -lt 64 ] ||
    fail "offset $offset is not the record holding byte $((end / 2))"
[ "$(fingerprint "$store")" = "$before" ] || fail "a refused open changed the files"
expect_corrupt "$store" 1000 >/dev/null   # and it stays refused

echo "== a torn tail: the last record cut mid-way"
store=$work/torn
"$helper" fill "$store" 1000
segment=$(ls "$store"/log-*.wal)
end=$("$helper" log-end "$segment")
[ "$(stat -c %s "$segment")" -gt "$end" ] || fail "no zeros after the records of $segment"
truncate -s $((end - 5)) "$segment"
"$helper" check "$store" 999
cut_size=$(stat -c %s "$segment")
[ "$cut_size" -lt $((end - 5)) ] || fail "the torn record was not cut from the file"
"$helper" check "$store" 999   # the cut is stable

echo "== garbage after the last record"
store=$work/garbage
"$helper" fill "$store" 300
segment=$(ls "$store"/log-*.wal)
end=$("$helper" log-end "$segment")
printf 'garbage that is not a record' |
    dd of="$segment" bs=1 seek="$end" conv=notrunc status=none
"$helper" check "$store" 300
[ "$(stat -c %s "$segment")" -eq "$end" ] || fail "the garbage was not cut at offset $end"

echo "== a hole (zeroed record header) in the last segment: cut there"
# Record 0 sets S, record n deducts L<n-1>: a hole at record 501 keeps
# L0..L499, although valid records follow it.
store=$work/hole
"$helper" fill "$store" 1000
segment=$(ls "$store"/log-*.wal)
offset=$(zero_record_header "$segment" 501)
"$helper" check "$store" 500
[ "$(stat -c %s "$segment")" -eq "$offset" ] || fail "the log was not cut at the hole ($offset)"
"$helper" check "$store" 500   # the cut is stable

echo "== a zero page inside a record in the last segment: cut at that record"
# A 4 KiB page of the file that never reached the disk: zeroed whole,
# starting inside a record; valid records follow the page.
store=$work/zero-page
"$helper" fill "$store" 1000
segment=$(ls "$store"/log-*.wal)
end=$("$helper" log-end "$segment")
page=$(( ($("$helper" record-at "$segment" 501) / 4096 + 1) * 4096 ))
[ $((page + 4096)) -lt "$end" ] || fail "no records after the page at $page"
n=501
while [ "$("$helper" record-at "$segment" $((n + 1)))" -le "$page" ]; do
    n=$((n + 1))
done
offset=$("$helper" record-at "$segment" "$n")
[ "$offset" -lt "$page" ] || fail "the page at $page does not start inside record $n"
dd if=/dev/zero of="$segment" bs=4096 count=1 seek=$((page / 4096)) conv=notrunc status=none
"$helper" check "$store" $((n - 1))
[ "$(stat -c %s "$segment")" -eq "$offset" ] || fail "the log was not cut at record $n ($offset)"
"$helper" check "$store" $((n - 1))   # the cut is stable

echo "== a damaged newest snapshot, then every snapshot damaged"
store=$work/snapshots
"$helper" fill "$store?snapshot_log_bytes=4096" 3000
ls "$store"
newest=$(ls "$store"/snap-*.snap | tail -1)
[ "$(ls "$store"/snap-*.snap | wc -l)" -ge 2 ] || fail "expected two snapshots in $store"
closed=$(ls "$store"/log-*.wal | tail -2 | head -1)
[ "$(stat -c %s "$closed")" -gt "$("$helper" log-end "$closed")" ] ||
    fail "no zeros after the records of $closed"
# The fallback replays $closed, a closed segment with zeros after its records.
flip_byte "$newest" $(( $(stat -c %s "$newest") / 2 ))
"$helper" check "$store" 3000
[ -e "$newest.damaged" ] || fail "the damaged snapshot was not set aside"
for snapshot in "$store"/snap-*.snap; do
    flip_byte "$snapshot" 40
done
before=$(fingerprint "$store")
message=$(expect_corrupt "$store" 3000)
echo "$message"
echo "$message" | grep -q "^CORRUPT: snap-[0-9a-f]*\.snap: " || fail "message does not name the snapshot"
[ "$(fingerprint "$store")" = "$before" ] || fail "a refused open changed the files"

echo "== a hole in a closed segment: CORRUPT"
# The newest snapshot is damaged so that recovery replays the closed
# segment before the last one.
store=$work/closed-hole
"$helper" fill "$store?snapshot_log_bytes=4096" 3000
newest=$(ls "$store"/snap-*.snap | tail -1)
closed=$(ls "$store"/log-*.wal | tail -2 | head -1)
[ "$(ls "$store"/log-*.wal | wc -l)" -ge 2 ] || fail "expected two segments in $store"
flip_byte "$newest" $(( $(stat -c %s "$newest") / 2 ))
offset=$(zero_record_header "$closed" 2)
before=$(fingerprint "$store")
message=$(expect_corrupt "$store" 3000)
echo "$message"
echo "$message" | grep -q "^CORRUPT: $(basename "$closed"), offset $offset: zero record header .*closed segment" ||
    fail "message does not name the hole in the closed segment"
[ "$(fingerprint "$store")" = "$before" ] || fail "a refused open changed the files"

echo "== the disk refuses a write (RLIMIT_FSIZE): fail closed, recover exactly"
"$helper" full "$work/full"

echo "== counters, the relaxed sync timer and snapshots"
"$helper" stats "$work/stats"

echo "== lock and URI validation"
"$helper" misc "$work/misc"
echo "corruption suite passed"
