#!/usr/bin/env bash
# 70-disk-faults.sh -- disk faults injected with libfiu (fiu-run -x: its
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
# fiu-ctrl): fdatasync EIO and pwrite ENOSPC under a client's load. Every
# reply after the first -IOERR is -IOERR, the log says why, and a restarted
# stockd answers every acknowledged deduction as a REPLAY with its result.
set -eu
BUILD=${BUILD:-build}
. "$(dirname "$0")/../system/server_helpers.sh"
. "$(dirname "$0")/../harness/fiu.sh"

work=$(mktemp -d)
stockd_pid=""
cleanup() {
    if [ -n "$stockd_pid" ]; then
        kill -9 "$stockd_pid" 2>/dev/null || true
        wait "$stockd_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    exit 1
}
use_binaries "$work/bin" tests/fault_store stockd
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
