#!/usr/bin/env bash
# 42-http-list.sh -- a listing of 1,000,000 lines over HTTP in bounded
# memory: stockd (relaxed durability, to make the lines quickly) gets
# 1,000,000 deductions on one SKU interleaved with 100,000 on another,
# then a Python http.client pages GET /v1/skus/{sku}/lines?limit=1000 by
# its next cursor to the end. Every line comes once, in order, the other
# SKU's never, and stockd's resident memory grows by less than 16 MiB over
# the 1000 pages (a page is at most 1000 entries; nothing is kept between).
# A third SKU has 3 lines, first, in the middle and last: its one page walks
# every line record, in many slices, and must find all three.
set -eu
BUILD=${BUILD:-build}
. "$(dirname "$0")/../system/server_helpers.sh"
suite_dir list
# ASan holds freed memory back from reuse (its quarantine, 256 MiB by
# default), which RSS would count as growth: keep it small, so the bound
# measures what stockd keeps, as in the release build.
case "$BUILD" in
*san*) export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1" ;;
esac
use_binaries "$dir/bin" stockd
BIN=$dir/bin
port=$(pick_port 17450 17457)
http=$(pick_port 17458 17465)
start_stockd "$port" "$dir/data" "$dir/stockd.log" --http-port "$http" --durability relaxed || exit 1
pid=$STOCKD_PID

python3 - "$port" "$http" "$pid" <<'EOF'
import http.client, json, socket, sys, time
port, http_port, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
LINES, OTHER_EVERY, CHUNK = 1_000_000, 10, 20_000

def rss_kib():
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

# 1,000,000 lines of "big" and one of "other" after every 10th, pipelined
# as inline commands; every reply is read and checked.
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"SETSTOCK big 2000000\r\nSETSTOCK other 2000000\r\nSETSTOCK rare 10\r\n")
replies = b""
def read_replies(count):
    global replies
    while replies.count(b"\r\n") < count:
        chunk = s.recv(1 << 20)
        assert chunk, "stockd closed the connection"
        replies += chunk
    lines = replies.split(b"\r\n")
    done, replies = lines[:count], b"\r\n".join(lines[count:])
    for reply in done:
        assert reply.startswith(b":"), reply
read_replies(3)
RARE = {0: b"R0", LINES // 2: b"R1", LINES - 1: b"R2"}
start = time.time()
for first in range(0, LINES, CHUNK):
    batch = []
    for i in range(first, first + CHUNK):
        batch.append(b"DEDUCT L%07d big 1\r\n" % i)
        if i % OTHER_EVERY == 0:
            batch.append(b"DEDUCT X%07d other 1\r\n" % i)
        if i in RARE:
            batch.append(b"DEDUCT %s rare 1\r\n" % RARE[i])
    s.sendall(b"".join(batch))
    read_replies(len(batch))
print("made %d lines in %.1f s" % (LINES + LINES // OTHER_EVERY, time.time() - start))

connection = http.client.HTTPConnection("127.0.0.1", http_port, timeout=60)
def page(after, sku="big"):
    path = "/v1/skus/%s/lines?limit=1000" % sku + ("&after=" + after if after else "")
    connection.request("GET", path)
    reply = connection.getresponse()
    body = reply.read()
    assert reply.status == 200, (reply.status, body[:300])
    return json.loads(body)

first_page = page(None)   # warm: the first page's buffers are allocated once
before = rss_kib()
count, after, pages, biggest = len(first_page["lines"]), first_page["next"], 1, before
assert [line["line_id"] for line in first_page["lines"]] == ["L%07d" % i for i in range(1000)]
start = time.time()
while after is not None:
    body = page(after)
    for offset, line in enumerate(body["lines"]):
        assert line["line_id"] == "L%07d" % (count + offset), (count + offset, line)
        assert line["sku"] == "big" and line["qty"] == 1, line
    count += len(body["lines"])
    after = body["next"]
    pages += 1
    if pages % 100 == 0:
        biggest = max(biggest, rss_kib())
biggest = max(biggest, rss_kib())
print("listed %d lines in %d pages in %.1f s; stockd RSS %d KiB before, at most %d KiB while listing"
      % (count, pages, time.time() - start, before, biggest))
assert count == LINES, count
rare = page(None, "rare")
assert [line["line_id"] for line in rare["lines"]] == ["R0", "R1", "R2"] and rare["next"] is None, rare
assert biggest - before < 16 * 1024, "stockd's memory grew by %d KiB while listing" % (biggest - before)
EOF
# A clean stop: exit 0 (under the sanitizers, also no leak).
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=""
[ "$rc" -eq 0 ] || { echo "FAIL: stockd exited $rc; its log:"; tail -n 30 "$dir/stockd.log"; exit 1; }
echo "42-http-list: all passed"
