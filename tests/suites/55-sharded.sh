#!/usr/bin/env bash
# 55-sharded.sh -- the sharded backend (docs/sharded.md) over real PostgreSQL
# 15 primaries started by tests/harness/pg.sh (pg_start_many): the
# conformance suite unchanged over 3 shards (--quick, then the full sellout
# in a release build), over 3 shards with every SKU hot (hot=3:*), from two
# stores at once, and over 1 shard; opening refused with members in another
# order, one missing, one from another map, and on a server without
# max_prepared_transactions, each with a message naming the member; two
# processes deducting the same line ids at once for SKUs on different
# shards (tests/system/shard_race.c): each id won by exactly one, the
# other ops of the loser's batches applied, and the same order ids for
# carts over different shards: each won by exactly one; stockd
# serving a sharded store, whose sweep prunes the decisions of finished
# carts, and only those. 55-sharded-crash.sh kills writers mid-cart.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/harness/pg.sh
trap pg_stop EXIT
pg_start_many 4
A=${PG_MANY_URIS[0]} B=${PG_MANY_URIS[1]} C=${PG_MANY_URIS[2]} D=${PG_MANY_URIS[3]}
THREE="shards:$A;$B;$C"
LOG=${PG_MANY_DIRS[0]}

echo "== conformance over 3 shards"
"$BUILD/tests/conformance" --quick "$THREE" >"$LOG/conf3.log" 2>&1 || { cat "$LOG/conf3.log"; exit 1; }
tail -n 1 "$LOG/conf3.log"
case $BUILD in   # the full sellout in a release build only, as pg_conformance (pg.sh) says why
*san*) ;;
*)
    "$BUILD/tests/conformance" --filter 'sellout*' "$THREE" 2>&1 | tail -n 1
    [ "${PIPESTATUS[0]}" -eq 0 ]
    ;;
esac

echo "== conformance over 3 shards with every SKU hot, spread over all 3 (docs/sharded.md, \"Hot SKUs across shards\")"
"$BUILD/tests/conformance" --quick "shards:hot=3:*;$A;$B;$C" >"$LOG/conf3hot.log" 2>&1 ||
    { cat "$LOG/conf3hot.log"; exit 1; }
tail -n 1 "$LOG/conf3hot.log"

echo "== conformance from two stores at once over the same 3 shards"
"$BUILD/tests/conformance" --quick "$THREE" >"$LOG/conf3a.log" 2>&1 & first=$!
"$BUILD/tests/conformance" --quick "$THREE" >"$LOG/conf3b.log" 2>&1 || { cat "$LOG/conf3b.log"; exit 1; }
wait "$first" || { cat "$LOG/conf3a.log"; exit 1; }
tail -n 1 "$LOG/conf3a.log" "$LOG/conf3b.log"

echo "== conformance over 1 shard"
"$BUILD/tests/conformance" --quick "shards:$D" >"$LOG/conf1.log" 2>&1 || { cat "$LOG/conf1.log"; exit 1; }
tail -n 1 "$LOG/conf1.log"

# Runs stockctl get on URI and expects it refused with INVALID and a
# message containing TEXT.
refused() {
    local uri=$1 text=$2 out rc=0
    out=$("$BUILD/stockctl" --store "$uri" get any-sku 2>&1) || rc=$?
    if [ "$rc" -ne 2 ] || ! grep -qF -- "$text" <<<"$out"; then
        echo "FAIL: expected INVALID with \"$text\", got rc=$rc: $out"
        exit 1
    fi
    echo "refused: $(grep -F -- "$text" <<<"$out" | head -n 1)"
}

