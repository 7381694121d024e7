#!/usr/bin/env bash
# persist.sh -- does stockpersist keep up? The redis backend takes
# deductions at full speed on one hot SKU (stockbench --workload hot, 50
# connections of 16) for SECONDS while one stockpersist moves the outbox
# into PostgreSQL; then the load stops and the persister drains what is
# left. Prints the persister's stats lines (rate, lag_records, lag_ms) every
# second, and at the end: the store's deduction rate, the persister's mean
# rate under load, the steady lag (median of the lag_ms samples of the
# second half of the load), and the time from the end of the load to an
# empty outbox.
#
# usage: bench/persist.sh [SECONDS [K]]   (after make; 5..600, default 20)
#        bench/persist.sh -h|--help
#
# With K (2..16): the store is a 3-master Redis Cluster with hot-SKU buckets
# (cluster=1&buckets=K, layout 5: each record one bucket's, in K streams),
# and the drain ends when the persister's stats line says lag_records=0.
#
# Servers: redis-server (appendfsync always) and PostgreSQL 15 from
# tests/harness, on 127.0.0.1, in temporary folders, stopped by PID at the
# end; with K, the harness's cluster of 3 masters with 1 replica each.
set -eu
cd "$(dirname "$0")/.."
. bench/common.sh
bench_help "$@"
[ $# -le 2 ] || { echo "persist.sh: takes at most two arguments (see --help)" >&2; exit 2; }
seconds=${1:-20}
buckets=${2:-}
bench_whole SECONDS "$seconds" 5 600
[ -z "$buckets" ] || bench_whole K "$buckets" 2 16
for binary in stockpersist stockbench; do
    [ -x "$BUILD/$binary" ] || { echo "persist.sh: no $BUILD/$binary: run make" >&2; exit 2; }
done
. tests/harness/redis.sh
. tests/harness/pg.sh
persist_pid=""
cleanup() {
    [ -z "$persist_pid" ] || kill -TERM "$persist_pid" 2>/dev/null || true
    redis_stop
    [ -z "${REDIS_CLUSTER_DIR:-}" ] || redis_cluster_stop
    pg_stop
}
trap cleanup EXIT
pg_start
if [ -n "$buckets" ]; then
    redis_cluster_start
    store="$REDIS_CLUSTER_URI&buckets=$buckets"
    REDIS_DIR=$REDIS_CLUSTER_DIR
else
    redis_start
    store=$REDIS_URI
fi
log=$REDIS_DIR/persist.log

"$BUILD/stockpersist" --redis "$store" --postgres "$PG_URI" --stats-s 1 2>"$log" &
persist_pid=$!
echo "== stockbench hot on $store for $seconds s, stockpersist into PostgreSQL"
"$BUILD/stockbench" --store "$store" --workload hot --connections 50 --pipeline 16 \
    --duration "$seconds" --stock 1000000000 --no-progress | tee "$REDIS_DIR/bench.out" | grep -E "ops/s|throughput|check" || true
load_end=$(date +%s.%N)
load_lines=$(grep -c "stats" "$log" || true)
if [ -n "$buckets" ]; then
    # the lag of a stats line written after the load ended
    until grep "stats" "$log" | tail -n +$((load_lines + 2)) | grep -q " lag_records=0 "; do
        sleep 0.1
    done
else
    while [ "$(redis_outbox_len)" -gt 0 ]; do sleep 0.1; done
fi
drain_end=$(date +%s.%N)
kill -TERM "$persist_pid"
wait "$persist_pid" || true
persist_pid=""
grep "stats" "$log" | sed 's/^/  /'
rates=$(grep "stats" "$log" | head -n "$load_lines" | sed -n 's/.* rate=\([0-9]*\)\/s.*/\1/p')
lags=$(grep "stats" "$log" | head -n "$load_lines" | tail -n $((load_lines / 2)) |
       sed -n 's/.* lag_ms=\([0-9]*\).*/\1/p' | sort -n)
echo "== results ($(date -u +%Y-%m-%d), load average $(cut -d' ' -f1 /proc/loadavg))"
echo "store: $(grep -Eo '[0-9,.]+ ops/s' "$REDIS_DIR/bench.out" | head -n 1)"
echo "persister under load: $(echo "$rates" | awk '{ s += $1; n++ } END { printf "%.0f records/s (mean of %d samples)", n ? s / n : 0, n }')"
echo "steady lag: $(echo "$lags" | awk '{ v[n++] = $1 } END { printf "%.2f s (median of the second half)", n ? v[int(n / 2)] / 1000 : 0 }')"
echo "drain after the load: $(echo "$drain_end - $load_end" | bc) s"
