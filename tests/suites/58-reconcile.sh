#!/usr/bin/env bash
# 58-reconcile.sh -- `stockctl reconcile` on real stores (a real PostgreSQL
# and a real redis-server, started by the harness):
#   - two embedded stores made by the same operations (one a copy of the
#     other's folder) are equal (exit 0); one of them given a line, a refund
#     and an adjustment the other lacks is different (exit 1) with each
#     reason; --repair makes them equal (the refund made on B with A's
#     refund id), and a second --repair writes nothing and finds them equal;
#   - every kind of difference between two embedded stores, each with its
#     own reason and nothing else: a missing and an extra refund on a line
#     whose refunded totals are equal (only the ids tell), a line's qty, SKU
#     and order, a SKU only B has, a hold only A has (its available is not
#     repaired, the hold not copied); --repair makes only the missing
#     refund and an adjustment, and a second --repair changes nothing;
#   - an embedded store and postgres, then redis and postgres, made by the
#     same operations: equal, and each store agrees with its own flow (I2);
#   - drift made by hand: a line deleted in postgres (psql), a counter
#     changed in postgres (psql) and in redis (redis-cli), a refund taken out
#     of postgres (its row and the totals it added) are found with their
#     reasons (missing line, I2, counter drift, missing refund), repaired
#     once, and a second --repair changes nothing in B (its totals stay);
#   - RECONCILE_LINES lines (1,000 SKUs, loaded into redis and into postgres
#     directly by tests/harness/reconcile_fill.sh) reconciled equal: peak
#     RSS of stockctl below RECONCILE_RSS_MAX_KIB, printed with the
#     lines/s; then one line's refunded changed in postgres is found, with
#     the two I2 differences it makes there, and nothing else.
# RECONCILE_LINES: default 50000 (sanitizer builds 20000), to stay within
# the suite's time; bench/reconcile.sh measures 1,000,000.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/harness/pg.sh
. tests/harness/redis.sh
. tests/harness/reconcile_fill.sh
LINES=${RECONCILE_LINES:-50000}
# ASan holds freed memory back from reuse (its quarantine, 256 MiB by
# default), which peak RSS would count: keep it small, so the bound measures
# what stockctl keeps; and a sanitizer build reconciles fewer lines.
case "$BUILD" in
*san*)
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1"
    LINES=${RECONCILE_LINES:-20000}
    ;;
esac
RSS_MAX_KIB=${RECONCILE_RSS_MAX_KIB:-65536}
dir=$(mktemp -d /tmp/stockd-reconcile.XXXXXX)
cleanup() {
    pg_stop
    redis_stop
    rm -rf "$dir"
}
trap cleanup EXIT
pg_start
redis_start
echo "postgres $PG_URI (pid $PG_PID), redis $REDIS_URI (pid $REDIS_PID)"
cp "$BUILD/stockctl" "$dir/stockctl"
ctl="$dir/stockctl"
fail() { echo "FAIL: $*"; exit 1; }

# The same history on any store: SKUs, lone lines, orders (one over two
# SKUs), refunds, adjustments with and without an id.
history() {
    local s=$1
    "$ctl" --store "$s" set A 100 >/dev/null
    "$ctl" --store "$s" set B 50 >/dev/null
    "$ctl" --store "$s" set C 7 >/dev/null
    "$ctl" --store "$s" deduct L1 A 3 >/dev/null
    "$ctl" --store "$s" deduct L2 A 4 >/dev/null
    "$ctl" --store "$s" order O1 OL1 A 2 OL2 B 5 >/dev/null
    "$ctl" --store "$s" order O2 OL3 B 1 OL4 B 2 >/dev/null
    "$ctl" --store "$s" refund R1 L1 2 >/dev/null
    "$ctl" --store "$s" refund R2 OL2 5 >/dev/null
    "$ctl" --store "$s" add A 10 --id ADJ1 >/dev/null
    "$ctl" --store "$s" add C -2 >/dev/null
}

# reconcile WANT_EXIT ARGS...: runs it with --json into $out, checks the
# exit code.
reconcile() {
    local want=$1 got=0
    shift
    out=$("$ctl" reconcile --json "$@") || got=$?
    [ "$got" = "$want" ] || fail "reconcile $* exited $got, wanted $want: $out"
}
# has REASON [FIELD|LINE|REFUND]: $out lists a difference with that reason
# (and field, line or refund).
has() {
    echo "$out" | jq -e --arg r "$1" --arg f "${2:-}" \
        '[.differences[] | select(.reason == $r and
            ($f == "" or .field == $f or .line == $f or .refund == $f))] | length > 0' \
        >/dev/null || fail "no '$1 ${2:-}' in: $out"
}
# only REASON...: $out's differences have these reasons and no other.
only() {
    echo "$out" | jq -e '[.differences[].reason] - $ARGS.positional == []' --args "$@" \
        >/dev/null || fail "a reason other than $* in: $out"
}
totals() {
    "$ctl" --store "$1" --json get "$2" | jq -c '[.available,.adjusted,.deducted,.refunded]'
}

