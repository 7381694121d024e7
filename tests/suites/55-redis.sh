#!/usr/bin/env bash
# 55-redis.sh -- the redis backend on a real redis-server 7
# (tests/harness/redis.sh: appendonly yes, appendfsync always):
#   - the conformance suite, --quick then (release builds) the full
#     sellout, plain, with a key prefix and fused=0 (the cluster's two
#     calls per deduction), with outbox=0 (a store without an outbox) and
#     with buckets=4, then from two stores (two processes) at once;
#   - outbox=0: every kind of change leaves no stream, the store is
#     layout 6, and the opens that would mix the two kinds of store (it
#     without outbox=0, a store with an outbox with it, the persister's and
#     stockevents' link on it) are refused, nothing written;
#   - hot-SKU buckets: a deduction no bucket covers but the total does,
#     refunds to the line's bucket, every bucket balanced, another K refused;
#   - the URI options, a server that is not Redis 7, a Redis Cluster node
#     without cluster=1 (refused, nothing written), cluster=1 on a single
#     server, a layout of another version, a wrong
#     password;
#   - a client that died between a line's directory entry and its deduction,
#     and one that died in the middle of an order over two slots (retried,
#     and swept at the next open);
#   - wait=1 with and without a replica; a frozen server (SIGSTOP); a slow
#     one (frozen and thawed over and over): a batch of cross-slot orders
#     ends by its deadline, timeout_ms after its start;
#   - kill -9 of a client between the steps of its cross-slot orders and
#     deductions: the store converges (all or nothing, I1-I3);
#   - kill -9 of redis-server under a writer, restart from the append-only
#     file: nothing acknowledged is lost;
#   - a server at maxmemory: clear errors, nothing half-done;
#   - stockd --store redis://... over RESP (redis-cli), its INFO counting
#     the store's batches and operations.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/harness/redis.sh
writer=""
stockd_pid=""
cleanup() {
    [ -z "$writer" ] || kill -KILL "$writer" 2>/dev/null || true
    [ -z "$stockd_pid" ] || kill -TERM "$stockd_pid" 2>/dev/null || true
    redis_stop
}
trap cleanup EXIT
redis_start
echo "redis $REDIS_URI (pid $REDIS_PID)"

# fused=0: every call in one slot, as on a cluster (a single server otherwise
# claims a deduction's line id in the deduction's own call).
for mode in "" "?prefix=shop1:&fused=0" "?prefix=nob:&outbox=0"; do
    redis_conformance "$mode"
done

# buckets=4: every SKU's stock over 4 keys in 4 slots (a prefix of its own:
# the store records its K). --quick only: its concurrency tests sell one hot
# SKU from 8 threads, and stockbench below checks I1-I5 after a run.
echo "== conformance ?buckets=4"
"$BUILD/tests/conformance" --quick "$REDIS_URI?prefix=bk4:&buckets=4" >"$REDIS_DIR/conformance.log" 2>&1 ||
    { cat "$REDIS_DIR/conformance.log"; exit 1; }
tail -n 1 "$REDIS_DIR/conformance.log"

redis_conformance_twice "$REDIS_URI" "$REDIS_URI?prefix=shop1:&fused=0"

echo "== options, directory entries and orders left by dead clients"
"$BUILD/tests/redis_faults" options "$REDIS_URI"
"$BUILD/tests/redis_faults" directory "$REDIS_URI"
"$BUILD/tests/redis_faults" stale "$REDIS_URI"
"$BUILD/tests/redis_faults" sweep "$REDIS_URI"
"$BUILD/tests/redis_faults" buckets "$REDIS_URI"
"$BUILD/tests/redis_faults" outbox "$REDIS_URI"
rc=0
out=$("$BUILD/stockd" --store "$REDIS_URI?prefix=nobp:&outbox=0" --port 17999 \
    --persist-to postgres://nobody@127.0.0.1:1/none 2>&1) || rc=$?
[ "$rc" -eq 1 ] && echo "$out" | grep -q "the redis URI has outbox=0: a store without an outbox has nothing to persist" ||
    { echo "FAIL: stockd --persist-to over an outbox=0 store: exit $rc: $out"; exit 1; }
rc=0
out=$("$BUILD/stockpersist" --redis "$REDIS_URI?prefix=nobp:&outbox=0" \
    --postgres postgres://nobody@127.0.0.1:1/none 2>&1) || rc=$?
[ "$rc" -ne 0 ] && echo "$out" | grep -q "the redis URI has outbox=0" ||
    { echo "FAIL: stockpersist over an outbox=0 store: exit $rc: $out"; exit 1; }
echo "ok   the persister refuses a store URI with outbox=0 (stockd exit 1, stockpersist exit $rc)"
echo "== buckets=4 under 8 stores at once: stockbench checks I1, I2, I4, I5"
case $BUILD in *san*) requests=4000 ;; *) requests=20000 ;; esac
"$BUILD/stockbench" -s "$REDIS_URI?prefix=bk4:&buckets=4" -w mixed --skus 3 --stock 2000 \
    -c 8 -P 16 -n "$requests" --no-progress >"$REDIS_DIR/bench.log" 2>&1 ||
    { cat "$REDIS_DIR/bench.log"; exit 1; }
