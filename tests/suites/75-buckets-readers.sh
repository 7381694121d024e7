#!/usr/bin/env bash
# 75-buckets-readers.sh -- the outbox's two readers, stockpersist and
# stockevents, over a store with hot-SKU buckets on a Redis Cluster (layout
# 5: each record holds one bucket's totals; docs/persister.md, "Buckets on
# a Redis Cluster", docs/events.md, "From Redis"): a real Redis Cluster of 3
# masters with 1 replica each, PostgreSQL 15 and nats-server.
#
#   One hot SKU with buckets=8 sold out by stockbench from 8 stores at once
#   (SELLOUT units, 3 times as many attempts), so that buckets run short and
#   stock moves between them, while a persister and stockevents
#   --every-change run:
#   - after the persister drained, PostgreSQL's totals of the SKU (the sum
#     of its bucket rows) equal Redis's (the sum of its buckets), its rows
#     are per bucket, and stockctl reconcile finds the two stores equal
#     (totals, every line);
#   - the events: a back_in_stock when the set is read, then one change of
#     -1 per unit sold, chaining (each one's before the previous one's
#     after), none for the moves between buckets (the outbox holds move
#     records: both halves pair), and one sold_out, the last event, at 0:
#     the store's level.
#   - stockevents killed, 5 units of another SKU sold, stockevents started
#     again: the buckets it meets in streams it had read start from their
#     levels in the store, so the SKU's last change is its level.
#   - a persister started on a new store (layout 4), which the first open
#     with buckets makes layout 5: it says so, reads the layout again and
#     persists the store; stockevents in the same case exits 1 saying so.
#   Both readers refused such a store before (UNSUPPORTED "reading its
#   outbox is not built yet").
#   - Redis lost (FLUSHALL on every master) and warmed from PostgreSQL
#     (stockpersist --warm): refused SKU by SKU while the store is layout 4
#     (PostgreSQL holds them in 8 buckets); once the store is opened with
#     buckets=8, each bucket row goes back into its bucket: every bucket
#     key of every SKU holds (av adj ded ref) its PostgreSQL row's figures,
#     as it did before the loss (a row warmed into another bucket keeps the
#     sums, which the totals and reconcile compare), the totals are the
#     ones before the loss, a line deducted before is refunded and
#     replayed, new deductions work, reconcile finds the two stores equal,
#     and a second warm-up loads nothing.
#
# KEEP=DIR keeps a copy of its folder (logs) in DIR.
set -eu
BUILD=${BUILD:-build}
here=$(dirname "$0")
NATS_PORT_FIRST=17820 NATS_PORT_LAST=17829
. "$here/../harness/nats.sh"
. "$here/../harness/pg.sh"
. "$here/../harness/redis.sh"

case $BUILD in *san*) SELLOUT=${SELLOUT:-300} ;; *) SELLOUT=${SELLOUT:-1200} ;; esac
dir=$(mktemp -d)
events_pid="" stockd_pid="" persist_pid=""
BIN="$dir/bin"
. "$here/../harness/events.sh"
cluster_stop() { [ -z "${REDIS_CLUSTER_DIR:-}" ] || redis_cluster_stop; }
persist_stop() { [ -z "$persist_pid" ] || { kill -9 "$persist_pid" 2>/dev/null; wait "$persist_pid" 2>/dev/null; } || true; }
trap 'persist_stop; events_cleanup pg_stop cluster_stop' EXIT
use_binaries "$BIN" stockevents stockctl stockpersist stockbench tests/events_client

redis_cluster_start || fail "the cluster did not start"
pg_start
nats_start || fail "nats-server did not start"
store="$REDIS_CLUSTER_URI&prefix=hb:&buckets=8"
sku=hb-S0

# The store's first open makes it layout 5; the readers start after it.
"$BIN/stockctl" --store "$store" get "$sku" >/dev/null 2>&1 || true
[ "$(redis-cli -c -p "${REDIS_CLUSTER_PORTS[0]}" GET hb:stock:layout)" = 5 ] ||
    fail "the store is not layout 5"
"$BIN/stockpersist" --redis "$store" --postgres "$PG_URI" --name p1 --lease-ms 500 \
    --stats-s 1 >"$dir/persist.log" 2>&1 &
