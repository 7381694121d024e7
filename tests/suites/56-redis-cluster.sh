#!/usr/bin/env bash
# 56-redis-cluster.sh -- the redis backend on a real Redis Cluster of 3
# masters with 1 replica each (tests/harness/redis.sh: appendonly yes,
# appendfsync always, cluster-node-timeout 2 s), through cluster=1 and a
# seed list:
#   - the conformance suite, --quick then (release builds) the full
#     sellout, plain and with a key prefix, then from two stores (two
#     processes) at once;
#   - outbox=0 with buckets=4 (no outbox, the buckets' own calls): the
#     conformance suite (--quick);
#   - hot-SKU buckets (buckets=8): the conformance suite (--quick), and one
#     hot SKU sold out from 8 stores at once: exactly its stock is sold,
#     every refusal INSUFFICIENT, I1-I5 hold (stockbench's check); a move
#     between buckets left half done by a dead client is finished by the
#     next open's sweep;
#   - no MOVED on any node after those runs (every call routed right);
#   - the function library on every node, replicas included (functions
#     replicate);
#   - a seed list whose first seed does not answer;
#   - a SKU's slot moved to another master under an open store: a deduction
#     during the migration follows ASK, one after it MOVED; moved back with
#     the SKU's stock key first, a deduction over its split keys meets
#     TRYAGAIN (the node's errorstats say so) and succeeds once the rest
#     follows;
#   - the masters frozen (SIGSTOP): an op times out UNAVAILABLE, its retry
#     with the same id counts once;
#   - kill -9 of a master under a writer of cross-slot orders and deductions
#     with wait=1: its replica is promoted, the backend follows the new slot
#     map, no acknowledged operation is lost and I1-I3 hold (redis_crash);
#   - the same with buckets=8 on one hot SKU, the master of one of its
#     buckets killed: no acknowledged deduction or refund is lost or
#     doubled, I1, I2, I4, I5 hold (redis_crash hot); before that, a
#     batch's deductions on a hot SKU with buckets=8 cost one call per
#     bucket (INFO commandstats), not one per deduction.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/harness/redis.sh
writer=""
cleanup() {
    [ -z "$writer" ] || kill -KILL "$writer" 2>/dev/null || true
    redis_cluster_stop
}
trap cleanup EXIT

# start_writer MODE URI ACKED OUT: starts redis_crash MODE as $writer,
# counting its acknowledged batches in ACKED, logging to OUT, and lets it
# write for a second.
start_writer() {
    "$BUILD/tests/redis_crash" "$1" "$2" "$3" >"$4" 2>&1 &
    writer=$!
    redis_wait_ready "$writer" "$4"
    sleep 1
}

# fail_over VICTIM MASTERS ACKED OUT: kills -9 master VICTIM (MASTERS: the
# masters' node numbers) under the running $writer, which counts its
# acknowledged batches in the file ACKED and logs to OUT; waits for a
# replica's promotion, brings VICTIM back (as a replica), and checks that
# the writer went on past the failover; then stops the writer.
fail_over() {
    local victim=$1 masters=" $2 " acked=$3 out=$4 promoted="" try i after
    echo "killing master $victim after $(cat "$acked") acknowledged batches ($(date))"
    redis_cluster_kill "$victim"
    # The replicas notice after cluster-node-timeout, then one is elected.
    for ((try = 0; try < 300; try++)); do
        for ((i = 0; i < REDIS_CLUSTER_NODES; i++)); do
            [[ "$masters" == *" $i "* ]] && continue
            redis_cluster_cli "$i" INFO replication | tr -d '\r' | grep -qx "role:master" && promoted=$i
        done
        [ -n "$promoted" ] && break
        sleep 0.1
    done
    [ -n "$promoted" ] || { echo "no replica was promoted in 30 s"; exit 1; }
    redis_cluster_wait_ok
    echo "node $promoted (a replica) is master now"
    # The old master comes back as the promoted one's replica, so that
    # WAIT 1 can be answered again for its slots.
    redis_cluster_restart "$victim"
    redis_cluster_wait_ok
    redis_cluster_wait_replicas
    after=$(cat "$acked")
    for ((i = 0; i < 600; i++)); do
        [ "$(cat "$acked")" -gt $((after + 5)) ] && break
        kill -0 "$writer" 2>/dev/null ||
            { cat "$out"; date; redis_cluster_cli 1 CLUSTER NODES; exit 1; }
        sleep 0.1
    done
    [ "$(cat "$acked")" -gt $((after + 5)) ] ||
        { echo "the writer made no progress after the failover"; cat "$out"; exit 1; }
    kill -KILL "$writer"
    wait "$writer" 2>/dev/null || true
    writer=""
    grep "retrying" "$out" || true
    echo "the writer went on: $(cat "$acked") batches acknowledged"
}
redis_cluster_start
echo "redis cluster $REDIS_CLUSTER_URI (pids ${REDIS_CLUSTER_PIDS[*]})"

