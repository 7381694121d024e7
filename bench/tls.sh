#!/usr/bin/env bash
# tls.sh -- what TLS costs stockd: redis-benchmark DEDUCT on one hot SKU,
# plaintext and over TLS, at -P 1 and -P 16, in the same run against the
# same server (embedded store, --durability relaxed so that the figures are
# the server's and TLS's, not the disk's). Prints one line per run and the
# TLS/plaintext ratio at each pipeline depth.
#
#   bench/tls.sh [ROUNDS]          (default 3; the median of the rounds)
#
# Environment: STOCKD (default build/stockd), CLIENTS (default 50),
# REQUESTS_P16 (default 400000), REQUESTS_P1 (default 100000). Needs
# redis-benchmark with TLS (Debian 12's redis-tools) and openssl.
set -eu
cd "$(dirname "$0")/.."
STOCKD=${STOCKD:-build/stockd}
CLIENTS=${CLIENTS:-50}
ROUNDS=${1:-3}
readonly PORT=17570 TLS_PORT=17571 RAND_RANGE=2147483647
tmp=$(mktemp -d)
pid=""
cleanup() {
    [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/ca.key" \
    -out "$tmp/ca.crt" -days 1 -subj "/CN=bench CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/server.key" \
    -out "$tmp/server.csr" -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$tmp/san.ext"
openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" -CAcreateserial \
    -out "$tmp/server.crt" -days 1 -extfile "$tmp/san.ext" 2>/dev/null
chmod 600 "$tmp/server.key"

"$STOCKD" --store "$tmp/data" --port $PORT --http-port 0 --tls-port $TLS_PORT \
    --tls-cert-file "$tmp/server.crt" --tls-key-file "$tmp/server.key" --tls-auth-clients no \
    --durability relaxed >"$tmp/log" 2>&1 &
pid=$!
for _ in $(seq 200); do
    redis-cli -p $PORT PING 2>/dev/null | grep -q PONG && break
    sleep 0.05
done
redis-cli -p $PORT SETSTOCK hot 1000000000000 >/dev/null

# rps MODE PIPELINE: one redis-benchmark run; prints its requests/s.
rps() {
    local args=(-p $PORT) n=${REQUESTS_P1:-100000}
    [ "$1" = tls ] && args=(--tls --cacert "$tmp/ca.crt" -p $TLS_PORT)
    [ "$2" = 16 ] && n=${REQUESTS_P16:-400000}
    redis-benchmark "${args[@]}" -c "$CLIENTS" -P "$2" -n "$n" -r $RAND_RANGE --csv \
        DEDUCT 'L__rand_int__' hot 1 2>/dev/null | tail -n 1 | tr -d '"' | cut -d, -f2
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

for pipeline in 1 16; do
    for mode in plain tls; do : >"$tmp/$mode-$pipeline"; done
    for round in $(seq "$ROUNDS"); do
        # Alternate the order so that a drift in the machine's load hits both.
        for mode in plain tls; do
            r=$(rps $mode $pipeline)
            echo "round $round  -P $pipeline  $mode: $r requests/s"
            echo "$r" >>"$tmp/$mode-$pipeline"
        done
    done
    plain=$(median <"$tmp/plain-$pipeline") tls=$(median <"$tmp/tls-$pipeline")
    awk -v p="$plain" -v t="$tls" -v d="$pipeline" 'BEGIN {
        printf "-P %-2s median: plaintext %.0f/s, TLS %.0f/s, TLS/plaintext %.2f\n", d, p, t, t / p }'
done