echo "== a wrong member list is refused, saying which"
port_of() { local rest=${1#*127.0.0.1:}; echo "${rest%%/*}"; }
refused "shards:$B;$A;$C" "member 0 (127.0.0.1:$(port_of "$B")/postgres) is shard 1"
refused "shards:$B;$A;$C" "in another order"
refused "shards:$A;$B" "map"
refused "shards:$A;$B" "has 3 shards but the URI names 2"
refused "shards:$A;$B;$D" "member 2 (127.0.0.1:$(port_of "$D")/postgres)"
refused "shards:$A;$B;$D" "belongs to another map"
pg_start
refused "shards:$A;$B;$PG_URI" "max_prepared_transactions = 0"
"$BUILD/stockctl" --store "$THREE" set sharded-after-refusals 5 >/dev/null
echo "== one member needs no prepared transactions"
"$BUILD/stockctl" --store "shards:$PG_URI" set sharded-one-member 1

members=("$A" "$B" "$C")
echo "== hot SKUs spread over the 3 shards (docs/sharded.md, \"Hot SKUs across shards\")"
psql_on() { "$PG_BIN/psql" -h 127.0.0.1 -p "$(port_of "$1")" -U postgres -d postgres -qtAX -c "$2"; }
HOT="shards:hot=3:hot-a,hot-late;$A;$B;$C"
hot() { "$BUILD/stockctl" --store "$HOT" "$@"; }
pieces() {   # the available stock of SKU $1 on each member, e.g. "3 3 3"
    local uri out=()
    for uri in "$A" "$B" "$C"; do out+=("$(psql_on "$uri" "SELECT coalesce(sum(leaved_amount), 0) FROM inventory WHERE sku_id = '$1'")"); done
    echo "${out[*]}"
}
expect() {   # expect WHAT GOT WANT
    [ "$2" = "$3" ] || { echo "FAIL: $1: got '$2', want '$3'"; exit 1; }
}
hot set hot-a 9 >/dev/null
expect "a set of 9 over 3 pieces" "$(pieces hot-a)" "3 3 3"
out=$(hot deduct hot-l1 hot-a 5) || { echo "FAIL: a deduction only the total covers was refused: $out"; exit 1; }
expect "the deduction of 5 from pieces of 3" "$out" "deduct sku hot-a: available 4"
holder=-1
for i in 0 1 2; do
    uri=${members[$i]}
    [ "$(psql_on "$uri" "SELECT count(*) FROM inventory_flow WHERE line_id = 'hot-l1'")" = 1 ] && holder=$i
done
[ "$holder" -ge 0 ] || { echo "FAIL: no member holds the line hot-l1"; exit 1; }
directory=$(for uri in "$A" "$B" "$C"; do psql_on "$uri" "SELECT shard FROM stock_ids WHERE kind = 'L' AND id = 'hot-l1'"; done)
expect "the directory entry of hot-l1" "$directory" "$holder"
expect "the refund of hot-l1" "$(hot refund hot-r1 hot-l1 2)" "refund line hot-l1: available 6"
expect "the line's member after the refund" "$(psql_on "${members[$holder]}" "SELECT refunded FROM inventory_flow WHERE line_id = 'hot-l1'")" 2
hot get hot-a | grep -q "deducted *5" || { echo "FAIL: get does not sum the pieces"; hot get hot-a; exit 1; }
hot get hot-a | grep -q "available *6" || { echo "FAIL: get does not sum the pieces"; hot get hot-a; exit 1; }
rc=0; out=$(hot deduct hot-l2 hot-a 7 2>&1) || rc=$?
[ "$rc" -ne 0 ] && grep -q "INSUFFICIENT.*available=6" <<<"$out" ||
    { echo "FAIL: a deduction above the total: rc=$rc $out"; exit 1; }
rc=0; out=$(hot set hot-a 12 --expect 5 2>&1) || rc=$?
[ "$rc" -ne 0 ] && grep -q "MISMATCH sku=hot-a current=6" <<<"$out" ||
    { echo "FAIL: a set of a hot SKU expecting 5 of 6: rc=$rc $out"; exit 1; }
hot set hot-a 12 --expect 6 >/dev/null
expect "a set of 12 expecting 6" "$(pieces hot-a)" "4 4 4"
# A SKU named hot after it was set: its stock is all on piece 0, the
# other pieces have no rows; deductions whose lines hash there still take.
"$BUILD/stockctl" --store "$THREE" set hot-late 6 >/dev/null
for i in 1 2 3; do
    out=$(hot deduct "hot-late-l$i" hot-late 2) || { echo "FAIL: a SKU named hot later: $out"; exit 1; }
done
expect "a SKU named hot later, after 3 deductions of 2" "$(pieces hot-late)" "0 0 0"
echo "hot-a: set over 3 pieces, a deduction of 5 from pieces of 3 taken on member $holder, refunded there, a deduction of 7 refused with 6 in stock"

echo "== concurrent sellout of a hot SKU over 3 shards, from two stores"
SPREAD="shards:hot=3:*;$A;$B;$C"
sell_stock=2000 sell_ops=3000
case $BUILD in *san*) sell_stock=600 sell_ops=1000 ;; esac   # the sanitizers' build is slower
"$BUILD/stockbench" --store "$SPREAD" --workload sellout --skus 1 --stock "$sell_stock" -n "$sell_ops" -c 4 -P 8 \
    --prefix "hot-sell" --no-progress >"$LOG/hot-sell.log" 2>&1 &
seller=$!
"$BUILD/stockbench" --store "$SPREAD" --workload hot --skus 4 --stock 500 -n "$sell_ops" -c 4 -P 8 \
    --prefix "hot-bench" --no-progress >"$LOG/hot-bench.log" 2>&1 || { cat "$LOG/hot-bench.log"; exit 1; }
wait "$seller" || { cat "$LOG/hot-sell.log"; exit 1; }
grep -i "check" "$LOG/hot-sell.log" "$LOG/hot-bench.log" | head -n 4

echo "== two stores racing on the same line ids for SKUs on different shards (docs/sharded.md, \"One id, one winner\")"
race_ids=400 race_stock=100000
case $BUILD in *san*) race_ids=150 ;; esac
shard_holding() {   # the member that holds SKU $1's row
    local i
    for i in 0 1 2; do
        [ "$(psql_on "${members[$i]}" "SELECT count(*) FROM inventory WHERE sku_id = '$1'")" -gt 0 ] && echo "$i"
    done
    return 0
}
"$BUILD/stockctl" --store "$THREE" set race-a "$race_stock" >/dev/null
home_a=$(shard_holding race-a) sku_b=
for n in $(seq 1 20); do
    "$BUILD/stockctl" --store "$THREE" set "race-b$n" "$race_stock" >/dev/null
    [ "$(shard_holding "race-b$n")" != "$home_a" ] && { sku_b=race-b$n; break; }
