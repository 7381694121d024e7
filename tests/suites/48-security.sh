#!/usr/bin/env bash
# 48-security.sh -- who may reach stockd and what they may do, checked with
# real clients: protected mode refusing a public --bind with no password
# (and starting, with a warning, when turned off), run in a network
# namespace of its own so that no port is ever open beyond this test.
set -eu
BUILD=${BUILD:-build}
STOCKD=$BUILD/stockd
dir=$(mktemp -d)
pid=""

cleanup() {
    if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    [ -f "$dir/log" ] && { echo "--- stockd log"; tail -n 30 "$dir/log"; }
    exit 1
}

# check NAME EXPECTED ACTUAL
check() {
    [ "$2" = "$3" ] || fail "$1: expected [$2], got [$3]"
    echo "ok  $1"
}

# refused NAME WORDS FLAG...: stockd exits 2 with WORDS in its message.
refused() {
    local name=$1 words=$2 rc=0 out
    shift 2
    out=$("$STOCKD" --store "$dir/data" "$@" 2>&1) || rc=$?
    check "$name exits 2" 2 "$rc"
    echo "$out" | grep -qF -- "$words" || fail "$name: message [$out] lacks [$words]"
}

# ------------------------------------------------------------ protected mode
refused "public bind, no password" "--protected-mode no" --bind 0.0.0.0
refused "public IPv6 bind, no password" "Set a password" --bind ::
refused "protected-mode maybe" "must be yes or no" --protected-mode maybe
# In a network namespace of its own (its loopback only), a public bind
# starts with a password, or with protection off and a warning.
netns_start() {
    unshare -n sh -c 'ip link set lo up && exec "$@"' sh \
        "$STOCKD" --store "$dir/data" --bind 0.0.0.0 --port 17390 --http-port 0 "$@" \
        >"$dir/log" 2>&1 &
    pid=$!
    for _ in $(seq 200); do
        grep -q "listening for RESP" "$dir/log" && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    fail "stockd did not start in its namespace: $*"
}
netns_stop() {
    kill -TERM "$pid"
    wait "$pid" || fail "stockd exited non-zero"
    pid=""
}
netns_start --protected-mode no
grep -q "WARN --protected-mode no: listening on 0.0.0.0 with no password" "$dir/log" ||
    fail "no warning for a public bind without a password"
echo "ok  --protected-mode no starts, with a warning"
netns_stop
netns_start --requirepass s3cret
grep -q "WARN" "$dir/log" && fail "a public bind with a password warned"
echo "ok  a public bind with a password starts"
netns_stop

echo "48-security: all passed"
