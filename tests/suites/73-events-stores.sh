#!/usr/bin/env bash
# 73-events-stores.sh -- stockevents --store (docs/events.md, "From
# PostgreSQL", "From Redis") between a stockd over a real PostgreSQL or
# Redis (tests/harness/pg.sh, redis.sh) and a real NATS JetStream server.
# For each store:
#
#   basic      a sell-out, a restock and threshold crossings (--thresholds
#              FILE) made one after the other: exactly the events expected,
#              in order, with their kinds, levels and thresholds
#   load       --every-change; CLIENTS clients at once set, deduct and
#              restock SKUS SKUs, while the publisher is killed with SIGKILL
#              and started again at random moments: every SKU's change
#              events then chain (each one's before is the previous one's
#              after, the first's before 0 and the last's after the SKU's
#              level in the store), so none is lost, repeated or out of
#              order, and no Nats-Msg-Id is in the stream twice. On
#              postgres this is what commit order means: a move whose id
#              was taken before another's but committed after it must not
#              be skipped or published out of its SKU's order
#   batches    (redis) 4 batches of 16 deductions, each one outbox entry of
#              kind lines: one change event per deduction, chaining, each
#              with its own sequence
#   lost       (redis) a record deleted from its outbox stream by hand (XDEL,
#              as persisters before the trim did once they had persisted
#              it) before stockevents read it: stockevents says the events
#              of 1 record are lost
#
# KEEP=DIR keeps a copy of its folder (logs) in DIR.
set -eu
BUILD=${BUILD:-build}
here=$(dirname "$0")
NATS_PORT_FIRST=17560 NATS_PORT_LAST=17569
. "$here/../harness/nats.sh"
. "$here/../harness/pg.sh"
. "$here/../harness/redis.sh"

skus=12 clients=4 ops=150 kills=3
case "$BUILD" in
*san*) ops=60 kills=2 ;;
esac

dir=$(mktemp -d)
events_pid="" stockd_pid=""
BIN="$dir/bin"
. "$here/../harness/events.sh"
trap 'events_cleanup pg_stop redis_stop' EXIT
use_binaries "$BIN" stockd stockevents tests/events_client


port=$(pick_port 17580 17589)
cli() { redis-cli -p "$port" "$@"; }
printf 'B 5\n' >"$dir/thresholds"

# basic NAME URI
basic() {
    echo "== $1: basic"
    nats_start || fail "nats-server did not start"
    start_stockd "$port" "$2" "$dir/stockd.log" || fail "stockd did not start"
    stockd_pid=$STOCKD_PID
    start_events_store "$2" --thresholds "$dir/thresholds"
    cli SETSTOCK A 3 >/dev/null            # A new, back in stock
    cli SETSTOCK B 10 >/dev/null           # B new, back in stock
    cli DEDUCT l1 A 2 >/dev/null           # nothing crosses
    cli DEDUCT l2 A 1 >/dev/null           # A sold out
    cli DEDUCT l3 B 6 >/dev/null           # B 10 -> 4, below 5
    cli DEDUCT l4 A 1 >/dev/null           # refused: no move
    cli ADDSTOCK A 5 >/dev/null            # A back in stock
    cli REFUND r1 l3 6 >/dev/null          # B back to 10, no event
    cli DEDUCT l5 B 10 >/dev/null          # B sold out and below 5
    wait_events 7
    sleep 0.3
    dump
    # per SKU, in the order published (a SKU's events are in order; on
    # redis two SKUs of two slots are two streams, taken in turn)
    sed 's/^[^ ]* //' "$dir/dump.txt" | jq -s -c 'sort_by(.sku)[] | [.event, .sku, .before, .after, .threshold]' >"$dir/basic.txt"
    cat >"$dir/basic-want.txt" <<'WANT'
["back_in_stock","A",0,3,null]
["sold_out","A",1,0,null]
["back_in_stock","A",0,5,null]
["back_in_stock","B",0,10,null]
["below_threshold","B",10,4,5]
["sold_out","B",10,0,null]
["below_threshold","B",10,0,5]
WANT
    diff "$dir/basic-want.txt" "$dir/basic.txt" || fail "$1 basic: not the events expected"
    # a SKU's sequences rise; B's last two events are parts 0 and 1 of one move
    sed 's/^[^ ]* //' "$dir/dump.txt" | jq -s -e 'group_by(.sku) | map(map(.seq) as $s | $s == ($s | sort)) | all' >/dev/null ||
        fail "$1 basic: a SKU's sequences do not rise: $(cut -d' ' -f1 "$dir/dump.txt" | tr '\n' ' ')"
    sed 's/^[^ ]* //' "$dir/dump.txt" | jq -s -e 'map(select(.sku == "B")) | .[2].seq == .[3].seq and .[2].part == 0 and .[3].part == 1' >/dev/null ||
        fail "$1 basic: B's sell-out is not parts 0 and 1 of one move"
    kill_events
}

