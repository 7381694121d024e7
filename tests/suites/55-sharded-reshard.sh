#!/usr/bin/env bash
# 55-sharded-reshard.sh -- adding a shard (docs/sharded.md, "Adding a
# shard"): stockctl reshard moves a store of 2 members to 3 (and one to
# 4), on 4 PostgreSQL primaries (pg_start_many), each store in databases
# of its own.
#  - a clean move (and one from 1 member to 2): afterwards the store opens with the new member list only,
#    every SKU and line is found with its values, a retry of every order
#    answers REPLAY (CONFLICT with two lines swapped), a refund by line id
#    alone works (tests/system/reshard_check.c), and stockctl reconcile
#    finds I2;
#  - a store with hot SKUs (hot=2, pieces on both members) moved to 3: every
#    piece the new map no longer places lands on the new member, the totals,
#    lines and refunds by line id are as before, a retry of each order of
#    hot lines answers REPLAY (CONFLICT swapped), and each hot SKU is then
#    deducted down to 0 exactly, never refused before (reshard_check
#    hotsetup/hotcheck), and stockctl reconcile finds I2;
#  - a store of the same hot SKUs moved from 2 members to 4 (two new
#    members, on a 4th primary): afterwards each hot SKU has rows only on the 2 members
#    its ranks under the new map pick (reshard_check ranks, computed from
#    docs/sharded.md's rule), its piece 0 among them, as many pieces with
#    stock as before; with these names one SKU's pieces both move, two
#    SKUs' one piece moves to the one new member picked while the other new
#    member is not, and a SKU with rows on piece 0 alone gets them on the
#    new member ranked first; then totals, lines, refunds, retries and the
#    sellout as above, and reconcile;
#  - without a move: carts of SKUs named hot after they were created (rows
#    on piece 0 alone, lines on either piece) are taken while the SKU's
#    total covers them, REPLAY when retried, refused INSUFFICIENT with the
#    total when it does not (reshard_check hotlate), and stockctl
#    reconcile finds I2;
#  - refusals that change nothing: the old list in another order or with a
#    member missing, a new list that does not extend the old one or names
#    other hot SKUs, a new member that is a database of an old member's
#    server (as an open of such a list is refused), a store with someone
#    else connected;
#  - a step of the move that fails (a pair meets a row planted on the new
#    member): stockctl reshard exits non-zero (it answered OK, "moved 0
#    SKUs", with the move record left), and a rerun finishes the move;
#  - a move killed (SIGKILL, at the Nth step of the move, N random) several
#    times and run again: after every kill and the next run's recovery, no
#    SKU or line is lost or on two members and nothing is left prepared, no
#    store opens meanwhile, and the last run ends consistent as above; the
#    same for a store with hot SKUs, whose totals never change.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
HELPER=$BUILD/tests/reshard_check
CTL=$BUILD/stockctl
KILLS=${KILLS:-4}
case $BUILD in *san*) KILLS=2 ;; esac   # the sanitizers' builds are slower
. tests/harness/pg.sh
trap pg_stop EXIT
pg_start_many 4

# member URI of database $2 on server $1
member() { echo "${PG_MANY_URIS[$1]%/postgres}/$2"; }
for db in clean single killed hot hotkilled late failed; do
    for k in 0 1 2; do
        PG_PSQL_URI=${PG_MANY_URIS[$k]} pg_psql -c "CREATE DATABASE $db" >/dev/null
    done
done
for k in 0 1 2 3; do PG_PSQL_URI=${PG_MANY_URIS[$k]} pg_psql -c "CREATE DATABASE hot4" >/dev/null; done
old_of() { echo "shards:$(member 0 "$1");$(member 1 "$1")"; }
new_of() { echo "shards:$(member 0 "$1");$(member 1 "$1");$(member 2 "$1")"; }
# sql over every member of database $1: prints one line per member
each() { local k; for k in 0 1 2; do PG_PSQL_URI=$(member "$k" "$1") pg_psql -c "$2"; done; }
sum() { awk '{ s += $1 } END { print s + 0 }'; }