# redis_conformance runs against $REDIS_URI$mode and logs in $REDIS_DIR.
REDIS_URI=$REDIS_CLUSTER_URI REDIS_DIR=$REDIS_CLUSTER_DIR
for mode in "" "&prefix=shop1:"; do
    redis_conformance "$mode"
done

redis_conformance_twice "$REDIS_URI" "$REDIS_URI"

# buckets=8: every SKU's stock over 8 keys in 8 slots, so over the 3
# masters; each bucket judged in its own slot, the client summing them
# (docs/redis.md, "Hot-SKU buckets"). --quick only: the full sellout's
# 200,000 deductions one after the other take minutes; stockbench below
# sells one hot SKU out from 8 stores at once.
echo "== conformance ?outbox=0&buckets=4"
"$BUILD/tests/conformance" --quick "$REDIS_URI&prefix=nob4:&outbox=0&buckets=4" \
    >"$REDIS_DIR/conformance.log" 2>&1 || { cat "$REDIS_DIR/conformance.log"; exit 1; }
tail -n 1 "$REDIS_DIR/conformance.log"
echo "== conformance ?buckets=8"
"$BUILD/tests/conformance" --quick "$REDIS_URI&prefix=bk8:&buckets=8" \
    >"$REDIS_DIR/conformance.log" 2>&1 || { cat "$REDIS_DIR/conformance.log"; exit 1; }
tail -n 1 "$REDIS_DIR/conformance.log"
echo "== buckets=8: one hot SKU sold out from 8 stores at once, exactly its stock"
case $BUILD in *san*) requests=4000 stock=400 ;; *) requests=20000 stock=2000 ;; esac
"$BUILD/stockbench" -s "$REDIS_URI&prefix=bk8sell:&buckets=8" -w sellout --stock "$stock" \
    -n "$requests" -c 8 -P 16 --no-progress >"$REDIS_DIR/bench.log" 2>&1 ||
    { cat "$REDIS_DIR/bench.log"; exit 1; }
grep -E '^  (results|units|check)' "$REDIS_DIR/bench.log"
grep -qE "^  results +OK $stock INSUFFICIENT $((requests - stock))\$" "$REDIS_DIR/bench.log" ||
    { echo "the hot SKU did not sell exactly its $stock units"; exit 1; }
echo "== every call went straight to its slot's master"
# On a stable cluster a MOVED means the client computed a slot wrongly (it
# would still get there, through the redirect).
for ((i = 0; i < REDIS_CLUSTER_NODES; i++)); do
    ! redis_cluster_cli "$i" INFO errorstats | grep -q "errorstat_MOVED" ||
        { echo "node $i answered MOVED: $(redis_cluster_cli "$i" INFO errorstats)"; exit 1; }
done
echo "no MOVED on any node"

echo "== the function library on every node"
for ((i = 0; i < REDIS_CLUSTER_NODES; i++)); do
    redis_cluster_cli "$i" FUNCTION LIST LIBRARYNAME stockd_v3 | grep -qx stockd_v3 ||
        { echo "node $i lacks the function library"; exit 1; }
done
echo "all $REDIS_CLUSTER_NODES nodes hold stockd_v3"

# redis-cli -c below follows MOVED, which the nodes count: after that check.
[ "$(redis-cli -c -p "${REDIS_CLUSTER_PORTS[0]}" GET bk8:stock:layout)" = 5 ] ||
    { echo "a store with buckets on the cluster is not layout 5"; exit 1; }
