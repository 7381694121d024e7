#!/usr/bin/env bash
# 40-server.sh -- stockd through its real protocols with clients no one here
# wrote: redis-cli, redis-benchmark, Debian's python3-redis, curl, and raw
# sockets for what clients refuse to send (malformed frames, half requests).
# Covers flags and config, every RESP command and error, pipelining and reply
# order, RESP3, STOCKPROTO, every HTTP route and status, auth, limits
# (maxclients, request size, idle timeout) and a clean SIGTERM.
set -eu
BUILD=${BUILD:-build}
STOCKD=$BUILD/stockd
PORT=0
HTTP=0
PY=/usr/bin/python3
. "$(dirname "$0")/../harness/suite.sh"

# Starts stockd on the first free pair of our ports: RESP on PORT, HTTP on
# PORT+1.
start() {
    start_pair 17320 17338 "listening for HTTP on 127.0.0.1:@B" \
        --store "$dir/data" --port @A --http-port @B "$@"
    PORT=$A HTTP=$B
}

stop() {
    kill -TERM "$pid"
    local rc=0
    wait "$pid" || rc=$?
    pid=""
    check "SIGTERM exits 0" 0 "$rc"
    grep -q "shutting down" "$dir/log" || fail "no shutdown log line"
    grep -q "store closed" "$dir/log" || fail "no store-closed log line"
}

R() { redis-cli -p $PORT "$@"; }

# ------------------------------------------------------------ flags, config
"$STOCKD" --help | grep -q -- "--max-request-bytes" || fail "--help lists the flags"
# One version for the project: stockd's is the library's (stock.h, libstock.pc).
[ "$("$STOCKD" --version)" = "stockd $(sed -n 's/^Version: //p' "$BUILD/libstock.pc")" ] ||
    fail "--version: $("$STOCKD" --version)"
bad_flag() {
    local rc=0 out
    out=$("$STOCKD" "$@" 2>&1) || rc=$?
    check "bad flag $* exits 2" 2 "$rc"
    echo "$out" | grep -q "$LAST_WORDS" || fail "bad flag $*: message [$out] lacks [$LAST_WORDS]"
}
LAST_WORDS="must be an integer in 0..65535"; bad_flag --port abc
LAST_WORDS="must be an integer in 0..65535"; bad_flag --port 70000
LAST_WORDS="must be sync or relaxed"; bad_flag --durability fast
LAST_WORDS="is not an IPv4 or IPv6 address"; bad_flag --bind localhost:1
LAST_WORDS="unknown setting 'bogus'"; bad_flag --bogus 1
LAST_WORDS="needs a value"; bad_flag --port
LAST_WORDS="nothing to serve"; bad_flag --port 0 --http-port 0
LAST_WORDS="disk-min-free 'x' must be an integer in 0..4611686018427387904"; bad_flag --disk-min-free x
LAST_WORDS="No such file"; bad_flag --config "$dir/missing.conf"
printf '# comment\nport 99999\n' >"$dir/bad.conf"
LAST_WORDS="bad.conf:2: port '99999' must be"; bad_flag --config "$dir/bad.conf"
printf 'maxclients\n' >"$dir/bad2.conf"
LAST_WORDS="expected 'name value'"; bad_flag --config "$dir/bad2.conf"

# A config file sets the ports; the flags after it win.
start   # finds a free port pair for the config-file run
stop
printf 'port 1\nhttp-port %s\nidle-timeout 30\n' $HTTP >"$dir/stockd.conf"
: >"$dir/log"
"$STOCKD" --config "$dir/stockd.conf" --port $PORT --store "$dir/data" >"$dir/log" 2>&1 &
pid=$!
for _ in $(seq 200); do grep -q "listening for HTTP" "$dir/log" && break; sleep 0.05; done
grep -q "listening for RESP on 127.0.0.1:$PORT" "$dir/log" || fail "the flag after --config wins"
grep -q "listening for HTTP on 127.0.0.1:$HTTP" "$dir/log" || fail "config file http-port"
check "config file + flag" PONG "$(R ping)"
grep -q "backend embedded" "$dir/log" || fail "store-opened log line names the backend"
stop

# ------------------------------------------------------------ RESP commands
start
check "PING" PONG "$(R ping)"
check "ECHO" hi "$(R echo hi)"
check "SETSTOCK" 10 "$(R setstock A12 10)"
check "DEDUCT" 7 "$(R deduct L1 A12 3)"
check "DEDUCT replay" 7 "$(R deduct L1 A12 3)"
check "DEDUCT conflict" "CONFLICT line=L1 was used with other parameters" "$(R deduct L1 A12 4)"
check "DEDUCT insufficient" "INSUFFICIENT sku=A12 available=7" "$(R deduct L2 A12 30)"
check "DEDUCT notfound" "NOTFOUND sku=B1" "$(R deduct L3 B1 1)"
check "ORDER" "$(printf '6\n4')" "$(R order O1 L4 A12 1 L5 A12 2)"
check "ORDER replay" "$(printf '6\n4')" "$(R order O1 L4 A12 1 L5 A12 2)"
check "ORDER insufficient" "INSUFFICIENT sku=A12 available=4" "$(R order O2 L6 A12 3 L7 A12 2)"
check "REFUND" 6 "$(R refund R1 L1 2)"
check "REFUND exceeds" "EXCEEDS line=L1 refundable=1" "$(R refund R2 L1 2)"
check "ADDSTOCK" 16 "$(R addstock A12 10 ID adj1)"
check "ADDSTOCK replay" 16 "$(R addstock A12 10 ID adj1)"
check "ADDSTOCK write-off too big" "INSUFFICIENT sku=A12 available=16" "$(R addstock A12 -100)"
check "SETSTOCK EXPECT mismatch" "MISMATCH sku=A12 current=16" "$(R setstock A12 5 EXPECT 3)"
check "SETSTOCK EXPECT" 5 "$(R setstock A12 5 expect 16)"
check "STOCK" 5 "$(R stock A12)"
check "STOCK notfound" "NOTFOUND sku=nope" "$(R stock nope)"
check "SKUINFO" "$(printf 'available\n5\nadjusted\n9\ndeducted\n6\nrefunded\n2\nheld\n0')" "$(R skuinfo A12)"
R lineinfo L1 | head -8 | tr '\n' ' ' | grep -q "^sku A12 order_id  qty 3 refunded 2 " || fail "LINEINFO: $(R lineinfo L1 | tr '\n' ' ')"
# Holds over RESP.
R setstock RH 10 >/dev/null
check "HOLD" 9 "$(R hold RHH1 RH 1 3600000)"
check "HOLD insufficient" "INSUFFICIENT sku=RH available=9" "$(R hold RHH2 RH 99 3600000)"
check "HOLDINFO state" "held" "$(R holdinfo RHH1 | sed -n 6p)"
check "SKUINFO held" "1" "$(R skuinfo RH | sed -n 10p)"
check "CONFIRM" 9 "$(R confirm RHH1)"
check "CONFIRM replay" 9 "$(R confirm RHH1 1)"
check "RELEASE after CONFIRM" "CLOSED hold=RHH1 state=confirmed" "$(R release RHH1)"
R hold RHH3 RH 2 3600000 >/dev/null
R hold RHH4 RH 2 3600000 >/dev/null
check "CONFIRMORDER" "6 6" "$(R confirmorder RO1 RHH3 1 RHH4 0 | tr '\n' ' ' | sed 's/ $//')"
check "RELEASE unknown" "NOTFOUND hold=RHH9" "$(R release RHH9)"
check "CONFIRM arity" "ERR wrong number of arguments for 'confirm' command" "$(R confirm RHH1 1 2)"
check "LINEINFO of an order line" O1 "$(R lineinfo L4 | sed -n 4p)"
check "LINEINFO notfound" "NOTFOUND line=nope" "$(R lineinfo nope)"