persist_pid=$!
start_events_store "$store" --every-change

echo "== buckets=8 on 3 masters: $SELLOUT units sold out from 8 stores at once"
"$BIN/stockbench" -s "$store" -w sellout --stock "$SELLOUT" -n $((3 * SELLOUT)) -c 8 -P 16 \
    --prefix hb- --no-progress >"$dir/bench.log" 2>&1 || { cat "$dir/bench.log"; fail "stockbench"; }
grep -qE "^  results +OK $SELLOUT INSUFFICIENT $((2 * SELLOUT))\$" "$dir/bench.log" ||
    { cat "$dir/bench.log"; fail "the hot SKU did not sell exactly its $SELLOUT units"; }
# A sell-out's buckets drain about evenly (a batch's deductions each go
# to their own line's bucket), so it may move no stock at all. M's moves
# are certain: 8 units set, 1 a bucket, then four deductions of 2, each
# short in its bucket and filled from the others.
"$BIN/stockctl" --store "$store" set M 8 >/dev/null || fail "set M"
for i in 1 2 3 4; do
    "$BIN/stockctl" --store "$store" deduct "m-$i" M 2 >/dev/null || fail "deduct m-$i"
done
# Each bucket's hash of moves (move id -> units) keeps the moves it gave
# or took, whatever the trim did to their records.
moves=$(for ((i = 0; i < REDIS_CLUSTER_NODES; i++)); do
    redis_cluster_cli "$i" INFO replication | tr -d '\r' | grep -qx "role:master" || continue
    for key in $(redis_cluster_cli "$i" --scan --pattern 'hb:{sku*:moves'); do
        redis_cluster_cli "$i" HGETALL "$key" | paste - - | awk '$2 != 0 { print $1 }'
    done
done | sort -u | wc -l)
echo "$moves moves of stock between buckets"
[ "$moves" -gt 0 ] || fail "no stock moved between buckets: the test shows nothing about moves"

echo "== the persister: PostgreSQL's totals are Redis's sums"
for _ in $(seq 600); do
    tail -n 1 "$dir/persist.log" | grep -q " lag_records=0 " && break
    kill -0 "$persist_pid" 2>/dev/null || { cat "$dir/persist.log"; fail "stockpersist exited"; }
    sleep 0.1
done
kill -TERM "$persist_pid"
wait "$persist_pid" || { cat "$dir/persist.log"; fail "stockpersist did not exit 0"; }
persist_pid=""
timeout 120 "$BIN/stockpersist" --redis "$store" --postgres "$PG_URI" --name drain \
    --lease-ms 500 --drain --stats-s 0 >>"$dir/persist.log" 2>&1 ||
    { tail -n 20 "$dir/persist.log"; fail "the drain did not finish"; }
grep -q "not built yet" "$dir/persist.log" && fail "the persister refused the store"
in_redis=$("$BIN/stockctl" --store "$store" get "$sku" | tr -s ' \n' ' ')
in_pg=$("$BIN/stockctl" --store "$PG_URI" get "$sku" | tr -s ' \n' ' ')
echo "redis:    $in_redis"
echo "postgres: $in_pg"
[ "$in_redis" = "$in_pg" ] || fail "PostgreSQL's totals are not Redis's"
[[ "$in_redis" == *"available 0 adjusted $SELLOUT deducted $SELLOUT "* ]] ||
    fail "not the totals of a sell-out of $SELLOUT: $in_redis"
m_redis=$("$BIN/stockctl" --store "$store" get M | tr -s ' \n' ' ')
m_pg=$("$BIN/stockctl" --store "$PG_URI" get M | tr -s ' \n' ' ')
[ "$m_redis" = "$m_pg" ] || fail "PostgreSQL's M ($m_pg) is not Redis's ($m_redis)"
[[ "$m_redis" == *"available 0 adjusted 8 deducted 8 "* ]] || fail "M is $m_redis"
rows=$(pg_psql -c "SELECT count(*) FROM inventory WHERE sku_id = '$sku' AND buckets = 8")
[ "$rows" -ge 2 ] || fail "PostgreSQL holds $rows bucket rows of $sku, not one per bucket"
echo "ok   PostgreSQL holds $rows bucket rows whose sums are Redis's"
"$BIN/stockctl" reconcile "$store" "$PG_URI" >"$dir/reconcile.txt" 2>&1 ||
    { cat "$dir/reconcile.txt"; fail "reconcile found differences"; }
