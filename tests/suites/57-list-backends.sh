#!/usr/bin/env bash
# 57-list-backends.sh -- the HTTP listings (GET /v1/skus, /v1/skus/{sku}/lines,
# /v1/orders/{order}/lines) through a stockd over each backend that lists in
# byte order of the ids: postgres, redis and sharded (two postgres members),
# each started by the harness. The same history on each; a Python
# http.client pages every listing with limit=1 and limit=2 by its `next`
# cursor and must get exactly the expected ids in byte order ("B" < "_z" <
# "a", whatever the database's collation), each once; an order's lines in the
# order's line order (sharded: in byte order of the line ids, its parts
# living on several shards); a line's fields as made; 404 NOTFOUND for an
# unknown SKU, order or `after`. A postgres database at schema version 4
# keeps its listing indexes (checked in pg_indexes).
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/harness/pg.sh
. tests/harness/redis.sh
. tests/system/server_helpers.sh
dir=$(mktemp -d /tmp/stockd-listb.XXXXXX)
stockd_pid=""
cleanup() {
    [ -z "$stockd_pid" ] || { kill "$stockd_pid" 2>/dev/null || true; wait "$stockd_pid" 2>/dev/null || true; }
    pg_stop
    redis_stop
    rm -rf "$dir"
}
trap cleanup EXIT
use_binaries "$dir/bin" stockd stockctl
BIN=$dir/bin
pg_start
pg_start_many 2
redis_start
fail() { echo "FAIL: $*"; exit 1; }

history() {
    local s=$1 ctl="$BIN/stockctl"
    for sku in a B _z; do "$ctl" --store "$s" set "$sku" 100 >/dev/null; done
    "$ctl" --store "$s" deduct l2 a 1 >/dev/null
    "$ctl" --store "$s" deduct L1 a 2 >/dev/null
    "$ctl" --store "$s" order O1 x9 _z 3 x1 B 4 x5 a 5 >/dev/null
    "$ctl" --store "$s" refund R1 x5 2 >/dev/null
}

# check URI ORDER_LINES: the order's line ids as listed by that backend.
check() {
    local uri=$1 order_lines=$2 port http
    history "$uri"
    port=$(pick_port 17660 17669)
    http=$(pick_port 17670 17679)
    start_stockd "$port" "$uri" "$dir/stockd.log" --http-port "$http" ||
        fail_with_log "$dir/stockd.log" "stockd over $uri did not start"
    stockd_pid=$STOCKD_PID
    python3 - "$http" "$order_lines" <<'EOF' || fail "listings over $uri"
import http.client, json, sys
port, order_lines = int(sys.argv[1]), sys.argv[2].split(",")

def get(path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", path)
    r = c.getresponse()
    body = json.loads(r.read())
    c.close()
    return r.status, body

def pages(path, key, limit):
    ids, after = [], None
    while True:
        status, body = get(path + "?limit=%d" % limit + ("&after=" + after if after else ""))
        assert status == 200, (path, status, body)
        ids += [e["sku" if key == "skus" else "line_id"] for e in body[key]]
        after = body["next"]
        if after is None:
            return ids

for limit in (1, 2, 1000):
    got = pages("/v1/skus", "skus", limit)
    assert got == ["B", "_z", "a"], ("skus", limit, got)
    got = pages("/v1/skus/a/lines", "lines", limit)
    assert got == ["L1", "l2", "x5"], ("lines of a", limit, got)
    got = pages("/v1/orders/O1/lines", "lines", limit)
    assert got == order_lines, ("lines of O1", limit, got, order_lines)
status, body = get("/v1/skus?limit=1000")
a = [s for s in body["skus"] if s["sku"] == "a"][0]
assert (a["available"], a["adjusted"], a["deducted"], a["refunded"]) == (94, 100, 8, 2), a
status, body = get("/v1/skus/a/lines")
x5 = [l for l in body["lines"] if l["line_id"] == "x5"][0]
assert (x5["sku"], x5["order_id"], x5["qty"], x5["refunded"]) == ("a", "O1", 5, 2), x5
for path, word in (("/v1/skus/nope/lines", "sku"), ("/v1/orders/nope/lines", "order"),
                   ("/v1/skus?after=nope", "sku"), ("/v1/skus/a/lines?after=nope", "line")):
    status, body = get(path)
    assert status == 404 and body["code"] == "NOTFOUND" and body["detail"] == word + "=nope", \
        (path, status, body)
EOF
    kill "$stockd_pid"
    wait "$stockd_pid" 2>/dev/null || true
    stockd_pid=""
    echo "listings over ${uri%%:*}: ok"
}

check "$PG_URI" x9,x1,x5
indexes=$(pg_psql -c "SELECT count(*) FROM pg_indexes WHERE indexname IN
                      ('inventory_skus_c', 'inventory_flow_by_sku', 'inventory_flow_by_order',
                       'inventory_refunds_by_line')")
[ "$indexes" = 4 ] || fail "$indexes of the 4 listing indexes in postgres"
check "$REDIS_URI" x9,x1,x5
check "$PG_SHARDS_URI" x1,x5,x9
echo "57-list-backends: postgres, redis and sharded list in byte order over HTTP"