echo "== buckets=8: a move whose client died is finished by the next open's sweep"
# The client's first two steps by hand, as if it died after them: the move
# announced in P{stock:moves} (its lease long past) and its 5 units taken
# out of bucket 1; the units are then in transit until a sweep puts them
# into the home.
mv_uri="$REDIS_URI&prefix=bk8mv:&buckets=8"
"$BUILD/stockctl" --store "$mv_uri" set MV 80 >/dev/null
mv_key=""
for ((i = 0; i < 3; i++)); do
    mv_key=$(redis_cluster_cli "$i" --scan --pattern 'bk8mv:{skub:1:*:MV}')
    mv_port=${REDIS_CLUSTER_PORTS[$i]}
    [ -n "$mv_key" ] && break
done
mv_slot=$(redis-cli -p "$mv_port" CLUSTER KEYSLOT "$mv_key")
mv_outbox=$(redis-cli -p "$mv_port" CLUSTER GETKEYSINSLOT "$mv_slot" 100 | grep '{outbox:')
[ "$(redis-cli -p "$mv_port" FCALL stockd_v3_cb_move_out 3 "$mv_key" "$mv_key:moves" \
     "$mv_outbox" mv:dead 5 MV 1 | tr '\n' ' ')" = "OK 5 " ] || { echo "cannot take the units out"; exit 1; }
redis-cli -c -p "$mv_port" ZADD 'bk8mv:{stock:moves}' 1 "mv:dead 1 0 5 MV" >/dev/null
for ((i = 0; i < 50; i++)); do
    mv_get=$("$BUILD/stockctl" --store "$mv_uri" get MV | tr -s ' \n' ' ')
    [[ "$mv_get" == *"available 80 adjusted 80 "* ]] && break
    sleep 0.1
done
echo "$mv_get"
[[ "$mv_get" == *"available 80 adjusted 80 "* ]] || { echo "the move was not finished"; exit 1; }
[ "$(redis-cli -c -p "$mv_port" ZCARD 'bk8mv:{stock:moves}')" = 0 ] ||
    { echo "the move is still pending"; exit 1; }

echo "== a first seed that refuses, then one that is silent"
out=$("$BUILD/tests/conformance" --filter 'set_creates*' "redis://127.0.0.1:1,${REDIS_URI#redis://}" 2>&1) ||
    { echo "$out" | tail -n 5; echo "a refused first seed stopped the open"; exit 1; }
echo "$out" | tail -n 1
# A host that takes the connection and never answers (its backlog accepts,
# nobody reads): the open must still reach the next seed within its own
# timeout_ms rather than spend the whole deadline on the first.
coproc SILENT { exec /usr/bin/python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True); time.sleep(120)'; }
silent_pid=$SILENT_PID
read -r silent_port <&"${SILENT[0]}"
uri="redis://127.0.0.1:$silent_port,${REDIS_URI#redis://}&timeout_ms=500"
out=$("$BUILD/tests/conformance" --filter 'set_creates*' "$uri" 2>&1) ||
    { echo "$out" | tail -n 5; echo "a silent first seed stopped the open"; exit 1; }
echo "$out" | tail -n 1
kill "$silent_pid" 2>/dev/null || true
wait "$silent_pid" 2>/dev/null || true