tail -n 1 "$dir/reconcile.txt"

echo "== stockevents: the SKU's sum, moves unseen"
for _ in $(seq 600); do
    dump
    # hb-S0's and M's sell-outs (M's may come first)
    [ "$(sed 's/^[^ ]* //' "$dir/dump.txt" |
         jq -c "select(.event == \"sold_out\" and (.sku == \"$sku\" or .sku == \"M\"))" |
         wc -l)" -ge 2 ] && break
    kill -0 "$events_pid" 2>/dev/null || fail "stockevents exited"
    sleep 0.1
done
sleep 0.5
dump
sed 's/^[^ ]* //' "$dir/dump.txt" | jq -c "select(.sku == \"$sku\")" >"$dir/sku.txt"
changes=$(jq -s 'map(select(.event == "change")) | length' "$dir/sku.txt")
echo "$(wc -l <"$dir/sku.txt") events, $changes changes"
# the changes in the order published: the set's (one per bucket, from 0
# to the stock), then a -1 per unit sold, each before the previous after
jq -s -e --argjson stock "$SELLOUT" 'map(select(.event == "change")) as $c |
    ($c | map(select(.after > .before)) | map(.after - .before) | add) == $stock and
    ($c | map(select(.after < .before)) | all(.before - .after == 1)) and
    ($c | map(select(.after < .before)) | length) == $stock and
    $c[0].before == 0 and $c[-1].after == 0 and
    ([range(1; $c | length) | select($c[.].before != $c[. - 1].after)] | length) == 0' \
    "$dir/sku.txt" >/dev/null ||
    { jq -c '[.event, .before, .after]' "$dir/sku.txt" | head -n 40; fail "the changes are not the sell-out's"; }
[ "$(jq -s 'map(select(.event == "sold_out")) | length' "$dir/sku.txt")" -eq 1 ] ||
    fail "not one sold_out: $(grep -c sold_out "$dir/sku.txt")"
[ "$(jq -s 'map(select(.event == "back_in_stock")) | length' "$dir/sku.txt")" -eq 1 ] ||
    fail "not one back_in_stock: $(grep -c back_in_stock "$dir/sku.txt")"
jq -s -e '.[-1].event == "sold_out" and .[-1].after == 0' "$dir/sku.txt" >/dev/null ||
    fail "the last event is not the sell-out: $(tail -n 1 "$dir/sku.txt")"
grep -q "not built yet" "$dir/events.log" && fail "stockevents refused the store"
echo "ok   $changes changes chain from 0 to 0, one back_in_stock, one sold_out, no move seen"
sed 's/^[^ ]* //' "$dir/dump.txt" | jq -c 'select(.sku == "M")' >"$dir/m.txt"
jq -s -e 'map(select(.event == "change")) as $c |
    ($c | map(select(.after > .before)) | map(.after - .before) | add) == 8 and
    ($c | map(select(.after < .before)) | map(.before - .after)) == [2, 2, 2, 2] and
    $c[0].before == 0 and $c[-1].after == 0 and
    ([range(1; $c | length) | select($c[.].before != $c[. - 1].after)] | length) == 0' \
    "$dir/m.txt" >/dev/null ||
    { jq -c '[.event, .before, .after]' "$dir/m.txt"; fail "M's changes are not its four deductions of 2"; }
echo "ok   M's changes are its set and four deductions of 2, none for its moves"
echo "== stockevents started again: buckets it has read before start from the store's levels"
# R set while stockevents runs, then 5 units sold while it is down: started
# again, it meets R in streams it has read before, so the buckets those
# units did not come from start from their levels in the store; the last
# change must then be R's level, not the sum of the buckets sold from.
r_changes() {
    dump
    sed 's/^[^ ]* //' "$dir/dump.txt" | jq -s -c 'map(select(.sku == "R" and .event == "change"))'
}
"$BIN/stockctl" --store "$store" set R 800 >/dev/null
for _ in $(seq 300); do
    [ "$(r_changes | jq 'length')" -ge 8 ] && break
    sleep 0.1