# Bad input: a clear error, nothing changed, the connection goes on.
QTY="INVALID qty must be an integer in 1..2147483647"
check "qty not a number" "$QTY" "$(R deduct L9 A12 abc)"
check "qty negative" "$QTY" "$(R deduct L9 A12 -1)"
check "qty zero" "$QTY" "$(R deduct L9 A12 0)"
check "qty over 2^31-1" "$QTY" "$(R deduct L9 A12 2147483648)"
check "qty over int64" "$QTY" "$(R deduct L9 A12 99999999999999999999)"
long=$(printf 'x%.0s' $(seq 65))
check "65-byte line id" "INVALID line id must be 1-64 printable ASCII characters without spaces" "$(R deduct "$long" A12 1)"
check "65-byte sku" "INVALID sku must be 1-64 printable ASCII characters without spaces" "$(R stock "$long")"
check "64-byte sku is fine" "NOTFOUND sku=${long:1}" "$(R stock "${long:1}")"
check "level negative" "INVALID stock level must be an integer in 0..9223372036854775807" "$(R setstock A12 -5)"
check "delta zero" "INVALID delta must be a non-zero integer in -2147483647..2147483647" "$(R addstock A12 0)"
check "empty adjustment id" "INVALID adjustment id must be 1-64 printable ASCII characters without spaces" "$(R addstock A12 5 ID '')"
check "nothing added for it" 5 "$(R stock A12)"
check "order line qty" "INVALID line 2: qty must be an integer in 1..2147483647" "$(R order O3 L10 A12 1 L11 A12 x)"
check "unknown command" "ERR unknown command 'frob'" "$(R frob a b)"
check "CONFIG GET" "$(printf 'appendonly\nyes\nsave')" "$(R config get '*')"
check "CONFIG GET one" "$(printf 'appendonly\nyes')" "$(R config get APPENDONLY)"
check "wrong arity" "ERR wrong number of arguments for 'deduct' command" "$(R deduct L1 A12)"
check "ORDER arity" "ERR wrong number of arguments for 'order' command" "$(R order O4 L12 A12)"
check "bad keyword" "ERR syntax error: expected EXPECT current" "$(R setstock A12 1 EXPEKT 2)"
check "SELECT 1" "ERR DB index is out of range" "$(R select 1)"
check "nothing changed by bad input" 5 "$(R stock A12)"
check "COMMAND COUNT" 27 "$(R command count)"
# BACKUP (docs/protocol.md): a folder on the server, never one that exists.
R backup "$dir/backup" >/dev/null
[ -f "$dir/backup/BACKUP" ] || fail "BACKUP left no manifest in $dir/backup"
check "BACKUP into an existing folder" "INVALID $dir/backup exists: a backup or a restore goes into a new folder" \
    "$(R backup "$dir/backup")"
check "BACKUP with an empty folder" "INVALID the backup's folder must be 1..4095 bytes, no NUL" "$(R backup "")"
# LIST: a page of SKUs, lines or a line's refunds, each entry an array.
check "LIST SKUS" "$(printf 'A12\n5\n9\n6\n2\n0')" "$(R list skus limit 1)"
check "LIST SKULINES" "$(printf 'L4\nA12\nO1\n1\n0')" "$(R list skulines A12 after L1 limit 1 | head -5)"
check "LIST ORDERLINES" "$(printf 'L5\nA12\nO1\n2\n0')" "$(R list orderlines O1 after L4 | head -5)"
check "LIST REFUNDS" "$(printf 'R1\nL1\n2\n6')" "$(R list refunds L1)"
check "LIST REFUNDS after the last" "" "$(R list refunds L1 after R1)"
check "LIST REFUNDS of no line" "NOTFOUND line=nope" "$(R list refunds nope)"
check "LIST notfound" "NOTFOUND order=nope" "$(R list orderlines nope)"
check "LIST bad limit" "ERR syntax error: options are AFTER id and LIMIT n (1..1000)" "$(R list skus limit 0)"
check "LIST bad kind" "ERR syntax error: LIST SKUS | SKULINES sku | ORDERLINES order_id | REFUNDS line_id [AFTER id] [LIMIT n]" "$(R list frob)"
R info | grep -q "^backend:embedded" || fail "INFO names the backend"

# Inline commands and a pipeline over a raw socket: replies in order.
exec 3<>/dev/tcp/127.0.0.1/$PORT
printf 'PING\r\nstock A12\r\n\r\ndeduct L20 A12 1\nPING hello\r\n' >&3
replies=""
for _ in 1 2 3 4 5; do IFS= read -r line <&3; replies="$replies${line%$'\r'}|"; done
exec 3<&-
check "inline pipeline" '+PONG|:5|:4|$5|hello|' "$replies"

# python3-redis: a 9000-command pipeline mixing store and session commands
# (over the 4096 pending requests a connection may have: reading pauses).
$PY - $PORT <<'EOF' || fail "python3-redis pipeline"
import sys, redis
r = redis.Redis(port=int(sys.argv[1]))
r.execute_command("SETSTOCK", "py", 100000)
p = r.pipeline(transaction=False)
for i in range(3000):
    p.execute_command("DEDUCT", "pyL%d" % i, "py", 1)
    p.execute_command("PING")
    p.execute_command("STOCK", "py")
out = p.execute(raise_on_error=False)
for i in range(3000):
    assert out[3 * i] == 100000 - i - 1, (i, out[3 * i])
    assert out[3 * i + 1] is True, out[3 * i + 1]
    assert out[3 * i + 2] == 100000 - i - 1
try:
    r.execute_command("DEDUCT", "pyX", "py", 1000000)
    raise SystemExit("no error for INSUFFICIENT")
except redis.ResponseError as e:
    assert str(e) == "INSUFFICIENT sku=py available=97000", str(e)
assert r.info()["backend"] == "embedded"
print("python3-redis ok")
EOF

# A client that does not read its replies: the server stops reading from it
# (output bound), then everything arrives, whole and in order.
$PY - $PORT <<'EOF' || fail "slow reader"
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
message = b"m" * 2000
count = 4000
request = b"".join(b"*2\r\n$4\r\nECHO\r\n$%d\r\n%s%05d\r\n" % (len(message) + 5, message, i) for i in range(count))
want = b"".join(b"$%d\r\n%s%05d\r\n" % (len(message) + 5, message, i) for i in range(count))
s.setblocking(False)
sent = 0
stalled = 0
while sent < len(request) and stalled < 20:   # write without reading
    try:
        sent += s.send(request[sent:sent + 65536])
        stalled = 0
    except BlockingIOError:
        stalled += 1   # the server stopped reading: its output is full
        time.sleep(0.05)
got = bytearray()
deadline = time.time() + 20
while len(got) < len(want) and time.time() < deadline:
    if sent < len(request):
        try:
            sent += s.send(request[sent:sent + 65536])
        except BlockingIOError:
            pass
    try:
        chunk = s.recv(1 << 20)
        assert chunk, "closed early"
        got += chunk
    except BlockingIOError:
        time.sleep(0.01)
assert bytes(got) == want, "replies differ (%d of %d bytes)" % (len(got), len(want))
print("slow reader ok")
EOF

# RESP3 (HELLO 3) maps and STOCKPROTO 1 replies, over a raw socket.
$PY - $PORT <<'EOF' || fail "RESP3 / STOCKPROTO"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
def ask(*args):
    s.sendall(b"".join([b"*%d\r\n" % len(args)] + [b"$%d\r\n%s\r\n" % (len(a), a) for a in args]))
def expect(want):
    got = b""
    while len(got) < len(want):
        chunk = s.recv(65536)
        assert chunk, "closed"
        got += chunk
    assert got == want, (got, want)