done
[ -n "$sku_b" ] || { echo "FAIL: no SKU on another shard than race-a's"; exit 1; }
for round in 1 2 3; do
    start=$(($(date +%s) + 2))
    "$BUILD/tests/shard_race" "$THREE" race-a "race$round-" "$race_ids" "$start" >"$LOG/race-a$round.log" & racer=$!
    "$BUILD/tests/shard_race" "$THREE" "$sku_b" "race$round-" "$race_ids" "$start" >"$LOG/race-b$round.log"
    wait "$racer"
done
# Each batch also carried a deduction of the same SKU with an id of its
# own ("own" lines): fenced or not, the racing op must not take it along.
cat "$LOG"/race-a?.log | grep -v '^own ' >"$LOG/race-a.log"
cat "$LOG"/race-b?.log | grep -v '^own ' >"$LOG/race-b.log"
own_failed=$(cat "$LOG"/race-[ab]?.log | grep '^own ' | grep -v ' OK$' || true)
[ -z "$own_failed" ] || { echo "FAIL: $(wc -l <<<"$own_failed") ops of the racing batches with ids of their own failed, e.g. $(head -n 1 <<<"$own_failed")"; exit 1; }
both=$(join <(grep ' OK$' "$LOG/race-a.log" | sort) <(grep ' OK$' "$LOG/race-b.log" | sort) | wc -l)
wins_a=$(grep -c ' OK$' "$LOG/race-a.log" || true)
wins_b=$(grep -c ' OK$' "$LOG/race-b.log" || true)
neither=$(join <(grep -v ' OK$' "$LOG/race-a.log" | sort) <(grep -v ' OK$' "$LOG/race-b.log" | sort) | wc -l)
echo "race: $((3 * race_ids)) ids, race-a won $wins_a, $sku_b won $wins_b, both $both, neither $neither;" \
     "losers answered: $(cat "$LOG/race-a.log" "$LOG/race-b.log" | grep -v ' OK$' | cut -d' ' -f2 | sort | uniq -c | tr '\n' ' ')"
[ "$both" = 0 ] || { echo "FAIL: $both line ids were deducted by both stores"; exit 1; }
[ "$neither" = 0 ] || { echo "FAIL: $neither line ids were deducted by neither store"; exit 1; }
lines=0
for uri in "${members[@]}"; do
    lines=$((lines + $(psql_on "$uri" "SELECT count(*) FROM inventory_flow WHERE line_id LIKE 'race_-%'")))
