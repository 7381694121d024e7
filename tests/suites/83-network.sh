#!/usr/bin/env bash
# 83-network.sh -- network faults between libstock's remote backend and
# stockd, through a fault-injecting TCP proxy of the harness
# (tests/harness/fault_proxy.py: every connection is closed, delayed then
# closed, black-holed, reset mid-reply or half-closed after 0..16 KiB of
# replies). Two server_crash_client processes deduct, order and refund
# through the proxy with a 300 ms reply timeout (stockd://...?timeout_ms=300)
# for NETWORK_SECONDS (default 8), retrying every op whose outcome was left
# unknown (UNAVAILABLE) with the same id. Then, straight to stockd,
# server_crash_check verifies that every acknowledged op is there exactly
# once with its acknowledged result and that I1-I5 hold: nothing applied
# twice, nothing acknowledged lost. Every kind of fault must have struck,
# and the clients must have hit UNAVAILABLE and settled it.
set -eu
BUILD=${BUILD:-build}
. "$(dirname "$0")/../system/server_helpers.sh"
seconds=${NETWORK_SECONDS:-8}
skus=4
level=1000000000
dir=$(mktemp -d)
stockd_pid=""
proxy_pid=""
cleanup() {
    stop_pids "${PROXY_CLIENTS[@]}" "$proxy_pid" "$stockd_pid"
    rm -rf "$dir"
}
trap cleanup EXIT
fail() { fail_with_log "$dir/stockd.log" "$@"; }
use_binaries "$dir/bin" stockd stockctl tests/server_crash_client tests/server_crash_check
BIN=$dir/bin
port=$(pick_port 17620 17629)
start_stockd "$port" "$dir/data" "$dir/stockd.log" || fail "stockd did not start"
stockd_pid=$STOCKD_PID
direct="stockd://127.0.0.1:$port"
for i in $(seq 0 $((skus - 1))); do
    "$BIN/stockctl" --store "$direct" set "S$i" "$level" >/dev/null
done

proxy_port=$(pick_port 17630 17639)
proxy_start "$proxy_port" "$port" "$dir"
proxy_pid=$PROXY_PID
proxy_clients "$BIN/server_crash_client" "stockd://127.0.0.1:$proxy_port?timeout_ms=300" n "$skus" \
    "$dir" "$seconds"
proxy_pid=""

echo "== every acknowledged op there once, I1-I5, checked straight at stockd"
"$BIN/server_crash_check" "$direct" "$skus" "$level" "$dir"/client-*.log ||
    fail "the check found violations"

echo "== a peer that is not a stockd: replies past the reader's bounds are refused"
# The first fake announces an array of 2^31-1 elements, the second sends a
# bulk string of 17 MiB; without the bounds the backend would allocate what
# the peer announces, or hold all it sends, and end in a timeout.
fake_port=$(pick_port 17640 17649)
for reply in array bulk; do
    /usr/bin/python3 - "$fake_port" "$reply" >"$dir/fake.out" 2>&1 <<'PY' &
import socket, sys
port, kind = int(sys.argv[1]), sys.argv[2]
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen(1)
print("listening", flush=True)
peer, _ = server.accept()
peer.recv(65536)
try:
    if kind == "array":
        peer.sendall(b"*2147483647\r\n")
    else:
        peer.sendall(b"$17825792\r\n" + b"x" * 17825792)
    peer.recv(1)
except OSError:
    pass
PY
    fake_pid=$!
    for _ in $(seq 100); do grep -q listening "$dir/fake.out" 2>/dev/null && break; sleep 0.05; done
    out=$("$BIN/stockctl" --store "stockd://127.0.0.1:$fake_port?timeout_ms=5000" get A 2>&1) &&
        fail "$reply: a reply from a peer that is not a stockd was accepted: $out"
    kill "$fake_pid" 2>/dev/null || true
    wait "$fake_pid" 2>/dev/null || true
    echo "  $reply: $out"
    echo "$out" | grep -q "not a stockd" || fail "$reply: no clear refusal: $out"
done
