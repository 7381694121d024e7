#!/usr/bin/env bash
# bench/compare.sh -- stockd beside the schemes of docs/schemes.md as their
# users deploy them, on loopback, in one run, with the same clients:
#
#   Redis 7 + the Lua deduction (bench/lua/deduct.lua: stock key + flow hash,
#       EVALSHA), appendfsync always and everysec, and plain GET for scale;
#       and libstock's redis backend on the appendfsync always server driven
#       by stockbench (hot, and uniform over 100,000 SKUs, and hot with
#       buckets=8, which on one server shows what buckets cost);
#   Redis Cluster, 3 masters with a replica each (tests/harness/redis.sh,
#       appendfsync always): libstock's redis backend (cluster=1) driven by
#       stockbench, uniform over 100,000 SKUs and one hot SKU, with buckets=1
#       and buckets=8;
#   PostgreSQL 15, the plain conditional update (update ... where
#       leaved_amount >= n, plus a flow row) driven by pgbench, 16 clients,
#       one hot SKU and 100,000 SKUs; and libstock's postgres backend on the
#       same server driven by stockbench (plain, and merging deductions, and
#       the sharded backend over that one database) and by redis-benchmark
#       through a stockd over it;
#   stockd (build/stockd, embedded engine, durable by default): DEDUCT on one
#       hot SKU through redis-benchmark, and stockbench (hot) through
#       stockd:// and in-process, and (uniform, as the postgres backend's
#       row) through stockd://.
#
# Every row is checked: the stock moved by exactly the number of distinct
# successful lines (redis-benchmark's __rand_int__ repeats ids now and then:
# a replayed line is not a deduction, so the count is compared with the
# distinct ids it can have drawn), PostgreSQL's flow rows match its stock,
# stockbench runs its own I1-I5 check. Prints one table and the ratios that
# docs/benchmarks.md and docs/redis.md set as targets (bench/redis.sh
# measures the redis backend's one round after round, with the server's CPU
# per op).
#
# usage: bench/compare.sh [--seconds N] [--out DIR] [--only LIST]
#   --seconds N  length of each measured run (default 3)
#   --out DIR    also write DIR/results.tsv, DIR/results.md, DIR/compare.png
#   --only LIST  comma-separated subset of redis,redis-cluster,postgres,stockd
#                (default all)
# Environment: BUILD (default build); PG_PREFILL_LINES (default 2000000):
# flow rows written into both PostgreSQL flow tables before their rows run,
# so that they measure a store that has been selling, not a fresh table
# (bench/pg_sustained.sh measures the same growth run after run).
# Ports 17460-17464 on 127.0.0.1, and the cluster's of tests/harness/redis.sh.
# Needs root or the postgres user for initdb (runuser), redis-server,
# redis-benchmark, pgbench, gnuplot (scripts/install-deps.sh).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
seconds=3
out=""
only=redis,redis-cluster,postgres,stockd
while [ $# -gt 0 ]; do
    case $1 in
    --seconds) seconds=${2:?--seconds needs a value}; shift 2 ;;
    --out) out=${2:?--out needs a folder}; shift 2 ;;
    --only) only=${2:?--only needs a list}; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
case $seconds in
''|*[!0-9]*) echo "compare.sh: --seconds must be a whole number of seconds" >&2; exit 2 ;;
esac
[ "$seconds" -ge 1 ] && [ "$seconds" -le 60 ] ||
    { echo "compare.sh: --seconds must be in 1..60" >&2; exit 2; }
for part in ${only//,/ }; do
    case $part in
    redis|redis-cluster|postgres|stockd) ;;
    *) echo "compare.sh: --only takes redis, redis-cluster, postgres, stockd; not '$part'" >&2
       exit 2 ;;
    esac
