#!/usr/bin/env bash
# 74-outbox-trim.sh -- the redis outbox is trimmed only past what every
# reader's group is done with (docs/redis.md, "The outbox"; docs/persister.md,
# "Trimming"): a real redis-server, PostgreSQL and nats-server, the persister
# inside stockd (--persist-to) and stockevents --store.
#
#   behind    stockevents registered, then killed before any stream exists;
#             SKUS SKUs each set and sold out (streams made while it is
#             down): the persister persists everything (its lag 0) yet the
#             outbox still holds every record, and INFO and /metrics say so
#             (persister_outbox_records); stockevents started again publishes
#             every event exactly once, in order per SKU, reports none lost,
#             and the persister then trims the outbox to nothing
#   ahead     the persister stopped, stockevents running: new SKUs and moves
#             of the old ones are published while the outbox keeps them for
#             the persister; stockd with --persist-to started again applies
#             them all (PostgreSQL equals Redis for every SKU) without its
#             gap check ("records are missing") ever firing, then trims
#   removed   stockevents stopped for good: its group holds the trim until
#             the documented removal (SREM from the readers, XGROUP DESTROY
#             on each stream), after which the persister trims
#   cluster   "behind" again on a Redis Cluster of 3 masters (with 1 replica
#             each): stockevents reads every master's streams, the
#             persister keeps and then trims them on every master; then a
#             master killed: stockevents exits 1 saying why and, started
#             again once a replica took over, publishes the new events once
#
# KEEP=DIR keeps a copy of its folder (logs) in DIR.
set -eu
BUILD=${BUILD:-build}
here=$(dirname "$0")
NATS_PORT_FIRST=17810 NATS_PORT_LAST=17819
. "$here/../harness/nats.sh"
. "$here/../harness/pg.sh"
. "$here/../harness/redis.sh"

skus=24
dir=$(mktemp -d)
events_pid="" stockd_pid=""
BIN="$dir/bin"
. "$here/../harness/events.sh"
cluster_stop() { [ -z "${REDIS_CLUSTER_DIR:-}" ] || redis_cluster_stop; }
trap 'events_cleanup pg_stop redis_stop cluster_stop' EXIT
use_binaries "$BIN" stockd stockevents stockctl tests/events_client

port=$(pick_port 17800 17804)
http=$(pick_port 17805 17809)
# start_stockd_redis [FLAGS...]: stockd over the redis store ($STORE, by
# default $REDIS_URI).
STORE=""
start_stockd_redis() {
    start_stockd "$port" "${STORE:-$REDIS_URI}" "$dir/stockd.log" --http-port "$http" "$@" ||
        fail "stockd did not start"
    stockd_pid=$STOCKD_PID
}
cli() { redis-cli -p "$port" "$@"; }
info() { cli INFO | tr -d '\r' | sed -n "s/^$1://p"; }
# wait_info FIELD VALUE: until INFO's FIELD is VALUE (30 s)
wait_info() {
    for _ in $(seq 300); do [ "$(info "$1")" = "$2" ] && return 0; sleep 0.1; done
    fail "INFO $1 is $(info "$1"), not $2 after 30 s: $(cli INFO | grep persister | tr -d '\r' | tr '\n' ' ')"
}
# outbox_held [REDIS-CLI ARGS]: the records the outbox streams of one
# server hold, straight from it.
outbox_held() {
    redis-cli -p "$REDIS_PORT" "$@" EVAL "local n = 0
        for _, k in ipairs(redis.call('KEYS', '*{outbox:*}')) do
            if redis.call('TYPE', k).ok == 'stream' then n = n + redis.call('XLEN', k) end end
        return n" 0
}
# check_events PREFIX WANT: the events of the SKUs PREFIX* are exactly
# WANT (one "sku event event..." line per SKU), none twice.
check_events() {
    dump
    sed 's/^[^ ]* //' "$dir/dump.txt" | jq -r --arg p "$1" 'select(.sku | startswith($p)) |
        "\(.sku) \(.event)"' | awk '{e[$1] = e[$1] " " $2} END {for (s in e) print s e[s]}' |
        sort >"$dir/got-$1.txt"
    diff "$2" "$dir/got-$1.txt" || fail "the events of $1* are not the ones expected"
    local dups
    dups=$(cut -d' ' -f1 "$dir/dump.txt" | sort | uniq -d | wc -l)
    [ "$dups" -eq 0 ] || fail "$dups Nats-Msg-Ids in the stream twice"
}

