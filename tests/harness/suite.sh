# tests/harness/suite.sh -- what the suites that drive a stockd of their
# own by hand share (40-server, 48-security). Source it from bash after
# `set -eu`; it sets:
#
#   dir       a fresh mktemp -d folder, removed on exit
#   pid       the stockd the suite started ("" when none), killed on exit
#   fail MSG  prints FAIL: MSG and the tail of $dir/log (the server's log),
#             exits 1
#   check NAME EXPECTED ACTUAL
#             fails unless ACTUAL is EXPECTED, else prints "ok  NAME"
#   start_pair FIRST LAST WAIT_FOR FLAG...
#             starts $STOCKD on a free pair of ports (below)

dir=$(mktemp -d)
pid=""

cleanup() {
    if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    [ -f "$dir/log" ] && { echo "--- stockd log"; tail -n 30 "$dir/log"; }
    exit 1
}

check() {
    [ "$2" = "$3" ] || fail "$1: expected [$2], got [$3]"
    echo "ok  $1"
}

# start_pair FIRST LAST WAIT_FOR FLAG...: starts $STOCKD with FLAG... on
# the first free pair of ports in FIRST..LAST (other runs, e.g. the
# sanitizer build's, may hold some; both moved by TEST_PORT_OFFSET, as
# pick_port's), sets A and B to the pair and pid. A
# flag @A or @B stands for that port; so does @A or @B in WAIT_FOR, the log
# line that says it is up. The command runs under "${launcher[@]}" when the
# suite sets that (e.g. unshare).
launcher=()
start_pair() {
    local first=$(($1 + ${TEST_PORT_OFFSET:-0})) last=$(($2 + ${TEST_PORT_OFFSET:-0})) wait_for=$3 arg
    shift 3
    for base in $(seq "$first" 2 "$last"); do
        A=$base B=$((base + 1))
        local args=()
        for arg in "$@"; do
            case $arg in @A) args+=("$A") ;; @B) args+=("$B") ;; *) args+=("$arg") ;; esac
        done
        : >"$dir/log"
        "${launcher[@]}" "$STOCKD" "${args[@]}" >"$dir/log" 2>&1 &
        pid=$!
        for _ in $(seq 200); do
            local line=${wait_for//@A/$A}
            grep -q "${line//@B/$B}" "$dir/log" && return 0
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        wait "$pid" 2>/dev/null || true
        pid=""
        grep -q "address already in use" "$dir/log" || fail "stockd did not start: $*"
    done
    fail "no free port pair in $first..$last"
}