grep -E '^  (results|check)' "$REDIS_DIR/bench.log"

echo "== wait=1 without and with a replica; a frozen server"
"$BUILD/tests/redis_faults" unreplicated "$REDIS_URI"
redis_start_replica
"$BUILD/tests/redis_faults" waited "$REDIS_URI"
redis_stop_replica
"$BUILD/tests/redis_faults" stopped "$REDIS_URI" "$REDIS_PID"
echo "== a slow server: each reply within timeout_ms, a batch of many calls by its deadline"
"$BUILD/tests/redis_faults" slow "$REDIS_URI" "$REDIS_PID"

echo "== a server that is not Redis 7"
fake_port=$(redis_free_port)
# Answers every command +OK, and INFO as a Redis 6.2 would.
python3 - "$fake_port" <<'PY' &
import socket, sys
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen(4)
server.settimeout(20)
conn, _ = server.accept()
data = b""
while True:
    chunk = conn.recv(4096)
    if not chunk:
        break
    data += chunk
    if b"INFO" in data.upper():
        body = b"# Server\r\nredis_version:6.2.14\r\n"
        conn.sendall(b"$%d\r\n%s\r\n" % (len(body), body))
        data = b""
PY
fake=$!
for ((i = 0; i < 50; i++)); do
    ss -Hltn "sport = :$fake_port" | grep -q . && break
    sleep 0.1
done
out=$("$BUILD/tests/conformance" "redis://127.0.0.1:$fake_port" 2>&1 || true)
kill "$fake" 2>/dev/null || true
wait "$fake" 2>/dev/null || true
echo "$out" | grep -q "UNSUPPORTED: redis: Redis 7 or newer is needed (Functions), the server has: redis_version:6.2.14" ||
    { echo "expected UNSUPPORTED, got: $out"; exit 1; }
echo "refused: ${out#*: }"

echo "== a Redis Cluster node without cluster=1"
# In a subshell, so that the harness's variables of the main server stay.
out=$(
    redis_start --cluster-enabled yes --cluster-config-file nodes.conf >/dev/null
    "$BUILD/tests/conformance" --quick "$REDIS_URI" 2>&1 || true
    [ -z "$(redis_cli --scan)" ] || echo "the cluster node got keys: $(redis_cli --scan)"
    redis_stop
)
echo "$out" | grep -q "INVALID: redis: the server is a Redis Cluster node (redis_mode:cluster); open it with cluster=1" ||
    { echo "expected INVALID, got: $out"; exit 1; }
! echo "$out" | grep -q "the cluster node got keys" || { echo "$out"; exit 1; }
echo "refused: ${out#*: }"

echo "== a layout of another version"
redis_cli SET other:stock:layout 99 >/dev/null
out=$("$BUILD/tests/conformance" "$REDIS_URI?prefix=other:" 2>&1 || true)
echo "$out" | grep -q "CORRUPT: redis: key other:stock:layout holds layout version '99'" ||
    { echo "expected CORRUPT, got: $out"; exit 1; }
echo "refused: ${out#*: }"

echo "== a wrong password"
redis_cli CONFIG SET requirepass s3cret >/dev/null
for uri in "$REDIS_URI" "redis://:wrong@127.0.0.1:$REDIS_PORT"; do
    out=$("$BUILD/tests/conformance" "$uri" 2>&1 || true)
    echo "$out" | grep -q "INVALID: redis: the server .*password" ||
        { echo "expected INVALID, got: $out"; exit 1; }
    echo "refused: ${out#*: }"
done
"$BUILD/tests/conformance" --filter 'set_creates*' "redis://:s3cret@127.0.0.1:$REDIS_PORT" 2>&1 |
    tail -n 1
"$BUILD/tests/conformance" --filter 'set_creates*' "$REDIS_URI?password=s3cret" 2>&1 |
    tail -n 1
redis_cli -a s3cret --no-auth-warning CONFIG SET requirepass "" >/dev/null

echo "== kill -9 redis-server under a writer, restart from the append-only file"
"$BUILD/tests/redis_faults" write "$REDIS_URI" "$REDIS_DIR/acked" >"$REDIS_DIR/writer.out" 2>&1 &
writer=$!
for ((i = 0; i < 100; i++)); do
    grep -q ready "$REDIS_DIR/writer.out" 2>/dev/null && break
    sleep 0.1
