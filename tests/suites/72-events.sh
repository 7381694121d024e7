#!/usr/bin/env bash
# 72-events.sh -- stockevents (docs/events.md) between an embedded store
# served by stockd and a real NATS JetStream server (tests/harness/nats.sh).
#
#   thresholds set and read through RESP THRESHOLD, HTTP
#              GET/PUT /v1/skus/{sku}/threshold and `stockctl threshold`,
#              all three the same file; bad input refused with nothing
#              changed
#   basic      a sell-out, a restock and threshold crossings: exactly the
#              events expected, in order, with their sequences and parts
#   sse        GET /v1/events (curl): with Last-Event-ID 3.0 the stream
#              carries the basic events after 3.0 with ids SEQ.PART, then a
#              change made while it is open; without it, only what happens
#              after it opened; a bad Last-Event-ID is 400
#   crash      SKUS SKUs each go new (back in stock), sold out, restocked
#              (back in stock), in rounds; each round kills the publisher
#              with SIGKILL, makes its changes through stockd, kills stockd
#              with SIGKILL before any of them is published, starts the
#              publisher on the folder alone, then stockd again, and kills
#              the publisher once more at a random moment while it
#              publishes: at the end every SKU has exactly its three events,
#              in that order, each once (no Nats-Msg-Id twice), sequences
#              rising; snapshots are taken all along (snapshot_log_bytes),
#              so the publisher also resumes from one, and the writer's
#              clean-up must keep what the publisher said it still needs
#              (reader.lsn): no "events lost" line; then 300 deductions
#              that make no event move reader.lsn past them (the log of a
#              store that makes no events is still trimmed)
#   broker     with stockevents stopped (SIGSTOP), 5 x SKUS SKUs each go back
#              in stock and sold out; it goes on, and once 10 of those
#              events are stored it is stopped again with events left,
#              nats-server is killed (SIGKILL), stockevents goes on against
#              the dead broker, and nats-server is restarted on its store: stockevents waited for the broker (its log says
#              so), and at the end every event is in the stream exactly
#              once (no Nats-Msg-Id twice: the broker dropped what it had
#              stored before the kill but not confirmed), in sequence order
#
# KEEP=DIR keeps a copy of its folder (logs, stores) in DIR.
set -eu
BUILD=${BUILD:-build}
here=$(dirname "$0")
NATS_PORT_FIRST=17570 NATS_PORT_LAST=17579
. "$here/../harness/nats.sh"

skus=200 rounds=4
case "$BUILD" in
*san*) skus=60 rounds=3 ;;
esac

dir=$(mktemp -d)
events_pid="" stockd_pid=""
BIN="$dir/bin"
. "$here/../harness/events.sh"
trap 'events_cleanup' EXIT
use_binaries "$BIN" stockd stockctl stockevents tests/events_client

start_events() {
    "$BIN/stockevents" --data "$1" --broker "$NATS_URL" --poll-ms 5 >>"$dir/events.log" 2>&1 &
    events_pid=$!
}

kill_stockd() {
    kill -9 "$stockd_pid" 2>/dev/null || true
    wait "$stockd_pid" 2>/dev/null || true
    stockd_pid=""
}

nats_start || fail "nats-server did not start"
port=$(pick_port 17580 17589)
cli() { redis-cli -p "$port" "$@"; }

echo "== thresholds"
data="$dir/basic"
http_port=$(pick_port 17590 17599)
http="http://127.0.0.1:$http_port"
start_stockd "$port" "$data" "$dir/stockd.log" --http-port "$http_port" || fail "stockd did not start"
stockd_pid=$STOCKD_PID
[ "$(cli THRESHOLD B 5)" = 5 ] || fail "THRESHOLD B 5"
[ "$(cli THRESHOLD B)" = 5 ] || fail "THRESHOLD B does not read 5"
"$BIN/stockctl" threshold C 3 --http "$http" | grep -qx "threshold sku C: 3" || fail "stockctl threshold C 3"
[ "$(curl -sf "$http/v1/skus/C/threshold" | jq -c .)" = '{"sku":"C","threshold":3}' ] ||
    fail "GET /v1/skus/C/threshold"
curl -sf -X PUT -d '{"threshold":2}' "$http/v1/skus/D/threshold" >/dev/null || fail "PUT threshold D"
STOCKCTL_HTTP=$http "$BIN/stockctl" --json threshold D | jq -e '.threshold == 2' >/dev/null ||
    fail "stockctl threshold D does not read 2"
"$BIN/stockctl" threshold D 0 --http "$http" | grep -qx "threshold sku D: none" || fail "removing D"
cli THRESHOLD B -1 | grep -q "^INVALID" || fail "THRESHOLD B -1 is not INVALID"
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -d '{"threshold":"x"}' "$http/v1/skus/B/threshold")
[ "$code" = 400 ] || fail "a bad threshold body answered $code"
rc=0
"$BIN/stockctl" threshold C -4 --http "$http" 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "stockctl threshold C -4 exited $rc"
[ "$(cat "$data/thresholds")" = "$(printf 'B 5\nC 3')" ] || { cat "$data/thresholds"; fail "the thresholds file"; }