# load NAME URI
load() {
    echo "== $1: $clients clients on $skus SKUs, stockevents killed $kills times"
    local c s pids=""
    for s in $(seq 0 $((skus - 1))); do echo "SETSTOCK L$s 0"; done | cli >/dev/null   # no move
    start_events_store "$2" --every-change
    for c in $(seq "$clients"); do
        (
            for i in $(seq "$ops"); do
                s=$(( (i * 7 + c) % skus ))
                case $((i % 3)) in
                0) echo "SETSTOCK L$s $((i % 4))" ;;
                1) echo "DEDUCT c$c-$i L$s 1" ;;
                2) echo "ADDSTOCK L$s 2" ;;
                esac
            done | cli >/dev/null
        ) &
        pids="$pids $!"
    done
    for _ in $(seq "$kills"); do
        sleep "0.$((RANDOM % 4 + 1))"
        kill_events
        start_events_store "$2" --every-change
    done
    wait $pids
    # every SKU's level in the store, and the number of changes it must see
    for s in $(seq 0 $((skus - 1))); do
        echo "L$s $(cli STOCK "L$s")"
    done >"$dir/levels.txt"
    local want_skus
    want_skus=$(grep -c . "$dir/levels.txt")
    for _ in $(seq 300); do
        dump
        sed 's/^[^ ]* //' "$dir/dump.txt" | jq -s -c 'map(select(.event == "change")) |
            group_by(.sku)[] | {sku: .[0].sku, after: (sort_by(.seq) | last.after)}' |
            jq -r '"\(.sku) \(.after)"' | sort >"$dir/last.txt"
        sort "$dir/levels.txt" | diff -q - "$dir/last.txt" >/dev/null && break
        sleep 0.1
    done
    sort "$dir/levels.txt" | diff - "$dir/last.txt" || fail "$1: the last change of each SKU is not its level"
    dups=$(cut -d' ' -f1 "$dir/dump.txt" | sort | uniq -d | wc -l)
    [ "$dups" -eq 0 ] || fail "$1: $dups Nats-Msg-Ids in the stream twice"
    bad=$(sed 's/^[^ ]* //' "$dir/dump.txt" | jq -s -r 'map(select(.event == "change")) |
        group_by(.sku)[] | sort_by(.seq) | . as $e |
        select(.[0].before != 0 or ([range(1; length) | select($e[.].before != $e[. - 1].after)] | length) > 0) |
        .[0].sku')
    [ -z "$bad" ] || fail "$1: the changes of $(echo $bad) do not chain"
    [ "$(wc -l <"$dir/last.txt")" -eq "$want_skus" ] || fail "$1: changes of $(wc -l <"$dir/last.txt") SKUs, not $want_skus"
    echo "$1: $(grep -c '"change"' "$dir/dump.txt") changes chain on $want_skus SKUs"
    kill_events
    stop_stockd
    nats_stop
}

