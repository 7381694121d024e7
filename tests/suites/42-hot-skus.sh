#!/usr/bin/env bash
# 42-hot-skus.sh -- stockd's hot-SKU rankings (docs/operations.md, "Hot
# SKUs") through redis-cli and curl: a hot SKU that sells out (1,000
# deductions of 100 units), a warm one, and 5,000 cold SKUs touched once;
# INFO, GET /v1/hot and /metrics must rank the hot SKU first and the warm
# one second by operations, each count within its error of the truth and
# never under it (a 10-second sub-window's edge may fall inside the burst:
# docs/operations.md, "Hot SKUs"), the hot SKU first by refusals with its
# exact count, and /metrics must hold at most ten series per ranking
# however many SKUs there are; `stockctl hot` must show the same rankings,
# as text and as JSON.
set -eu
BUILD=${BUILD:-build}
. "$(dirname "$0")/../system/server_helpers.sh"
dir=$(mktemp -d)
stockd_pid=""
cleanup() {
    if [ -n "$stockd_pid" ]; then
        kill -9 "$stockd_pid" 2>/dev/null || true
        wait "$stockd_pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    exit 1
}
BIN="$dir/bin"
use_binaries "$BIN" stockd stockctl
port=$(pick_port 17510 17519)
http_port=$((port + 100))
start_stockd "$port" "$dir/data" "$dir/stockd.log" --http-port "$http_port" || fail "stockd did not start"
stockd_pid=$STOCKD_PID
cli() { redis-cli -p "$port" "$@"; }

cli SETSTOCK HOT 100 >/dev/null
cli SETSTOCK WARM 1000 >/dev/null
for i in $(seq 1000); do echo "DEDUCT hot-$i HOT 1"; done | cli >/dev/null
for i in $(seq 300); do echo "DEDUCT warm-$i WARM 1"; done | cli >/dev/null
for i in $(seq 5000); do echo "SETSTOCK cold-$i 1"; done | cli >/dev/null
echo "DEDUCT bad id HOT 1" | cli >/dev/null   # INVALID: counted nowhere

echo "== INFO"
cli INFO | tr -d '\r' | sed -n '/^# Hot/,$p' | tee "$dir/info.txt"
grep -qx "hot_window_seconds:60" "$dir/info.txt" || fail "no window in INFO"
# ranked RANK SKU TRUTH: INFO's operations ranking has SKU at RANK with a
# count not under TRUTH and over it by at most its error; prints the count.
ranked() {
    local line count error
    line=$(grep "^hot_operations_$1:sku=$2,count=" "$dir/info.txt") || return 1
    count=${line#*count=}
    count=${count%%,*}
    error=${line##*error=}
    [ "$count" -ge "$3" ] && [ $((count - error)) -le "$3" ] || return 1
    echo "$count"
}
hot_count=$(ranked 1 HOT 1001) ||
    fail "HOT is not first by operations with 1,001 (a set and 1,000 deductions) within its error"
ranked 2 WARM 301 >/dev/null || fail "WARM is not second with 301 within its error"
grep -qx "hot_refusals_1:sku=HOT,count=900,error=0" "$dir/info.txt" || fail "HOT has not 900 refusals"
[ "$(grep -c '^hot_operations_' "$dir/info.txt")" -eq 10 ] || fail "the operations ranking is not ten SKUs"
[ "$(grep -c '^hot_refusals_' "$dir/info.txt")" -eq 1 ] || fail "only HOT refused anything"

echo "== GET /v1/hot"
curl -sf "http://127.0.0.1:$http_port/v1/hot" | tee "$dir/hot.json"
echo
[ "$(jq -r '.operations[0] | "\(.sku) \(.count)"' "$dir/hot.json")" = "HOT $hot_count" ] ||
    fail "/v1/hot does not rank HOT first as INFO does"
[ "$(jq '.operations | length' "$dir/hot.json")" -eq 10 ] || fail "/v1/hot has not ten SKUs"
[ "$(jq -r '.refusals[0].sku' "$dir/hot.json")" = HOT ] || fail "/v1/hot refusals"

echo "== /metrics"
curl -sf "http://127.0.0.1:$http_port/metrics" | grep '^stockd_hot' | tee "$dir/metrics.txt"
grep -qx "stockd_hot_sku_operations{rank=\"1\",sku=\"HOT\"} $hot_count" "$dir/metrics.txt" || fail "no HOT series"
grep -qx 'stockd_hot_sku_refusals{rank="1",sku="HOT"} 900' "$dir/metrics.txt" || fail "no HOT refusals series"
series=$(grep -c '^stockd_hot_sku_' "$dir/metrics.txt")
[ "$series" -le 20 ] || fail "$series hot series for 5,002 SKUs: not bounded"

echo "== stockctl hot"
"$BIN/stockctl" hot --http "http://127.0.0.1:$http_port" | tee "$dir/hot.txt"
grep -Eq "^ +1 +HOT +$hot_count( +\(at most [0-9]+ fewer\))?\$" <(sed -n '/^by operations/,/^by refusals/p' "$dir/hot.txt") ||
    fail "stockctl hot does not rank HOT first by operations"
grep -Eq '^ +1 +HOT +900$' <(sed -n '/^by refusals/,$p' "$dir/hot.txt") ||
    fail "stockctl hot does not rank HOT first by refusals"
STOCKCTL_HTTP="http://127.0.0.1:$http_port" "$BIN/stockctl" --json hot >"$dir/hot-ctl.json"
[ "$(jq -r '.operations[0] | "\(.sku) \(.count)"' "$dir/hot-ctl.json")" = "HOT $hot_count" ] ||
    fail "stockctl --json hot is not the reply of /v1/hot"
rc=0
"$BIN/stockctl" hot --http "http://127.0.0.1:$(pick_port 17510 17519)" 2>"$dir/hot.err" || rc=$?
[ "$rc" -eq 11 ] && grep -q "cannot connect" "$dir/hot.err" || fail "stockctl hot with no server: exit $rc"
rc=0
"$BIN/stockctl" hot --http "ftp://x" 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || fail "stockctl hot with a bad --http: exit $rc"
echo "PASS"
