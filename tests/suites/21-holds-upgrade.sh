#!/usr/bin/env bash
# 21-holds-upgrade.sh -- stores written by a pre-release libstock, before holds
# existed, open and replay unchanged with this version, and then take holds:
#   tests/fixtures/v1-log       a flow log only (8 records: set, add with and
#                               without id, deduct, order, refund, compare-and-set)
#   tests/fixtures/v1-snapshot  a version-1 snapshot of 8 records and a log
#                               tail of 2 more after it
# They were made by that build's stockctl in-process, then cut to the bytes of their
# records (the engine preallocates segments with zeros):
#   stockctl --store DIR set A 100; set B 50; add A 10 --id adj1; add B -5;
#   deduct L1 A 3; order O1 L2 A 2 L3 B 4; refund R1 L2 1; set B 60 --expect 41
#   (v1-log), and for v1-snapshot with ?snapshot_log_bytes=4096: set A 100;
#   set B 50; add A 10 --id adj1; deduct L1 A 3; order O1 L2 A 2 L3 B 4;
#   refund R1 L2 1; add B -5 --id adj2; deduct L4 B 1 (a snapshot at close),
#   then refund R2 L4 1; set A 90.
# After the holds, each store is reopened (it recovers from a version-2
# snapshot and a log mixing old and new records) and checked again.
set -eu
BUILD=${BUILD:-build}
ctl="$BUILD/stockctl"
[ -x "$ctl" ] || { echo "missing $ctl (make)"; exit 1; }
fixtures="$(dirname "$0")/../fixtures"
dir=$(mktemp -d "${TMPDIR:-/tmp}/stockd-upgrade.XXXXXX")
trap 'rm -rf "$dir"' EXIT

fail() { echo "FAIL: $*"; exit 1; }

. "$(dirname "$0")/../harness/sku_totals.sh"

check_v1_log() {
    sku_totals "$1" A "[$((106 - $2)),110,5,1,$2]"
    sku_totals "$1" B "[60,64,4,0,0]"
    "$ctl" --store "$1" --json line L3 | jq -e '.order_id == "O1" and .qty == 4' >/dev/null ||
        fail "line L3 of $1"
}

check_v1_snapshot() {
    sku_totals "$1" A "[$((90 - $2)),94,5,1,$2]"
    sku_totals "$1" B "[41,45,5,1,0]"
}

for name in v1-log v1-snapshot; do
    echo "== $name"
    store="$dir/$name"
    cp -r "$fixtures/$name" "$store"
    check="check_${name//-/_}"
    "$check" "$store" 0
    stats=$("$ctl" --store "$store" --json stats)
    echo "$stats" | jq -e '.recovery_torn_bytes == 0' >/dev/null ||
        fail "recovery of $name cut bytes: $stats"
    # Holds on the old store: one held, one confirmed, one released, one
    # that expires; the snapshot threshold (4096, the least) makes the
    # reopen recover from a version-2 snapshot.
    uri="file:$store?snapshot_log_bytes=4096"
    "$ctl" --store "$uri" hold H1 A 2 3600000 >/dev/null
    "$ctl" --store "$uri" hold H2 A 3 3600000 >/dev/null
    "$ctl" --store "$uri" confirm H2 1 >/dev/null
    "$ctl" --store "$uri" hold H3 A 1 3600000 >/dev/null
    "$ctl" --store "$uri" release H3 >/dev/null
    "$ctl" --store "$uri" hold H4 A 5 1 >/dev/null
    sleep 0.1
    # A confirmed unit is deducted: the checks shift by it.
    for round in first reopened; do
        "$ctl" --store "$uri" --json hold-info H4 | jq -e '.state == "expired"' >/dev/null ||
            fail "$name ($round): H4 did not expire"
        "$ctl" --store "$uri" --json hold-info H2 | jq -e '.state == "confirmed" and .confirmed == 1' >/dev/null ||
            fail "$name ($round): H2 is not confirmed"
        if [ "$name" = v1-log ]; then
            sku_totals "$store" A "[$((106 - 2 - 1)),110,6,1,2]"
        else
            sku_totals "$store" A "[$((90 - 2 - 1)),94,6,1,2]"
        fi
    done
    ls "$store" | grep -q '^snap-' || fail "$name: no snapshot after the holds"
done
echo "21-holds-upgrade: old stores open, replay and take holds"