ask(b"HELLO", b"3"); s.recv(65536)
ask(b"SKUINFO", b"A12")
expect(b"%5\r\n$9\r\navailable\r\n:4\r\n$8\r\nadjusted\r\n:9\r\n$8\r\ndeducted\r\n:7\r\n$8\r\nrefunded\r\n:2\r\n$4\r\nheld\r\n:0\r\n")
ask(b"STOCKPROTO", b"1"); expect(b"+OK\r\n")
ask(b"DEDUCT", b"SP1", b"A12", b"1"); expect(b"*2\r\n+OK\r\n:3\r\n")
ask(b"DEDUCT", b"SP1", b"A12", b"1"); expect(b"*2\r\n+REPLAY\r\n:3\r\n")
ask(b"ORDER", b"SPO", b"SP2", b"A12", b"1"); expect(b"*2\r\n+OK\r\n*1\r\n:2\r\n")
ask(b"DEDUCT", b"SP9", b"A12", b"100"); expect(b"-INSUFFICIENT sku=A12 available=2\r\n")
ask(b"STOCKPROTO", b"2"); expect(b"-ERR unsupported STOCKPROTO version, this server speaks 1\r\n")
print("RESP3 and STOCKPROTO ok")
EOF

# Malformed frames: an error, that connection closed, the server serves others.
frame() {
    $PY - $PORT "$1" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(5)
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print(data.decode().strip())
EOF
}
check "huge bulk length" "-ERR Protocol error: invalid bulk length (over the request size limit)" "$(frame '*1\r\n$999999999999\r\n')"
check "unknown command with control bytes" "-ERR unknown command '\\x00\\x01\\x02' +PONG" "$($PY - $PORT <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(5)
s.sendall(b"\x00\x01\x02\r\nPING\r\n")
data = b""
while data.count(b"\r\n") < 2:
    data += s.recv(4096)
print(" ".join(data.decode().split("\r\n")).strip())
EOF
)"
check "huge multibulk" "-ERR Protocol error: too many arguments (the limit is 512)" "$(frame '*1000000\r\n')"
check "bad bulk prefix" "-ERR Protocol error: expected '\$' before an argument" "$(frame '*1\r\n:5\r\n')"
check "bulk without CRLF" "-ERR Protocol error: bulk string not ended by CRLF" "$(frame '*1\r\n$4\r\nPINGxx')"
check "still serving" PONG "$(R ping)"

# redis-benchmark: stock moves by exactly the number of distinct lines.
lines_before=$(R info | tr -d '\r' | sed -n 's/^lines://p')
R setstock hot 10000000 >/dev/null
redis-benchmark -p $PORT -n 20000 -c 20 -P 16 -r 1000000 DEDUCT L__rand_int__ hot 1 >"$dir/bench" 2>&1 ||
    fail "redis-benchmark: $(tail -3 "$dir/bench")"
lines_after=$(R info | tr -d '\r' | sed -n 's/^lines://p')
distinct=$((lines_after - lines_before))
deducted=$(R skuinfo hot | sed -n 6p)
[ "$distinct" -gt 19000 ] && [ "$distinct" -le 20000 ] || fail "distinct lines $distinct"
check "benchmark: deducted = distinct lines" "$distinct" "$deducted"
check "benchmark: available = 10000000 - distinct" $((10000000 - distinct)) "$(R stock hot)"

# ------------------------------------------------------------ HTTP routes
H="http://127.0.0.1:$HTTP"
# exchange(port, data): sends data on one connection, returns every byte
# the server sends until it closes (pipelined requests, raw answers).
cat >"$dir/raw.py" <<'EOF'
import socket
def exchange(port, data, timeout=5):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(data)
    s.settimeout(timeout)
    received = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return received
        received += chunk
EOF
# status METHOD PATH [BODY] -> "code body"
http() {
    if [ $# -ge 3 ]; then
        curl -s -o "$dir/body" -w '%{http_code}' -X "$1" "$H$2" -H 'Content-Type: application/json' --data-binary "$3"
    else
        curl -s -o "$dir/body" -w '%{http_code}' -X "$1" "$H$2"
    fi
    printf ' %s' "$(cat "$dir/body")"
}
# Errors are RFC 9457 problem details: problem STATUS CODE DETAIL [MEMBERS]
# prints the status and the object expected, MEMBERS being the facts of the
# detail as JSON members (',"sku":"W1","available":3').
problem() {
    local title
    case $2 in
    INVALID) title="invalid input: nothing was changed" ;;
    NOTFOUND) title="no such SKU or line" ;;
    CONFLICT) title="the id was already used with other parameters" ;;
    INSUFFICIENT) title="not enough stock available" ;;
    EXCEEDS) title="the refund exceeds what is left to refund on the line" ;;
    MISMATCH) title="the current stock differs from the expected value" ;;
    INFLIGHT) title="a request with this Idempotency-Key is still in progress" ;;
    UNSUPPORTED) title="not supported by this backend" ;;
    EXPIRED) title="the hold expired: its stock was given back" ;;
    CLOSED) title="the hold was already confirmed or released" ;;
    *) fail "problem: no title for $2" ;;
    esac
    printf '%s {"type":"tag:stockd,2026:%s","title":"%s","status":%s,"detail":"%s","code":"%s"%s}' \
        "$1" "${2,,}" "$title" "$1" "$3" "$2" "${4:-}"
}
check "PUT sku" '200 {"sku":"W1","available":10}' "$(http PUT /v1/skus/W1 '{"available":10}')"
check "PUT sku expect mismatch" "$(problem 409 MISMATCH 'sku=W1 current=10' ',"sku":"W1","current":10')" "$(http PUT /v1/skus/W1 '{"available":3,"expect":4}')"
check "GET sku" '200 {"sku":"W1","available":10,"adjusted":10,"deducted":0,"refunded":0,"held":0}' "$(http GET /v1/skus/W1)"
check "GET sku 404" "$(problem 404 NOTFOUND 'sku=W9' ',"sku":"W9"')" "$(http GET /v1/skus/W9)"
check "an error is application/problem+json" application/problem+json "$(curl -s -o /dev/null -w '%{content_type}' "$H/v1/skus/W9")"
check "a success is application/json" application/json "$(curl -s -o /dev/null -w '%{content_type}' "$H/v1/skus/W1")"
check "GET sku percent-encoded" '200' "$(http GET /v1/skus/%57%31 | cut -c1-3)"
# One decoding rule for paths and store URIs: a '%' needs two hex digits,
# and %00 is refused (it once let /healthz%00 through as /healthz).
check "path with %00" "$(problem 400 INVALID 'malformed request path: %00 (a NUL byte) is not allowed')" "$(http GET /healthz%00)"
check "sku with %00" "$(problem 400 INVALID 'malformed request path: %00 (a NUL byte) is not allowed')" "$(http GET /v1/skus/W1%00)"
check "path with a bad escape" "$(problem 400 INVALID "malformed request path: a '%' must be followed by two hex digits")" "$(http GET /v1/skus/W%zz)"
check "path with a plus" "$(problem 404 NOTFOUND 'sku=W+1' ',"sku":"W+1"')" "$(http GET /v1/skus/W+1)"
check "adjustment" '200 {"sku":"W1","available":15}' "$(http POST /v1/skus/W1/adjustments '{"delta":5,"id":"a1"}')"
check "empty adjustment id" "$(problem 400 INVALID 'adjustment id must be 1-64 printable ASCII characters without spaces')" "$(http POST /v1/skus/W1/adjustments '{"delta":5,"id":""}')"
check "deduction" '200 {"line_id":"D1","sku":"W1","qty":2,"available":13}' "$(http POST /v1/deductions '{"line_id":"D1","sku":"W1","qty":2}')"
curl -s -i -X POST "$H/v1/deductions" --data-binary '{"line_id":"D1","sku":"W1","qty":2}' | tr -d '\r' >"$dir/replay"
grep -q '^Idempotent-Replayed: true$' "$dir/replay" || fail "replay header: $(cat "$dir/replay")"
grep -q '"available":13' "$dir/replay" || fail "replay answers as the original"
check "deduction conflict" "$(problem 409 CONFLICT 'line=D1 was used with other parameters' ',"line_id":"D1"')" "$(http POST /v1/deductions '{"line_id":"D1","sku":"W1","qty":3}')"
check "deduction insufficient" "$(problem 409 INSUFFICIENT 'sku=W1 available=13' ',"sku":"W1","available":13')" "$(http POST /v1/deductions '{"line_id":"D2","sku":"W1","qty":99}')"
check "deduction bad qty" "$(problem 400 INVALID 'qty must be an integer in 1..2147483647')" "$(http POST /v1/deductions '{"line_id":"D2","sku":"W1","qty":"5"}')"
check "deduction unknown field" "$(problem 400 INVALID 'unknown field '"'"'quantity'"'"'')" "$(http POST /v1/deductions '{"line_id":"D2","sku":"W1","quantity":5}')"
check "deduction not JSON" '400' "$(http POST /v1/deductions '{"line_id":' | cut -c1-3)"
check "order" '200 {"order_id":"HO1","lines":[{"line_id":"D3","sku":"W1","qty":1,"available":12},{"line_id":"D4","sku":"W1","qty":2,"available":10}]}' \
    "$(http POST /v1/orders '{"order_id":"HO1","lines":[{"line_id":"D3","sku":"W1","qty":1},{"line_id":"D4","sku":"W1","qty":2}]}')"