done
[ "$(r_changes | jq 'length')" -ge 8 ] || fail "R's set was not published"
kill_events
for i in 1 2 3 4 5; do "$BIN/stockctl" --store "$store" deduct "r-l$i" R 1 >/dev/null; done
start_events_store "$store" --every-change
level=$("$BIN/stockctl" --store "$store" get R | tr -s ' \n' ' ' | sed 's/.*available \([0-9]*\) .*/\1/')
[ "$level" = 795 ] || fail "R is at $level, not 795"
for _ in $(seq 300); do
    [ "$(r_changes | jq '.[-1].after')" = "$level" ] && break
    sleep 0.1
done
[ "$(r_changes | jq '.[-1].after')" = "$level" ] ||
    fail "R's last change is not its level $level: $(r_changes | jq -c '.[-6:] | map([.before, .after])')"
grep -q '"sku":"R".*sold_out\|"sold_out".*"sku":"R"' "$dir/dump.txt" && fail "R was published sold out"
echo "ok   R's last change after the restart is its level, $level"
echo "== a store that becomes layout 5 under a running persister"
# The persister's first connect finds no store and writes layout 4; the
# first open with buckets then makes it 5. The persister meets a record of
# a bucket, fails that cycle saying so, reads the layout again, and
# persists the store as above.
late="$REDIS_CLUSTER_URI&prefix=lt:"
"$BIN/stockpersist" --redis "$late" --postgres "$PG_URI" --name late --lease-ms 500 \
    --stats-s 1 >"$dir/late.log" 2>&1 &
persist_pid=$!
for _ in $(seq 100); do grep -q "stats" "$dir/late.log" && break; sleep 0.1; done
[ "$(redis-cli -c -p "${REDIS_CLUSTER_PORTS[0]}" GET lt:stock:layout)" = 4 ] ||
    fail "the persister did not find a store of layout 4"
# LT's row as a persister of before wrote it for a store without buckets
# (one row, buckets = 1): its records must make it say 8 like the others.
pg_psql -c "INSERT INTO inventory (sku_id, bucket, leaved_amount, adjusted, deducted, refunded,
            buckets) VALUES ('LT', 0, 0, 0, 0, 0, 1)" >/dev/null
"$BIN/stockctl" --store "$late&buckets=8" set LT 80 >/dev/null
"$BIN/stockctl" --store "$late&buckets=8" deduct lt-1 LT 3 >/dev/null
for _ in $(seq 100); do
    [ "$("$BIN/stockctl" --store "$PG_URI" get LT 2>/dev/null | tr -s ' \n' ' ')" = \
      "$("$BIN/stockctl" --store "$late&buckets=8" get LT | tr -s ' \n' ' ')" ] && break
    sleep 0.1
done
kill -TERM "$persist_pid"
wait "$persist_pid" || true
persist_pid=""
grep -q "holds one bucket's totals (layout 5), the store was layout 4 when the persister connected" \
    "$dir/late.log" || { cat "$dir/late.log"; fail "the persister did not say the layout changed"; }
in_pg=$("$BIN/stockctl" --store "$PG_URI" get LT | tr -s ' \n' ' ')
[[ "$in_pg" == *"available 77 adjusted 80 deducted 3 "* ]] ||
    fail "PostgreSQL holds LT as: $in_pg"
[ "$(pg_psql -c "SELECT count(*) FROM inventory WHERE sku_id = 'LT' AND buckets <> 8")" = 0 ] ||
    fail "rows of LT do not say buckets = 8: $(pg_psql -c "SELECT bucket, buckets FROM inventory WHERE sku_id = 'LT'")"
echo "ok   the persister read the layout again and persisted LT: $in_pg"
# stockevents, which reads the layout once, exits saying so instead.
ev="$REDIS_CLUSTER_URI&prefix=ev:"
start_events_store "$ev"
"$BIN/stockctl" --store "$ev&buckets=8" set EV 80 >/dev/null
for _ in $(seq 100); do kill -0 "$events_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$events_pid" 2>/dev/null && fail "stockevents still runs over a store that became layout 5"
set +e
wait "$events_pid"; code=$?
set -e
events_pid=""
[ "$code" -eq 1 ] || fail "stockevents exited $code, not 1"
grep -q "holds one bucket's levels (layout 5), the store was layout 4 at open: start stockevents again" \
    "$dir/events.log" || fail "stockevents did not say the layout changed"