echo "== basic"
start_events "$data"
cli SETSTOCK A 3 >/dev/null            # 0: A new, back in stock
cli SETSTOCK B 10 >/dev/null           # 1: B new, back in stock
cli DEDUCT l1 A 2 >/dev/null           # 2: nothing crosses
cli DEDUCT l2 A 1 >/dev/null           # 3: A sold out
cli DEDUCT l3 B 6 >/dev/null           # 4: B 10 -> 4, below 5
cli DEDUCT l4 A 1 >/dev/null           # refused: no record
cli ADDSTOCK A 5 >/dev/null            # 5: A back in stock
cli REFUND r1 l3 6 >/dev/null          # 6: B back to 10, no event
cli DEDUCT l5 B 10 >/dev/null          # 7: B sold out and below 5
wait_events 7
sleep 0.5
dump
cut -d' ' -f1 "$dir/dump.txt" | tr '\n' ' '; echo
sed 's/^[^ ]* //' "$dir/dump.txt" | jq -c '[.seq, .part, .event, .sku, .before, .after, .threshold]' >"$dir/basic.txt"
cat >"$dir/basic-want.txt" <<'WANT'
[0,0,"back_in_stock","A",0,3,null]
[1,0,"back_in_stock","B",0,10,null]
[3,0,"sold_out","A",1,0,null]
[4,0,"below_threshold","B",10,4,5]
[5,0,"back_in_stock","A",0,5,null]
[7,0,"sold_out","B",10,0,null]
[7,1,"below_threshold","B",10,0,5]
WANT
diff "$dir/basic-want.txt" "$dir/basic.txt" || fail "basic: not the events expected"
[ "$(cut -d' ' -f1 "$dir/dump.txt" | tr '\n' ' ')" = "0.0 1.0 3.0 4.0 5.0 7.0 7.1 " ] ||
    fail "basic: the Nats-Msg-Ids are not SEQ.PART"
kill_events

echo "== sse"
# sse_get FILE [HEADER...]: GET /v1/events into FILE for 3 s.
sse_get() {
    local file=$1
    shift
    curl -sN --max-time 3 "$@" "$http/v1/events" >"$file" || true
}
sse_get "$dir/sse-resume.txt" -H "Last-Event-ID: 3.0" &
sse_pid=$!
sse_get "$dir/sse-now.txt" &
sse_now_pid=$!
sleep 1.5
cli DEDUCT l6 A 5 >/dev/null           # 8: A sold out, while both streams are open
wait "$sse_pid" "$sse_now_pid"
grep '^id: ' "$dir/sse-resume.txt" | tr '\n' ' ' >"$dir/sse-ids.txt"
[ "$(cat "$dir/sse-ids.txt")" = "id: 4.0 id: 5.0 id: 7.0 id: 7.1 id: 8.0 " ] ||
    { cat "$dir/sse-resume.txt"; fail "SSE resumed from 3.0 with ids $(cat "$dir/sse-ids.txt")"; }
grep -A2 -x 'id: 4.0' "$dir/sse-resume.txt" | grep -qx 'event: below_threshold' || fail "SSE 4.0 is not below_threshold"
grep -A2 -x 'id: 8.0' "$dir/sse-resume.txt" | grep -q '^data: {"seq":8,"part":0,"event":"sold_out","sku":"A","before":5,"after":0}$' ||
    { cat "$dir/sse-resume.txt"; fail "SSE 8.0 is not A's sell-out"; }
[ "$(grep '^id: ' "$dir/sse-now.txt" | tr '\n' ' ')" = "id: 8.0 " ] ||
    { cat "$dir/sse-now.txt"; fail "SSE without Last-Event-ID did not start at the end"; }
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Last-Event-ID: x" "$http/v1/events")
[ "$code" = 400 ] || fail "a bad Last-Event-ID answered $code"
kill_stockd
nats_stop
nats_start || fail "nats-server did not restart"

echo "== crash: $skus SKUs in $rounds rounds, stockd and stockevents killed each round"
data="$dir/crash"
uri="$data?snapshot_log_bytes=4096"
start_stockd "$port" "$uri" "$dir/stockd.log" || fail "stockd did not start"
stockd_pid=$STOCKD_PID
start_events "$data"
per_round=$((skus / rounds))
for round in $(seq 0 $((rounds - 1))); do
    kill_events
    first=$((round * per_round))
    for i in $(seq "$first" $((first + per_round - 1))); do
        echo "SETSTOCK S$i 2"
        echo "DEDUCT a$i S$i 1"
        echo "DEDUCT b$i S$i 1"
        echo "ADDSTOCK S$i 1"
    done | cli >/dev/null
    kill_stockd   # acknowledged, not yet published
    start_events "$data"
    sleep "0.$((RANDOM % 5))"
    start_stockd "$port" "$uri" "$dir/stockd.log" || fail "stockd did not restart"
    stockd_pid=$STOCKD_PID
    sleep "0.$((RANDOM % 3))"
    kill_events   # at a random moment of its publishing
    start_events "$data"