http PUT /v1/skus/W3 '{"available":5}' >/dev/null
check "order failed line" "$(problem 409 INSUFFICIENT 'sku=W1 available=10' ',"sku":"W1","available":10,"failed_line":1')" \
    "$(http POST /v1/orders '{"order_id":"HO2","lines":[{"line_id":"D5","sku":"W3","qty":1},{"line_id":"D6","sku":"W1","qty":20}]}')"
# A typo or a non-object in a line is refused before anything is deducted.
check "order line unknown field" "$(problem 400 INVALID 'line 2: unknown field '"'"'bogus'"'"'' ',"failed_line":1')" \
    "$(http POST /v1/orders '{"order_id":"HO3","lines":[{"line_id":"D7","sku":"W3","qty":1},{"line_id":"D8","sku":"W3","qty":1,"bogus":1}]}')"
check "order line not an object" "$(problem 400 INVALID 'line 1: must be a JSON object' ',"failed_line":0')" \
    "$(http POST /v1/orders '{"order_id":"HO3","lines":[5]}')"
check "order refused whole" '200 {"sku":"W3","available":5,"adjusted":5,"deducted":0,"refunded":0,"held":0}' "$(http GET /v1/skus/W3)"
# A 100-line order sent with "Expect: 100-continue" (clients wait about a
# second for the 100 before sending the body) is answered at once; 101
# lines are refused.
order_body() {
    local n=$1 lines="" i
    for i in $(seq "$n"); do lines="$lines{\"line_id\":\"BL$1-$i\",\"sku\":\"W3\",\"qty\":1},"; done
    printf '{"order_id":"BIG%s","lines":[%s]}' "$n" "${lines%,}"
}
http PUT /v1/skus/W3 '{"available":1000}' >/dev/null
start_ns=$(date +%s%N)
check "100-line order" 200 "$(curl -s -o /dev/null -w '%{http_code}' -H 'Expect: 100-continue' \
    --data-binary "$(order_body 100)" "$H/v1/orders")"
elapsed_ms=$((($(date +%s%N) - start_ns) / 1000000))
[ "$elapsed_ms" -lt 900 ] || fail "100-line order took ${elapsed_ms} ms (100 Continue not sent?)"
check "101-line order" "$(problem 400 INVALID 'an order must have 1..100 lines')" "$(http POST /v1/orders "$(order_body 101)")"
check "refund" '200 {"refund_id":"F1","line_id":"D1","qty":1,"available":11}' "$(http POST /v1/refunds '{"refund_id":"F1","line_id":"D1","qty":1}')"
check "refund exceeds" "$(problem 409 EXCEEDS 'line=D1 refundable=1' ',"line_id":"D1","refundable":1')" "$(http POST /v1/refunds '{"refund_id":"F2","line_id":"D1","qty":5}')"
http GET /v1/lines/D3 | grep -q '^200 {"line_id":"D3","sku":"W1","order_id":"HO1","qty":1,"refunded":0,"time_us":[0-9]*,"available_after":12}$' ||
    fail "GET line: $(http GET /v1/lines/D3)"
check "GET line 404" "$(problem 404 NOTFOUND 'line=nope' ',"line_id":"nope"')" "$(http GET /v1/lines/nope)"
# Holds over HTTP: hold, read, confirm part, release, an order of holds,
# and a hold that expires.
http PUT /v1/skus/HS '{"available":10}' >/dev/null
check "hold" '200 {"hold_id":"HH1","sku":"HS","qty":3,"available":7}' "$(http POST /v1/holds '{"hold_id":"HH1","sku":"HS","qty":3,"ttl_ms":3600000}')"
check "hold replay" '200 {"hold_id":"HH1","sku":"HS","qty":3,"available":7}' "$(http POST /v1/holds '{"hold_id":"HH1","sku":"HS","qty":3,"ttl_ms":3600000}')"
check "hold bad ttl" "$(problem 400 INVALID 'ttl must be an integer in 1..2592000000 (milliseconds)')" "$(http POST /v1/holds '{"hold_id":"HH9","sku":"HS","qty":3}')"
http GET /v1/holds/HH1 | grep -q '^200 {"hold_id":"HH1","sku":"HS","state":"held","order_id":"","qty":3,"confirmed":0,"time_us":[0-9]*,"deadline_us":[0-9]*}$' ||
    fail "GET hold: $(http GET /v1/holds/HH1)"
check "GET sku with a hold" '200 {"sku":"HS","available":7,"adjusted":10,"deducted":0,"refunded":0,"held":3}' "$(http GET /v1/skus/HS)"
check "confirm part" '200 {"hold_id":"HH1","available":8}' "$(http POST /v1/holds/HH1/confirm '{"qty":2}')"
check "release after confirm" "$(problem 409 CLOSED 'hold=HH1 state=confirmed' ',"hold_id":"HH1","state":"confirmed"')" "$(http POST /v1/holds/HH1/release)"
http POST /v1/holds '{"hold_id":"HH2","sku":"HS","qty":1,"ttl_ms":3600000}' >/dev/null
check "release" '200 {"hold_id":"HH2","available":8}' "$(http POST /v1/holds/HH2/release)"
http POST /v1/holds '{"hold_id":"HH3","sku":"HS","qty":2,"ttl_ms":3600000}' >/dev/null
http POST /v1/holds '{"hold_id":"HH4","sku":"HS","qty":1,"ttl_ms":3600000}' >/dev/null
check "order of holds" '200 {"order_id":"HO9","holds":[{"hold_id":"HH3","qty":0,"available":5},{"hold_id":"HH4","qty":1,"available":5}]}' \
    "$(http POST /v1/hold-orders '{"order_id":"HO9","holds":[{"hold_id":"HH3"},{"hold_id":"HH4","qty":1}]}')"
http POST /v1/holds '{"hold_id":"HH5","sku":"HS","qty":4,"ttl_ms":1}' >/dev/null
# Nothing touches it: the store expires it on its own (INFO reads counters),
# within the wake-up of its writer; 2 s allows for a loaded machine.
outstanding=1
for _ in $(seq 40); do
    sleep 0.05
    outstanding=$(R info | tr -d '\r' | sed -n 's/^holds_outstanding://p')
    [ "$outstanding" = 0 ] && break