echo "ok   stockevents exited 1: the store became layout 5 after it opened"
echo "== Redis lost, warmed from PostgreSQL bucket by bucket"
kill_events
timeout 120 "$BIN/stockpersist" --redis "$store" --postgres "$PG_URI" --name drain \
    --lease-ms 500 --drain --stats-s 0 >>"$dir/persist.log" 2>&1 ||
    { tail -n 20 "$dir/persist.log"; fail "the drain before the loss did not finish"; }
# Each bucket of SKU $1, a line "j av adj ded ref" for j = 0..7, from its
# key in Redis (docs/redis.md, "Key layout": bucket 0 is hb:{sku:S}, bucket
# j the hb:{skub:j:n:S} some master holds; a bucket without a key holds 0
# of everything) or from its row in PostgreSQL (none: 0 of everything).
redis_buckets() {
    local i key
    {
        echo "0 $(redis-cli -c -p "${REDIS_CLUSTER_PORTS[0]}" HMGET "hb:{sku:$1}" av adj ded ref | tr '\n' ' ')"
        for ((i = 0; i < REDIS_CLUSTER_NODES; i++)); do
            redis_cluster_cli "$i" INFO replication | tr -d '\r' | grep -qx "role:master" || continue
            redis_cluster_cli "$i" --scan --pattern "hb:{skub:*:$1}" | while read -r key; do
                key=${key#"hb:{skub:"}
                echo "${key%%:*} $(redis_cluster_cli "$i" HMGET "hb:{skub:$key" av adj ded ref | tr '\n' ' ')"
            done
        done
    } | awk '{ v[$1] = ($2 + 0) " " ($3 + 0) " " ($4 + 0) " " ($5 + 0) }
             END { for (j = 0; j < 8; j++) print j, (j in v ? v[j] : "0 0 0 0") }'
}
pg_buckets() {
    pg_psql -c "SELECT bucket, leaved_amount, adjusted, deducted, refunded FROM inventory WHERE sku_id = '$1'" |
        tr '|' ' ' | awk '{ v[$1] = $2 " " $3 " " $4 " " $5 }
                           END { for (j = 0; j < 8; j++) print j, (j in v ? v[j] : "0 0 0 0") }'
}
# the buckets of each SKU named in Redis against PostgreSQL's rows; prints
# them
same_buckets() {
    local s
    for s in "$@"; do
        [ "$(redis_buckets "$s")" = "$(pg_buckets "$s")" ] || {
            echo "SKU $s, bucket av adj ded ref, in Redis:"; redis_buckets "$s"
            echo "in PostgreSQL:"; pg_buckets "$s"
            return 1
        }
        echo "$s: $(redis_buckets "$s" | awk '$3 != 0 { printf "%s,", $0 }')"
    done
}
levels_before=$(same_buckets "$sku" M R) || { echo "$levels_before"; fail "a bucket in Redis differs from its PostgreSQL row before the loss"; }
before=$(for s in "$sku" M R; do "$BIN/stockctl" --store "$store" get "$s"; done | tr -s ' \n' ' ')
for ((i = 0; i < REDIS_CLUSTER_NODES; i++)); do
    redis_cluster_cli "$i" INFO replication | tr -d '\r' | grep -qx "role:master" || continue
    redis_cluster_cli "$i" FLUSHALL >/dev/null
done
# No open of the store until the warm-up: an open with buckets=8 would
# make it layout 5 again.
[ -z "$(redis-cli -c -p "${REDIS_CLUSTER_PORTS[0]}" GET hb:stock:layout)" ] ||
    fail "the store's layout is still in Redis after the flush"
# The warm-up's connect finds no store and writes layout 4: every SKU of
# 8 bucket rows is refused, nothing written.
set +e
out=$("$BIN/stockpersist" --redis "$store" --postgres "$PG_URI" --warm 2>&1); code=$?
set -e
[ "$code" -eq 1 ] || fail "a warm-up of layout 4 over rows of 8 buckets exited $code: $out"
echo "$out" | grep -q "SKU R refused: PostgreSQL holds it in 8 buckets, the store has 1" ||
    fail "the warm-up did not refuse R: $out"
echo "$out" | grep -q "warm done: 0 SKUs loaded into Redis, 0 already there (left alone), [1-9][0-9]* refused" ||
    fail "the warm-up of layout 4 loaded something: $out"
[ "$(redis-cli -c -p "${REDIS_CLUSTER_PORTS[0]}" GET hb:stock:layout)" = 4 ] ||
    fail "the warm-up's connect did not find a store of layout 4"
echo "ok   layout 4 over rows of 8 buckets: every SKU refused"
# the open makes it layout 5, and R reads NOTFOUND: the refused warm-up wrote none of it
"$BIN/stockctl" --store "$store" get R >/dev/null 2>&1 && fail "a refused warm-up wrote R"
[ "$(redis-cli -c -p "${REDIS_CLUSTER_PORTS[0]}" GET hb:stock:layout)" = 5 ] ||
    fail "the store is not layout 5 again"
out=$("$BIN/stockpersist" --redis "$store" --postgres "$PG_URI" --warm 2>&1) ||
    fail "warm: $out"
echo "$out"
echo "$out" | grep -q "warm done: [1-9][0-9]* SKUs loaded into Redis, 0 already there (left alone), 0 refused" ||
    fail "the warm-up of layout 5 did not load the SKUs: $out"
# Every SKU of PostgreSQL is warmed into the store: LT (persisted from
# another prefix's store) too.
levels_after=$(same_buckets $(pg_psql -c "SELECT DISTINCT sku_id FROM inventory")) ||
    { echo "$levels_after"; fail "a warmed bucket differs from its PostgreSQL row"; }
[ "$(same_buckets "$sku" M R)" = "$levels_before" ] || fail "the buckets warmed are not the ones before the loss"
echo "ok   each bucket of the $(echo "$levels_after" | wc -l) SKUs holds its row's av adj ded ref, as before the loss; $(echo "$levels_after" | grep "^R:")"
after=$(for s in "$sku" M R; do "$BIN/stockctl" --store "$store" get "$s"; done | tr -s ' \n' ' ')
echo "before: $before"
echo "after:  $after"
[ "$before" = "$after" ] || fail "the warmed totals are not the ones before the loss"
r_line=$("$BIN/stockctl" --store "$store" line r-l1) || fail "line r-l1 is not in Redis"
"$BIN/stockctl" --store "$store" deduct r-l1 R 1 >/dev/null || fail "the replay of r-l1"
"$BIN/stockctl" --store "$store" refund r-back r-l1 1 >/dev/null || fail "a refund of r-l1"
for i in 1 2 3; do
    "$BIN/stockctl" --store "$store" deduct "r-w$i" R 2 >/dev/null || fail "deduct r-w$i"
done
level=$("$BIN/stockctl" --store "$store" get R | tr -s ' \n' ' ' | sed 's/.*available \([0-9]*\) .*/\1/')
[ "$level" = $((795 + 1 - 6)) ] || fail "R is at $level after a refund of 1 and 6 units sold"
timeout 120 "$BIN/stockpersist" --redis "$store" --postgres "$PG_URI" --name drain \
    --lease-ms 500 --drain --stats-s 0 >>"$dir/persist.log" 2>&1 ||
    { tail -n 20 "$dir/persist.log"; fail "the drain after the warm-up did not finish"; }
"$BIN/stockctl" reconcile "$store" "$PG_URI" >"$dir/reconcile.txt" 2>&1 ||
    { cat "$dir/reconcile.txt"; fail "reconcile found differences after the warm-up"; }
out=$("$BIN/stockpersist" --redis "$store" --postgres "$PG_URI" --warm 2>&1)
echo "$out" | grep -q "warm done: 0 SKUs loaded" || fail "a second warm-up loaded again: $out"
echo "ok   warmed bucket by bucket: totals as before, r-l1 replayed and refunded, R at $level, stores equal"
echo "75-buckets-readers: ok"