done
wait_events $((3 * skus))
sleep 1
dump
ls "$data" | grep -q '^snap-' || fail "no snapshot was taken: the resume from one is untested"
[ -f "$data/reader.lsn" ] || fail "stockevents wrote no reader.lsn"
! grep -q "are lost" "$dir/events.log" || fail "snapshots deleted records stockevents still needed"
[ "$(wc -l <"$dir/dump.txt")" -eq $((3 * skus)) ] ||
    fail "$(wc -l <"$dir/dump.txt") events for $skus SKUs, not $((3 * skus))"
dups=$(cut -d' ' -f1 "$dir/dump.txt" | sort | uniq -d | wc -l)
[ "$dups" -eq 0 ] || fail "$dups Nats-Msg-Ids published twice"
sed 's/^[^ ]* //' "$dir/dump.txt" |
    jq -rs 'group_by(.sku)[] | "\(.[0].sku) \(map(.event) | join(",")) \(map(.seq) == (map(.seq) | sort) and (map(.seq) | unique | length) == 3)"' \
        >"$dir/per-sku.txt"
[ "$(wc -l <"$dir/per-sku.txt")" -eq "$skus" ] || fail "$(wc -l <"$dir/per-sku.txt") SKUs have events, not $skus"
bad=$(grep -vc ' back_in_stock,sold_out,back_in_stock true$' "$dir/per-sku.txt" || true)
[ "$bad" -eq 0 ] || { grep -v ' back_in_stock,sold_out,back_in_stock true$' "$dir/per-sku.txt" | head; fail "$bad SKUs without their three events in order"; }

echo "== a log of changes that make no event is still trimmed"
cli SETSTOCK BIG 100000 >/dev/null
for i in $(seq 300); do echo "DEDUCT big-$i BIG 1"; done | cli >/dev/null
wait_events $((3 * skus + 1))
last=$(tail -n 1 "$dir/dump.txt" | sed 's/^[^ ]* //' | jq .seq)
for _ in $(seq 50); do
    [ "$(cat "$data/reader.lsn")" -gt $((last + 300)) ] && break
    sleep 0.1
done
[ "$(cat "$data/reader.lsn")" -gt $((last + 300)) ] ||
    fail "reader.lsn is $(cat "$data/reader.lsn"), not past the 300 records after the last event ($last)"

# Five times the SKUs: a backlog that a fast machine cannot publish between
# the 10th event and the freeze.
backlog=$((5 * skus))
echo "== nats-server killed (SIGKILL) while stockevents publishes $((2 * backlog)) events"
had=$(wc -l <"$dir/dump.txt")
retries=$(grep -c "does not confirm" "$dir/events.log" || true)
kill -STOP "$events_pid"   # a backlog to publish: the kill lands in it
for i in $(seq "$backlog"); do echo "SETSTOCK K$i 1"; echo "DEDUCT k$i K$i 1"; done | cli >/dev/null
# events_client resumes stockevents once connected and freezes it again the
# moment the 10th event of the backlog is stored, so the kill lands
# mid-backlog however fast this machine publishes: stockevents wakes to a
# dead broker with events left.
"$BIN/events_client" wait "$NATS_URL" STOCK_EVENTS $((had + 10)) "$events_pid" ||
    { kill -CONT "$events_pid"; fail "the backlog is not being published"; }
stored=$("$BIN/events_client" count "$NATS_URL" STOCK_EVENTS) || fail "reading the stream's count failed"
[ "$stored" -lt $((had + 2 * backlog)) ] ||
    fail "the backlog was all published before the kill: nothing left to prove"
echo "ok   stockevents frozen with $((stored - had)) of the backlog's $((2 * backlog)) events stored"
nats_kill
kill -CONT "$events_pid"
for _ in $(seq 100); do
    [ "$(grep -c "does not confirm" "$dir/events.log")" -gt "$retries" ] && break
    sleep 0.1
done
nats_launch || fail "nats-server did not restart on its store"
wait_events $((had + 2 * backlog))
sleep 1
dump
[ "$(grep -c "does not confirm" "$dir/events.log")" -gt "$retries" ] ||
    fail "stockevents never waited for the broker: the kill did not land while it published"
[ "$(wc -l <"$dir/dump.txt")" -eq $((had + 2 * backlog)) ] ||
    fail "$(wc -l <"$dir/dump.txt") events after the broker's restart, not $((had + 2 * backlog))"
dups=$(cut -d' ' -f1 "$dir/dump.txt" | sort | uniq -d | wc -l)
[ "$dups" -eq 0 ] || fail "$dups Nats-Msg-Ids stored twice across the broker's restart"
tail -n $((2 * backlog)) "$dir/dump.txt" | sed 's/^[^ ]* //' |
    jq -rs 'map(.seq) as $s | ($s == ($s | sort)) and
        (group_by(.sku) | map(map(.event) == ["back_in_stock", "sold_out"]) | all) and
        (group_by(.sku) | length) == '"$backlog" | grep -qx true ||
    fail "the events published across the broker's restart are not each SKU's two, in order"
echo "PASS"