done
check "an idle store expires a hold" 0 "$outstanding"
check "confirm after expiry" "$(problem 409 EXPIRED 'hold=HH5' ',"hold_id":"HH5"')" "$(http POST /v1/holds/HH5/confirm)"
check "order of an expired hold" "$(problem 409 EXPIRED 'hold=HH5' ',"hold_id":"HH5","failed_line":0')" \
    "$(http POST /v1/hold-orders '{"order_id":"HO10","holds":[{"hold_id":"HH5"}]}')"
check "GET sku after the holds" '200 {"sku":"HS","available":5,"adjusted":10,"deducted":5,"refunded":0,"held":0}' "$(http GET /v1/skus/HS)"
check "order of holds with a hold not an object" "$(problem 400 INVALID 'hold 2: must be a JSON object' ',"failed_line":1')" \
    "$(http POST /v1/hold-orders '{"order_id":"HO11","holds":[{"hold_id":"HH3"},"HH4"]}')"
check "release with a field" "$(problem 400 INVALID "unknown field 'qty'")" "$(http POST /v1/holds/HH3/release '{"qty":1}')"
check "unknown hold" "$(problem 404 NOTFOUND 'hold=nope' ',"hold_id":"nope"')" "$(http GET /v1/holds/nope)"
check "healthz" '200 ok' "$(http GET /healthz | sed 's/^\([0-9]*\) .*"status":"\([a-z ]*\)".*/\1 \2/')"
check "readyz" '200 ok' "$(http GET /readyz | sed 's/^\([0-9]*\) .*"status":"\([a-z ]*\)".*/\1 \2/')"
check "unknown route" '404' "$(http GET /v2/x | cut -c1-3)"
check "wrong method" '405' "$(http DELETE /v1/skus/W1 | cut -c1-3)"
curl -s -i -X DELETE "$H/v1/skus/W1" | tr -d '\r' | grep -qx 'Allow: PUT, GET' || fail "a 405 names the allowed methods"
check "too deep a path" "$(problem 404 NOTFOUND 'no route for /v1/skus/a/b/c/d')" "$(http GET /v1/skus/a/b/c/d)"
long_id=$(printf 'X%.0s' $(seq 65))
id_rule="must be 1-64 printable ASCII characters without spaces"
check "65-byte sku in the path" "$(problem 400 INVALID "sku $id_rule")" "$(http GET "/v1/skus/$long_id")"
check "300-byte sku in the path" "$(problem 400 INVALID "sku $id_rule")" "$(http GET "/v1/skus/$long_id$long_id$long_id$long_id${long_id:0:40}")"
check "65-byte line id in the body" "$(problem 400 INVALID "line id $id_rule")" \
    "$(http POST /v1/deductions "{\"line_id\":\"$long_id\",\"sku\":\"W1\",\"qty\":1}")"
check "missing line id" "$(problem 400 INVALID "line id $id_rule")" "$(http POST /v1/deductions '{"sku":"W1","qty":1}')"
check "negative qty" "$(problem 400 INVALID 'qty must be an integer in 1..2147483647')" "$(http POST /v1/deductions '{"line_id":"D9","sku":"W1","qty":-1}')"
check "qty over 2^31-1" "$(problem 400 INVALID 'qty must be an integer in 1..2147483647')" "$(http POST /v1/deductions '{"line_id":"D9","sku":"W1","qty":2147483648}')"
check "qty over 64 bits" '400' "$(http POST /v1/deductions '{"line_id":"D9","sku":"W1","qty":99999999999999999999}' | cut -c1-3)"
check "empty body" "$(problem 400 INVALID 'the body is empty: send a JSON object')" "$(http PUT /v1/skus/W1)"
check "nothing was deducted by the bad requests" '200 {"sku":"W1","available":11,"adjusted":15,"deducted":5,"refunded":1,"held":0}' "$(http GET /v1/skus/W1)"
curl -s "$H/metrics" >"$dir/metrics"
for name in 'stockd_operations_total{type="deduct",result="OK"}' 'stockd_replays_total' \
            'stockd_batch_size_bucket{le="16"}' 'stockd_sync_seconds_bucket{le="+Inf"}' \
            'stockd_batch_seconds_count' 'stockd_connections ' 'stockd_connections_max 10000' \
            'stockd_protocol_errors_total' \
            'stockd_operations_total{type="confirm",result="EXPIRED"} 1' \
            'stockd_operations_total{type="confirm_order",result="OK"}' \
            'stockd_store_holds_outstanding 0' 'stockd_store_held_units 0' \
            'stockd_store_hold_expiries_total 1' 'stockd_store_hold_confirmations_total' \
            'stockd_store_hold_releases_total'; do
    grep -qF "$name" "$dir/metrics" || fail "metrics lack $name"
