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
    stop_pids "${pids[@]}"
    rm -rf "$dir"
}
trap cleanup EXIT
case "$BUILD" in
*san*) export CONFORMANCE_QUICK=1 ;;
esac
. "$(dirname "$0")/../system/server_helpers.sh"
use_binaries "$dir/bin" stockd stockctl tests/conformance
BIN=$dir/bin
bin=$BIN/conformance

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
    "$BIN/stockctl" --store "$uri" get A >"$dir/out" 2>&1 || status=$?
    cat "$dir/out"
    [ "$status" -eq 11 ] || { echo "FAIL: $uri: exit $status, wanted 11"; exit 1; }
    grep -Eqi 'password|auth' "$dir/out" || { echo "FAIL: message does not name the password"; exit 1; }
done
# A fake server that completes the handshake, reads one command, and then
# either hangs up (mode close) or answers with a reply of the wrong shape
# (mode garbage): the remote backend must say the outcome is unknown and
# that a retry with the same id is safe.
fake_server() {
    /usr/bin/python3 - "$1" "$2" "$3" <<'PYTHON'
import socket, sys
port, mode, ready = int(sys.argv[1]), sys.argv[2], sys.argv[3]
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen(1)
open(ready, "w").close()
client, _ = listener.accept()
data = b""
while not data.endswith(b"STOCKPROTO\r\n$1\r\n1\r\n"):
    chunk = client.recv(4096)
    if not chunk:
        sys.exit("fake server: no handshake")
    data += chunk
client.sendall(b"+OK\r\n")
client.recv(4096)
if mode == "garbage":
    client.sendall(b":5\r\n")
    client.recv(4096)
client.close()
PYTHON
}

for mode in close garbage; do
    echo "== a $mode reply: outcome unknown"
    fake_port=$(pick_port 17395 17398)
    rm -f "$dir/ready"
    fake_server "$fake_port" "$mode" "$dir/ready" &
    pids+=($!)
    for _ in $(seq 100); do [ -e "$dir/ready" ] && break; sleep 0.05; done
    status=0
    "$BIN/stockctl" --store "stockd://127.0.0.1:$fake_port" deduct L1 A12 1 \
        >"$dir/out" 2>&1 || status=$?
    cat "$dir/out"
    [ "$status" -eq 11 ] || { echo "FAIL: exit $status, wanted 11 (UNAVAILABLE)"; exit 1; }
    grep -q "outcome unknown: DEDUCT may or may not have been applied" "$dir/out" &&
        grep -q "a retry with the same id is safe" "$dir/out" ||
        { echo "FAIL: the message does not say the outcome is unknown"; exit 1; }
done
echo "remote conformance passed"