echo "== a clean move, 2 -> 3 shards"
OLD=$(old_of clean) NEW=$(new_of clean)
"$HELPER" setup "$OLD"
before=$(each clean "SELECT count(*) FROM inventory_flow" 2>/dev/null | sum)
"$CTL" reshard "$OLD" "$NEW"
moved=$(PG_PSQL_URI=$(member 2 clean) pg_psql -c "SELECT count(DISTINCT sku_id) FROM inventory")
after=$(each clean "SELECT count(*) FROM inventory_flow" | sum)
echo "SKUs on the new member: $moved; lines $before before, $after after"
[ "$moved" -gt 0 ] && [ "$after" -eq "$before" ] || { echo "FAIL: the move lost or moved nothing"; exit 1; }
rc=0; "$CTL" --store "$OLD" get rs-s0 >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || { echo "FAIL: the old member list opened (exit $rc)"; exit 1; }
"$HELPER" check "$NEW"
"$CTL" reconcile "$NEW" >/dev/null || { echo "FAIL: reconcile (I2) after the move"; exit 1; }
out=$("$CTL" reshard "$OLD" "$NEW")
case $out in *"already"*) ;; *) echo "FAIL: a second run: $out"; exit 1 ;; esac

echo "== a store of one member (no directory) to 2"
OLD="shards:$(member 0 single)" NEW="shards:$(member 0 single);$(member 1 single)"
"$HELPER" setup "$OLD"
"$CTL" reshard "$OLD" "$NEW"
"$HELPER" check "$NEW"
"$CTL" reconcile "$NEW" >/dev/null || { echo "FAIL: reconcile (I2) after 1 -> 2"; exit 1; }

HOT="hot=2:$(echo rs-h{0..7} | tr ' ' ,)"
hot_old() { echo "shards:$HOT;$(member 0 "$1");$(member 1 "$1")"; }
hot_new() { echo "shards:$HOT;$(member 0 "$1");$(member 1 "$1");$(member 2 "$1")"; }
# what the hot SKUs hold on the first $2 (3 unless given) members of
# database $1: pieces that ever had stock (an empty piece 0 is written for
# a SKU named hot later), stock, lines. A new database has no tables
# before the move: nothing.
USED="adjusted <> 0 OR deducted <> 0"
hot_rows() {
    local k
    for ((k = 0; k < ${2:-3}; k++)); do
        PG_PSQL_URI=$(member "$k" "$1") pg_psql -c "SELECT count(DISTINCT sku_id) FILTER (WHERE $USED), coalesce(sum(leaved_amount), 0), (SELECT count(*) FROM inventory_flow WHERE sku_id LIKE 'rs-h%') FROM inventory WHERE sku_id LIKE 'rs-h%'" 2>/dev/null || true
    done | awk -F'|' '{ p += $1; a += $2; l += $3 } END { print p, a, l }'
}

