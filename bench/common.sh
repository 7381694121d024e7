# bench/common.sh -- what the benchmark scripts share. Source it from bash
# after `cd` to the repository's root; it sets BUILD (default build).
#
#   bench_help "$@"              -h/--help: print the calling script's header
#   bench_whole NAME VALUE MIN MAX
#                                exit 2 unless VALUE is a whole number in
#                                MIN..MAX (checked before any server starts)
#   bench_need TARGET BINARY...  exit 2 unless every $BUILD/BINARY exists
#                                (TARGET: what builds them, "make" or
#                                "make tests")
#   bench_temp PREFIX            makes a temporary folder, sets tmp to it and
#                                pids=(); at exit, stops (SIGTERM, then waits
#                                for) every PID the script added to pids
#                                and removes the folder
BUILD=${BUILD:-build}
bench_name=$(basename "$0")

bench_help() {
    case ${1:-} in
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    esac
}

bench_whole() {
    case $2 in
    ''|*[!0-9]*) echo "$bench_name: $1 must be a whole number, not '$2' (see --help)" >&2; exit 2 ;;
    esac
    # The length test first: a number too long for test(1) is out of range.
    [ ${#2} -le ${#4} ] && [ "$2" -ge "$3" ] && [ "$2" -le "$4" ] ||
        { echo "$bench_name: $1 must be in $3..$4" >&2; exit 2; }
}

bench_need() {
    local target=$1 binary
    shift
    for binary in "$@"; do
        [ -x "$BUILD/$binary" ] ||
            { echo "$bench_name: no $BUILD/$binary: run $target" >&2; exit 2; }
    done
}

bench_temp() {
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    pids=()
    trap bench_cleanup EXIT
}

bench_cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
