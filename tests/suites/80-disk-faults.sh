#!/usr/bin/env bash
# 80-disk-faults.sh -- disk faults injected with libfiu (fiu-run -x: its
# POSIX preload library fails the calls, the code is unchanged) on every
# durable path of the embedded engine.
#
# In-process (tests/system/fault_store, which arms the failure points
# itself, counting calls): ENOSPC and EIO from pwrite (the log's writes) and
# fdatasync (its syncs) at the first, a middle and a random call, in sync
# and relaxed durability; fsync (the folder sync of a rotation) and fork
# (the snapshot writer); EIO from pread (snapshot loading), mmap (segment
# replay), open (the folder) and fdopendir (its listing) during recovery.
# Each must end in IOERR naming the failed call (or, for a snapshot, a
# warning and a store that goes on), no acknowledgement after the first
# IOERR, and, once the fault is lifted, a reopen holding every acknowledged
# operation with totals exact (fault_store's verify).
#
# Through stockd (run under fiu-run -x, faults switched on at run time with
# fiu-ctrl): fdatasync and pwrite, EIO and ENOSPC, at the first call after
# start-up, after 150 deductions and after a random number of them. The
# fdatasync faults run stockd with --io-uring no (the preload cannot see
# io_uring's fsync); the pwrite faults with its io_uring syncs. Every
# reply after the first -IOERR is -IOERR, the log says why, and a restarted
# stockd answers every acknowledged deduction as a REPLAY with its result.
set -eu
BUILD=${BUILD:-build}
. "$(dirname "$0")/../system/server_helpers.sh"
. "$(dirname "$0")/../harness/fiu.sh"

work=$(mktemp -d)
stockd_pid=""
cleanup() {
    stop_pids "$stockd_pid"
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    exit 1
}
use_binaries "$work/bin" tests/fault_store stockd tests/no_uring.so
BIN=$work/bin
ENOSPC=28
EIO=5
seed=${FAULT_SEED:-$RANDOM}
echo "random calls from seed $seed (FAULT_SEED=$seed replays them)"

n=0
fault() {
    n=$((n + 1))
    mkdir -p "$work/$n"
    fiu_run timeout 120 "$BIN/fault_store" "$1" "$work/$n" "${@:2}" ||
        fail "fault_store $* (folder $work/$n)"
    rm -rf "${work:?}/$n"
}

echo "== write faults in-process: the log's pwrite and fdatasync"
for point in posix/io/rw/pwrite posix/io/sync/fdatasync; do
    for errno_value in $ENOSPC $EIO; do
        for at in first middle "random:$((seed + n))"; do
            fault write $point $errno_value "$at"
            fault write $point $errno_value "$at" relaxed
        done
    done
done
# A failed fdatasync reported once, as the kernel does: the next one
# succeeds, and must not make the failed group durable.
fault write posix/io/sync/fdatasync $EIO first once
fault write posix/io/sync/fdatasync $EIO middle once

echo "== the folder sync of a rotation, and the snapshot writer"
fault write posix/io/sync/fsync $EIO first
fault write posix/io/sync/fsync $ENOSPC first
fault write posix/proc/fork $EIO first

echo "== read faults during recovery: snapshot, segments, folder"
for at in first middle "random:$((seed + n))"; do
    fault read posix/io/rw/pread $EIO "$at"
done
fault read posix/mm/mmap $EIO first
fault read posix/io/oc/open $EIO first
fault read posix/io/dir/fdopendir $EIO first
# The listing itself, failing at its first entry and at its end (the calls
# after those are the best-effort sweep of leftover temporary files).
fault read libstock/readdir $EIO first
fault read libstock/readdir $EIO middle