echo "== a store with hot SKUs, 2 -> 3 shards"
OLD=$(hot_old hot) NEW=$(hot_new hot)
"$HELPER" hotsetup "$OLD"
before=$(hot_rows hot)
rc=0; out=$("$CTL" --json reshard "$OLD" "$NEW") || rc=$?
[ "$rc" -eq 0 ] || { echo "FAIL: the move of a store with hot SKUs: exit $rc: $out"; exit 1; }
after=$(hot_rows hot)
pieces=$(echo "$out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["skus"])')
IFS='|' read -r on_new empty < <(PG_PSQL_URI=$(member 2 hot) pg_psql -c "SELECT count(*) FILTER (WHERE used), count(*) FILTER (WHERE NOT used) FROM (SELECT bool_or($USED) AS used FROM inventory WHERE sku_id LIKE 'rs-h%' GROUP BY sku_id) t")
echo "pieces, stock, lines of the hot SKUs: $before before, $after after; $pieces pieces moved, $on_new on the new member, $empty empty pieces 0 written there"
[ "$before" = "$after" ] && [ "$pieces" -gt 0 ] && [ "$on_new" -eq "$pieces" ] ||
    { echo "FAIL: the hot SKUs' pieces lost, doubled or not moved"; exit 1; }
# Fixed names, so fixed ranks: some SKU named hot later has the new member as its piece 0.
[ "$empty" -gt 0 ] || { echo "FAIL: no SKU named hot later got an empty piece 0"; exit 1; }
"$HELPER" hotcheck "$NEW"
"$CTL" reconcile "$NEW" >/dev/null || { echo "FAIL: reconcile (I2) after the hot move"; exit 1; }

echo "== a store with hot SKUs, 2 -> 4 shards: two new members at once"
OLD=$(hot_old hot4) NEW="$(hot_old hot4);$(member 2 hot4);$(member 3 hot4)"
"$HELPER" hotsetup "$OLD"
before=$(hot_rows hot4 4)
# Rows of the hot SKUs on member $2 of database $1, a line "member|SKU|used"
# (a piece that ever had stock) or "member|SKU|empty" (an empty piece 0)
# for each SKU it holds rows of.
piece_rows() {
    PG_PSQL_URI=$(member "$2" "$1") pg_psql -c "SELECT sku_id, CASE WHEN bool_or($USED) THEN 'used' ELSE 'empty' END FROM inventory WHERE sku_id LIKE 'rs-h%' GROUP BY sku_id" 2>/dev/null |
        sed "s/^/$2|/" || true
}
rows_of() { for k in 0 1 2 3; do piece_rows "$1" "$k"; done | sort; }
used_before=$(rows_of hot4 | awk -F'|' '$3 == "used" { n[$2]++ } END { for (s in n) print s, n[s] }' | sort)
"$CTL" reshard "$OLD" "$NEW" >/dev/null
[ "$(hot_rows hot4 4)" = "$before" ] || { echo "FAIL: the 2 -> 4 move changed the hot SKUs: $before, now $(hot_rows hot4 4)"; exit 1; }
after_rows=$(rows_of hot4)
used_after=$(echo "$after_rows" | awk -F'|' '$3 == "used" { n[$2]++ } END { for (s in n) print s, n[s] }' | sort)
[ "$used_after" = "$used_before" ] ||
    { echo "FAIL: pieces with stock per SKU changed: $used_before, now $used_after"; exit 1; }
# state SKU MEMBER: what that member holds of the SKU after the move
state() { echo "$after_rows" | awk -F'|' -v s="$1" -v k="$2" '$2 == s && $1 == k { print $3 }'; }
moved_both=0 moved_one=0 late_first=0
while read -r s r0 r1 _; do
    held=$(echo "$after_rows" | awk -F'|' -v s="$s" '$2 == s { printf "%s:%s ", $1, $3 }')
    echo "$s: pieces on members $r0 $r1 by the new map; rows on members $held"
    for k in 0 1 2 3; do
        [ -z "$(state "$s" "$k")" ] || [ "$k" = "$r0" ] || [ "$k" = "$r1" ] ||
            { echo "FAIL: $s has rows on member $k, which the new map does not pick ($r0 $r1)"; exit 1; }
    done
    [ -n "$(state "$s" "$r0")" ] || { echo "FAIL: $s has no rows on its piece 0, member $r0"; exit 1; }
    # Which cases these names cover (members 2 and 3 are the new ones).
    if [ "$r0" -ge 2 ] && [ "$r1" -ge 2 ]; then
        if [ "$(state "$s" "$r1")" = used ]; then
            moved_both=$((moved_both + 1))
        elif [ "$(state "$s" "$r0")" = used ]; then
            late_first=$((late_first + 1))
        fi
    elif [ "$r0" -ge 2 ] || [ "$r1" -ge 2 ] && [ "$(state "$s" "$((r0 >= 2 ? r0 : r1))")" = used ]; then
        moved_one=$((moved_one + 1))
    fi
done < <("$HELPER" ranks 4 rs-h{0..7})
echo "SKUs whose 2 pieces both moved: $moved_both; whose piece moved to the one new member picked: $moved_one; with rows on piece 0 alone, moved to the new piece 0: $late_first"
[ "$moved_both" -gt 0 ] && [ "$moved_one" -gt 0 ] && [ "$late_first" -gt 0 ] ||
    { echo "FAIL: the hot SKUs' names no longer cover each case of a move to 2 new members"; exit 1; }
"$HELPER" hotcheck "$NEW"
"$CTL" reconcile "$NEW" >/dev/null || { echo "FAIL: reconcile (I2) after the 2 -> 4 hot move"; exit 1; }

echo "== carts of SKUs named hot after they were created, no move"
LATE="shards:hot=2:$(echo rs-l{0..4} | tr ' ' ,);$(member 0 late);$(member 1 late)"
"$HELPER" hotlate "$LATE"
# The 5 SKUs had rows on one member each: a piece more has rows when a
# cart's line went to a piece that had none (such a cart failed UNAVAILABLE).
pieces=0
for k in 0 1; do
    n=$(PG_PSQL_URI=$(member "$k" late) pg_psql -c "SELECT count(DISTINCT sku_id) FROM inventory WHERE sku_id LIKE 'rs-l%'")
    pieces=$((pieces + n))
done
echo "pieces of the 5 late SKUs with rows after the carts: $pieces"
[ "$pieces" -gt 5 ] || { echo "FAIL: no cart had a line on a piece without rows"; exit 1; }
"$CTL" reconcile "$LATE" >/dev/null || { echo "FAIL: reconcile (I2) after the late carts"; exit 1; }

echo "== a step that fails: the move says so, and a rerun finishes it"
OLD=$(old_of failed) NEW=$(new_of failed)
"$HELPER" setup "$OLD"
# Adjustment ids that the move brings to the new member, planted there
# (the emptiness check looks at stock, lines and the directory only): the
# first pair of a SKU with an adjustment fails on their primary key.
"$CTL" --store "$(member 2 failed)" get rs-s0 >/dev/null 2>&1 || true
PG_PSQL_URI=$(member 2 failed) pg_psql -c "INSERT INTO inventory_adjustments SELECT 'rs-a' || k, 'x', 1, 1 FROM generate_series(0, 38, 2) k"
rc=0; out=$("$CTL" reshard "$OLD" "$NEW" 2>&1) || rc=$?
echo "a move with a failing step: exit $rc: ${out:0:200}"
[ "$rc" -ne 0 ] || { echo "FAIL: a move whose step failed exited 0"; exit 1; }
[ "$(each failed "SELECT count(*) FROM stock_shard_move" | sum)" -eq 3 ] || { echo "FAIL: the move record is not on every member"; exit 1; }
PG_PSQL_URI=$(member 2 failed) pg_psql -c "DELETE FROM inventory_adjustments WHERE sku_id = 'x'"
"$CTL" reshard "$OLD" "$NEW"
[ "$(each failed "SELECT count(*) FROM stock_shard_move" | sum)" -eq 0 ] || { echo "FAIL: a move record left"; exit 1; }
"$HELPER" check "$NEW"

echo "== refusals"
OLD=$(old_of killed) NEW=$(new_of killed)
"$HELPER" setup "$OLD"
refused() { # expected exit code, what, URIs...
    local want=$1 what=$2 rc=0 out; shift 2
    out=$("$CTL" reshard "$@" 2>&1) || rc=$?
    [ "$rc" -eq "$want" ] || { echo "FAIL: $what: exit $rc: $out"; exit 1; }
    echo "refused ($what): ${out:0:160}"
}
swapped="shards:$(member 1 killed);$(member 0 killed)"
refused 2 "old members swapped" "$swapped" "$swapped;$(member 2 killed)"
refused 2 "an old member missing" "shards:$(member 0 killed)" "shards:$(member 0 killed);$(member 2 killed)"
other="shards:$(member 0 killed);$(member 1 clean)"
refused 2 "an old member of another map" "$other" "$other;$(member 2 killed)"
refused 2 "new list not extending the old" "$OLD" "shards:$(member 0 killed);$(member 2 killed);$(member 1 killed)"
refused 2 "new list naming other hot SKUs" "$OLD" "shards:hot=2:S1;${NEW#shards:}"
# A prepared transaction's name is unique on its server: a cart (or a
# move's pair) over two databases of one server cannot prepare both parts.
PG_PSQL_URI=${PG_MANY_URIS[0]} pg_psql -c "CREATE DATABASE killed2" >/dev/null
refused 2 "a new member on member 0's server" "$OLD" "$OLD;$(member 0 killed2)"
rc=0; out=$("$CTL" --store "shards:$(member 0 late);$(member 0 killed2)" get rs-l0 2>&1) || rc=$?
case "$rc $out" in "2 "*"are databases of one PostgreSQL server"*) ;;
    *) echo "FAIL: a store over two databases of one server: exit $rc: $out"; exit 1 ;; esac