done
# selected PART: true if PART is in --only.
selected() { case ",$only," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

readonly REDIS_ALWAYS_PORT=17460 REDIS_EVERYSEC_PORT=17461 PG_PORT=17462
readonly STOCKD_PORT=17463 STOCKD_PG_PORT=17464
readonly PG_BIN=/usr/lib/postgresql/15/bin
readonly RAND_RANGE=2147483647        # redis-benchmark draws __rand_int__ below 2^31
readonly BIG_STOCK=1000000000000
readonly CLIENTS=50 PG_CLIENTS=16 PG_SKUS=100000
PG_PREFILL_LINES=${PG_PREFILL_LINES:-2000000}
case $PG_PREFILL_LINES in
''|*[!0-9]*) echo "compare.sh: PG_PREFILL_LINES must be a whole number" >&2; exit 2 ;;
esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/stockd-compare.XXXXXX")
chmod 755 "$tmp"
pids=()
pg_started=""
cluster_started=""
failures=0
cleanup() {
    [ -z "$cluster_started" ] || redis_cluster_stop
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "$pg_started" ] && [ -f "$tmp/pg/data/postmaster.pid" ]; then
        pg_pid=$(head -n 1 "$tmp/pg/data/postmaster.pid")
        kill -INT "$pg_pid" 2>/dev/null || true
        while kill -0 "$pg_pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
results=$tmp/results.tsv
: >"$results"

log() { printf '%s\n' "$*" >&2; }

# record SYSTEM CLIENT DURABILITY OPS_PER_S P50_MS P99_MS CHECK
record() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$results"
    case $7 in passed*) ;; *) failures=$((failures + 1)) ;; esac
    log "  -> $1 [$2]: $4 ops/s, p50 $5 ms, p99 $6 ms, check: $7"
}

# wait_redis PORT: until PING answers, at most 10 s.
wait_redis() {
    for _ in $(seq 200); do
        redis-cli -p "$1" PING 2>/dev/null | grep -q PONG && return 0
        sleep 0.05
    done
    log "nothing answers PING on port $1"
    return 1
}

# rb PORT PIPELINE N COMMAND...: one redis-benchmark run of N requests from
# $CLIENTS clients; sets rb_rps, rb_p50, rb_p99 from its CSV line.
rb() {
    local port=$1 pipeline=$2 n=$3
    shift 3
    local line
    line=$(redis-benchmark -h 127.0.0.1 -p "$port" -c "$CLIENTS" -P "$pipeline" \
        -n "$n" -r "$RAND_RANGE" --csv "$@" 2>/dev/null | tail -n 1 | tr -d '"')
    IFS=, read -r _ rb_rps _ _ rb_p50 _ rb_p99 _ <<<"$line"
    case $rb_rps in
    ''|*[!0-9.]*) log "redis-benchmark gave no result for: $*"; rb_rps=0 rb_p50=- rb_p99=- ;;
    esac
}

# requests_for RPS: how many requests fill $seconds at that rate.
requests_for() {
    awk -v rps="$1" -v s="$seconds" 'BEGIN { n = int(rps * s); if (n < 20000) n = 20000; print n }'
}

# served PORT: how many requests the server behind PORT has executed: Redis's
# EVALSHA calls (INFO commandstats), stockd's batched operations (INFO).
# redis-benchmark may send a few pipelines more than -n asks, so the count
# that matters is the server's.
served() {
    redis-cli -p "$1" INFO all | tr -d '\r' | awk -F '[:=,]' '
        $1 == "cmdstat_evalsha" { print $3; found = 1 }
        $1 == "batched_operations" { print $2; found = 1 }
        END { if (!found) print 0 }'
}

# distinct_check MOVED COUNTED N: MOVED (stock taken) must equal COUNTED (the
# store's own count of lines) and the number of distinct ids among N draws
# below RAND_RANGE, within 6 standard deviations of the expected repeats.
distinct_check() {
    awk -v moved="$1" -v counted="$2" -v n="$3" -v r="$RAND_RANGE" 'BEGIN {
        expected = r * (1 - exp(-n / r)); repeats = n - expected
        tolerance = 6 * sqrt(repeats) + 10
        d = moved - expected; if (d < 0) d = -d
        verdict = (moved == counted && d <= tolerance) ? "passed" : "FAILED"
        printf "%s (stock moved %d, %d lines recorded, %d requests, ~%d repeated ids)",
               verdict, moved, counted, n, repeats }'
}