echo "== embedded vs embedded (a copy)"
history "$dir/a"
cp -r "$dir/a" "$dir/b"
reconcile 0 "$dir/a" "$dir/b"
echo "$out" | jq -e '.equal and .skus == 3 and .lines == 6 and .different == 0' >/dev/null ||
    fail "copies: $out"
reconcile 0 "$dir/a"
"$ctl" --store "$dir/a" deduct L9 C 1 >/dev/null
"$ctl" --store "$dir/a" refund R3 OL3 1 >/dev/null
"$ctl" --store "$dir/a" add B 4 --id ADJ2 >/dev/null
"$ctl" --store "$dir/a" set D 9 >/dev/null
reconcile 1 "$dir/a" "$dir/b"
has "missing line" L9
has "missing refund" R3
has "different refunded" OL3
has "counter drift" adjusted
has "missing sku"
text=$("$ctl" reconcile "$dir/a" "$dir/b") && fail "text reconcile exited 0"
echo "$text" | grep -q "^line L9 (sku C): missing line: in A (qty 1), not in B$" ||
    fail "text report: $text"
reconcile 1 --repair "$dir/a" "$dir/b"
echo "$out" | jq -e '.repaired > 0 and .repaired == .different' >/dev/null ||
    fail "not everything repaired: $out"
reconcile 0 --repair "$dir/a" "$dir/b"
echo "$out" | jq -e '.repaired == 0' >/dev/null || fail "second repair: $out"
for sku in A B C D; do
    [ "$(totals "$dir/a" $sku)" = "$(totals "$dir/b" $sku)" ] || fail "$sku differs after repair"
done
[ "$("$ctl" --store "$dir/b" --json refund R3 OL3 1 | jq -r .code)" = REPLAY ] ||
    fail "the missing refund was not made on B with A's id R3"
"$ctl" --store "$dir/b" deduct LB C 1 >/dev/null
reconcile 1 --repair "$dir/a" "$dir/b"
has "extra line" LB
echo "$out" | jq -e '[.differences[] | select(.line == "LB")][0] | .b == 1 and .a == null and (.repaired | not)' \
    >/dev/null || fail "a line only B has: $out"

echo "-- every kind of difference with its own reason; refunds compared by id"
"$ctl" --store "$dir/c" set A 100 >/dev/null
"$ctl" --store "$dir/c" set C 10 >/dev/null
"$ctl" --store "$dir/c" deduct L1 A 5 >/dev/null
"$ctl" --store "$dir/c" refund R1 L1 2 >/dev/null
cp -r "$dir/c" "$dir/d"
# Same refunded total on L1 (3), other refund ids: only ids tell.
"$ctl" --store "$dir/c" refund R2 L1 1 >/dev/null
"$ctl" --store "$dir/d" refund R9 L1 1 >/dev/null
"$ctl" --store "$dir/c" deduct LQ C 1 >/dev/null
"$ctl" --store "$dir/d" deduct LQ C 2 >/dev/null
"$ctl" --store "$dir/d" set B 5 >/dev/null
"$ctl" --store "$dir/c" deduct LS A 1 >/dev/null
"$ctl" --store "$dir/d" deduct LS B 1 >/dev/null
"$ctl" --store "$dir/c" order O7 LO C 1 >/dev/null
"$ctl" --store "$dir/d" deduct LO C 1 >/dev/null
"$ctl" --store "$dir/c" hold H1 A 2 600000 >/dev/null
reconcile 1 "$dir/c" "$dir/d"
has "missing refund" R2
has "extra refund" R9
has "different qty" LQ
has "different sku" LS
has "different order" LO
has "extra sku"
has "counter drift" held
only "missing refund" "extra refund" "different qty" "different sku" "different order" \
    "extra sku" "counter drift"
echo "$out" | jq -e '[.differences[] | select(.refund == "R2")][0] | .line == "L1" and .a == 1 and .b == null' \
    >/dev/null || fail "the missing refund's line and qty: $out"
reconcile 1 --repair "$dir/c" "$dir/d"
# The refund A has, and C's available (by an adjustment): nothing else can
# be repaired here, and A's available is not, its holds differing.
echo "$out" | jq -e '[.differences[] | select(.repaired) | .refund // (.sku + ":" + .field)] | sort ==
        ["C:available", "R2"]' >/dev/null || fail "--repair must make R2 and C's available only: $out"