redis_start
pg_start
nats_start || fail "nats-server did not start"

echo "== behind: stockevents down while the persister persists"
start_events_store "$REDIS_URI"   # registers its group, then dies
kill_events
start_stockd_redis --persist-to "$PG_URI"
for s in $(seq 0 $((skus - 1))); do
    echo "SETSTOCK T$s 2"
    echo "DEDUCT t$s T$s 2"
done | cli >/dev/null
records=$((2 * skus))
wait_info persister_applied "$records"
wait_info persister_lag_records 0
held=$(outbox_held)
[ "$held" -eq "$records" ] ||
    fail "the persister has persisted everything, and the outbox holds $held records, not the $records stockevents has not read"
wait_info persister_outbox_records "$records"
curl -s "http://127.0.0.1:$http/metrics" | grep -q "^stockd_persister_outbox_records $records\$" ||
    fail "/metrics: $(curl -s "http://127.0.0.1:$http/metrics" | grep outbox)"
echo "ok   persisted, lag 0, and the outbox still holds the $held records (INFO, /metrics)"
start_events_store "$REDIS_URI"
wait_events "$records"
for s in $(seq 0 $((skus - 1))); do echo "T$s back_in_stock sold_out"; done | sort >"$dir/want-T.txt"
check_events T "$dir/want-T.txt"
grep -q "are lost" "$dir/events.log" && fail "stockevents reports lost records"
wait_info persister_outbox_records 0
[ "$(outbox_held)" -eq 0 ] || fail "the outbox holds $(outbox_held) records once every reader is done"
echo "ok   every event once, in order per SKU, then the outbox trimmed to nothing"

echo "== ahead: stockevents runs, the persister is stopped"
stop_stockd
start_stockd_redis
for s in $(seq 0 $((skus - 1))); do
    echo "SETSTOCK U$s 3"
    echo "DEDUCT u$s U$s 3"
    echo "ADDSTOCK T$s 1"
done | cli >/dev/null
wait_events $((records + 3 * skus))
for s in $(seq 0 $((skus - 1))); do echo "T$s back_in_stock sold_out back_in_stock"; done | sort >"$dir/want-T.txt"
for s in $(seq 0 $((skus - 1))); do echo "U$s back_in_stock sold_out"; done | sort >"$dir/want-U.txt"
check_events T "$dir/want-T.txt"
check_events U "$dir/want-U.txt"
sleep 1                           # stockevents' last acknowledgement
held=$(outbox_held)
[ "$held" -eq $((3 * skus)) ] || fail "the outbox holds $held records, not the $((3 * skus)) the persister has not read"
stop_stockd
start_stockd_redis --persist-to "$PG_URI"
wait_info persister_applied $((3 * skus))
wait_info persister_lag_records 0
wait_info persister_outbox_records 0
grep -q "missing" "$dir/stockd.log" && fail "the persister's gap check fired: $(grep missing "$dir/stockd.log" | head -n 1)"
for s in $(seq 0 $((skus - 1))); do
    for sku in T$s U$s; do
        a=$("$BIN/stockctl" --store "$REDIS_URI" get "$sku")
        b=$("$BIN/stockctl" --store "$PG_URI" get "$sku")
        [ "$a" = "$b" ] || fail "$sku: redis [$a], PostgreSQL [$b]"
    done
done
echo "ok   stockevents ahead: PostgreSQL equals Redis on $((2 * skus)) SKUs, no gap, the outbox trimmed"