start_redis() {
    local port=$1 fsync=$2
    mkdir -p "$tmp/redis-$port"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$tmp/redis-$port" \
        --appendonly yes --appendfsync "$fsync" --save "" --daemonize no \
        --logfile "$tmp/redis-$port.log" &
    pids+=($!)
    wait_redis "$port"
}

# lua_row PORT PIPELINE DURABILITY: the Lua deduction on one hot SKU.
lua_row() {
    local port=$1 pipeline=$2 durability=$3 sha n
    sha=$(redis-cli -p "$port" SCRIPT LOAD "$(cat bench/lua/deduct.lua)")
    redis-cli -p "$port" SET stock:cal "$BIG_STOCK" >/dev/null
    rb "$port" "$pipeline" 20000 EVALSHA "$sha" 2 stock:cal flow:cal cal:__rand_int__ 1
    n=$(requests_for "$rb_rps")
    redis-cli -p "$port" SET stock:hot "$BIG_STOCK" >/dev/null
    redis-cli -p "$port" DEL flow:hot >/dev/null
    local before left lines
    before=$(served "$port")
    rb "$port" "$pipeline" "$n" EVALSHA "$sha" 2 stock:hot flow:hot line:__rand_int__ 1
    n=$(( $(served "$port") - before ))
    left=$(redis-cli -p "$port" GET stock:hot)
    lines=$(redis-cli -p "$port" HLEN flow:hot)
    record "Redis 7 + Lua (EVALSHA)" "redis-benchmark -c $CLIENTS -P $pipeline" \
        "$durability" "$rb_rps" "$rb_p50" "$rb_p99" \
        "$(distinct_check $((BIG_STOCK - left)) "$lines" "$n")"
}

# get_row PORT PIPELINE: plain GET, the yardstick of the -P 16 and -P 1 targets.
get_row() {
    local port=$1 pipeline=$2 n
    redis-cli -p "$port" SET plain "$BIG_STOCK" >/dev/null
    rb "$port" "$pipeline" 20000 GET plain
    n=$(requests_for "$rb_rps")
    rb "$port" "$pipeline" "$n" GET plain
    record "Redis 7 GET (no deduction)" "redis-benchmark -c $CLIENTS -P $pipeline" \
        "read only" "$rb_rps" "$rb_p50" "$rb_p99" "passed (a read: nothing to check)"
}

redis_rows() {
    log "== Redis 7 (appendfsync always on $REDIS_ALWAYS_PORT, everysec on $REDIS_EVERYSEC_PORT)"
    start_redis "$REDIS_ALWAYS_PORT" always
    start_redis "$REDIS_EVERYSEC_PORT" everysec
    lua_row "$REDIS_ALWAYS_PORT" 16 "appendfsync always"
    lua_row "$REDIS_EVERYSEC_PORT" 16 "appendfsync everysec"
    lua_row "$REDIS_ALWAYS_PORT" 1 "appendfsync always"
    lua_row "$REDIS_EVERYSEC_PORT" 1 "appendfsync everysec"
    get_row "$REDIS_ALWAYS_PORT" 16
    get_row "$REDIS_ALWAYS_PORT" 1
    [ -x "$BUILD/stockbench" ] || { log "missing $BUILD/stockbench: run make first"; return; }
    local uri="redis://127.0.0.1:$REDIS_ALWAYS_PORT?prefix=sb:"
    stockbench_row "libstock redis backend" "appendfsync always" "$uri" \
        -w hot -c "$CLIENTS" -P 16
    # A store without an outbox: what the Lua script is, a cache and its
    # flow, nothing kept for a persister (docs/redis.md, "A store without
    # an outbox").
    stockbench_row "libstock redis backend, outbox=0" "appendfsync always" \
        "redis://127.0.0.1:$REDIS_ALWAYS_PORT?prefix=sbn:&outbox=0" -w hot -c "$CLIENTS" -P 16
    stockbench_row "libstock redis backend" "appendfsync always" "$uri" \
        -w uniform --skus "$PG_SKUS" -c "$CLIENTS" -P 16
    # What buckets cost on one server, where they spread nothing
    # (docs/redis.md, "Hot-SKU buckets").
    stockbench_row "libstock redis backend, buckets=8" "appendfsync always" \
        "redis://127.0.0.1:$REDIS_ALWAYS_PORT?prefix=sb8:&buckets=8" -w hot -c "$CLIENTS" -P 16
}

