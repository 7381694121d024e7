#!/usr/bin/env bash
# 41-fuzz.sh -- builds the libFuzzer targets of the RESP and HTTP readers,
# the URI readers, the TLS-wrapped read path, the embedded engine's reading
# of its data folder (segments, records, snapshots), the remote backend's
# reading of stockd's replies and the readers of the redis store's outbox
# entries, the persister's and stock events' (make fuzz: clang with
# -fsanitize=fuzzer,address,undefined) and runs each for FUZZ_SECONDS
# (default 5: `make test` runs it on every change; longer hunts set it, e.g.
# FUZZ_SECONDS=600 make test SUITES=41-fuzz) from a small seed corpus. A
# crash, leak or failed assertion fails the suite; libFuzzer prints the
# input that did it.
set -eu
cd "${ROOT:-.}"
seconds=${FUZZ_SECONDS:-5}
command -v clang >/dev/null || { echo "clang is missing (scripts/install-deps.sh)"; exit 1; }
make -j2 --no-print-directory fuzz >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/resp" "$work/http" "$work/uri" "$work/tls" "$work/store" "$work/reply" \
    "$work/outbox"
printf '*4\r\n$6\r\nDEDUCT\r\n$2\r\nL1\r\n$3\r\nhot\r\n$1\r\n1\r\n' >"$work/resp/deduct"
printf 'PING\r\nSTOCK a\r\n\r\nORDER o l1 a 1 l2 b 2\n' >"$work/resp/inline"
printf '*3\r\n$8\r\nSETSTOCK\r\n$1\r\na\r\n$19\r\n9223372036854775807\r\n*0\r\n*-1\r\n' >"$work/resp/numbers"
printf '\x05POST /v1/deductions HTTP/1.1\r\nHost: x\r\nContent-Length: 34\r\n\r\n{"line_id":"L","sku":"a","qty":1}\n' >"$work/http/post"
printf '\x11GET /v1/skus/a HTTP/1.1\r\nAuthorization: Bearer x\r\n\r\nGET /healthz HTTP/1.0\r\n\r\n' >"$work/http/pipeline"
printf '\x02PUT /v1/skus/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\n2\r\n1}\r\n0\r\n\r\n' >"$work/http/chunked"

printf '\x20postgres://u:p%%40w@h:5432/db?stock_merge=1&stock_buckets=8&stock_replica=postgres%%3A%%2F%%2Fr' >"$work/uri/postgres"
printf '\x05file:./data?durability=relaxed&snapshot_log_bytes=1048576' >"$work/uri/embedded"
printf '\x01stockd://127.0.0.1:7379?password=a%%2Bb%%00&timeout_ms=100&&x' >"$work/uri/remote"

# The first byte picks the TLS target's mode: even raw bytes on a TLS port,
# odd a real handshake and then the rest as application data.
printf '\x01*4\r\n$6\r\nDEDUCT\r\n$2\r\nL1\r\n$3\r\nhot\r\n$1\r\n1\r\n' >"$work/tls/deduct"
printf '\x02\x16\x03\x01\x00\x05hello' >"$work/tls/raw"

# The store target's seeds are the files of a real store that saw every kind
# of record; its snapshot threshold (the least) makes it write snapshots.
# Each seed is a mode byte and a file without its header (and trailer).
make --no-print-directory build/stockctl >/dev/null
seed_store="file:$work/seed?snapshot_log_bytes=4096"
ctl() { build/stockctl --store "$seed_store" "$@" >/dev/null; }
ctl set A 1000
ctl set B 50
ctl add B 7 --id adj-1
ctl deduct L1 A 3
ctl order O1 L2 A 2 L3 B 4
ctl refund R1 L1 1
ctl hold H1 A 5 3600000
ctl confirm H1 2
ctl hold H2 B 1 3600000
ctl release H2
ctl hold H3 A 1 1
for i in $(seq 60); do ctl deduct "M$i" A 1; done
segment=$(ls "$work/seed"/log-*.wal | head -1)
snapshot=$(ls "$work/seed"/snap-*.snap | tail -1)
[ -n "$segment" ] && [ -n "$snapshot" ] || { echo "the seed store has no segment or snapshot"; exit 1; }
{ printf '\x00'; tail -c +33 "$segment"; } >"$work/store/segment"
{ printf '\x01'; tail -c +33 "$segment"; } >"$work/store/records"
size=$(stat -c %s "$snapshot")
{ printf '\x02'; tail -c +33 "$snapshot" | head -c $((size - 32 - 24)); } >"$work/store/snapshot"

# The reply target's first byte is the op type the reply answers
# (stock.h's stock_op_type), 0 and 13..14 a listing.
printf '\x03*2\r\n+OK\r\n:5\r\n' >"$work/reply/deduct"
printf '\x04*2\r\n+OK\r\n*3\r\n:1\r\n:2\r\n:3\r\n' >"$work/reply/order"
printf '\x04-INSUFFICIENT sku=b available=1 line=2\r\n' >"$work/reply/refused"
printf '\x06*10\r\n$9\r\navailable\r\n:5\r\n$8\r\nadjusted\r\n:9\r\n$8\r\ndeducted\r\n:4\r\n$8\r\nrefunded\r\n:0\r\n$4\r\nheld\r\n:0\r\n' >"$work/reply/sku"
printf '\x07*4\r\n$3\r\nsku\r\n$1\r\na\r\n$3\r\nqty\r\n:2\r\n' >"$work/reply/line"
printf '\x00*1\r\n*2\r\n$1\r\na\r\n*2\r\n$9\r\navailable\r\n:5\r\n' >"$work/reply/list"

# The outbox target's input is a mode byte (bit 0: fields nil; bits 1..7: how
# full the persister's cycle is, 64 and up nearly) and then one entry: its
# id, fields and values, one a line.
printf '\000%s' $'0-12\nms\n1733140000000\nk\nlines\nnr\n2\nt\n1733140000000123\nr\na L1 1 9 10 1 0 10 b L2 3 4 7 3 0 7' >"$work/outbox/lines"
printf '\000%s' $'0-3\nms\n1733140000000\nk\nline\nsku\na\nav\n9\nadj\n10\nded\n1\nref\n0\nid\nL1\nq\n1\nt\n1733140000000123\no\n\nbv\n10' >"$work/outbox/line"
printf '\000%s' $'0-4\nms\n1733140000000\nk\nrefund\nsku\na\nav\n10\nadj\n10\nded\n1\nref\n1\nid\nR1\nline\nL1\nq\n1\nlr\n1\nbv\n9' >"$work/outbox/refund"
printf '\201%s' '0-9' >"$work/outbox/deleted"
printf '\376%s' $'0-20\nk\nlines\nnr\n1\nt\n5\nr\nz L9 1 0 1 1 0 1' >"$work/outbox/full"

for target in resp http uri tls store reply outbox; do
    echo "== fuzz_$target for ${seconds}s"
    build/fuzz/fuzz_$target -max_total_time="$seconds" -max_len=8192 -rss_limit_mb=1024 \
        -print_final_stats=1 -artifact_prefix="$work/" "$work/$target" 2>"$work/$target.log" || {
        tail -n 40 "$work/$target.log"
        for crash in "$work"/crash-* "$work"/leak-* "$work"/timeout-*; do
            [ -f "$crash" ] && { echo "input:"; od -c "$crash" | head -20; }
        done
        exit 1
    }
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$work/$target.log"
done
echo "41-fuzz: no crash"
