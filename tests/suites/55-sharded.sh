#!/usr/bin/env bash
# 55-sharded.sh -- the sharded backend (docs/sharded.md) over real PostgreSQL
# 15 primaries started by tests/harness/pg.sh (pg_start_many): the
# conformance suite unchanged over 3 shards (--quick, then the full sellout),
# from two stores at once, and over 1 shard; opening refused with members in
# another order, one missing, one from another map, and on a server without
# max_prepared_transactions, each with a message naming the member; stockd
# serving a sharded store. 55-sharded-crash.sh kills writers mid-cart.
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
"$BUILD/tests/conformance" --filter 'sellout*' "$THREE" 2>&1 | tail -n 1
[ "${PIPESTATUS[0]}" -eq 0 ]

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

echo "== stockd serving the 3-shard store"
port=$(pg_free_port) http=$(pg_free_port)
"$BUILD/stockd" --store "$THREE" --port "$port" --http-port "$http" >"$LOG/stockd.log" 2>&1 &
stockd_pid=$!
trap 'kill $stockd_pid 2>/dev/null || true; pg_stop' EXIT
for _ in $(seq 100); do
    "$BUILD/stockctl" --store "stockd://127.0.0.1:$port" get sharded-after-refusals >/dev/null 2>&1 && break
    sleep 0.1
done
"$BUILD/stockctl" --store "stockd://127.0.0.1:$port" deduct sharded-l1 sharded-after-refusals 2
"$BUILD/stockctl" --store "$THREE" get sharded-after-refusals | grep -q "available *3" ||
    { echo "FAIL: the deduction through stockd is not in the store"; "$BUILD/stockctl" --store "$THREE" get sharded-after-refusals; exit 1; }
kill "$stockd_pid"
wait "$stockd_pid" || true
echo "55-sharded: ok"
