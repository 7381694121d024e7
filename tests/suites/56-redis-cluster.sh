#!/usr/bin/env bash
# 56-redis-cluster.sh -- the redis backend on a real Redis Cluster of 3
# masters with 1 replica each (tests/harness/redis.sh: appendonly yes,
# appendfsync always, cluster-node-timeout 2 s), through cluster=1 and a
# seed list:
#   - the conformance suite, --quick then the full sellout, plain and with a
#     key prefix, then from two stores (two processes) at once;
#   - a seed list whose first seed does not answer;
#   - the masters frozen (SIGSTOP): an op times out UNAVAILABLE, its retry
#     with the same id counts once;
#   - kill -9 of a master under a writer of cross-slot orders and deductions
#     with wait=1: its replica is promoted, the backend follows the new slot
#     map, no acknowledged operation is lost and I1-I3 hold (redis_crash).
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
redis_cluster_start
echo "redis cluster $REDIS_CLUSTER_URI (pids ${REDIS_CLUSTER_PIDS[*]})"

# redis_conformance runs against $REDIS_URI$mode and logs in $REDIS_DIR.
REDIS_URI=$REDIS_CLUSTER_URI REDIS_DIR=$REDIS_CLUSTER_DIR
for mode in "" "&prefix=shop1:"; do
    redis_conformance "$mode"
done

echo "== two stores at once"
"$BUILD/tests/conformance" --quick "$REDIS_URI" >"$REDIS_DIR/one.log" 2>&1 &
one=$!
"$BUILD/tests/conformance" --quick "$REDIS_URI" >"$REDIS_DIR/two.log" 2>&1 ||
    { cat "$REDIS_DIR/two.log"; exit 1; }
wait "$one" || { cat "$REDIS_DIR/one.log"; exit 1; }
tail -n 1 "$REDIS_DIR/one.log" "$REDIS_DIR/two.log"

echo "== a first seed that does not answer"
"$BUILD/tests/conformance" --filter 'set_creates*' "redis://127.0.0.1:1,${REDIS_URI#redis://}" \
    2>&1 | tail -n 1

echo "== the masters frozen (SIGSTOP)"
masters="${REDIS_CLUSTER_PIDS[0]},${REDIS_CLUSTER_PIDS[1]},${REDIS_CLUSTER_PIDS[2]}"
"$BUILD/tests/redis_faults" stopped "$REDIS_URI" "$masters"
redis_cluster_wait_ok

echo "== kill -9 a master under a writer with wait=1"
acked="$REDIS_DIR/batches"
"$BUILD/tests/redis_crash" retry "$REDIS_URI&prefix=failover:&wait=1" "$acked" \
    >"$REDIS_DIR/crash.out" 2>&1 &
writer=$!
for ((i = 0; i < 100; i++)); do
    grep -q ready "$REDIS_DIR/crash.out" 2>/dev/null && break
    kill -0 "$writer" 2>/dev/null || { cat "$REDIS_DIR/crash.out"; exit 1; }
    sleep 0.1
done
sleep 1
# Node 0 was made a master by --cluster create (the first three are).
redis_cluster_cli 0 INFO replication | tr -d '\r' | grep -qx "role:master"
before=$(cat "$acked")
redis_cluster_kill 0
echo "killed master 0 after $before acknowledged batches"
# The replicas notice after cluster-node-timeout, then one is elected.
promoted=""
for ((try = 0; try < 300; try++)); do
    for i in 3 4 5; do
        redis_cluster_cli "$i" INFO replication | tr -d '\r' | grep -qx "role:master" && promoted=$i
    done
    [ -n "$promoted" ] && break
    sleep 0.1
done
[ -n "$promoted" ] || { echo "no replica was promoted in 30 s"; exit 1; }
redis_cluster_wait_ok
echo "node $promoted (a replica) is master now"
# The old master comes back as the promoted one's replica, so that WAIT 1
# can be answered again for its slots.
redis_cluster_restart 0
redis_cluster_wait_ok
redis_cluster_wait_replicas
redis_cluster_cli 0 INFO replication | tr -d '\r' | grep -qx "role:slave" ||
    { echo "node 0 did not rejoin as a replica"; exit 1; }
after=$(cat "$acked")
for ((i = 0; i < 600; i++)); do
    [ "$(cat "$acked")" -gt $((after + 5)) ] && break
    kill -0 "$writer" 2>/dev/null || { cat "$REDIS_DIR/crash.out"; exit 1; }
    sleep 0.1
done
[ "$(cat "$acked")" -gt $((after + 5)) ] ||
    { echo "the writer made no progress after the failover"; cat "$REDIS_DIR/crash.out"; exit 1; }
kill -KILL "$writer"
wait "$writer" 2>/dev/null || true
writer=""
grep "retrying" "$REDIS_DIR/crash.out" || true
echo "the writer went on: $(cat "$acked") batches acknowledged"
"$BUILD/tests/redis_crash" check "$REDIS_URI&prefix=failover:" "$acked"
echo "56-redis-cluster: all passed"