# The cluster of the redis suites (tests/harness/redis.sh): 3 masters with a
# replica each, appendfsync always, all on this machine.
redis_cluster_rows() {
    log "== Redis Cluster: 3 masters + 3 replicas (appendfsync always)"
    [ -x "$BUILD/stockbench" ] || { log "missing $BUILD/stockbench: run make first"; return; }
    . tests/harness/redis.sh
    cluster_started=yes
    redis_cluster_start || { record "Redis Cluster" "-" "-" 0 - - "FAILED (no cluster)"; return; }
    local uri="$REDIS_CLUSTER_URI&prefix=sb:"
    stockbench_row "libstock redis backend, 3-master cluster" "appendfsync always" "$uri" \
        -w uniform --skus "$PG_SKUS" -c "$CLIENTS" -P 16
    stockbench_row "libstock redis backend, 3-master cluster" "appendfsync always" "$uri" \
        -w hot -c "$CLIENTS" -P 16
    # The hot SKU over 8 buckets in 8 slots, so over the 3 masters
    # (docs/redis.md, "Hot-SKU buckets"; a prefix of its own: a store
    # records its K).
    stockbench_row "libstock redis backend, 3-master cluster, buckets=8" "appendfsync always" \
        "$REDIS_CLUSTER_URI&prefix=sb8:&buckets=8" -w hot -c "$CLIENTS" -P 16
}

pg() { psql -X -q -t -A -h "$tmp/pg" -p "$PG_PORT" -U postgres -d bench "$@"; }

start_postgres() {
    mkdir -p "$tmp/pg"
    chown postgres "$tmp/pg"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$tmp/pg/data" -A trust -U postgres \
        >"$tmp/pg-initdb.log" 2>&1 || { cat "$tmp/pg-initdb.log" >&2; return 1; }
    pg_started=yes
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$tmp/pg/data" -l "$tmp/pg/log" -w \
        -o "-p $PG_PORT -k $tmp/pg -c listen_addresses=127.0.0.1 -c max_connections=40" \
        start >/dev/null || { cat "$tmp/pg/log" >&2; return 1; }
    psql -X -q -h "$tmp/pg" -p "$PG_PORT" -U postgres -c "CREATE DATABASE bench" postgres
    psql -X -q -h "$tmp/pg" -p "$PG_PORT" -U postgres -c "CREATE DATABASE stockbench" postgres
    # SKU 0 is the hot one; 1..PG_SKUS are the uniform ones.
    pg <<SQL
CREATE TABLE stock (sku_id bigint PRIMARY KEY, initial bigint NOT NULL,
                    leaved_amount bigint NOT NULL);
CREATE TABLE flow (line_id bigint PRIMARY KEY, sku_id bigint NOT NULL,
                   amount integer NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE SEQUENCE line_ids;
INSERT INTO stock SELECT g, $BIG_STOCK, $BIG_STOCK FROM generate_series(0, $PG_SKUS) g;
VACUUM ANALYZE stock;
SQL
    # The database scheme of docs/schemes.md in one statement, so one
    # transaction: take the stock only if it is there, and write the flow row
    # only if it was taken.
    local deduct="WITH taken AS (UPDATE stock SET leaved_amount = leaved_amount - 1
  WHERE sku_id = :sku AND leaved_amount >= 1 RETURNING sku_id)
INSERT INTO flow (line_id, sku_id, amount) SELECT nextval('line_ids'), sku_id, 1 FROM taken;"
    printf '\\set sku 0\n%s\n' "$deduct" >"$tmp/hot.sql"
    printf '\\set sku random(1, %d)\n%s\n' "$PG_SKUS" "$deduct" >"$tmp/uniform.sql"
}

