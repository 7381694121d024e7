#!/usr/bin/env bash
# 50-postgres-upgrade.sh -- a database at schema version 1, as a pre-release libstock
# left it (tests/fixtures/pg-schema-v1.sql: its tables, its functions and
# rows made through them), opened by this version: the migration to version
# 4 (2: holds, 3: the listing indexes, 4: the index of a line's refunds and the moves of stock events) keeps every SKU, line, order, refund
# and adjustment, and the old lines are listed through the new indexes; holds then
# work on the old SKUs (held, confirmed into a line, expired); the replaced
# functions refuse a hold's id as a line id; and the conformance suite passes
# on the migrated database.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/harness/pg.sh
trap pg_stop EXIT
pg_start
echo "primary $PG_URI (pid $PG_PID)"
ctl="$BUILD/stockctl"
fail() { echo "FAIL: $*"; exit 1; }

pg_psql -f tests/fixtures/pg-schema-v1.sql >/dev/null
[ "$(pg_psql -c 'SELECT version FROM stock_schema')" = 1 ] || fail "the fixture is not at version 1"

# get SKU WANT: [available, adjusted, deducted, refunded, held] through the library.
get() {
    local out
    out=$("$ctl" --store "$PG_URI" --json get "$1") || fail "get $1: $out"
    [ "$(echo "$out" | jq -c '[.available,.adjusted,.deducted,.refunded,.held]')" = "$2" ] ||
        fail "get $1: $out, wanted $2"
}
echo "== the old rows, read through the migrating open"
get UP-A "[8,10,4,2,0]"
get UP-B "[22,27,5,0,0]"
[ "$(pg_psql -c 'SELECT version FROM stock_schema')" = 4 ] || fail "not migrated to version 4"
indexes=$(pg_psql -c "SELECT count(*) FROM pg_indexes WHERE indexname IN
                      ('inventory_skus_c', 'inventory_flow_by_sku', 'inventory_flow_by_order',
                       'inventory_refunds_by_line')")
[ "$indexes" = 4 ] || fail "$indexes of the 4 listing indexes were made"
"$ctl" --store "$PG_URI" --json line UP-L3 | jq -e '.order_id == "UP-O1" and .qty == 5' >/dev/null ||
    fail "line UP-L3 lost"
"$ctl" --store "$PG_URI" --json refund UP-R1 UP-L1 2 | jq -e '.code == "REPLAY"' >/dev/null ||
    fail "refund UP-R1 does not replay"

echo "== holds on the old SKUs"
"$ctl" --store "$PG_URI" hold UP-H1 UP-B 6 3600000 >/dev/null
"$ctl" --store "$PG_URI" hold UP-H2 UP-A 2 3600000 >/dev/null
"$ctl" --store "$PG_URI" hold UP-H3 UP-A 1 1 >/dev/null
get UP-B "[16,27,5,0,6]"
"$ctl" --store "$PG_URI" confirm UP-H1 4 >/dev/null
get UP-B "[18,27,9,0,0]"
sleep 0.1
"$ctl" --store "$PG_URI" --json hold-info UP-H3 | jq -e '.state == "expired"' >/dev/null ||
    fail "UP-H3 did not expire"
get UP-A "[6,10,4,2,2]"
got=0
"$ctl" --store "$PG_URI" deduct UP-H2 UP-A 2 >/dev/null 2>&1 || got=$?
[ "$got" -eq 5 ] || fail "a deduction with a hold's id exited $got, wanted 5 (CONFLICT)"
# Row by row, I2 with held holds on every bucket.
bad=$(pg_psql -c "SELECT count(*) FROM inventory
                   WHERE leaved_amount + held <> adjusted - deducted + refunded")
[ "$bad" = 0 ] || fail "$bad bucket rows break I2"

echo "== the migrated store against its own flow (listed through the new indexes)"
out=$("$ctl" reconcile --json "$PG_URI") || fail "reconcile of the migrated store: $out"
echo "$out" | jq -e '.equal and .skus >= 2 and .lines >= 3' >/dev/null || fail "reconcile: $out"

echo "== conformance on the migrated database"
pg_conformance ""
echo "50-postgres-upgrade: migrated, rows kept, holds work"
