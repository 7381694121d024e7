#!/usr/bin/env bash
# 47-stockctl.sh -- stockctl end to end: usage errors, then the same script of
# operations against a data directory (embedded engine in-process) and
# against a stockd on a free port in 17380-17394, checking exit codes, the
# readable output, and --json parsed by jq.
set -eu
BUILD=${BUILD:-build}
. "$(dirname "$0")/../system/server_helpers.sh"
port=$(pick_port 17380 17394)
dir=$(mktemp -d)
stockd_pid=""
cleanup() {
    [ -z "$stockd_pid" ] || kill "$stockd_pid" 2>/dev/null || true
    [ -z "$stockd_pid" ] || wait "$stockd_pid" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
use_binaries "$dir/bin" stockd stockctl
BIN=$dir/bin
ctl=$BIN/stockctl

fail() { echo "FAIL: $*"; exit 1; }

# expect CODE ARGS...: runs stockctl, checks its exit code, keeps stdout in
# $dir/out and stderr in $dir/err.
expect() {
    local want=$1 got=0
    shift
    "$ctl" "$@" >"$dir/out" 2>"$dir/err" || got=$?
    [ "$got" -eq "$want" ] ||
        fail "stockctl $* exited $got, wanted $want; stdout: $(cat "$dir/out"); stderr: $(cat "$dir/err")"
}

# json FILTER: the jq filter must hold on the last JSON output. (jq 1.6 -e
# exits 0 on empty input, hence the size check.)
json() {
    [ -s "$dir/out" ] || fail "no JSON output for jq '$1'; stderr: $(cat "$dir/err")"
    jq -e "$1" "$dir/out" >/dev/null || fail "jq '$1' does not hold on $(cat "$dir/out")"
}

echo "== usage"
expect 0 --help
grep -q "exit codes" "$dir/out" || fail "--help has no exit code table"
expect 0 deduct --help
grep -q "LINE_ID SKU QTY" "$dir/out" || fail "deduct --help has no synopsis"
expect 0 help order
expect 2
expect 2 frobnicate
grep -q "unknown command 'frobnicate'" "$dir/err" || fail "no clear message for an unknown command"
expect 2 deduct L1 A
grep -q "deduct takes LINE_ID SKU QTY" "$dir/err" || fail "no clear message for wrong arity"
expect 2 deduct L1 A three
grep -q "QTY must be an integer, not 'three'" "$dir/err" || fail "no clear message for a bad number"
expect 2 order O1 L1 A
# With --json a usage error is one JSON failure on stdout (code INVALID, exit
# 2, stderr silent), wherever --json stands, even after the error's spot.
usage_json() {
    json ".ok == false and .code == \"INVALID\" and .replayed == false and (.error | length > 0) and (.message | test(\"$1\"))"
    [ "$(wc -l <"$dir/out")" -eq 1 ] || fail "not exactly one line on stdout: $(cat "$dir/out")"
    [ ! -s "$dir/err" ] || fail "a JSON usage error wrote to stderr: $(cat "$dir/err")"
}
expect 2 --json deduct z3 Z
usage_json "deduct takes LINE_ID SKU QTY"
expect 2 --json deduct z3 Z abc
usage_json "QTY must be an integer, not 'abc'"
expect 2 --json frob
usage_json "unknown command 'frob'"
expect 2 --json get
usage_json "get takes SKU"
expect 2 deduct L1 A 3x --json
usage_json "QTY must be an integer, not '3x'"
expect 2 frob --json
usage_json "unknown command 'frob'"
expect 2 --bogus --json get A
usage_json "unknown option '--bogus'"
expect 2 --json
usage_json "no command given"
expect 2 --json frob$'\377'
usage_json "unknown command 'frob.'"
# After "--" it is an argument, so the error stays text.
expect 2 get A -- --json
[ ! -s "$dir/out" ] && grep -q "get takes SKU" "$dir/err" || fail "--json after -- was taken as the option"
expect 2 --bogus get A
expect 2 get A --expect 3
expect 2 --store "stockd://127.0.0.1:99999" get A
grep -q "port" "$dir/err" || fail "no clear message for a bad port"
expect 2 --store "stockd://127.0.0.1:17399?timeout_ms=0" get A
grep -q "timeout_ms must be an integer" "$dir/err" || fail "no clear message for a bad timeout"
expect 2 --store "stockd://127.0.0.1:17399?colour=blue" get A
grep -q "unknown parameter 'colour'" "$dir/err" || fail "no clear message for an unknown parameter"
expect 2 --store "stockd://127.0.0.1:17399?password=a%00b" get A
grep -q "password: %00 (a NUL byte) is not allowed" "$dir/err" || fail "no clear message for a NUL in the password"
expect 2 --store "stockd://127.0.0.1:17399?password=a%zz" get A
grep -q "password: a '%' must be followed by two hex digits" "$dir/err" || fail "no clear message for a bad escape"
expect 2 --store "stockd://:7379" get A
expect 11 --store "stockd://127.0.0.1:17399" get A
grep -q "cannot open" "$dir/err" || fail "no clear message for an unreachable server"
expect 11 --json --store "stockd://127.0.0.1:17399" get A
json '.ok == false and .code == "UNAVAILABLE" and (.message | length > 0)'

# The same operations against one store URI.
script() {
    local store=$1 long_id
    long_id=$(printf 'X%.0s' $(seq 65))
    echo "== $store"
    expect 0 --store "$store" set A 10
    grep -q "available 10" "$dir/out" || fail "set output: $(cat "$dir/out")"
    expect 2 --store "$store" deduct "$long_id" A 1
    grep -q "INVALID line id must be 1-64" "$dir/err" || fail "65-byte id: $(cat "$dir/err")"
    expect 2 --store "$store" deduct L0 A 0
    expect 0 --store "$store" --json deduct L1 A 3
    json '.ok and .code == "OK" and .replayed == false and .available == 7 and .line == "L1"'
    expect 0 --store "$store" deduct L1 A 3 --json
    json '.code == "REPLAY" and .replayed and .available == 7'
    expect 0 --store "$store" deduct L1 A 3
    grep -q "replay" "$dir/out" || fail "a replay is not shown: $(cat "$dir/out")"
    expect 5 --store "$store" --json deduct L1 A 4
    json '.ok == false and .code == "CONFLICT" and (.message | test("line=L1"))'
    expect 3 --store "$store" --json deduct L2 A 100
    json '.code == "INSUFFICIENT" and .available == 7'
    expect 3 --store "$store" deduct L2 A 100
    grep -q "INSUFFICIENT sku=A available=7" "$dir/err" || fail "insufficient text: $(cat "$dir/err")"
    expect 4 --store "$store" deduct L3 NOPE 1
    expect 0 --store "$store" --json refund R1 L1 2
    json '.code == "OK" and .available == 9 and .refund == "R1" and .line == "L1"'
    expect 6 --store "$store" --json refund R2 L1 2
    json '.code == "EXCEEDS" and .available == 1'
    expect 4 --store "$store" refund R3 NOLINE 1
    expect 7 --store "$store" --json set A 5 --expect 3
    json '.code == "MISMATCH" and .available == 9'
    expect 0 --store "$store" set A 12 --expect 9
    expect 0 --store "$store" --json add A 5 --id ADJ1
    json '.code == "OK" and .available == 17'
    expect 0 --store "$store" --json add A 5 --id ADJ1
    json '.code == "REPLAY" and .available == 17'
    expect 5 --store "$store" add A 6 --id ADJ1
    expect 3 --store "$store" --json add A -100
    json '.code == "INSUFFICIENT" and .available == 17'
    expect 0 --store "$store" add A -2
    expect 4 --store "$store" --json order O1 L10 A 2 L11 B 1
    json '.code == "NOTFOUND" and .failed_line == 1'
    expect 0 --store "$store" set B 1
    expect 3 --store "$store" --json order O1 L10 A 2 L11 B 1 L12 B 1
    json '.code == "INSUFFICIENT" and .failed_line == 1 and .available == 1'
    expect 0 --store "$store" --json order O1 L10 A 2 L11 B 1
    json '.code == "OK" and .order == "O1" and (.lines | length) == 2 and .lines[0].available == 13 and .lines[1].available == 0'
    expect 0 --store "$store" order O1 L10 A 2 L11 B 1
    grep -q "order O1: 2 lines" "$dir/out" || fail "order text: $(cat "$dir/out")"
    expect 5 --store "$store" order O2 L10 A 2
    expect 0 --store "$store" --json get A
    json '.sku == "A" and .available == 13 and .available == .adjusted - .deducted + .refunded and .deducted == 5 and .refunded == 2'
    expect 0 --store "$store" get A
    grep -Eq "^available +13$" "$dir/out" || fail "get text: $(cat "$dir/out")"
    expect 4 --store "$store" get NOPE
    expect 0 --store "$store" --json line L1
    json '.line == "L1" and .sku == "A" and .qty == 3 and .refunded == 2 and .order_id == "" and .available_after == 7 and .time_us > 0'
    expect 0 --store "$store" --json line L10
    json '.order_id == "O1"'
    expect 0 --store "$store" line L1
    grep -Eq "^order +-$" "$dir/out" || fail "line text: $(cat "$dir/out")"
    expect 4 --store "$store" --json line NOLINE
    json '.code == "NOTFOUND"'
    # Holds: hold, read, confirm part, CLOSED, release, an order of holds,
    # EXPIRED, and get showing held.
    expect 0 --store "$store" --json hold H1 A 4 3600000
    json '.code == "OK" and .hold == "H1" and .sku == "A" and .available == 9'
    expect 0 --store "$store" --json get A
    json '.held == 4 and .available + .held == .adjusted - .deducted + .refunded'
    expect 0 --store "$store" --json hold-info H1
    json '.state == "held" and .qty == 4 and .confirmed == 0 and .deadline_us - .time_us == 3600000000'
    expect 6 --store "$store" --json confirm H1 5
    json '.code == "EXCEEDS" and .available == 4'
    expect 0 --store "$store" confirm H1 3
    grep -q "confirm hold H1: available 10" "$dir/out" || fail "confirm text: $(cat "$dir/out")"
    expect 14 --store "$store" release H1
    grep -q "CLOSED hold=H1 state=confirmed" "$dir/err" || fail "release after confirm: $(cat "$dir/err")"
    expect 0 --store "$store" hold H2 A 1 3600000
    expect 0 --store "$store" --json release H2
    json '.code == "OK" and .hold == "H2" and .available == 10'
    expect 0 --store "$store" hold H3 A 2 3600000
    expect 0 --store "$store" set B 5
    expect 0 --store "$store" hold H4 B 1 3600000
    expect 2 --store "$store" confirm-order O9 H3
    expect 0 --store "$store" --json confirm-order O9 H3 0 H4 1
    json '.code == "OK" and .order == "O9" and (.lines | length) == 2 and .lines[0].available == 8'
    expect 0 --store "$store" hold H5 A 1 1
    sleep 0.05
    expect 13 --store "$store" --json confirm H5
    json '.code == "EXPIRED" and .message == "hold=H5"'
    expect 0 --store "$store" --json hold-info H5
    json '.state == "expired"'
    expect 0 --store "$store" get A
    grep -Eq "^held +0$" "$dir/out" || fail "get text with held: $(cat "$dir/out")"
    expect 0 --store "$store" --json stats
    json '.ok and (.backend | length > 0) and .operations >= 0'
    # Output that cannot be written is exit 1, in both forms.
    local form got
    for form in --text --json; do
        got=0
        "$ctl" --store "$store" $([ "$form" = --json ] && echo --json) get A >/dev/full 2>"$dir/err" || got=$?
        [ "$got" -eq 1 ] || fail "get $form into /dev/full exited $got, wanted 1"
        grep -q "cannot write the output" "$dir/err" || fail "no clear message for $form into /dev/full"
    done
}

script "$dir/data"

echo "== server"
start_stockd "$port" "$dir/served" "$dir/stockd.log" || fail "stockd did not start"
stockd_pid=$STOCKD_PID
script "stockd://127.0.0.1:$port"
STOCKCTL_STORE="stockd://127.0.0.1:$port" expect 0 --json get A
json '.available == 8'
echo "all stockctl checks passed"