# The flow rows must account for every unit taken, on every SKU.
pg_check() {
    local bad rows
    bad=$(pg -c "SELECT count(*) FROM stock s LEFT JOIN
        (SELECT sku_id, sum(amount) AS taken FROM flow GROUP BY sku_id) f USING (sku_id)
        WHERE s.leaved_amount < 0 OR s.initial - s.leaved_amount <> coalesce(f.taken, 0)")
    rows=$(pg -c "SELECT count(*) FROM flow")
    [ "$bad" = 0 ] && echo "passed ($rows flow rows match the stock of every SKU)" ||
        echo "FAILED ($bad SKUs whose stock and flow rows disagree)"
}

# pg_row NAME SCRIPT: pgbench with PG_CLIENTS clients for $seconds seconds;
# latency percentiles from its per-transaction log.
pg_row() {
    local name=$1 script=$2 output tps failed p50 p99
    rm -f "$tmp"/pglog*
    output=$(pgbench -n -c "$PG_CLIENTS" -j 2 -T "$seconds" -f "$script" -l \
        --log-prefix="$tmp/pglog" -h "$tmp/pg" -p "$PG_PORT" -U postgres bench 2>&1) ||
        { log "$output"; record "PostgreSQL 15 conditional UPDATE" "$name" \
              "synchronous_commit on" 0 - - "FAILED (pgbench failed)"; return; }
    tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$output")
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$output")
    read -r p50 p99 < <(cat "$tmp"/pglog* | awk '{ print $3 }' | sort -n |
        awk '{ v[NR] = $1 } END { printf "%.3f %.3f\n", v[int(NR * 0.50 + 0.999)] / 1000,
                                    v[int(NR * 0.99 + 0.999)] / 1000 }')
    local check
    check=$(pg_check)
    [ "${failed:-0}" = 0 ] || check="FAILED ($failed failed transactions; $check)"
    record "PostgreSQL 15 conditional UPDATE" "$name" "synchronous_commit on" \
        "$tps" "$p50" "$p99" "$check"
}

# prefill_flows URI: PG_PREFILL_LINES flow rows of an unused SKU in both the
# plain scheme's table and the backend's, so that every row runs on a flow
# table of a store that has been selling for a while: a cost that grows with
# the table (a sequential scan per transaction) shows up here.
prefill_flows() {
    local uri=$1
    pg -c "INSERT INTO flow (line_id, sku_id, amount)
           SELECT -g, -1, 1 FROM generate_series(1, $PG_PREFILL_LINES) g"
    # Opening the store creates its schema; the SKU is not there (exit 4).
    "$BUILD/stockctl" --store "$uri" get prefill >/dev/null 2>&1 || [ $? -eq 4 ] ||
        { log "stockctl could not open $uri"; return 1; }
    psql -X -q -h "$tmp/pg" -p "$PG_PORT" -U postgres -d stockbench -c \
        "INSERT INTO inventory_flow SELECT 'prefill-' || g, 'prefill', 1, 0, '', 0, 0, 0, 0
           FROM generate_series(1, $PG_PREFILL_LINES) g"
}

postgres_rows() {
    log "== PostgreSQL 15 on $PG_PORT"
    start_postgres
    local uri="postgresql://postgres@127.0.0.1:$PG_PORT/stockbench"
    log "pre-filling both flow tables with $PG_PREFILL_LINES lines"
    prefill_flows "$uri"
    pg_row "pgbench -c $PG_CLIENTS, hot SKU" "$tmp/hot.sql"
    pg_row "pgbench -c $PG_CLIENTS, $PG_SKUS SKUs" "$tmp/uniform.sql"
    [ -x "$BUILD/stockbench" ] || { log "missing $BUILD/stockbench: run make first"; return; }
    stockbench_row "libstock postgres backend" "synchronous_commit on" "$uri" \
        -w hot -c "$PG_CLIENTS" -P 16
    stockbench_row "libstock postgres backend, merged" "synchronous_commit on" \
        "$uri?stock_merge=1" -w hot -c "$PG_CLIENTS" -P 16
    stockbench_row "libstock postgres backend" "synchronous_commit on" "$uri" \
        -w uniform --skus "$PG_SKUS" -c "$PG_CLIENTS" -P 16
    # The sharded backend over that one database: its overhead, same run
    # (bench/sharded.sh measures 3 members).
    stockbench_row "libstock sharded backend, 1 member" "synchronous_commit on" \
        "shards:$uri" -w hot -c "$PG_CLIENTS" -P 16
    stockbench_row "libstock sharded backend, 1 member" "synchronous_commit on" \
        "shards:$uri" -w uniform --skus "$PG_SKUS" -c "$PG_CLIENTS" -P 16
    [ -x "$BUILD/stockd" ] || { log "missing $BUILD/stockd: run make first"; return; }
    start_stockd "$STOCKD_PG_PORT" "$uri?stock_merge=1"
    deduct_row "$STOCKD_PG_PORT" 16 "stockd DEDUCT (postgres backend, merged)" \
        "synchronous_commit on"
}

# deduct_row PORT PIPELINE SYSTEM DURABILITY: a stockd's DEDUCT on one hot
# SKU, measured and checked as Redis's rows.
deduct_row() {
    local port=$1 pipeline=$2 system=$3 durability=$4 n left deducted before
    local sku="hot-p$pipeline"
    redis-cli -p "$port" SETSTOCK "cal-$sku" "$BIG_STOCK" >/dev/null
    rb "$port" "$pipeline" 20000 DEDUCT "c$pipeline-__rand_int__" "cal-$sku" 1
    n=$(requests_for "$rb_rps")
    redis-cli -p "$port" SETSTOCK "$sku" "$BIG_STOCK" >/dev/null
    before=$(served "$port")
    rb "$port" "$pipeline" "$n" DEDUCT "m$pipeline-__rand_int__" "$sku" 1
    n=$(( $(served "$port") - before ))
    left=$(redis-cli -p "$port" STOCK "$sku")
    deducted=$(redis-cli -p "$port" SKUINFO "$sku" |
        awk 'previous == "deducted" { print; exit } { previous = $0 }')
    record "$system" "redis-benchmark -c $CLIENTS -P $pipeline" "$durability" \
        "$rb_rps" "$rb_p50" "$rb_p99" \
        "$(distinct_check $((BIG_STOCK - ${left:-$BIG_STOCK})) "${deducted:-0}" "$n")"
}

# start_stockd PORT STORE: a stockd on 127.0.0.1:PORT over STORE, HTTP off.
start_stockd() {
    "$BUILD/stockd" --store "$2" --port "$1" --http-port 0 --bind 127.0.0.1 \
        >>"$tmp/stockd-$1.log" 2>&1 &
    pids+=($!)
    wait_redis "$1" || { cat "$tmp/stockd-$1.log" >&2; return 1; }
}

# stockbench_row NAME DURABILITY URI ARGS...: a stockbench run; its own
# check decides.
stockbench_row() {
    local name=$1 durability=$2 uri=$3 status=0
    shift 3
    "$BUILD/stockbench" --store "$uri" --json --no-progress -d "$seconds" "$@" \
        >"$tmp/stockbench.json" 2>"$tmp/stockbench.err" || status=$?
    if [ "$status" -gt 1 ]; then
        cat "$tmp/stockbench.err" >&2
        record "$name" "stockbench $*" "$durability" 0 - - "FAILED (exit $status)"
        return
    fi
    local fields
    fields=$(/usr/bin/python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))
print("%.0f %.3f %.3f %s" % (j["ops_per_s"], j["latency_ms"]["p50"], j["latency_ms"]["p99"],
      "passed" if j["check"]["passed"] else "FAILED"))' "$tmp/stockbench.json")
    local ops p50 p99 verdict
    read -r ops p50 p99 verdict <<<"$fields"
    [ "$verdict" = passed ] && verdict="passed (stockbench I1-I5)" ||
        verdict="FAILED ($(head -n 3 "$tmp/stockbench.err" | tr '\n' ' '))"
    record "$name" "stockbench $*" "$durability" "$ops" "$p50" "$p99" "$verdict"
}

