#!/usr/bin/env bash
# 43-openapi.sh -- docs/openapi.yaml checked by a real OpenAPI validator
# (@apidevtools/swagger-parser, installed by scripts/install-deps.sh into
# tests/openapi/node_modules), every schema compiled as JSON Schema 2020-12,
# and every operation's examples run against a fresh stockd in the order
# the file lists them: each answer must equal the 200 example (time_us
# aside) and fit its schema; a few errors must be problem objects that fit
# the Problem schema (tests/openapi/check.mjs).
set -eu
BUILD=${BUILD:-build}
. "$(dirname "$0")/../system/server_helpers.sh"
suite_dir openapi
root=$(cd "$(dirname "$0")/../.." && pwd)
[ -d "$root/tests/openapi/node_modules/@apidevtools/swagger-parser" ] ||
    { echo "the validator is not installed: run scripts/install-deps.sh"; exit 1; }
use_binaries "$dir/bin" stockd
BIN=$dir/bin
port=$(pick_port 17466 17473)
http=$(pick_port 17474 17481)
start_stockd "$port" "$dir/data" "$dir/stockd.log" --http-port "$http" || exit 1
pid=$STOCKD_PID
cd "$root/tests/openapi"
node check.mjs "$root/docs/openapi.yaml" "http://127.0.0.1:$http"
echo "43-openapi: all passed"