done
grep -v '^#' "$dir/metrics" | grep -qvE '^[a-z_]+(\{[^}]*\})? [0-9.e+-]+$' && fail "metrics: a malformed sample line"
grep -q 'null' "$dir/metrics" && fail "metrics: an operation type without a name"
promtool check metrics <"$dir/metrics" || fail "promtool check metrics: $(promtool check metrics <"$dir/metrics" 2>&1 | head -5)"
head -c 2000000 /dev/zero | tr '\0' 'x' >"$dir/big"
check "oversize body" '413' "$(http POST /v1/deductions @"$dir/big" | cut -c1-3)"
check "oversize header" '431' "$(curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $(head -c 20000 /dev/zero | tr '\0' y)" "$H/healthz")"
check "malformed HTTP" "400" "$(printf 'BLAH / HTTP/1.1\r\n\r\n' | $PY -c '
import socket,sys; s=socket.create_connection(("127.0.0.1",'$HTTP')); s.sendall(sys.stdin.buffer.read()); print(s.recv(4096).split()[1].decode())')"
# keep-alive: three requests on one connection
check "keep-alive" 3 "$(curl -s "$H/healthz" "$H/healthz" "$H/healthz" -w '\n' | grep -c ok)"
# Pipelined HTTP requests in one write are answered in order, the last one
# (Connection: close) closing the connection.
PYTHONPATH=$dir $PY - $HTTP <<'EOF' || fail "HTTP pipelining"
import sys
from raw import exchange
body = b'{"line_id":"PIPE1","sku":"W1","qty":1}'
data = exchange(int(sys.argv[1]), b"GET /v1/skus/W1 HTTP/1.1\r\nHost: x\r\n\r\n"
                b"POST /v1/deductions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body) +
                b"GET /v1/skus/W1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
parts = data.split(b"HTTP/1.1 ")[1:]
assert len(parts) == 3, data
available = [int(p.split(b'"available":')[1].split(b",")[0].split(b"}")[0]) for p in parts]
assert available[1] == available[0] - 1 and available[2] == available[1], available
assert b"Connection: close" in parts[2]
print("HTTP pipelining ok")
EOF
# Idempotency-Key (draft-ietf-httpapi-idempotency-key-header): the key is
# the operation's id. Same key and payload: a replay; another payload: 422;
# a duplicate while the first is in flight: 409 INFLIGHT.
k_deduct() { curl -s -o "$dir/body" -w '%{http_code}' -D "$dir/head" -H "Idempotency-Key: $1" --data-binary "$2" "$H/v1/deductions"; printf ' %s' "$(cat "$dir/body")"; }
http PUT /v1/skus/K1 '{"available":100}' >/dev/null
check "key as the line id" '200 {"line_id":"k-1","sku":"K1","qty":2,"available":98}' "$(k_deduct '"k-1"' '{"sku":"K1","qty":2}')"
check "key replay" '200 {"line_id":"k-1","sku":"K1","qty":2,"available":98}' "$(k_deduct '"k-1"' '{"sku":"K1","qty":2}')"
grep -qi '^Idempotent-Replayed: true' "$dir/head" || fail "a keyed replay has Idempotent-Replayed: true"
check "key as a bare token, same as the line id" '200 {"line_id":"k-1","sku":"K1","qty":2,"available":98}' "$(k_deduct 'k-1' '{"line_id":"k-1","sku":"K1","qty":2}')"
check "key with another payload" "$(problem 422 CONFLICT 'line=k-1 was used with other parameters' ',"line_id":"k-1"')" "$(k_deduct '"k-1"' '{"sku":"K1","qty":3}')"
check "key differs from the body's id" "$(problem 400 INVALID "Idempotency-Key 'k-2' differs from line_id: send one of them, or both the same")" "$(k_deduct '"k-2"' '{"line_id":"other","sku":"K1","qty":1}')"
check "key with a space" "$(problem 400 INVALID 'Idempotency-Key must be 1-64 printable ASCII characters without spaces')" "$(k_deduct '"k 2"' '{"sku":"K1","qty":1}')"
check "key string not closed" "$(problem 400 INVALID "Idempotency-Key: a string must end with its one closing '\\\"'")" "$(k_deduct '"k-2' '{"sku":"K1","qty":1}')"
check "nothing deducted by refused keys" '200 {"sku":"K1","available":98,"adjusted":100,"deducted":2,"refunded":0,"held":0}' "$(http GET /v1/skus/K1)"
check "key as the order id" '{"order_id":"k-o1","lines":[{"line_id":"k-o1-1","sku":"K1","qty":1,"available":97}]} 200' \
    "$(curl -s -w ' %{http_code}' -H 'Idempotency-Key: "k-o1"' --data-binary '{"lines":[{"line_id":"k-o1-1","sku":"K1","qty":1}]}' "$H/v1/orders")"
check "key as the refund id" '{"refund_id":"k-r1","line_id":"k-1","qty":1,"available":98} 200' \
    "$(curl -s -w ' %{http_code}' -H 'Idempotency-Key: "k-r1"' --data-binary '{"line_id":"k-1","qty":1}' "$H/v1/refunds")"
check "key as the adjustment id" '{"sku":"K1","available":108} 200' \
    "$(curl -s -w ' %{http_code}' -H 'Idempotency-Key: "k-a1"' --data-binary '{"delta":10}' "$H/v1/skus/K1/adjustments")"
check "keyed adjustment replay" '{"sku":"K1","available":108} 200' \
    "$(curl -s -w ' %{http_code}' -H 'Idempotency-Key: "k-a1"' --data-binary '{"delta":10}' "$H/v1/skus/K1/adjustments")"
http PUT /v1/skus/K2 '{"available":10}' >/dev/null
check "key as the hold id" '{"hold_id":"k-h1","sku":"K2","qty":1,"available":9} 200' \
    "$(curl -s -w ' %{http_code}' -H 'Idempotency-Key: "k-h1"' --data-binary '{"sku":"K2","qty":1,"ttl_ms":3600000}' "$H/v1/holds")"
check "hold key with another payload" "$(problem 422 CONFLICT 'hold=k-h1 was used with other parameters' ',"hold_id":"k-h1"')" \
    "$(curl -s -o "$dir/body" -w '%{http_code}' -H 'Idempotency-Key: "k-h1"' --data-binary '{"sku":"K2","qty":2,"ttl_ms":3600000}' "$H/v1/holds"; printf ' %s' "$(cat "$dir/body")")"
check "key as the order of holds' id" '{"order_id":"k-ho1","holds":[{"hold_id":"k-h1","qty":0,"available":9}]} 200' \
    "$(curl -s -w ' %{http_code}' -H 'Idempotency-Key: "k-ho1"' --data-binary '{"holds":[{"hold_id":"k-h1"}]}' "$H/v1/hold-orders")"
# A duplicate read while the first is in flight (pipelined in one write:
# the first is still in the batch being gathered) is 409 INFLIGHT; once the
# first is answered, the key replays. Python's http.client for the rest.
PYTHONPATH=$dir $PY - $HTTP <<'EOF' || fail "Idempotency-Key in flight"
import http.client, json, sys, threading
from raw import exchange
port = int(sys.argv[1])
body = b'{"sku":"K1","qty":1}'
request = (b"POST /v1/deductions HTTP/1.1\r\nHost: x\r\nIdempotency-Key: \"k-fly\"\r\n"
           b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
data = exchange(port, request + request.replace(b"Host: x", b"Host: x\r\nConnection: close"))
parts = data.split(b"HTTP/1.1 ")[1:]
assert len(parts) == 2, data
assert parts[0].startswith(b"200 ") and b'"available":107' in parts[0], parts[0]
assert parts[1].startswith(b"409 "), parts[1]
assert b"Content-Type: application/problem+json" in parts[1], parts[1]
problem = json.loads(parts[1].split(b"\r\n\r\n", 1)[1])
assert problem["code"] == "INFLIGHT" and problem["status"] == 409, problem
connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
connection.request("POST", "/v1/deductions", body, {"Idempotency-Key": '"k-fly"'})
reply = connection.getresponse()
assert reply.status == 200 and reply.getheader("Idempotent-Replayed") == "true", reply.status
assert json.loads(reply.read())["available"] == 107
# Two clients racing with one key, 40 times: each time exactly one takes
# stock; the other is answered 409 INFLIGHT or, if it came after, replayed.
def send(key, out, i):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("POST", "/v1/deductions", body, {"Idempotency-Key": key})
    reply = connection.getresponse()
    out[i] = (reply.status, reply.getheader("Idempotent-Replayed"), json.loads(reply.read()))
for round in range(40):
    out = [None, None]
    threads = [threading.Thread(target=send, args=('"k-race-%d"' % round, out, i)) for i in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    fresh = [o for o in out if o[0] == 200 and o[1] is None]
    other = [o for o in out if not (o[0] == 200 and o[1] is None)]
    assert len(fresh) == 1, out
    assert other[0][0] == 409 and other[0][2]["code"] == "INFLIGHT" or \
        other[0][0] == 200 and other[0][1] == "true" and other[0][2] == fresh[0][2], out
connection.request("GET", "/v1/skus/K1")
reply = connection.getresponse()
assert json.loads(reply.read())["available"] == 107 - 40, "one deduction per key"
print("Idempotency-Key in flight ok")
EOF
# ETag and If-Match: GET gives the SKU's totals as its ETag; PUT with
# If-Match is SETSTOCK ... EXPECT <the tag's level>, 412 when it fails.
etag() { curl -s -o /dev/null -D - "$H/v1/skus/$1" | tr -d '\r' | sed -n 's/^ETag: //Ip'; }
if_match() { curl -s -o "$dir/body" -w '%{http_code}' -X PUT -H "If-Match: $2" --data-binary "$3" "$H/v1/skus/$1"; printf ' %s' "$(cat "$dir/body")"; }
http PUT /v1/skus/E1 '{"available":10}' >/dev/null
check "ETag of a GET" '"10.10.0.0"' "$(etag E1)"
check "PUT If-Match" '200 {"sku":"E1","available":12}' "$(if_match E1 '"10.10.0.0"' '{"available":12}')"
check "the ETag moves with the set" '"12.12.0.0"' "$(etag E1)"
check "PUT If-Match stale" "$(problem 412 MISMATCH 'sku=E1 current=12' ',"sku":"E1","current":12')" "$(if_match E1 '"10.10.0.0"' '{"available":15}')"
http POST /v1/deductions '{"line_id":"E1-L","sku":"E1","qty":3}' >/dev/null
http POST /v1/refunds '{"refund_id":"E1-R","line_id":"E1-L","qty":3}' >/dev/null
check "the ETag moves with a deduction and refund that keep the level" '"12.12.3.3"' "$(etag E1)"
check "a tag whose level still holds passes (a set depends on the level only)" '200 {"sku":"E1","available":20}' "$(if_match E1 '"12.12.0.0"' '{"available":20}')"
check "PUT If-Match on a missing SKU" "$(problem 412 NOTFOUND 'sku=E9' ',"sku":"E9"')" "$(if_match E9 '"0.0.0.0"' '{"available":1}')"
check "the failed If-Match created nothing" "$(problem 404 NOTFOUND 'sku=E9' ',"sku":"E9"')" "$(http GET /v1/skus/E9)"
check "If-Match *" "$(problem 400 INVALID 'If-Match: * is not supported: send the ETag of GET /v1/skus/{sku}')" "$(if_match E1 '*' '{"available":1}')"
check "If-Match weak" "$(problem 400 INVALID 'If-Match must be one ETag of GET /v1/skus/{sku}, as \"available.adjusted.deducted.refunded\"')" "$(if_match E1 'W/"20.20.3.3"' '{"available":1}')"
check "If-Match and expect" "$(problem 400 INVALID 'give expect or If-Match, not both')" "$(if_match E1 '"20.20.3.3"' '{"available":1,"expect":20}')"
check "nothing set by refused If-Match" '"20.20.3.3"' "$(etag E1)"
# Two clients read one ETag and race to PUT with it, 30 times: exactly one
# wins each time, the other is told 412 with the winner's level.
$PY - $HTTP <<'EOF' || fail "If-Match race"
import http.client, json, sys, threading
port = int(sys.argv[1])
barrier = threading.Barrier(2)
def client(i, out):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/v1/skus/E1")
    reply = connection.getresponse()
    level = json.loads(reply.read())["available"]
    tag = reply.getheader("ETag")
    barrier.wait()
    connection.request("PUT", "/v1/skus/E1", json.dumps({"available": level + 1 + i}), {"If-Match": tag})
    reply = connection.getresponse()
    out[i] = (reply.status, json.loads(reply.read()))
for round in range(30):
    out = [None, None]
    threads = [threading.Thread(target=client, args=(i, out)) for i in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    statuses = sorted(o[0] for o in out)
    assert statuses == [200, 412], out
    winner = [o[1] for o in out if o[0] == 200][0]
    loser = [o[1] for o in out if o[0] == 412][0]
    assert loser["code"] == "MISMATCH" and loser["current"] == winner["available"], out
print("If-Match race ok")
EOF
# Listings over HTTP: pages in creation order, a next cursor and a Link
# header while a page is full, null and no Link at the end.
http PUT /v1/skus/P1 '{"available":50}' >/dev/null
for i in 1 2 3; do http POST /v1/deductions "{\"line_id\":\"P1-L$i\",\"sku\":\"P1\",\"qty\":$i}" >/dev/null; done
http POST /v1/orders '{"order_id":"P/O","lines":[{"line_id":"P1-L4","sku":"P1","qty":1},{"line_id":"PW-L5","sku":"W3","qty":1}]}' >/dev/null
strip_time() { sed 's/"time_us":[0-9]*/"time_us":T/g'; }
check "SKU lines, first page" '200 {"lines":[{"line_id":"P1-L1","sku":"P1","order_id":"","qty":1,"refunded":0,"time_us":T,"available_after":49},{"line_id":"P1-L2","sku":"P1","order_id":"","qty":2,"refunded":0,"time_us":T,"available_after":47}],"next":"P1-L2"}' \
    "$(http GET '/v1/skus/P1/lines?limit=2' | strip_time)"
check "SKU lines, Link to the next page" '<http://x/v1/skus/P1/lines?after=P1-L2&limit=2>; rel="next"' \
    "$(curl -s -D - -o /dev/null "$H/v1/skus/P1/lines?limit=2" | tr -d '\r' | sed -n 's/^Link: <\(.*\)$/<http:\/\/x\1/p')"
check "SKU lines, last page" '200 {"lines":[{"line_id":"P1-L3","sku":"P1","order_id":"","qty":3,"refunded":0,"time_us":T,"available_after":44},{"line_id":"P1-L4","sku":"P1","order_id":"P/O","qty":1,"refunded":0,"time_us":T,"available_after":43}],"next":null}' \
    "$(http GET '/v1/skus/P1/lines?after=P1-L2&limit=3' | strip_time)"
curl -s -D - -o /dev/null "$H/v1/skus/P1/lines?after=P1-L2&limit=3" | grep -qi '^Link:' && fail "the last page has a Link header"
check "order lines, a percent-encoded order id" '200 {"lines":[{"line_id":"PW-L5","sku":"W3","order_id":"P/O","qty":1,"refunded":0,"time_us":T,"available_after":899}],"next":null}' \
    "$(http GET '/v1/orders/P%2FO/lines?after=P1-L4' | strip_time)"
http GET '/v1/skus?limit=1' | grep -q '^200 {"skus":\[{"sku":"A12","available":[0-9]*,"adjusted":[0-9]*,"deducted":[0-9]*,"refunded":[0-9]*,"held":[0-9]*}\],"next":"A12"}$' ||
    fail "SKUs, first page: $(http GET '/v1/skus?limit=1')"
check "SKUs after one" '200 {"skus":[{"sku":"P1","available":43,"adjusted":50,"deducted":7,"refunded":0,"held":0}],"next":null}' "$(http GET '/v1/skus?after=E1')"
check "listing of a missing SKU" "$(problem 404 NOTFOUND 'sku=nope' ',"sku":"nope"')" "$(http GET '/v1/skus/nope/lines')"
check "listing after a missing line" "$(problem 404 NOTFOUND 'line=nope' ',"line_id":"nope"')" "$(http GET '/v1/skus/P1/lines?after=nope')"
check "listing limit 0" "$(problem 400 INVALID 'limit must be an integer in 1..1000')" "$(http GET '/v1/skus?limit=0')"
check "listing limit 1001" "$(problem 400 INVALID 'limit must be an integer in 1..1000')" "$(http GET '/v1/skus?limit=1001')"
check "listing unknown parameter" "$(problem 400 INVALID 'unknown query parameter: a listing takes after= and limit=')" "$(http GET '/v1/skus?since=1')"
check "listing after with %00" "$(problem 400 INVALID '%00 (a NUL byte) is not allowed')" "$(http GET '/v1/skus?after=a%00')"
# Every route and every status this server can give, through Python's
# http.client (413 is curl's above: http.client sends a whole body before it
# reads, and the server closes after 1 MiB of it; the limits section below
# covers 401, 408 and 503 with sockets): status, Content-Type, and the
# problem's code where it is one.
$PY - $HTTP <<'EOF' || fail "every route through http.client"
import http.client, json, sys
port = int(sys.argv[1])
def ask(method, path, body=None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request(method, path, None if body is None else json.dumps(body).encode(), headers or {})
    reply = connection.getresponse()
    data = reply.read()
    return reply.status, reply.getheader("Content-Type"), data
cases = [
    ("PUT", "/v1/skus/PY1", {"available": 5}, None, 200, None),
    ("GET", "/v1/skus/PY1", None, None, 200, None),
    ("POST", "/v1/skus/PY1/adjustments", {"delta": 5, "id": "PY-A1"}, None, 200, None),
    ("POST", "/v1/deductions", {"line_id": "PY-L1", "sku": "PY1", "qty": 2}, None, 200, None),
    ("POST", "/v1/orders", {"order_id": "PY-O1", "lines": [{"line_id": "PY-L2", "sku": "PY1", "qty": 1}]}, None, 200, None),
    ("POST", "/v1/refunds", {"refund_id": "PY-R1", "line_id": "PY-L1", "qty": 1}, None, 200, None),
    ("GET", "/v1/lines/PY-L1", None, None, 200, None),
    ("GET", "/v1/skus?limit=1", None, None, 200, None),
    ("GET", "/v1/skus/PY1/lines", None, None, 200, None),
    ("GET", "/v1/orders/PY-O1/lines", None, None, 200, None),
    ("GET", "/healthz", None, None, 200, None),
    ("GET", "/readyz", None, None, 200, None),
    ("GET", "/metrics", None, None, 200, None),
    ("POST", "/v1/deductions", {"line_id": "PY-L3", "sku": "PY1", "qty": 0}, None, 400, "INVALID"),
    ("GET", "/v1/skus/PY9", None, None, 404, "NOTFOUND"),
    ("GET", "/v2", None, None, 404, "NOTFOUND"),
    ("DELETE", "/v1/skus/PY1", None, None, 405, "INVALID"),
    ("POST", "/v1/deductions", {"line_id": "PY-L3", "sku": "PY1", "qty": 100}, None, 409, "INSUFFICIENT"),
    ("POST", "/v1/deductions", {"line_id": "PY-L1", "sku": "PY1", "qty": 3}, None, 409, "CONFLICT"),
    ("POST", "/v1/refunds", {"refund_id": "PY-R2", "line_id": "PY-L1", "qty": 5}, None, 409, "EXCEEDS"),
    ("PUT", "/v1/skus/PY1", {"available": 1, "expect": 99}, None, 409, "MISMATCH"),
    ("PUT", "/v1/skus/PY1", {"available": 1}, {"If-Match": '"99.0.0.0"'}, 412, "MISMATCH"),
    ("POST", "/v1/deductions", {"sku": "PY1", "qty": 1}, {"Idempotency-Key": '"PY-L1"'}, 422, "CONFLICT"),
    ("GET", "/healthz", None, {"X-Big": "y" * 20000}, 431, "TOOBIG"),
]
for method, path, body, headers, status, code in cases:
    got, kind, data = ask(method, path, body, headers)
    assert got == status, (method, path, got, data[:200])
    if code is None:
        assert kind.startswith("application/json") or path == "/metrics", (path, kind)
        continue
    assert kind == "application/problem+json", (path, kind)
    problem = json.loads(data)
    assert problem["code"] == code and problem["status"] == status, (path, problem)
print("every route and status through http.client: %d requests" % len(cases))
EOF
check "still serving after bad HTTP" '200' "$(http GET /healthz | cut -c1-3)"
stop

# ------------------------------------------------------------ auth, limits
start --requirepass s3cret --maxclients 3 --idle-timeout 1 --max-request-bytes 4096
H="http://127.0.0.1:$HTTP"
check "NOAUTH" "NOAUTH Authentication required." "$(R stock A12)"
check "wrong password" "WRONGPASS invalid username-password pair or user is disabled." "$(R auth nope)"
check "AUTH" 2 "$(redis-cli -p $PORT -a s3cret --no-auth-warning stock A12)"
check "HTTP without token" 401 "$(curl -s -o /dev/null -w '%{http_code}' "$H/v1/skus/A12")"
check "HTTP with token" 200 "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer s3cret' "$H/v1/skus/A12")"
check "healthz needs no token" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$H/healthz")"
# A client sends half a request and stalls: others are served, it is closed.
$PY - $PORT $HTTP <<'EOF' || fail "stalled client / idle timeout / maxclients"
import socket, sys, time
port = int(sys.argv[1])
stall = socket.create_connection(("127.0.0.1", port))
stall.sendall(b"*4\r\n$6\r\nDEDUCT\r\n$2\r\nL1")
other = socket.create_connection(("127.0.0.1", port))
other.sendall(b"AUTH s3cret\r\nSTOCK A12\r\n")
time.sleep(0.3)
assert other.recv(100) == b"+OK\r\n:2\r\n"
third = socket.create_connection(("127.0.0.1", port))
fourth = socket.create_connection(("127.0.0.1", port))
fourth.settimeout(3)
assert fourth.recv(100) == b"-ERR max number of clients reached\r\n"
def closed(sock):
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True
assert closed(fourth)
http = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
http.settimeout(3)
response = http.recv(4096)
assert response.startswith(b"HTTP/1.1 503 ") and b'"code":"UNAVAILABLE"' in response, response
http.close()
stall.settimeout(4)
start = time.time()
assert stall.recv(100) == b"-ERR idle for more than 1 s, closing the connection\r\n"
assert closed(stall), "the stalled client is not closed after its error"
assert time.time() - start < 3.5
for sock in (other, third, fourth):
    sock.close()
time.sleep(0.3)   # the server sees those closes
big = socket.create_connection(("127.0.0.1", port))
big.sendall(b"AUTH s3cret\r\n*200\r\n" + (b"$40\r\n" + b"x" * 40 + b"\r\n") * 200)
big.settimeout(3)
reply = b""
while reply.count(b"\r\n") < 2:
    chunk = big.recv(200)
    assert chunk, reply
    reply += chunk
assert reply.startswith(b"+OK\r\n-ERR Protocol error: request bigger"), reply
big.close()
# Rejected for a protocol error, it stays connected and silent: the idle
# timeout closes it too, so it does not hold a place under --maxclients.
# (Its write side is shut at once, so only the server's count shows it.)
def connected_clients():
    probe = socket.create_connection(("127.0.0.1", port))
    probe.sendall(b"AUTH s3cret\r\nINFO\r\n")
    probe.settimeout(3)
    info = b""
    while b"maxclients:" not in info:
        info += probe.recv(4096)
    probe.close()
    return int(info.split(b"connected_clients:")[1].split(b"\r\n")[0])
bad = socket.create_connection(("127.0.0.1", port))
bad.sendall(b"*abc\r\n")
bad.settimeout(4)
assert bad.recv(100).startswith(b"-ERR Protocol error"), "no protocol error"
before = connected_clients()
assert before >= 2, before
time.sleep(2.5)
after = connected_clients()
assert after == 1, ("rejected, silent clients are not closed by the idle timeout", before, after)
bad.close()
time.sleep(0.3)
# Half an HTTP request, then nothing: a 408 that says why, then closed.
http = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
http.sendall(b"POST /v1/deductions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"")
http.settimeout(4)
response = b""
while True:
    chunk = http.recv(4096)
    if not chunk:
        break
    response += chunk
assert response.startswith(b"HTTP/1.1 408 "), response
assert b'"status":408,"detail":"idle for more than 1 s, closing the connection","code":"TIMEOUT"' in response, response
assert b"Content-Type: application/problem+json" in response, response
print("limits ok")
EOF
grep -q "request bigger than max-request-bytes" "$dir/log" || fail "protocol errors are logged"
grep -q "idle for more than 1 s, closing the connection" "$dir/log" || fail "idle closes are logged"
stop
# ------------------------------------------------------------ SIGTERM under load
# In-flight batches finish, the store closes cleanly, and after a restart
# every deduction that took effect is there exactly once.
rm -rf "$dir/data"
start
R setstock load 100000000 >/dev/null
redis-benchmark -p $PORT -n 5000000 -c 50 -P 16 -r 100000000 DEDUCT L__rand_int__ load 1 >/dev/null 2>&1 &
bench=$!
sleep 1.5
stop
wait "$bench" 2>/dev/null || true
grep -q "finishing [0-9]* batches in flight" "$dir/log" || fail "shutdown log line"
start
deducted=$(R skuinfo load | sed -n 6p)
lines=$(R info | tr -d '\r' | sed -n 's/^lines://p')
[ "$deducted" -gt 0 ] || fail "no deduction went through before SIGTERM"
check "after SIGTERM: lines = deducted" "$deducted" "$lines"
check "after SIGTERM: available = 100000000 - deducted" $((100000000 - deducted)) "$(R stock load)"
# INFO says what the restart's recovery did: every line came back from the
# snapshot or the log, and a clean stop tore nothing.
info_field() { R info | tr -d '\r' | sed -n "s/^$1://p"; }
check "INFO recovered" 1 "$(info_field recovered)"
check "INFO recovery_torn_bytes" 0 "$(info_field recovery_torn_bytes)"
recovered_records=$(($(info_field recovery_snapshot_lsn) + $(info_field recovery_records)))
[ "$recovered_records" -gt "$deducted" ] || fail "INFO: recovery rebuilt $recovered_records records for $deducted deductions"
stop
echo "40-server: all passed"
