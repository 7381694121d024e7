#!/usr/bin/env bash
# pg_compare.sh -- the design article's plain database scheme measured with
# pgbench, and the postgres backend (in-process, bench/pg_bench) on the SAME
# throwaway PostgreSQL 15 in the same run, so that the ratio means something.
#
#   bench/pg_compare.sh [seconds]          (default 10 per run)
#
# Plain scheme: one transaction per deduction, synchronous_commit on, 16
# clients: BEGIN; UPDATE inventory SET leaved_amount = leaved_amount - 1
# WHERE sku_id = :sku AND leaved_amount >= 1; INSERT a flow row; COMMIT.
# Workloads: hot (one SKU) and uniform (100,000 SKUs). The backend runs the
# same workloads with 16 client threads, plain and merged, without and with
# pipelining (window x batch deductions in flight per client). Prints one
# line per run. Needs `make bench` (build/bench/pg_bench).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
seconds=${1:-10}
. tests/harness/pg.sh
trap pg_stop EXIT
pg_start
work=$(mktemp -d /tmp/stockd-pgbench.XXXXXX)
trap 'pg_stop; rm -rf "$work"' EXIT

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
    for mode in "" "?stock_merge=1"; do
        for shape in "1 1" "4 16"; do
            # shellcheck disable=SC2086
            "$BUILD/bench/pg_bench" "$PG_URI$mode" "$workload" 16 $shape "$seconds"
        done
    done
done
"$BUILD/bench/pg_bench" "$PG_URI?stock_merge=1" sellout 16 4 16
"$BUILD/bench/pg_bench" "$PG_URI" sellout 16 4 16