echo "== removed: a stopped reader holds the trim until its group is removed"
kill_events
for s in $(seq 0 9); do echo "ADDSTOCK U$s 1"; done | cli >/dev/null
wait_info persister_applied $((3 * skus + 10))
wait_info persister_lag_records 0
sleep 1.5                         # a trim or two
[ "$(outbox_held)" -eq 10 ] || fail "the outbox holds $(outbox_held) records, not the 10 stockevents has not read"
[ "$(info persister_outbox_records)" = 10 ] || fail "INFO: $(info persister_outbox_records)"
# docs/persister.md, "Trimming": remove a reader for good
redis_cli SREM stock:readers stockevents >/dev/null
redis_cli --scan --pattern '{outbox:*}' | grep -v ':lease$' |
    while read -r key; do redis_cli XGROUP DESTROY "$key" stockevents >/dev/null; done
wait_info persister_outbox_records 0
[ "$(outbox_held)" -eq 0 ] || fail "the outbox holds $(outbox_held) records after the group's removal"
echo "ok   10 records held by the stopped group, none once it is removed"

echo "== cluster: stockevents behind the persister on 3 masters"
kill_events
stop_stockd
redis_cluster_start || fail "the cluster did not start"
# a prefix of its own: PostgreSQL keeps the position of each stream by name
STORE="$REDIS_CLUSTER_URI&prefix=cl:"
nats_stop
nats_start || fail "nats-server did not start"
start_events_store "$STORE"
kill_events
start_stockd_redis --persist-to "$PG_URI"
for s in $(seq 0 $((skus - 1))); do
    echo "SETSTOCK C$s 2"
    echo "DEDUCT c$s C$s 2"
done | cli >/dev/null
wait_info persister_applied "$records"
wait_info persister_lag_records 0
wait_info persister_outbox_records "$records"
masters=0
for i in 0 1 2 3 4 5; do
    redis_cluster_cli "$i" INFO replication | tr -d '\r' | grep -qx "role:master" || continue
    n=$(outbox_held -p "${REDIS_CLUSTER_PORTS[$i]}")
    [ "$n" -gt 0 ] && masters=$((masters + 1))
done
[ "$masters" -ge 2 ] || fail "the records are on $masters master(s): the SKUs should spread"
start_events_store "$STORE"
wait_events "$records"
for s in $(seq 0 $((skus - 1))); do echo "C$s back_in_stock sold_out"; done | sort >"$dir/want-C.txt"
check_events C "$dir/want-C.txt"
grep -q "are lost" "$dir/events.log" && fail "stockevents reports lost records"
wait_info persister_outbox_records 0
echo "ok   the events of $records records on $masters masters once each, then every master trimmed"
# A failover: stockevents exits 1 saying why (docs/events.md, "From Redis")
# and, started again, resumes on the new master.
redis_cluster_cli 0 INFO replication | tr -d '\r' | grep -qx "role:master" || fail "node 0 is not a master"
redis_cluster_kill 0
for _ in $(seq 300); do kill -0 "$events_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$events_pid" 2>/dev/null && fail "stockevents still runs 30 s after its master was killed"
set +e
wait "$events_pid"
code=$?
set -e
events_pid=""
[ "$code" -eq 1 ] && grep -q "reading the store: redis" "$dir/events.log" ||
    fail "stockevents exited $code after the failover"
redis_cluster_wait_ok && redis_cluster_restart 0 && redis_cluster_wait_ok ||
    fail "the cluster did not recover"
# SETSTOCK may be retried: a level set again makes no event
for s in $(seq 0 $((skus - 1))); do
    for _ in $(seq 50); do
        [ "$(cli SETSTOCK "C$s" 5 2>&1)" = 5 ] && break
        sleep 0.2
    done
done
start_events_store "$STORE"
wait_events $((records + skus))
for s in $(seq 0 $((skus - 1))); do echo "C$s back_in_stock sold_out back_in_stock"; done | sort >"$dir/want-C.txt"
check_events C "$dir/want-C.txt"
echo "ok   after a failover stockevents exited 1, and started again published the $skus new events once"
echo "PASS"