stockd_rows() {
    log "== stockd on $STOCKD_PORT (embedded engine, default durability)"
    if [ ! -x "$BUILD/stockd" ] || [ ! -x "$BUILD/stockbench" ]; then
        log "missing $BUILD/stockd or $BUILD/stockbench: run make first"
        record "stockd" "-" "-" 0 - - "FAILED (not built)"
        return
    fi
    start_stockd "$STOCKD_PORT" "$tmp/stockd-data"
    deduct_row "$STOCKD_PORT" 16 "stockd DEDUCT (embedded)" "fsync per batch"
    deduct_row "$STOCKD_PORT" 1 "stockd DEDUCT (embedded)" "fsync per batch"
    stockbench_row "stockbench -> stockd://" "fsync per batch" \
        "stockd://127.0.0.1:$STOCKD_PORT" -w hot -c "$CLIENTS" -P 16
    stockbench_row "stockbench in-process (embedded)" "fsync per batch" \
        "$tmp/inprocess" -w hot -c "$CLIENTS" -P 16
    # The postgres backend's uniform row, on stockd: same workload, same client.
    stockbench_row "stockbench -> stockd://" "fsync per batch" \
        "stockd://127.0.0.1:$STOCKD_PORT" -w uniform --skus "$PG_SKUS" -c "$PG_CLIENTS" -P 16
}

