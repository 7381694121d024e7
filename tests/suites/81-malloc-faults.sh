#!/usr/bin/env bash
# 81-malloc-faults.sh -- SQLite's out-of-memory loop on the embedded engine,
# in-process (tests/system/fault_store nomem): for N = 1, 2, ... a fresh
# store is opened and runs a small workload (deductions, orders, refunds,
# restocks: some 40 batches) with the library's Nth allocation failing,
# until a run makes fewer than N. Twice: memory that stays short (the Nth
# and every later allocation fail) and a single failed allocation. Every
# open says NOMEM (or IOERR) with a message or succeeds; every op is OK or
# NOMEM; an op refused with NOMEM changed nothing (its retry is a fresh OK,
# in memory and after a reopen); every acknowledged op survives a reopen
# with totals exact. Under the sanitizer build ASan and LeakSanitizer also
# check that no failure path crashes or leaks.
# Then a move whose begin runs out of memory (fault_store move-nomem): the
# moves after it still run, and the line leaves memory.
set -eu
BUILD=${BUILD:-build}
. "$(dirname "$0")/../system/server_helpers.sh"
. "$(dirname "$0")/../harness/fiu.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
use_binaries "$work/bin" tests/fault_store
for mode in "" once; do
    mkdir -p "$work/loop$mode"
    # shellcheck disable=SC2086  # an empty mode is no argument
    out=$(fiu_run timeout 300 "$work/bin/fault_store" nomem "$work/loop$mode" $mode) ||
        { echo "$out"; echo "FAIL: the out-of-memory loop ($mode)"; exit 1; }
    echo "$out"
    # The loop must have reached the ops, not only the opens.
    echo "$out" | grep -Eq '[1-9][0-9]* ops NOMEM' || { echo "FAIL: no op ever saw NOMEM"; exit 1; }
done
mkdir -p "$work/move"
fiu_run timeout 60 "$work/bin/fault_store" move-nomem "$work/move/store" ||
    { echo "FAIL: the moves after a move that ran out of memory"; exit 1; }
