#!/usr/bin/env bash
# The conformance suite (tests/conformance) against the embedded engine, in
# fresh temporary folders: once with the defaults (durable, snapshots rare),
# once relaxed with a snapshot every 64 KiB of log, so that snapshots are
# taken while the suite runs and its closing reopen recovers from one, and
# once durable with stockd's setting (small batches synced by the submitting
# thread, many threads submitting) and a snapshot every 64 KiB. Other
# backends' suites run the same binary with their own URI. Sanitizer builds
# ($BUILD contains "san") run the quick variant of the concurrency tests.
set -eu
bin="$BUILD/tests/conformance"
[ -x "$bin" ] || { echo "missing $bin (make tests)"; exit 1; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/stockd-conformance.XXXXXX")
trap 'rm -rf "$dir"' EXIT
case "$BUILD" in
*san*) export CONFORMANCE_QUICK=1 ;;
esac
# A hung batch (a done callback never called) must fail the suite, not stall it.
echo "== defaults"
timeout 300 "$bin" "$dir/default"
echo "== relaxed durability, a snapshot every 64 KiB of log"
timeout 300 "$bin" "file:$dir/snapshots?durability=relaxed&snapshot_log_bytes=65536"
snapshots=$(find "$dir/snapshots" -name 'snap-*' | wc -l)
[ "$snapshots" -gt 0 ] || { echo "no snapshot was taken in $dir/snapshots"; exit 1; }
echo "== sync in the caller (stockd's setting), a snapshot every 64 KiB of log"
timeout 300 "$bin" --sync-in-caller "file:$dir/caller?snapshot_log_bytes=65536"
snapshots=$(find "$dir/caller" -name 'snap-*' | wc -l)
[ "$snapshots" -gt 0 ] || { echo "no snapshot was taken in $dir/caller"; exit 1; }