pg_start
basic postgres "$PG_URI"
stop_stockd
start_stockd "$port" "$PG_URI" "$dir/stockd.log" || fail "stockd did not start"
stockd_pid=$STOCKD_PID
# a new stream: the load's events only
nats_stop
nats_start || fail "nats-server did not start"
load postgres "$PG_URI"
[ "$(pg_psql -c 'SELECT count(*) FROM stock_moves')" -lt 50 ] ||
    fail "postgres: the moves whose events are confirmed were not deleted"
pg_stop

redis_start
basic redis "$REDIS_URI"
stop_stockd
start_stockd "$port" "$REDIS_URI" "$dir/stockd.log" || fail "stockd did not start"
stockd_pid=$STOCKD_PID
nats_stop
nats_start || fail "nats-server did not start"
load redis "$REDIS_URI"

echo "== redis: batches of deductions, one outbox entry each, yield one event per deduction"
nats_start || fail "nats-server did not start"
# 4 batches of 16 deductions of one SKU (stockbench -c 1 -P 16): 4 entries
# of kind lines after the SKU's set
"$BUILD/stockbench" -s "$REDIS_URI?prefix=eb:" -w hot --prefix eb- --stock 100 -c 1 -P 16 -n 64 \
    --no-progress >/dev/null || fail "stockbench on prefix eb: failed"
key=$(redis_cli --scan --pattern 'eb:{outbox:*}')
[ "$(redis_cli XLEN "$key")" -eq 5 ] || fail "a set and 4 batches wrote $(redis_cli XLEN "$key") entries, not 5"
redis_cli XRANGE "$key" - + | grep -qx lines || fail "no entry of kind lines: $(redis_cli XRANGE "$key" - + | tr '\n' ' ')"
start_events_store "$REDIS_URI?prefix=eb:" --every-change
wait_events 65
sleep 0.3
dump
changes=$(sed 's/^[^ ]* //' "$dir/dump.txt" | jq -s -c 'map(select(.event == "change" and .sku == "eb-S0")) | sort_by(.seq)')
[ "$(echo "$changes" | jq length)" -eq 65 ] || fail "$(echo "$changes" | jq length) change events of eb-S0, not 65 (the set and 64 deductions)"
echo "$changes" | jq -e '(map(.seq) | unique | length) == 65 and
    ([range(1; length) as $i | select(.[$i].before != .[$i - 1].after)] | length) == 0 and
    .[0].before == 0 and .[0].after == 100 and last.after == 36' >/dev/null ||
    fail "the changes of eb-S0 do not chain from 0 to 100 down to 36 with 65 sequences: $changes"
echo "ok   65 changes chain, each with its own sequence; $(grep -c '"sold_out"\|"back_in_stock"' "$dir/dump.txt") other events"
kill_events
nats_stop

echo "== redis: a record deleted before stockevents read it is reported lost"
start_stockd "$port" "$REDIS_URI" "$dir/stockd.log" || fail "stockd did not start"
stockd_pid=$STOCKD_PID
nats_start || fail "nats-server did not start"
cli SETSTOCK G 5 >/dev/null
cli DEDUCT g1 G 1 >/dev/null
cli DEDUCT g2 G 1 >/dev/null
# what persisters before the trim did once they had persisted a record: XDEL
deleted=$(redis_cli EVAL "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do
    for _, e in ipairs(redis.call('XRANGE', k, '-', '+')) do
        for i = 1, #e[2], 2 do
            if e[2][i] == 'id' and e[2][i + 1] == ARGV[2] then
                redis.call('XDEL', k, e[1]) return e[1] end end end end" 0 '*{outbox:*' g1)
[ -n "$deleted" ] || fail "the record of g1 was not found to delete"
start_events_store "$REDIS_URI" --every-change
for _ in $(seq 100); do
    grep -q "the events of 1 records are lost" "$dir/events.log" && break
    sleep 0.1
done
grep -q "the events of 1 records are lost" "$dir/events.log" || fail "the deleted record was not reported lost"
echo "PASS"