echo "$out" | jq -e '[.differences[] | select(.field == "available")][0].repair | test("holds differ")' \
    >/dev/null || fail "available repaired although the holds differ: $out"
[ "$("$ctl" --store "$dir/d" --json hold-info H1 | jq -r .code)" = NOTFOUND ] ||
    fail "--repair touched holds"
before=$(for sku in A B C; do totals "$dir/d" $sku; done)
reconcile 1 --repair "$dir/c" "$dir/d"
echo "$out" | jq -e '.repaired == 0' >/dev/null || fail "second repair: $out"
[ "$(for sku in A B C; do totals "$dir/d" $sku; done)" = "$before" ] || fail "the second repair changed B"
reconcile 0 "$dir/c"

echo "-- errors, and progress only on a terminal"
reconcile 2 "$dir/a" "redis://127.0.0.1:1"
echo "$out" | jq -e '.error | test("redis://127.0.0.1:1: UNAVAILABLE")' >/dev/null || fail "no error: $out"
reconcile 2 --repair "$dir/a"
echo "$out" | jq -e '.code == "INVALID" and (.message | test("--repair needs two stores"))' \
    >/dev/null || fail "--repair with one store: $out"
"$ctl" reconcile "$dir/a" "$dir/a-copy-missing" >/dev/null 2>"$dir/stderr" || true
[ ! -s "$dir/stderr" ] || fail "progress or noise on a stderr that is no terminal: $(cat "$dir/stderr")"
rm -rf "$dir/a-copy-missing"
script -qec "$ctl reconcile $dir/a $dir/b >/dev/null" /dev/null >"$dir/tty" || true
grep -Eq "reconcile: 4 SKUs, 7 lines, [1-9][0-9]* differences" "$dir/tty" || fail "no progress on a terminal: $(cat -v "$dir/tty")"

echo "== embedded vs postgres"
history "$dir/e"
history "$PG_URI"
reconcile 0 "$dir/e" "$PG_URI"
reconcile 0 "$PG_URI"
echo "-- a line deleted in postgres"
pg_psql -c "DELETE FROM inventory_flow WHERE line_id = 'L2'"
reconcile 1 "$PG_URI"
has "I2"
reconcile 1 "$dir/e" "$PG_URI"
has "missing line" L2
has "I2" "B: deducted vs its lines' qty"
reconcile 1 --repair "$dir/e" "$PG_URI"
echo "$out" | jq -e '[.differences[] | select(.line == "L2")][0].repaired' >/dev/null ||
    fail "L2 not repaired: $out"
[ "$("$ctl" --store "$PG_URI" --json line L2 | jq -c '[.sku,.qty]')" = '["A",4]' ] ||
    fail "L2 not back in postgres"
before=$(totals "$PG_URI" A)
[ "$(echo "$before" | jq '.[0]')" = "$(totals "$dir/e" A | jq '.[0]')" ] ||
    fail "A's available differs after the repair: $before"
reconcile 1 --repair "$dir/e" "$PG_URI"
echo "$out" | jq -e '.repaired == 0' >/dev/null || fail "second repair of L2: $out"
[ "$(totals "$PG_URI" A)" = "$before" ] || fail "the second repair changed A in postgres"
echo "-- a counter changed in postgres"
pg_psql -c "UPDATE inventory SET leaved_amount = leaved_amount + 5 WHERE sku_id = 'C'"
reconcile 1 "$dir/e" "$PG_URI"
has "counter drift" available
has "I2" "B: available+held vs adjusted-deducted+refunded"
reconcile 1 --repair "$dir/e" "$PG_URI"
[ "$(totals "$PG_URI" C | jq '.[0]')" = "$(totals "$dir/e" C | jq '.[0]')" ] ||
    fail "C's available not repaired"
before=$(totals "$PG_URI" C)
reconcile 1 --repair "$dir/e" "$PG_URI"
echo "$out" | jq -e '.repaired == 0 and ([.differences[] | select(.field == "available")] | length == 0)' \
    >/dev/null || fail "second repair of C: $out"
[ "$(totals "$PG_URI" C)" = "$before" ] || fail "the second repair changed C in postgres"
echo "-- a refund missing in postgres (its row, and what it added, taken out by hand)"
pg_psql -c "DELETE FROM inventory_refunds WHERE refund_id = 'R2';
            UPDATE inventory_flow SET refunded = refunded - 5 WHERE line_id = 'OL2';
            UPDATE inventory SET refunded = refunded - 5, leaved_amount = leaved_amount - 5
             WHERE sku_id = 'B'"
