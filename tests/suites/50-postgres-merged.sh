#!/usr/bin/env bash
# 50-postgres-merged.sh -- the conformance suite against the postgres backend
# with merged deductions: --quick for the semantics, then the full sellout
# (exactly 10,000 of 200,000 attempts succeed).
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/harness/pg.sh
trap pg_stop EXIT
pg_start
echo "primary $PG_URI (pid $PG_PID)"
modes=("?stock_merge=1")
for mode in "${modes[@]}"; do
    echo "== conformance ${mode:-(plain)}"
    "$BUILD/tests/conformance" --quick "$PG_URI$mode" >"$PG_DIR/conformance.log" 2>&1 ||
        { cat "$PG_DIR/conformance.log"; exit 1; }
    tail -n 1 "$PG_DIR/conformance.log"
    "$BUILD/tests/conformance" --filter 'sellout*' "$PG_URI$mode" 2>&1 | tail -n 1
    [ "${PIPESTATUS[0]}" -eq 0 ]
done