echo "== a slot moved under an open store (ASK, then MOVED)"
# Field 9 on of a CLUSTER NODES line are the node's slot ranges.
master_of() {   # SLOT: prints "id port" of its master
    redis_cluster_cli 1 CLUSTER NODES | awk -v s="$1" '$3 ~ /master/ {
        for (i = 9; i <= NF; i++) { n = split($i, r, "-"); if (n == 1) r[2] = r[1];
            if (s + 0 >= r[1] + 0 && s + 0 <= r[2] + 0) { split($2, a, "[:@]"); print $1, a[2] } } }'
}
coproc MOVER { "$BUILD/tests/redis_faults" moved "$REDIS_URI"; }
mover_pid=$MOVER_PID
# Bash unsets MOVER when the mover exits: its output is read through copies.
exec {mover_in}>&"${MOVER[1]}" {mover_out}<&"${MOVER[0]}"
mover_said=""
mover_read() {   # WORD: reads the mover's lines up to the one that starts with WORD
    local line
    while read -r line <&"$mover_out"; do
        mover_said+="$line"$'\n'
        [[ "$line" == "$1"* ]] && { echo "$line"; return 0; }
    done
    echo "the mover ended early: $mover_said" >&2
    return 1
}
sku=$(mover_read "sku ")
sku=${sku#sku }
slot=$(redis_cluster_cli 0 CLUSTER KEYSLOT "{sku:$sku}")
read -r src_id src_port < <(master_of "$slot")
read -r dst_id dst_port < <(redis_cluster_cli 1 CLUSTER NODES |
    awk -v id="$src_id" '$3 ~ /master/ && $3 !~ /fail/ && $1 != id && NF >= 9 {
        split($2, a, "[:@]"); print $1, a[2]; exit }')
redis-cli -p "$dst_port" CLUSTER SETSLOT "$slot" IMPORTING "$src_id" >/dev/null
redis-cli -p "$src_port" CLUSTER SETSLOT "$slot" MIGRATING "$dst_id" >/dev/null
# shellcheck disable=SC2046  # the slot's keys, one argument each
redis-cli -p "$src_port" MIGRATE 127.0.0.1 "$dst_port" "" 0 5000 KEYS \
    $(redis-cli -p "$src_port" CLUSTER GETKEYSINSLOT "$slot" 1000) >/dev/null
echo go >&"$mover_in"
mover_read "deducted 0" >/dev/null
for port in "$dst_port" "$src_port"; do
    redis-cli -p "$port" CLUSTER SETSLOT "$slot" NODE "$dst_id" >/dev/null
done
echo go >&"$mover_in"
mover_read "deducted 1" >/dev/null
# Every node must know the slot's new owner before it moves again: the node
# that takes it back bumps its config epoch without consensus, and one that
# has not yet seen the first move's epoch could take the same number, a
# collision that can leave other nodes on the old owner.
owned_everywhere() {   # SLOT ID: waits until every live node says ID serves SLOT
    local try i ok
    for ((try = 0; try < 100; try++)); do
        ok=yes
        for ((i = 0; i < REDIS_CLUSTER_NODES; i++)); do
            kill -0 "${REDIS_CLUSTER_PIDS[$i]}" 2>/dev/null || continue
            redis_cluster_cli "$i" CLUSTER NODES | awk -v s="$1" -v id="$2" '$1 == id {
                for (f = 9; f <= NF; f++) { n = split($f, r, "-"); if (n == 1) r[2] = r[1];
                    if (s + 0 >= r[1] + 0 && s + 0 <= r[2] + 0) found = 1 } }
                END { exit !found }' || ok=no
        done
        [ "$ok" = yes ] && return 0
        sleep 0.1
    done
    echo "not every node says $2 serves slot $1"
    return 1
}
owned_everywhere "$slot" "$dst_id"
echo "== the slot moved back, the SKU's stock key first (TRYAGAIN)"
tryagains() {   # PORT: how many TRYAGAIN errors that node has answered
    local count
    count=$(redis-cli -p "$1" INFO errorstats | tr -d '\r' | sed -n 's/^errorstat_TRYAGAIN:count=//p')
    echo "${count:-0}"
}
before=$(tryagains "$dst_port")
redis-cli -p "$src_port" CLUSTER SETSLOT "$slot" IMPORTING "$dst_id" >/dev/null
redis-cli -p "$dst_port" CLUSTER SETSLOT "$slot" MIGRATING "$src_id" >/dev/null
# A call over the SKU's keys now finds some on each node: TRYAGAIN, retried
# with growing pauses (RD_TRYAGAIN_PAUSE_US, up to RD_REDIRECTS_MAX tries,
# over a second in all) while the rest moves.
redis-cli -p "$dst_port" MIGRATE 127.0.0.1 "$src_port" "" 0 5000 KEYS "{sku:$sku}" >/dev/null
echo go >&"$mover_in"
for _ in $(seq 100); do
    [ "$(tryagains "$dst_port")" -gt "$before" ] && break
    sleep 0.01
done
[ "$(tryagains "$dst_port")" -gt "$before" ] ||
    { echo "the deduction never met TRYAGAIN"; exit 1; }
# shellcheck disable=SC2046  # the slot's keys, one argument each
redis-cli -p "$dst_port" MIGRATE 127.0.0.1 "$src_port" "" 0 5000 KEYS \
    $(redis-cli -p "$dst_port" CLUSTER GETKEYSINSLOT "$slot" 1000) >/dev/null
for port in "$src_port" "$dst_port"; do
    redis-cli -p "$port" CLUSTER SETSLOT "$slot" NODE "$src_id" >/dev/null