echo "== through stockd: faults switched on under load with fiu-ctrl"
# stockd_fault POINT ERRNO BEFORE: a stockd under fiu-run takes BEFORE
# deductions (0: the fault hits the first call after start-up), then POINT
# fails with ERRNO for good; 150 more must all be -IOERR saying why.
# Restarted without the fault, every acknowledged deduction answers as a
# replay with its original result, and every line counts once.
# With a fourth argument "no-uring", stockd runs with its default
# --io-uring yes on a machine where io_uring is unavailable
# (tests/preload/no_uring.c): it must say so and fall back to fdatasync.
stockd_fault() {
    local point=$1 errno_value=$2 before=$3 uring=${4:-} port data log
    n=$((n + 1))
    data=$work/stockd-$n log=$work/stockd-$n.log
    port=$(pick_port 17600 17609)
    # stockd syncs through io_uring by default, which the preload cannot
    # see: the fdatasync faults run it on the path that calls fdatasync.
    local io_uring=yes extra=""
    [ "$point" != posix/io/sync/fdatasync ] || io_uring=no
    if [ "$uring" = no-uring ]; then
        io_uring=yes extra=$BIN/no_uring.so
    fi
    FIU_EXTRA_PRELOAD=$extra fiu_wrap_stockd "$BIN" "$work/fiu" --io-uring "$io_uring"
    start_stockd "$port" "$data" "$log" || fail_with_log "$log" "stockd did not start under fiu-run"
    stockd_pid=$STOCKD_PID
    if [ -n "$extra" ]; then
        grep -q "io_uring is unavailable" "$log" ||
            fail_with_log "$log" "stockd did not say that io_uring is unavailable"
    elif [ "$io_uring" = yes ]; then
        grep -q "fsyncs start through io_uring" "$log" ||
            fail_with_log "$log" "stockd did not say that it syncs through io_uring"
    fi
    /usr/bin/python3 - "$port" "$work/acks" "$before" <<'PY' || fail "deductions before the fault"
import sys, redis
port, acks, before = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
r = redis.Redis(port=port)
r.execute_command("SETSTOCK", "A", 1000000)
with open(acks, "w") as out:
    for i in range(before):
        out.write("L%d %d\n" % (i, r.execute_command("DEDUCT", "L%d" % i, "A", 1)))
PY
    fiu-ctrl -f "$work/fiu" -c "enable name=$point,failinfo=$errno_value" "$stockd_pid" ||
        fail "fiu-ctrl could not reach stockd"
    /usr/bin/python3 - "$port" "$work/acks" "$errno_value" "$before" <<'PY' || fail "deductions after the fault"
import os, sys, redis
port, acks, errno_value, before = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
r = redis.Redis(port=port)
failed = 0
with open(acks, "a") as out:
    for i in range(before, before + 150):
        try:
            value = r.execute_command("DEDUCT", "L%d" % i, "A", 1)
            if failed:
                sys.exit("L%d acknowledged after an IOERR" % i)
            out.write("L%d %d\n" % (i, value))
        except redis.ResponseError as error:
            text = str(error)
            if not text.startswith("IOERR") or os.strerror(errno_value) not in text:
                sys.exit("L%d: %s" % (i, text))
            failed += 1
if failed == 0:
    sys.exit("no deduction failed")
print("  %d deductions answered -IOERR after the fault: %s" % (failed, text))
PY
    # The log says so when it happens, not only at shutdown.
    grep "ERROR libstock: the store broke: .*$(/usr/bin/python3 -c "import os; print(os.strerror($errno_value))")" \
        "$log" || fail_with_log "$log" "stockd's log does not say why the store broke"
    kill -TERM "$stockd_pid"
    wait "$stockd_pid" || true
    fiu_unwrap_stockd "$BIN"
    start_stockd "$port" "$data" "$log" || fail_with_log "$log" "stockd did not restart"
    stockd_pid=$STOCKD_PID
    /usr/bin/python3 - "$port" "$work/acks" "$before" <<'PY' || fail "the check after the restart"
import sys, redis
port, acks, before = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
r = redis.Redis(port=port)
acked = dict(line.split() for line in open(acks))
total = before + 150
for i in range(total):
    value = r.execute_command("DEDUCT", "L%d" % i, "A", 1)
    if "L%d" % i in acked and int(acked["L%d" % i]) != value:
        sys.exit("L%d: acknowledged %s, after the restart %s" % (i, acked["L%d" % i], value))
info = r.execute_command("SKUINFO", "A")
deducted = info[info.index(b"deducted") + 1] if b"deducted" in info else info[5]
if int(deducted) != total:
    sys.exit("%d lines, deducted %s" % (total, deducted))
print("  restarted: %d acknowledged deductions replayed with their results, each line once" % len(acked))
PY
    kill -TERM "$stockd_pid"
    wait "$stockd_pid" || true
    stockd_pid=""
}
# The first call after start-up, a middle one, and one at random (FAULT_SEED).
RANDOM=$seed
stockd_fault posix/io/sync/fdatasync $EIO 0
stockd_fault posix/io/rw/pwrite $ENOSPC 150
stockd_fault posix/io/sync/fdatasync $ENOSPC $((RANDOM % 150))
stockd_fault posix/io/rw/pwrite $EIO $((RANDOM % 150))
# The default --io-uring yes where io_uring is unavailable: the fallback
# calls fdatasync, and its failure reaches the clients and the log alike.
stockd_fault posix/io/sync/fdatasync $EIO $((RANDOM % 150)) no-uring