PG_PSQL_URI=$(member 1 killed) pg_psql -c "SELECT pg_sleep(30)" >/dev/null 2>&1 &
sleeper=$!
for _ in $(seq 100); do
    [ "$(PG_PSQL_URI=$(member 1 killed) pg_psql -c "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'")" -gt 0 ] && break
    sleep 0.1
done
refused 11 "someone connected" "$OLD" "$NEW"
kill "$sleeper"; wait "$sleeper" 2>/dev/null || true
# The server notices the client is gone only when it answers: end it.
PG_PSQL_URI=$(member 1 killed) pg_psql -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' AND pid <> pg_backend_pid()" >/dev/null
for _ in $(seq 100); do
    [ "$(PG_PSQL_URI=$(member 1 killed) pg_psql -c "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'")" -eq 0 ] && break
    sleep 0.1
done
[ "$(each killed "SELECT count(*) FROM stock_shard_move" | sum)" -eq 0 ] || { echo "FAIL: a refusal recorded a move"; exit 1; }
[ "$(PG_PSQL_URI=$(member 2 killed) pg_psql -c "SELECT count(*) FROM inventory")" -eq 0 ] || { echo "FAIL: a refusal moved stock"; exit 1; }
"$CTL" --store "$OLD" get rs-s0 >/dev/null

echo "== a move killed at random steps, then run again"
skus=$(each killed "SELECT count(*) FROM inventory" | sum)
lines=$(each killed "SELECT count(*) FROM inventory_flow" | sum)
for ((round = 1; round <= KILLS; round++)); do
    n=$((1 + RANDOM % 40))
    rc=0; out=$("$HELPER" kill "$OLD" "$NEW" "$n" 2>&1) || rc=$?
    [ "$rc" -eq 137 ] || [ "$out" = done ] || { echo "FAIL: round $round: exit $rc: $out"; exit 1; }
    prepared=$(each killed "SELECT count(*) FROM pg_prepared_xacts" | sum)
    # A pair killed after its decision is visible on both sides until a
    # recovery commits the rest: a run killed at its first step (after its
    # recovery, before any PREPARE) leaves the state to count.
    rc2=0; out=$("$HELPER" kill "$OLD" "$NEW" 1 2>&1) || rc2=$?
    now_skus=$(each killed "SELECT count(*) FROM inventory" | sum)
    now_lines=$(each killed "SELECT count(*) FROM inventory_flow" | sum)
    left=$(each killed "SELECT count(*) FROM pg_prepared_xacts" | sum)
    echo "round $round: killed at step $n (exit $rc, $prepared prepared); recovered (exit $rc2): $now_skus bucket rows, $now_lines lines, $left prepared"
    [ "$now_skus" -eq "$skus" ] && [ "$now_lines" -eq "$lines" ] && [ "$left" -eq 0 ] ||
        { echo "FAIL: expected $skus rows, $lines lines, 0 prepared"; exit 1; }
    if [ "$rc" -eq 137 ]; then
        rc=0; "$CTL" --store "$NEW" get rs-s0 >/dev/null 2>&1 || rc=$?
        [ "$rc" -eq 11 ] || { echo "FAIL: a store opened during the move (exit $rc)"; exit 1; }
    fi
done
"$CTL" reshard "$OLD" "$NEW"
[ "$(each killed "SELECT count(*) FROM pg_prepared_xacts" | sum)" -eq 0 ] || { echo "FAIL: prepared transactions left"; exit 1; }
[ "$(each killed "SELECT count(*) FROM stock_shard_move" | sum)" -eq 0 ] || { echo "FAIL: a move record left"; exit 1; }
"$HELPER" check "$NEW"
"$CTL" reconcile "$NEW" >/dev/null || { echo "FAIL: reconcile (I2) after the killed move"; exit 1; }

echo "== a move of a store with hot SKUs killed at random steps, then run again"
OLD=$(hot_old hotkilled) NEW=$(hot_new hotkilled)
"$HELPER" hotsetup "$OLD"
before=$(hot_rows hotkilled)
for ((round = 1; round <= KILLS; round++)); do
    n=$((1 + RANDOM % 20))
    rc=0; out=$("$HELPER" kill "$OLD" "$NEW" "$n" 2>&1) || rc=$?
    [ "$rc" -eq 137 ] || [ "$out" = done ] || { echo "FAIL: hot round $round: exit $rc: $out"; exit 1; }
    rc2=0; out=$("$HELPER" kill "$OLD" "$NEW" 1 2>&1) || rc2=$?
    now=$(hot_rows hotkilled)
    left=$(each hotkilled "SELECT count(*) FROM pg_prepared_xacts" | sum)
    echo "hot round $round: killed at step $n (exit $rc); recovered (exit $rc2): pieces, stock, lines $now; $left prepared"
    [ "$now" = "$before" ] && [ "$left" -eq 0 ] || { echo "FAIL: expected $before, 0 prepared"; exit 1; }
done
"$CTL" reshard "$OLD" "$NEW"
[ "$(hot_rows hotkilled)" = "$before" ] || { echo "FAIL: the hot SKUs changed"; exit 1; }
[ "$(each hotkilled "SELECT count(*) FROM stock_shard_move" | sum)" -eq 0 ] || { echo "FAIL: a move record left"; exit 1; }
"$HELPER" hotcheck "$NEW"
"$CTL" reconcile "$NEW" >/dev/null || { echo "FAIL: reconcile (I2) after the killed hot move"; exit 1; }
echo "OK"