done
out=$(cat <&"$mover_out")
wait "$mover_pid" || true
exec {mover_in}>&- {mover_out}<&-
echo "$out"
grep -q "redis_faults moved: 0 failed" <<<"$out"
owned_everywhere "$slot" "$src_id"
redis_cluster_wait_ok

echo "== the masters frozen (SIGSTOP)"
masters="${REDIS_CLUSTER_PIDS[0]},${REDIS_CLUSTER_PIDS[1]},${REDIS_CLUSTER_PIDS[2]}"
"$BUILD/tests/redis_faults" stopped "$REDIS_URI" "$masters"
redis_cluster_wait_ok

echo "== kill -9 a master under a writer with wait=1"
acked="$REDIS_DIR/batches"
start_writer retry "$REDIS_URI&prefix=failover:&wait=1" "$acked" "$REDIS_DIR/crash.out"
# Node 0 was made a master by --cluster create (the first three are).
redis_cluster_cli 0 INFO replication | tr -d '\r' | grep -qx "role:master"
fail_over 0 "0 1 2" "$acked" "$REDIS_DIR/crash.out"
redis_cluster_cli 0 INFO replication | tr -d '\r' | grep -qx "role:slave" ||
    { echo "node 0 did not rejoin as a replica"; exit 1; }
"$BUILD/tests/redis_crash" check "$REDIS_URI&prefix=failover:" "$acked"
echo "== buckets=8: a batch's deductions cost one call per bucket, not one per deduction"
# 1,600 deductions on one hot SKU in batches of 16 from one store: per batch
# 8 reads and at most 8 calls (one per bucket its lines hit), then
# stockbench's check reads each line back (one call each); one deduction at
# a time made 9 calls per deduction (8 reads and its own).
fcalls() {   # the function calls the masters have answered, summed
    local i sum=0 n
    for ((i = 0; i < REDIS_CLUSTER_NODES; i++)); do
        kill -0 "${REDIS_CLUSTER_PIDS[$i]}" 2>/dev/null || continue
        redis_cluster_cli "$i" INFO replication | tr -d '\r' | grep -qx "role:master" || continue
        n=$(redis_cluster_cli "$i" INFO commandstats | tr -d '\r' |
            sed -n 's/^cmdstat_fcall:calls=\([0-9]*\),.*/\1/p')
        sum=$((sum + ${n:-0}))
    done
    echo "$sum"
}
before=$(fcalls)
"$BUILD/stockbench" -s "$REDIS_URI&prefix=bk8calls:&buckets=8" -w hot -n 1600 -c 1 -P 16 \
    --no-progress >"$REDIS_DIR/calls.log" 2>&1 || { cat "$REDIS_DIR/calls.log"; exit 1; }
calls=$(($(fcalls) - before))
echo "1600 deductions and their check: $calls function calls"
[ "$calls" -le $((2 * 1600 + 400)) ] ||
    { echo "more than one call per bucket per batch"; cat "$REDIS_DIR/calls.log"; exit 1; }

echo "== buckets=8: kill -9 the master of a hot SKU's bucket under a writer with wait=1"
# One hot SKU over 8 buckets, so over every master; the writer's batches
# (14 deductions and 2 refunds each) go to the buckets' masters at once,
# each bucket's share one call. The master of bucket 1 dies: its replica is
# promoted, the writer retries its UNAVAILABLE batches with the same ids,
# and every acknowledged deduction and refund must be there, once.
hot_acked="$REDIS_DIR/hot-batches"
start_writer hot "$REDIS_URI&prefix=hotfail:&buckets=8&wait=1" "$hot_acked" "$REDIS_DIR/hot.out"
hot_masters=() victim=""
for ((i = 0; i < REDIS_CLUSTER_NODES; i++)); do
    redis_cluster_cli "$i" INFO replication | tr -d '\r' | grep -qx "role:master" || continue
    hot_masters+=("$i")
    [ -z "$(redis_cluster_cli "$i" --scan --pattern 'hotfail:{skub:1:*:crash-hot}')" ] || victim=$i
done
[ -n "$victim" ] || { echo "no master holds bucket 1 of the hot SKU"; exit 1; }
fail_over "$victim" "${hot_masters[*]}" "$hot_acked" "$REDIS_DIR/hot.out"
"$BUILD/tests/redis_crash" hotcheck "$REDIS_URI&prefix=hotfail:&buckets=8" "$hot_acked"
echo "56-redis-cluster: all passed"