reconcile 1 "$dir/e" "$PG_URI"
has "missing refund" R2
has "different refunded" OL2
has "counter drift" refunded
reconcile 1 --repair "$dir/e" "$PG_URI"
echo "$out" | jq -e '[.differences[] | select(.refund == "R2")][0].repaired' >/dev/null ||
    fail "R2 not repaired: $out"
[ "$("$ctl" --store "$PG_URI" --json refund R2 OL2 5 | jq -r .code)" = REPLAY ] ||
    fail "R2 not made again in postgres with its own id"
before=$(totals "$PG_URI" B)
[ "$before" = "$(totals "$dir/e" B)" ] || fail "B differs after the refund's repair: $before"
reconcile 1 --repair "$dir/e" "$PG_URI"
echo "$out" | jq -e '.repaired == 0 and ([.differences[] | select(.sku == "B")] | length == 0)' \
    >/dev/null || fail "second repair of R2: $out"
[ "$(totals "$PG_URI" B)" = "$before" ] || fail "the second repair changed B in postgres"

echo "== redis vs postgres"
pg_psql -c "TRUNCATE inventory, inventory_flow, inventory_orders, inventory_refunds, inventory_adjustments"
history "$REDIS_URI"
history "$PG_URI"
reconcile 0 "$REDIS_URI" "$PG_URI"
reconcile 0 "$PG_URI" "$REDIS_URI"
reconcile 0 "$REDIS_URI"
echo "-- a counter changed in redis"
redis_cli HSET '{sku:B}' av 1000 >/dev/null
reconcile 1 "$REDIS_URI"
has "I2"
reconcile 1 "$PG_URI" "$REDIS_URI"
has "counter drift" available
reconcile 1 --repair "$PG_URI" "$REDIS_URI"
before=$(totals "$REDIS_URI" B)
[ "$(echo "$before" | jq '.[0]')" = "$(totals "$PG_URI" B | jq '.[0]')" ] ||
    fail "B's available not repaired in redis: $before"
reconcile 1 --repair "$PG_URI" "$REDIS_URI"
echo "$out" | jq -e '.repaired == 0' >/dev/null || fail "second repair in redis: $out"
[ "$(totals "$REDIS_URI" B)" = "$before" ] || fail "the second repair changed B in redis"
echo "-- a line deleted in redis"
redis_cli HDEL '{sku:A}:flow' OL1 >/dev/null
reconcile 1 "$PG_URI" "$REDIS_URI"
has "missing line" OL1

echo "== $LINES lines, redis vs postgres"
redis_cli FLUSHALL >/dev/null
redis_cli CONFIG SET appendfsync no >/dev/null
pg_psql -c "TRUNCATE inventory, inventory_flow, inventory_orders, inventory_refunds, inventory_adjustments"
skus=1000
per=$((LINES / skus))
reconcile_fill "$skus" "$per"
[ "$(redis_cli DBSIZE)" -ge "$LINES" ] || fail "redis was not loaded"
start=$(date +%s.%N)
/usr/bin/time -f "%M" -o "$dir/rss" "$ctl" reconcile --json "$REDIS_URI" "$PG_URI" >"$dir/big.json" ||
    fail "$LINES lines: exit $? $(head -c 600 "$dir/big.json")"
end=$(date +%s.%N)
jq -e --argjson n "$LINES" '.equal and .lines == $n and .skus == 1000' "$dir/big.json" >/dev/null ||
    fail "$LINES lines: $(head -c 600 "$dir/big.json")"
rss=$(cat "$dir/rss")
rate=$(echo "$LINES / ($end - $start)" | bc)
echo "reconcile of $LINES lines (1000 SKUs), redis vs postgres: equal, $(echo "$end - $start" | bc) s, $rate lines/s, peak RSS ${rss} KiB"
[ "$rss" -lt "$RSS_MAX_KIB" ] || fail "peak RSS ${rss} KiB is not below $RSS_MAX_KIB KiB"
changed="L500-$((per / 2))"
pg_psql -c "UPDATE inventory_flow SET refunded = 1 WHERE line_id = '$changed'"
reconcile 1 "$REDIS_URI" "$PG_URI"
echo "$out" | jq -e --arg l "$changed" '.different == 3 and
        ([.differences[] | select(.reason == "different refunded")] | length == 1) and
        ([.differences[] | select(.reason == "I2")] | length == 2) and
        ([.differences[] | select(.sku == "S500" and (.line == null or .line == $l))] | length == 3)' \
    >/dev/null || fail "one changed line among $LINES: $(echo "$out" | head -c 600)"
echo "58-reconcile: equal stores equal, drift found with its reason and repaired once, $LINES lines in ${rss} KiB"