done
[ "$lines" = "$((9 * race_ids))" ] || { echo "FAIL: $lines lines on the members for $((9 * race_ids)) ids"; exit 1; }
# I2 for both SKUs: available is the set level less the winner's lines and
# its own, and deducted is the sum of the lines the members hold of it.
for sku in race-a "$sku_b"; do
    wins=$(($(grep -c ' OK$' "$LOG/$([ "$sku" = race-a ] && echo race-a || echo race-b).log") + 3 * race_ids))
    held=0
    for uri in "${members[@]}"; do
        held=$((held + $(psql_on "$uri" "SELECT coalesce(sum(qty), 0) FROM inventory_flow WHERE sku_id = '$sku'")))
    done
    info=$("$BUILD/stockctl" --store "$THREE" get "$sku")
    grep -q "available *$((race_stock - wins))\$" <<<"$info" && grep -q "deducted *$wins\$" <<<"$info" &&
        [ "$held" = "$wins" ] ||
        { echo "FAIL: $sku won $wins lines, the members hold $held of it: $info"; exit 1; }
done
sample=$(grep ' OK$' "$LOG/race-a.log" | head -n 1 | cut -d' ' -f1)
"$BUILD/stockctl" --store "$THREE" line "$sample" | grep -q "race-a" ||
    { echo "FAIL: the line $sample that race-a won does not name it"; "$BUILD/stockctl" --store "$THREE" line "$sample"; exit 1; }
echo "== two stores racing on the same order ids for carts over different shards (docs/sharded.md, \"One id, one winner\")"
# Cart a over shards 1 and 2 (its coordinator 1), cart b over 0 and 1
# (coordinator 0): b taking the id over fences shard 1, where its own part
# must still write the order.
s0= s1a= s1b= s2=   # SKUs on shard 0, two on shard 1, one on shard 2
for n in $(seq 1 60); do
    sku=orace-s$n
    "$BUILD/stockctl" --store "$THREE" set "$sku" "$race_stock" >/dev/null
    case $(shard_holding "$sku") in
        0) s0=${s0:-$sku} ;;
        1) if [ -z "$s1a" ]; then s1a=$sku; else s1b=${s1b:-$sku}; fi ;;
        2) s2=${s2:-$sku} ;;
    esac
    [ -n "$s0" ] && [ -n "$s1b" ] && [ -n "$s2" ] && break
done
[ -n "$s0" ] && [ -n "$s1b" ] && [ -n "$s2" ] || { echo "FAIL: no SKUs on each shard for the carts"; exit 1; }
order_ids=150
case $BUILD in *san*) order_ids=50 ;; esac
for round in 1 2; do
    start=$(($(date +%s) + 2))
    "$BUILD/tests/shard_race" "$THREE" "$s1a" "orace$round-" "$order_ids" "$start" "$s2" \
        >"$LOG/orace-a$round.log" & racer=$!
    "$BUILD/tests/shard_race" "$THREE" "$s0" "orace$round-" "$order_ids" "$start" "$s1b" \
        >"$LOG/orace-b$round.log"
    wait "$racer"
done
cat "$LOG"/orace-a?.log >"$LOG/orace-a.log"
cat "$LOG"/orace-b?.log >"$LOG/orace-b.log"
both=$(join <(grep ' OK$' "$LOG/orace-a.log" | sort) <(grep ' OK$' "$LOG/orace-b.log" | sort) | wc -l)
neither=$(join <(grep -v ' OK$' "$LOG/orace-a.log" | sort) <(grep -v ' OK$' "$LOG/orace-b.log" | sort) | wc -l)
wins_a=$(grep -c ' OK$' "$LOG/orace-a.log" || true)
wins_b=$(grep -c ' OK$' "$LOG/orace-b.log" || true)
echo "order race: $((2 * order_ids)) ids, carts a won $wins_a, carts b won $wins_b, both $both, neither $neither;" \
     "losers answered: $(cat "$LOG/orace-a.log" "$LOG/orace-b.log" | grep -v ' OK$' | cut -d' ' -f2 | sort | uniq -c | tr '\n' ' ')"
