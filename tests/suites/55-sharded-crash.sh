#!/usr/bin/env bash
# 55-sharded-crash.sh -- carts over several shards killed (SIGKILL of the
# writer process, from its own log hook) at every step of the two-phase
# commit, several times each, on 3 PostgreSQL primaries (pg_start_many):
# after the parts ran and before any PREPARE ("preparing"), between the
# PREPAREs ("prepared"), after the decision is recorded and before any
# COMMIT PREPARED ("decided"), between the COMMIT PREPAREDs ("committed").
# After each kill, the next open of a store resolves what is in doubt:
# tests/system/shard_crash.c checks that every cart has all its lines or
# none (I3), that every SKU balances (I2, and its deducted total is its
# lines'), and that no prepared transaction is left. Then the sweep: a
# store that stays open (stockd) resolves a kill's leftovers without a
# reopen, within SHARD_SWEEP_GRACE_S plus a few seconds.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
HELPER=$BUILD/tests/shard_crash
ROUNDS_PER_STEP=${ROUNDS_PER_STEP:-3}
. tests/harness/pg.sh
trap pg_stop EXIT
pg_start_many 3
URI=$PG_SHARDS_URI
TOKEN="t$$"
"$HELPER" setup "$URI" "$TOKEN"

# The writer dies at the COUNTth message of its step. "preparing" and
# "decided" come once per cart: COUNT 1..3 lets 0..2 carts finish first.
# "prepared" and "committed" come once per shard of a cart (2 or 3 here):
# COUNT 1..2 always falls in the first cart, between its PREPAREs or its
# COMMIT PREPAREDs (COUNT 1 leaves at least one part prepared). The check
# must find the carts before the kill whole, and the cart of the kill whole
# once its commit was decided (recovery commits it, never rolls it back).
round=0 expected=0
for step in preparing prepared decided committed; do
    for ((k = 0; k < ROUNDS_PER_STEP; k++)); do
        case $step in
            preparing|decided) count=$((1 + k % 3)) ;;
            *) count=$((1 + k % 2)) ;;
        esac
        rc=0
        "$HELPER" write "$URI" "$TOKEN" "$step" "$round" "$count" 2>/dev/null || rc=$?
        if [ "$rc" -ne 137 ]; then
            echo "FAIL: the writer was to die at \"$step\" (SIGKILL, 137), exited $rc"
            exit 1
        fi
        case $step in
            preparing) expected=$((expected + count - 1)) ;;
            decided) expected=$((expected + count)) ;;
            committed) expected=$((expected + 1)) ;;
        esac
        round=$((round + 1))
        before=$("$HELPER" prepared "$URI")
        result=$("$HELPER" check "$URI" "$TOKEN" "$round") ||
            { echo "FAIL: after a kill at \"$step\": $result"; exit 1; }
        echo "killed at $step #$count (round $round): $before prepared before reopening; $result"
        [ "$result" = "carts=$expected whole=$expected" ] ||
            { echo "FAIL: expected carts=$expected whole=$expected"; exit 1; }
        case $step in
            preparing) [ "$before" -eq 0 ] ;;
            prepared|decided) [ "$before" -gt 0 ] ;;
            committed) [ "$before" -gt 0 ] || [ "$count" -eq 2 ] ;;
        esac || { echo "FAIL: a kill at \"$step\" #$count left $before prepared"; exit 1; }
    done
done

echo "== a hot SKU's deduction gathered across its 3 pieces, killed at every step"
# Each deduction of hotwrite is more than any piece holds: its piece, then
# the others, refuse it, and it is gathered by two-phase commit. A kill
# before ("gathering"), between the PREPAREs, after the decision, between
# the COMMIT PREPAREDs: the next open leaves the SKU balanced with exactly
# the lines the directory finds, and nothing prepared.
HOT_URI="shards:hot=3:*;${URI#shards:}"
hot_round=0
for step in gathering prepared decided committed; do
    for count in 1 2; do
        rc=0
        "$HELPER" hotwrite "$HOT_URI" "$TOKEN" "$step" "$hot_round" "$count" 2>/dev/null || rc=$?
        [ "$rc" -eq 137 ] || { echo "FAIL: the hot writer was to die at \"$step\" #$count, exited $rc"; exit 1; }
        result=$("$HELPER" hotcheck "$HOT_URI" "$TOKEN" "$hot_round") ||
            { echo "FAIL: after a kill at \"$step\" #$count of a gather: $result"; exit 1; }
        echo "hot: killed at $step #$count: $result"
        hot_round=$((hot_round + 1))
    done
done

echo "== the sweep of a store that stays open"
port=$(pg_free_port)
"$BUILD/stockd" --store "$URI" --port "$port" --http-port 0 >"${PG_MANY_DIRS[0]}/stockd.log" 2>&1 &
stockd_pid=$!
trap 'kill $stockd_pid 2>/dev/null || true; pg_stop' EXIT
for _ in $(seq 100); do
    "$BUILD/stockctl" --store "stockd://127.0.0.1:$port" get "sc-$TOKEN-sku0" >/dev/null 2>&1 && break
    sleep 0.1
done
rc=0
"$HELPER" write "$URI" "$TOKEN" decided "$round" 1 2>/dev/null || rc=$?
[ "$rc" -eq 137 ] || { echo "FAIL: the writer exited $rc"; exit 1; }
round=$((round + 1))
left=$("$HELPER" prepared "$URI")
[ "$left" -gt 0 ] || { echo "FAIL: the kill left nothing prepared"; exit 1; }
for ((s = 0; s < 30; s++)); do
    left=$("$HELPER" prepared "$URI")
    [ "$left" -eq 0 ] && break
    sleep 1
done
[ "$left" -eq 0 ] || { echo "FAIL: the open store's sweep left $left prepared after 30 s"; exit 1; }
echo "the sweep resolved the in-doubt cart in about $s s"
kill "$stockd_pid"
wait "$stockd_pid" || true
"$HELPER" check "$URI" "$TOKEN" "$round"
echo "55-sharded-crash: ok"
