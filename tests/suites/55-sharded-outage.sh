#!/usr/bin/env bash
# 55-sharded-outage.sh -- one shard of a 3-shard store stops answering, and
# the store goes on (docs/sharded.md, "A shard that stops or dies"). A stockd
# serves the store with stock_timeout_ms=2000 on every member; then shard 2
# is frozen (SIGSTOP of all its processes), and later killed (SIGKILL) and
# restarted on its data folder. Each time:
#   - a deduction of a SKU on shard 2 fails UNAVAILABLE within BOUND_S;
#   - the other shards keep serving: of 24 deductions of a SKU on shard 0
#     (their line ids spread over the 3 shards' directories), those whose id
#     lives on shard 0 or 1 succeed, the rest fail UNAVAILABLE, all in time;
#   - a cart over shards 0 and 2 fails UNAVAILABLE and takes nothing;
#   - once shard 2 is back, every failed op retried with its id succeeds
#     (OK, or REPLAY when the frozen server applied it after all), each
#     SKU's stock is its level minus exactly what was deducted, and no
#     prepared transaction is left on any shard.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
BOUND_S=${BOUND_S:-15}
. tests/harness/pg.sh
stockd_pid=""
frozen=()
cleanup() {
    [ ${#frozen[@]} -eq 0 ] || kill -CONT "${frozen[@]}" 2>/dev/null || true
    [ -z "$stockd_pid" ] || kill "$stockd_pid" 2>/dev/null || true
    pg_stop
}
trap cleanup EXIT
pg_start_many 3
LOG=${PG_MANY_DIRS[0]}
TIMEOUT="?stock_timeout_ms=2000"
STORE="shards:${PG_MANY_URIS[0]}$TIMEOUT;${PG_MANY_URIS[1]}$TIMEOUT;${PG_MANY_URIS[2]}$TIMEOUT"
port_of() { local rest=${1#*127.0.0.1:}; echo "${rest%%/*}"; }
psql_on() { "$PG_BIN/psql" -h 127.0.0.1 -p "$(port_of "${PG_MANY_URIS[$1]}")" -U postgres -d postgres -qtAX -c "$2"; }

port=$(pg_free_port)
"$BUILD/stockd" --store "$STORE" --port "$port" --http-port 0 >"$LOG/stockd.log" 2>&1 &
stockd_pid=$!
ctl() { "$BUILD/stockctl" --store "stockd://127.0.0.1:$port" "$@"; }
# ctl, again while it answers UNAVAILABLE (exit 11): with every shard up, a
# loaded machine (a sanitizer build) can still miss the 2 s deadline.
ctl_up() {
    local tries rc
    for ((tries = 0; tries < 30; tries++)); do
        rc=0
        ctl "$@" || rc=$?
        [ "$rc" -eq 11 ] || return "$rc"
        sleep 0.5
    done
    return 11
}
for _ in $(seq 300); do
    rc=0; ctl get none >/dev/null 2>&1 || rc=$?
    [ "$rc" -eq 4 ] && break   # NOTFOUND: stockd answers
    kill -0 "$stockd_pid" || { cat "$LOG/stockd.log"; exit 1; }
    sleep 0.1
done

# SKUs at level 1000, and the shard each lives on.
LEVEL=1000
for i in $(seq 0 29); do ctl_up set "out-sku-$i" "$LEVEL" >/dev/null; done
on_shard() { psql_on "$1" "SELECT sku_id FROM inventory WHERE sku_id LIKE 'out-sku-%' ORDER BY sku_id LIMIT 1"; }
SKU0=$(on_shard 0) SKU1=$(on_shard 1) SKU2=$(on_shard 2)
[ -n "$SKU0" ] && [ -n "$SKU1" ] && [ -n "$SKU2" ] || { echo "FAIL: 30 SKUs do not cover 3 shards"; exit 1; }
echo "SKUs: $SKU0 on shard 0, $SKU1 on shard 1, $SKU2 on shard 2"

declare -A deducted=()     # SKU -> units deducted by ops that succeeded
retry=()                   # ops that failed UNAVAILABLE: "LINE SKU QTY" or "order ..."

# Runs one op through stockd; its exit code in rc; fails the suite when it
# takes longer than BOUND_S.
timed() {
    local start=$SECONDS
    rc=0
    ctl "$@" >"$LOG/op.out" 2>&1 || rc=$?
    if [ $((SECONDS - start)) -gt "$BOUND_S" ]; then
        echo "FAIL: '$*' took $((SECONDS - start)) s (bound $BOUND_S s): $(cat "$LOG/op.out")"
        exit 1
    fi
}

# The checks while shard 2 is out; $1 names the round.
while_out() {
    local round=$1 ok=0 k
    timed deduct "$round-c" "$SKU2" 1
    [ "$rc" -eq 11 ] || { echo "FAIL: a deduction on the stopped shard: rc $rc ($(cat "$LOG/op.out"))"; exit 1; }
    echo "$round: deduction on shard 2: UNAVAILABLE ($(cat "$LOG/op.out" | head -n 1))"
    retry+=("$round-c $SKU2 1")
    for k in $(seq 1 24); do
        timed deduct "$round-a$k" "$SKU0" 1
        case $rc in
        0) ok=$((ok + 1)); deducted[$SKU0]=$((${deducted[$SKU0]:-0} + 1)) ;;
        11) retry+=("$round-a$k $SKU0 1") ;;
        *) echo "FAIL: a deduction on shard 0: rc $rc ($(cat "$LOG/op.out"))"; exit 1 ;;
        esac
    done
    [ "$ok" -gt 0 ] || { echo "FAIL: shard 0 served nothing while shard 2 was out"; exit 1; }
    echo "$round: shard 0 served $ok of 24 deductions (the rest have their id's directory on shard 2)"
    timed order "$round-o" "$round-o1" "$SKU0" 2 "$round-o2" "$SKU2" 3
    [ "$rc" -eq 11 ] || { echo "FAIL: a cart over shards 0 and 2: rc $rc ($(cat "$LOG/op.out"))"; exit 1; }
    echo "$round: cart over shards 0 and 2: UNAVAILABLE"
    retry+=("order $round-o $round-o1 $SKU0 2 $round-o2 $SKU2 3")
}

# Retries every failed op until it succeeds (shard 2 just came back).
converge() {
    local op tries
    for op in "${retry[@]}"; do
        for ((tries = 0; tries < 60; tries++)); do
            rc=0
            if [[ $op == order* ]]; then ctl $op >"$LOG/op.out" 2>&1 || rc=$?
            else ctl deduct $op >"$LOG/op.out" 2>&1 || rc=$?; fi
            [ "$rc" -eq 11 ] || break
            sleep 0.5
        done
        [ "$rc" -eq 0 ] || { echo "FAIL: retry of '$op': rc $rc ($(cat "$LOG/op.out"))"; exit 1; }
        set -- $op
        if [ "$1" = order ]; then
            deducted[$4]=$((${deducted[$4]:-0} + $5)); deducted[$7]=$((${deducted[$7]:-0} + $8))
        else
            deducted[$2]=$((${deducted[$2]:-0} + $3))
        fi
    done
    retry=()
    local sku want got
    for sku in "$SKU0" "$SKU1" "$SKU2"; do
        want=$((LEVEL - ${deducted[$sku]:-0}))
        got=$(ctl_up get "$sku" | awk '$1 == "available" {print $2}')
        [ "$got" = "$want" ] || { echo "FAIL: $sku has $got available, expected $want"; ctl get "$sku"; exit 1; }
    done
    for k in 0 1 2; do
        got=$(psql_on "$k" "SELECT count(*) FROM pg_prepared_xacts")
        [ "$got" = 0 ] || { echo "FAIL: $got prepared transactions left on shard $k"; exit 1; }
    done
    echo "converged: $SKU0 $((LEVEL - ${deducted[$SKU0]:-0})), $SKU2 $((LEVEL - ${deducted[$SKU2]:-0})) available, nothing prepared"
}

victim=${PG_MANY_PIDS[2]}
echo "== shard 2 frozen (SIGSTOP)"
mapfile -t frozen < <(echo "$victim"; ps -o pid= --ppid "$victim" | tr -d ' ')
kill -STOP "${frozen[@]}"
while_out frozen
kill -CONT "${frozen[@]}"
frozen=()
converge

echo "== shard 2 killed (SIGKILL) and restarted"
children=$(ps -o pid= --ppid "$victim" | tr -d ' ')
kill -KILL "$victim" $children
for _ in $(seq 100); do kill -0 "$victim" 2>/dev/null || break; sleep 0.1; done
while_out killed
PG_MANY_PIDS[2]=$(pg_launch "${PG_MANY_DIRS[2]}/primary" "$(port_of "${PG_MANY_URIS[2]}")") ||
    { tail -n 20 "${PG_MANY_DIRS[2]}/primary/server.log"; exit 1; }
converge
kill "$stockd_pid"
wait "$stockd_pid" || true
stockd_pid=""
echo "55-sharded-outage: ok"
