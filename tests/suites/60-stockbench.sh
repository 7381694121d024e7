#!/usr/bin/env bash
# 60-stockbench.sh -- stockbench end to end: every workload against the
# embedded engine in a fresh folder (check passes, JSON parses, the counts
# add up, sellout sells exactly its stock), an open-loop run, a plot, flag
# validation; then the same against a real stockd on 127.0.0.1 (a free port
# of 17450-17458) through
# stockd://, and a run that a second writer disturbs on purpose (redis-cli
# deducts from the bench's own SKU mid-run), which the check must catch;
# last, crash mode: stockbench SIGKILLs and restarts its own stockd
# (another free port) under load, and the check must still pass.
set -eu
BUILD=${BUILD:-build}
. "$(dirname "$0")/../system/server_helpers.sh"   # stop_pids
bench="$BUILD/stockbench"
[ -x "$bench" ] || { echo "missing $bench (make)"; exit 1; }
[ -x "$BUILD/stockd" ] || { echo "missing $BUILD/stockd (make)"; exit 1; }
# free_port FIRST LAST: the first port in FIRST..LAST nothing listens on, so
# that two runs of this suite (release and sanitizer) can share the machine.
free_port() {
    local candidate
    for candidate in $(seq "$1" "$2"); do
        (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null || { echo "$candidate"; return 0; }
    done
    echo "no free port in $1..$2" >&2
    return 1
}
# Release and sanitizer runs start in separate halves of the range, so they
# do not race each other for the same free port.
case $BUILD in
*san*) first_port=17455 ;;
*) first_port=17450 ;;
esac
port=$(free_port "$first_port" $((first_port + 2)))
dir=$(mktemp -d "${TMPDIR:-/tmp}/stockbench-suite.XXXXXX")
pids=()
cleanup() {
    stop_pids "${pids[@]}"
    rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

# json_field FILE EXPR: evaluates a Python expression over the JSON in FILE
# (bound to j). Debian's python3: a python3 earlier on PATH may be a slow shim.
json_field() {
    /usr/bin/python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"
}

# bench_ok NAME ARGS...: runs stockbench --json, which must pass its check;
# leaves the report in $dir/NAME.json.
bench_ok() {
    local name=$1
    shift
    local status=0
    "$bench" --json "$@" >"$dir/$name.json" 2>"$dir/$name.err" || status=$?
    cat "$dir/$name.err"
    [ "$status" -eq 0 ] || fail "$name: stockbench exited $status"
    [ "$(json_field "$dir/$name.json" 'j["check"]["passed"]')" = True ] ||
        fail "$name: check did not pass"
    [ "$(json_field "$dir/$name.json" 'j["operations_total"] > 0 and sum(j["results"].values()) == j["operations_total"]')" = True ] ||
        fail "$name: result counts do not add up to the operations"
    echo "ok   $name: $(json_field "$dir/$name.json" '"%d ops, %.0f ops/s, p99 %.3f ms" % (j["operations_total"], j["ops_per_s"], j["latency_ms"]["p99"])')"
}

echo "== flags are validated"
for args in "" "--store x -c 0" "--store x -P 5000" "--store x -w nope" \
            "--store x -d 1 -n 5" "--store x --rate -3" "--store x --prefix a;b c" \
            "--store x -w cart --replays 3" "--store x extra" \
            "--store x --skus 0" "--store x --skus 10000001"; do
    status=0
    # shellcheck disable=SC2086
    "$bench" $args >"$dir/usage.out" 2>&1 || status=$?
    [ "$status" -eq 2 ] || fail "'$args' exited $status, wanted 2"
    grep -q "stockbench: " "$dir/usage.out" || fail "'$args' gave no message"
done
"$bench" --help | grep -q -- "--workload" || fail "--help lacks --workload"

echo "== every workload on the embedded engine"
emb="$dir/embedded"
bench_ok hot --store "$emb" -w hot -d 1 -c 4 -P 16
bench_ok uniform --store "$emb" -w uniform --skus 20000 -d 1
# Above the old limit of 1,000,000 SKUs (raised to the checker's 10,000,000
# so that bench/curves.sh can measure a store of that many).
bench_ok many-skus --store "$emb" -w uniform --skus 1000001 -d 0.5
[ "$(json_field "$dir/many-skus.json" 'j["skus"]')" = 1000001 ] ||
    fail "many-skus: the run did not create 1000001 SKUs"
bench_ok cart --store "$emb" -w cart -d 1
bench_ok mixed --store "$emb" -w mixed -d 2 --replays 3 --plot "$dir/mixed.png"
bench_ok sellout --store "$emb" -w sellout -c 8 -P 64
[ "$(json_field "$dir/sellout.json" 'j["results"]["OK"], j["deducted"], j["operations_total"]')" = "10000 10000 200000" ] ||
    fail "sellout did not sell exactly 10000 of 200000 attempts"
[ "$(json_field "$dir/mixed.json" 'j["operations"]["replay"] > 0 and j["results"].get("REPLAY") == j["operations"]["replay"]')" = True ] ||
    fail "mixed: replays were not all answered REPLAY"
[ "$(head -c 4 "$dir/mixed.png" | tail -c 3)" = PNG ] || fail "--plot did not write a PNG"
bench_ok open-loop --store "$emb" -w uniform --skus 1000 -r 4000 -d 2 -c 16 -P 4
rate=$(json_field "$dir/open-loop.json" 'round(j["ops_per_s"])')
[ "$rate" -ge 3400 ] && [ "$rate" -le 4600 ] || fail "open loop at 4000/s ran at $rate/s"

# Far above what one batch in flight can do: latency counts from when each
# op fell due, so it grows with the backlog instead of hiding it.
bench_ok overload --store "$emb" -w hot -r 1000000 -c 1 -P 1 -d 1
[ "$(json_field "$dir/overload.json" 'j["latency_ms"]["p50"] > 100 and j["unsent"] > 0')" = True ] ||
    fail "an overloaded open loop did not show the backlog in its latency"

echo "== an unreachable store exits 3 with the reason"
status=0
"$bench" --store stockd://127.0.0.1:17459 -d 1 >"$dir/down.out" 2>&1 || status=$?
cat "$dir/down.out"
[ "$status" -eq 3 ] || fail "unreachable store: exit $status, wanted 3"
grep -q "cannot open" "$dir/down.out" || fail "unreachable store: no reason given"

echo "== through stockd://127.0.0.1:$port"
"$BUILD/stockd" --store "$dir/server-data" --port "$port" --http-port 0 \
    --bind 127.0.0.1 >"$dir/stockd.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do
    redis-cli -p "$port" PING 2>/dev/null | grep -q PONG && break
    sleep 0.05
done
redis-cli -p "$port" PING | grep -q PONG || { cat "$dir/stockd.log"; fail "stockd did not start"; }
remote="stockd://127.0.0.1:$port"
bench_ok remote-hot --store "$remote" -w hot -d 1 -c 4 -P 16
bench_ok remote-mixed --store "$remote" -w mixed -d 1 -c 4 -P 8
[ "$(json_field "$dir/remote-hot.json" 'j["backend"]')" = remote ] || fail "not the remote backend"

echo "== a second writer on the bench's SKU is caught by the check"
prefix="suite$$-"
status=0
"$bench" --store "$remote" -w hot -d 3 -c 2 -P 4 --prefix "$prefix" \
    >"$dir/disturbed.out" 2>&1 &
bench_pid=$!
for _ in $(seq 100); do
    [ "$(redis-cli -p "$port" STOCK "${prefix}S0" 2>/dev/null)" -gt 0 ] 2>/dev/null && break
    sleep 0.05
done
redis-cli -p "$port" DEDUCT "${prefix}intruder" "${prefix}S0" 7
wait "$bench_pid" || status=$?
cat "$dir/disturbed.out"
[ "$status" -eq 1 ] || fail "disturbed run: exit $status, wanted 1 (check failed)"
grep -q "I2 sku=${prefix}S0: .*(difference +7)" "$dir/disturbed.out" ||
    fail "the check did not name the SKU and the difference of 7"
echo "== crash mode: stockd SIGKILLed every second under load, acknowledged ops all there"
crash_port=$(free_port $((port + 1)) $((first_port + 3)))
bench_ok crash --stockd "$BUILD/stockd" --stockd-data "$dir/crash-data" \
    --stockd-port "$crash_port" --kill-every 1 -w mixed -d 4 -c 4 -P 8
[ "$(json_field "$dir/crash.json" 'j["kills"] >= 2')" = True ] ||
    fail "crash mode did not kill stockd at least twice"
status=0
"$bench" --stockd "$BUILD/stockd" --store x --stockd-data "$dir/d" --stockd-port "$crash_port" \
    >"$dir/both.out" 2>&1 || status=$?
[ "$status" -eq 2 ] || fail "--stockd with --store: exit $status, wanted 2"
echo "stockbench suite passed"
