#!/usr/bin/env bash
# 45-remote-conformance.sh -- the conformance suite (tests/conformance)
# through the remote backend against a real stockd (on a free port in
# 17350-17364) over the embedded engine in a fresh folder; then the same
# suite's deduction tests through a stockd that requires a password
# (stockd://...?password=), and a check that a wrong or missing password is
# refused with a clear message. Sanitizer builds run the
# quick variant of the concurrency tests.
set -eu
BUILD=${BUILD:-build}
bin="$BUILD/tests/conformance"
[ -x "$bin" ] || { echo "missing $bin (make tests)"; exit 1; }
[ -x "$BUILD/stockd" ] || { echo "missing $BUILD/stockd (make)"; exit 1; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/stockd-remote.XXXXXX")
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$dir"
}
trap cleanup EXIT
case "$BUILD" in
*san*) export CONFORMANCE_QUICK=1 ;;
esac
. "$(dirname "$0")/../system/server_helpers.sh"

port=$(pick_port 17350 17357)
auth_port=$(pick_port 17358 17364)
start_stockd "$port" "$dir/data" "$dir/stockd-$port.log" || exit 1
pids+=("$STOCKD_PID")
echo "== conformance through stockd://127.0.0.1:$port"
timeout 300 "$bin" "stockd://127.0.0.1:$port"

start_stockd "$auth_port" "$dir/auth-data" "$dir/stockd-$auth_port.log" \
    --requirepass 's3cret&x' || exit 1
pids+=("$STOCKD_PID")
echo "== conformance through a stockd with --requirepass"
timeout 300 "$bin" --filter '*deduct*' "stockd://127.0.0.1:$auth_port?password=s3cret%26x"

echo "== a wrong or missing password is refused clearly"
for uri in "stockd://127.0.0.1:$auth_port?password=wrong" "stockd://127.0.0.1:$auth_port"; do
    status=0
    "$BUILD/stockctl" --store "$uri" get A >"$dir/out" 2>&1 || status=$?
    cat "$dir/out"
    [ "$status" -eq 11 ] || { echo "FAIL: $uri: exit $status, wanted 11"; exit 1; }
    grep -Eqi 'password|auth' "$dir/out" || { echo "FAIL: message does not name the password"; exit 1; }
done
echo "remote conformance passed"