# field_of SYSTEM CLIENT COLUMN [DURABILITY]: a column (4 ops/s, 6 p99) of a
# result row.
field_of() {
    awk -F '\t' -v s="$1" -v c="$2" -v col="$3" -v d="${4:-}" \
        '$1 == s && $2 == c && (d == "" || $3 == d) { print $col; exit }' "$results"
}

# ratio_line TEXT NUMERATOR DENOMINATOR TARGET: "TEXT: 7.9x (target >= 5x: met)".
ratio_line() {
    awk -v text="$1" -v a="${2:-0}" -v b="${3:-0}" -v target="$4" 'BEGIN {
        if (b + 0 == 0 || a + 0 == 0) { printf "%s: not measured\n", text; exit }
        r = a / b
        printf "%s: %.2fx (target >= %sx: %s)\n", text, r, target, ((r >= target) ? "met" : "MISSED") }'
}

print_table() {
    local machine
    machine="$(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(uname -sr)"
    echo "stockd comparison, $(date -u '+%Y-%m-%d %H:%M UTC'), $machine, ${seconds}s per run, loopback, load average at the end $(cut -d " " -f 1-3 /proc/loadavg)"
    echo
    {
        printf 'system\tclient\tdurability\tops/s\tp50 ms\tp99 ms\tcheck\n'
        awk -F '\t' 'BEGIN { OFS = "\t" } { $4 = sprintf("%.0f", $4); print }' "$results"
    } | awk -F '\t' '{ for (i = 1; i <= NF; i++) { cell[NR, i] = $i
                         if (length($i) > width[i]) width[i] = length($i) }
                       if (NF > columns) columns = NF }
        END { for (r = 1; r <= NR; r++) { line = ""
                for (i = 1; i <= columns; i++)
                    line = line (i < columns ? sprintf("%-*s  ", width[i], cell[r, i]) : cell[r, i])
                print line } }'
    echo
    local stockd16 lua16 get16 stockd1 get1 p99_1 lua_p99_1
    local bench16="redis-benchmark -c $CLIENTS -P 16" bench1="redis-benchmark -c $CLIENTS -P 1"
    stockd16=$(field_of "stockd DEDUCT (embedded)" "$bench16" 4)
    lua16=$(field_of "Redis 7 + Lua (EVALSHA)" "$bench16" 4 "appendfsync always")
    get16=$(field_of "Redis 7 GET (no deduction)" "$bench16" 4)
    stockd1=$(field_of "stockd DEDUCT (embedded)" "$bench1" 4)
    get1=$(field_of "Redis 7 GET (no deduction)" "$bench1" 4)
    p99_1=$(field_of "stockd DEDUCT (embedded)" "$bench1" 6)
    lua_p99_1=$(field_of "Redis 7 + Lua (EVALSHA)" "$bench1" 6 "appendfsync always")
    local stockd_pg plain_pg
    stockd_pg=$(field_of "stockd DEDUCT (postgres backend, merged)" "$bench16" 4)
    plain_pg=$(field_of "PostgreSQL 15 conditional UPDATE" "pgbench -c $PG_CLIENTS, hot SKU" 4)
    local redis_hot redis_bare
    redis_hot=$(field_of "libstock redis backend" "stockbench -w hot -c $CLIENTS -P 16" 4)
    redis_bare=$(field_of "libstock redis backend, outbox=0" "stockbench -w hot -c $CLIENTS -P 16" 4)
    echo "Targets (docs/benchmarks.md, docs/redis.md), each against a yardstick of this run:"
    ratio_line "stockd DEDUCT -P 16 / Redis GET -P 16" "$stockd16" "$get16" 0.75
    ratio_line "stockd DEDUCT -P 16 / Redis+Lua appendfsync always -P 16" "$stockd16" "$lua16" 5
    ratio_line "stockd DEDUCT -P 1 / Redis GET -P 1" "$stockd1" "$get1" 1
    ratio_line "Redis+Lua always -P 1 p99 / stockd DEDUCT -P 1 p99" "$lua_p99_1" "$p99_1" 1
    ratio_line "stockd over postgres DEDUCT -P 16 / pgbench plain scheme, hot SKU" \
        "$stockd_pg" "$plain_pg" 20
    ratio_line "redis backend, hot SKU, stockbench -P 16 / Redis+Lua appendfsync always -P 16" \
        "$redis_hot" "$lua16" 1
    ratio_line "redis backend outbox=0, hot SKU, stockbench -P 16 / Redis+Lua appendfsync always -P 16" \
        "$redis_bare" "$lua16" 1
}

