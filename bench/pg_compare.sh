#!/usr/bin/env bash
# pg_compare.sh -- the plain database scheme (docs/schemes.md) measured with
# pgbench, and the postgres backend (in-process, bench/pg_bench) on the SAME
# throwaway PostgreSQL 15 in the same run, so that the ratio means something.
#
# usage: bench/pg_compare.sh [SECONDS]
#        bench/pg_compare.sh -h|--help
#   SECONDS  length of each measured run, a whole number in 1..3600
#            (default 10; stockbench's --duration allows at most 3600)
# Environment: BUILD (default build). Needs root or the postgres user for
# initdb (runuser), pgbench and redis-cli (scripts/install-deps.sh).
#
# Plain scheme: one transaction per deduction, synchronous_commit on, 16
# clients: BEGIN; UPDATE inventory SET leaved_amount = leaved_amount - 1
# WHERE sku_id = :sku AND leaved_amount >= 1; INSERT a flow row; COMMIT.
# Workloads: hot (one SKU) and uniform (100,000 SKUs). The backend runs the
# same workloads with 16 client threads, plain and merged, without and with
# pipelining (window x batch deductions in flight per client); then stockd
# --store postgres://...?stock_merge=1 is driven by stockbench over RESP (16
# connections, 16 or 1 deductions per batch). Prints the figures of each run.
# Needs `make bench` (build/bench/pg_bench, build/stockd, build/stockbench).
set -eu
cd "$(dirname "$0")/.."
. bench/common.sh
bench_help "$@"
[ $# -le 1 ] || { echo "pg_compare.sh: takes at most one argument, SECONDS (see --help)" >&2; exit 2; }
seconds=${1:-10}
bench_whole SECONDS "$seconds" 1 3600
. tests/harness/pg.sh
stockd_pid=""
work=$(mktemp -d /tmp/stockd-pgbench.XXXXXX)
cleanup() {
    [ -z "$stockd_pid" ] || kill -TERM "$stockd_pid" 2>/dev/null || true
    pg_stop
    rm -rf "$work"
}
trap cleanup EXIT
pg_start

pg_psql <<'SQL'
CREATE TABLE plain_inventory (sku_id text PRIMARY KEY, leaved_amount bigint NOT NULL CHECK (leaved_amount >= 0));
CREATE TABLE plain_flow (line_id text PRIMARY KEY, sku_id text NOT NULL, qty bigint NOT NULL, time_us bigint NOT NULL);
INSERT INTO plain_inventory SELECT 'sku' || g, 1000000000 FROM generate_series(1, 100000) g;
SQL
for workload in hot uniform; do
    sku="1"
    [ "$workload" = hot ] || sku="random(1, 100000)"
    cat >"$work/$workload.sql" <<SQL
\set sku $sku
BEGIN;
UPDATE plain_inventory SET leaved_amount = leaved_amount - 1 WHERE sku_id = 'sku' || :sku AND leaved_amount >= 1;
INSERT INTO plain_flow VALUES (gen_random_uuid()::text, 'sku' || :sku, 1, (extract(epoch FROM clock_timestamp()) * 1e6)::bigint);
END;
SQL
    tps=$("$PG_BIN/pgbench" -n -c 16 -j 2 -T "$seconds" -f "$work/$workload.sql" "$PG_URI" 2>/dev/null |
          sed -n 's/^tps = \([0-9.]*\).*/\1/p')
    echo "plain scheme (pgbench -c 16 -j 2 -T $seconds) $workload: $tps deductions/s"
    for mode in "?stock_merge=0" "?stock_merge=1"; do
        for shape in "1 1" "4 16"; do
            # shellcheck disable=SC2086
            "$BUILD/bench/pg_bench" "$PG_URI$mode" "$workload" 16 $shape "$seconds"
        done
    done
done
"$BUILD/bench/pg_bench" "$PG_URI?stock_merge=1" sellout 16 4 16
"$BUILD/bench/pg_bench" "$PG_URI?stock_merge=0" sellout 16 4 16

port=$(pg_free_port)
"$BUILD/stockd" --store "$PG_URI?stock_merge=1" --port "$port" --http-port 0 >"$work/stockd.log" 2>&1 &
stockd_pid=$!
for ((i = 0; i < 100; i++)); do
    redis-cli -p "$port" PING 2>/dev/null | grep -q PONG && break
    sleep 0.1
done
for workload in hot uniform; do
    for pipeline in 16 1; do
        echo "stockd --store postgres://...?stock_merge=1, stockbench -w $workload -c 16 -P $pipeline -d $seconds:"
        "$BUILD/stockbench" -s "stockd://127.0.0.1:$port" -w "$workload" -c 16 -P "$pipeline" \
            -d "$seconds" --no-progress 2>&1 | grep -E "operations .* ops/s|latency|check"
    done
done