done
sleep 1
redis_restart
wait "$writer" || { cat "$REDIS_DIR/writer.out"; exit 1; }
writer=""
tail -n 1 "$REDIS_DIR/writer.out"
"$BUILD/tests/redis_faults" check "$REDIS_URI" "$REDIS_DIR/acked"

for delay in 0.3 1 2; do
    echo "== SIGKILL a client of cross-slot orders and deductions after ${delay}s"
    uri="$REDIS_URI?prefix=crash$delay:"
    "$BUILD/tests/redis_crash" write "$uri" "$REDIS_DIR/batches" >"$REDIS_DIR/crash.out" 2>&1 &
    writer=$!
    redis_wait_ready "$writer" "$REDIS_DIR/crash.out"
    sleep "$delay"
    # On a loaded machine a batch may time out first (UNAVAILABLE, outcome
    # unknown): the writer then stops on its own, and the check below still
    # holds. Any other early stop fails the suite.
    if ! kill -KILL "$writer" 2>/dev/null; then
        grep -q "UNAVAILABLE" "$REDIS_DIR/crash.out" || { echo "the writer ended before it was killed:"; cat "$REDIS_DIR/crash.out"; exit 1; }
        echo "the writer stopped before the kill: $(tail -n 1 "$REDIS_DIR/crash.out")"
    fi
    wait "$writer" 2>/dev/null || true
    writer=""
    echo "orders left in flight: $(redis_cli ZCARD "crash$delay:{stock:pending}")"
    "$BUILD/tests/redis_crash" check "$uri" "$REDIS_DIR/batches"
    [ "$(redis_cli ZCARD "crash$delay:{stock:pending}")" = 0 ]
done

echo "== stockd --store redis://..."
resp_port=$(redis_free_port)
"$BUILD/stockd" --store "$REDIS_URI?prefix=served:" --port "$resp_port" --http-port 0 \
    >"$REDIS_DIR/stockd.log" 2>&1 &
stockd_pid=$!
cli() { redis-cli -p "$resp_port" "$@"; }
for ((i = 0; i < 100; i++)); do
    [ "$(cli PING 2>/dev/null)" = PONG ] && break
    kill -0 "$stockd_pid" 2>/dev/null || { cat "$REDIS_DIR/stockd.log"; exit 1; }
    sleep 0.1
done
sku="served-$$-$RANDOM"
[ "$(cli SETSTOCK "$sku" 3)" = 3 ]
[ "$(cli DEDUCT "$sku-l1" "$sku" 2)" = 1 ]
[ "$(cli DEDUCT "$sku-l1" "$sku" 2)" = 1 ]          # a replay answers as the original
cli DEDUCT "$sku-l2" "$sku" 2 | grep -q "^INSUFFICIENT sku=$sku available=1"
[ "$(cli SETSTOCK "$sku-b" 5)" = 5 ]
[ "$(cli ORDER "$sku-o1" "$sku-l3" "$sku" 1 "$sku-l4" "$sku-b" 1 | tr '\n' ' ')" = "0 4 " ]
[ "$(cli LINEINFO "$sku-l4" | sed -n '2p;4p' | tr '\n' ' ')" = "$sku-b $sku-o1 " ]
[ "$(cli STOCK "$sku")" = 0 ]
[ "$(redis_cli HGET "served:{sku:$sku}" av)" = 0 ]
# The library counts the redis store's batches (lib/batches.h): INFO shows
# the 8 operations above, each its own batch (one client at a time).
info=$(cli INFO | tr -d '\r')
grep -qx "store_operations:8" <<<"$info" || { echo "INFO store_operations: $info"; exit 1; }
grep -qx "store_batches:8" <<<"$info" || { echo "INFO store_batches: $info"; exit 1; }
# Holds are not kept by a redis store: HOLD answers UNSUPPORTED, saying so,
# and nothing is held.
[ "$(cli HOLD "$sku-h1" "$sku-b" 1 60000)" = "UNSUPPORTED the redis backend keeps no holds; nothing changed" ] ||
    { echo "HOLD on a redis store: $(cli HOLD "$sku-h1" "$sku-b" 1 60000)"; exit 1; }
[ "$(cli SKUINFO "$sku-b" | tr '\n' ' ')" = "available 4 adjusted 5 deducted 1 refunded 0 held 0 " ]
kill -TERM "$stockd_pid"
wait "$stockd_pid"
stockd_pid=""
echo "stockd served the redis store"

echo "== a server at maxmemory"
redis_cli CONFIG SET maxmemory 1 >/dev/null
"$BUILD/tests/redis_faults" full "$REDIS_URI"
redis_cli CONFIG SET maxmemory 0 >/dev/null
echo "55-redis: all passed"