# plot_results PNG: ops/s per row as bars on a log scale.
plot_results() {
    awk -F '\t' '{ label = $1 "\\n" $2 "\\n" $3; gsub(/"/, "", label)
                   printf "%d \"%s\" %s\n", NR - 1, label, ($4 > 0 ? $4 : 1) }' \
        "$results" >"$tmp/plot.dat"
    gnuplot <<PLOT
set terminal pngcairo size 1400,700 noenhanced font ",9"
set output '$1'
set title 'ops/s on one machine, loopback, ${seconds}s per run (log scale)'
set style fill solid 0.6
set boxwidth 0.7
set logscale y
set yrange [100:*]
set grid ytics
set xtics rotate by 35 right
set bmargin 12
unset key
plot '$tmp/plot.dat' using 1:3:xtic(2) with boxes, \
     '' using 1:3:(sprintf("%.0f", \$3)) with labels offset 0,0.8
PLOT
}

write_out() {
    mkdir -p "$out"
    cp "$results" "$out/results.tsv"
    {
        echo "| system | client | durability | ops/s | p50 ms | p99 ms | check |"
        echo "|---|---|---|---:|---:|---:|---|"
        awk -F '\t' '{ printf "| %s | %s | %s | %.0f | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7 }' "$results"
    } >"$out/results.md"
    plot_results "$out/compare.png"
    log "wrote $out/results.tsv, $out/results.md, $out/compare.png"
}

! selected redis || redis_rows
! selected redis-cluster || redis_cluster_rows
! selected postgres || postgres_rows
! selected stockd || stockd_rows
print_table | tee "$tmp/table.txt"
if [ -n "$out" ]; then
    write_out
    cp "$tmp/table.txt" "$out/table.txt"
fi
[ "$failures" -eq 0 ] || { log "compare.sh: $failures row(s) failed their check"; exit 1; }