[ "$both" = 0 ] || { echo "FAIL: $both order ids were used by both stores"; exit 1; }
[ "$neither" = 0 ] || { echo "FAIL: $neither order ids were used by neither store"; exit 1; }
# Every winner's cart is whole (I3) on its SKUs, and nothing is left prepared.
for pair in "a:$s1a" "a:$s2" "b:$s0" "b:$s1b"; do
    side=${pair%%:*} sku=${pair#*:}
    wins=$(grep -c ' OK$' "$LOG/orace-$side.log" || true) held=0
    for uri in "${members[@]}"; do
        held=$((held + $(psql_on "$uri" "SELECT count(*) FROM inventory_flow WHERE sku_id = '$sku' AND line_id LIKE 'orace_-%'")))
    done
    [ "$held" = "$wins" ] || { echo "FAIL: carts $side won $wins orders, the members hold $held lines of $sku"; exit 1; }
done
for uri in "${members[@]}"; do
    [ "$(psql_on "$uri" "SELECT count(*) FROM pg_prepared_xacts")" = 0 ] ||
        { echo "FAIL: a transaction is left prepared on $uri"; exit 1; }
done

echo "== stockd serving the 3-shard store"
# Its two ports are picked free but not held: the two picks may be equal,
# or a suite running beside this one may take one first; stockd then
# exits at start and is started again on other ports.
stockd_pid=""
trap 'kill $stockd_pid 2>/dev/null || true; pg_stop' EXIT
for attempt in 1 2 3 4 5; do
    port=$(pg_free_port) http=$(pg_free_port)
    [ "$http" != "$port" ] || continue
    "$BUILD/stockd" --store "$THREE" --port "$port" --http-port "$http" >"$LOG/stockd.log" 2>&1 &
    stockd_pid=$!
    for _ in $(seq 600); do   # its open checks the map and recovers: slow on a loaded machine
        kill -0 "$stockd_pid" 2>/dev/null || break
        "$BUILD/stockctl" --store "stockd://127.0.0.1:$port" get sharded-after-refusals >/dev/null 2>&1 &&
            break 2
        sleep 0.1
    done
    echo "stockd did not serve on ports $port and $http (attempt $attempt); its log:"
    tail -n 5 "$LOG/stockd.log"
    kill "$stockd_pid" 2>/dev/null || true
    wait "$stockd_pid" 2>/dev/null || true
done
"$BUILD/stockctl" --store "stockd://127.0.0.1:$port" deduct sharded-l1 sharded-after-refusals 2
"$BUILD/stockctl" --store "$THREE" get sharded-after-refusals | grep -q "available *3" ||
    { echo "FAIL: the deduction through stockd is not in the store"; "$BUILD/stockctl" --store "$THREE" get sharded-after-refusals; exit 1; }

echo "== the sweep prunes finished decisions (docs/sharded.md, \"Pruning decisions\")"
decisions() {   # rows of stock_decisions on all 3 members matching SQL condition $1
    local uri total=0
    for uri in "${members[@]}"; do total=$((total + $(psql_on "$uri" "SELECT count(*) FROM stock_decisions WHERE $1"))); done
    echo "$total"
}
for i in $(seq 0 11); do "$BUILD/stockctl" --store "stockd://127.0.0.1:$port" set "prune-sku-$i" 100 >/dev/null; done
for k in $(seq 1 6); do
    "$BUILD/stockctl" --store "stockd://127.0.0.1:$port" order "prune-o$k" \
        "prune-o$k-1" "prune-sku-$((2 * k - 2))" 1 "prune-o$k-2" "prune-sku-$((2 * k - 1))" 1 \
        "prune-o$k-3" "prune-sku-$(((2 * k + 4) % 12))" 1 >/dev/null
done
carts=$(decisions "commit")
[ "$carts" -gt 0 ] || { echo "FAIL: 6 carts over 12 SKUs recorded no decision"; exit 1; }
map=$(psql_on "$A" "SELECT map_id FROM stock_shard_map")
now_us=$(($(date +%s) * 1000000))
# Older than the commit age; an abort of an hour (kept: a stalled
# coordinator may still need it) and of two days (removed); a commit whose
# gid is still prepared on B (kept; coordinator 9 is no member, so recovery
# leaves it alone).
for uri in "${members[@]}"; do psql_on "$uri" "UPDATE stock_decisions SET time_us = time_us - 120000000" >/dev/null; done
# Prepared before its decision is written: a sweep between the two would
# otherwise find an old commit that nothing lists as prepared, and prune it.
psql_on "$B" "BEGIN; PREPARE TRANSACTION 'stock:$map:9:f00:3'" >/dev/null
psql_on "$A" "INSERT INTO stock_decisions VALUES
    ('stock:$map:0:f00:1', false, $((now_us - 3600000000))),
    ('stock:$map:0:f00:2', false, $((now_us - 172800000000))),
    ('stock:$map:9:f00:3', true, $((now_us - 120000000)))" >/dev/null
# A part left prepared without a decision, as a coordinator that died
# leaves one, or a PREPARE that a loaded server finished after its cart
# gave up waiting: the sweep rolls it back and writes its abort, which stays
# a day like any abort. Earlier steps may leave such aborts too (a part
# timed out, an open's recovery meeting another store's cart between its
# PREPAREs), so the commits are what must go, not every decision.
psql_on "$B" "BEGIN; PREPARE TRANSACTION 'stock:$map:1:dead:1'" >/dev/null
for _ in $(seq 150); do
    [ "$(decisions "commit AND gid NOT LIKE '%:f00:%'")" = 0 ] && [ "$(decisions "gid LIKE '%:f00:2'")" = 0 ] &&
        [ "$(decisions "gid LIKE '%:dead:1'")" = 1 ] && break
    sleep 0.2
done
[ "$(decisions "commit AND gid NOT LIKE '%:f00:%'")" = 0 ] || { echo "FAIL: the commits of finished carts were not pruned within 30 s"; exit 1; }
[ "$(decisions "gid LIKE '%:f00:2'")" = 0 ] || { echo "FAIL: an abort two days old was not pruned"; exit 1; }
[ "$(decisions "gid LIKE '%:dead:1' AND NOT commit")" = 1 ] &&
    [ "$(psql_on "$B" "SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE '%:dead:1'")" = 0 ] ||
    { echo "FAIL: a part left prepared without a decision was not rolled back with an abort that stays"; exit 1; }
[ "$(decisions "gid LIKE '%:f00:1'")" = 1 ] || { echo "FAIL: an abort an hour old was pruned"; exit 1; }
[ "$(decisions "gid LIKE '%:f00:3'")" = 1 ] || { echo "FAIL: the decision of a prepared transaction was pruned"; exit 1; }
echo "pruned: the decisions of $carts finished carts and an old abort; kept a recent abort, a prepared one's and the sweep's own abort"
psql_on "$B" "ROLLBACK PREPARED 'stock:$map:9:f00:3'" >/dev/null
for _ in $(seq 150); do [ "$(decisions "gid LIKE '%:f00:3'")" = 0 ] && break; sleep 0.2; done
[ "$(decisions "gid LIKE '%:f00:3'")" = 0 ] || { echo "FAIL: a decision was kept after its transaction ended"; exit 1; }
echo "pruned: the last one, once its transaction ended"

echo "== the sweep lifts a day-old fence left on the shard its id's entry names (docs/sharded.md, \"One id, one winner\")"
for line in fence-l1 fence-l2; do
    "$BUILD/stockctl" --store "stockd://127.0.0.1:$port" deduct "$line" prune-sku-0 1 >/dev/null
done
holder=$(shard_holding prune-sku-0) other=$(( ($(shard_holding prune-sku-0) + 1) % 3 ))
fences() {   # the fences of line $1 on member $2
    psql_on "${members[$2]}" "SELECT count(*) FROM stock_fences WHERE kind = 'L' AND id = '$1'"
}
day_ago_us=$(( ($(date +%s) - 90000) * 1000000 ))
psql_on "${members[$holder]}" "INSERT INTO stock_fences VALUES ('L', 'fence-l1', $day_ago_us), ('L', 'fence-l2', DEFAULT)" >/dev/null
psql_on "${members[$other]}" "INSERT INTO stock_fences VALUES ('L', 'fence-l1', $day_ago_us)" >/dev/null
for _ in $(seq 150); do [ "$(fences fence-l1 "$holder")" = 0 ] && break; sleep 0.2; done
[ "$(fences fence-l1 "$holder")" = 0 ] || { echo "FAIL: a day-old fence on the shard its entry names was kept"; exit 1; }
[ "$(fences fence-l2 "$holder")" = 1 ] || { echo "FAIL: a fresh fence was lifted"; exit 1; }
[ "$(fences fence-l1 "$other")" = 1 ] || { echo "FAIL: a fence on a shard its entry does not name was lifted"; exit 1; }
echo "fences: lifted the day-old one on member $holder, kept a fresh one there and the one on member $other"
kill "$stockd_pid"
wait "$stockd_pid" || true
echo "55-sharded: ok"
