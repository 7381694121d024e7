# fiu.sh -- runs a program under libfiu's POSIX preload library, for the
# fault suites (80-81). Sourced; needs BUILD.
#
# fiu_run PROGRAM ARGS...: as `fiu-run -x -f "" PROGRAM ARGS...` (no remote
# control). A sanitizer build cannot start under fiu-run: its preload
# library resolves calloc before ASan's runtime is up, and ASan's start-up
# crashes. There the ASan runtime is preloaded first and libfiu's POSIX
# library after it, so ASan keeps the allocator (the fault helpers fail
# allocations through a failure point of their own, see the Makefile) and
# libfiu still fails the I/O calls.
#
# fiu_run_controlled FIFO PROGRAM ARGS...: the same with remote control on
# FIFO-<pid>, for fiu-ctrl -f FIFO.
#
# fiu_wrap_stockd BIN FIFO [ARGS...]: makes BIN/stockd a script that runs
# the real one (moved to BIN/stockd.real) with ARGS first, under fiu-run
# with remote control on FIFO, so that start_stockd (tests/system/server_helpers.sh) starts it
# that way and its PID is stockd's own (exec); fiu_unwrap_stockd BIN puts
# the real one back. FIU_EXTRA_PRELOAD names one more library to preload
# (80-disk-faults: tests/preload/no_uring.c).
command -v fiu-run >/dev/null ||
    { echo "FAIL: fiu-run is missing (scripts/install-deps.sh installs fiu-utils)"; exit 1; }
FIU_POSIX_PRELOAD=/usr/lib/fiu/fiu_posix_preload.so
FIU_RUN_PRELOAD=/usr/lib/fiu/fiu_run_preload.so

fiu_run() {
    fiu_run_controlled "" "$@"
}

fiu_run_controlled() {
    local fifo=$1
    shift
    case "$BUILD" in
    *san*)
        ASAN_OPTIONS=${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}verify_asan_link_order=0 \
            FIU_CTRL_FIFO=$fifo \
            LD_PRELOAD="$(gcc -print-file-name=libasan.so) $FIU_RUN_PRELOAD $FIU_POSIX_PRELOAD" \
            "$@"
        ;;
    *) fiu-run -x -f "$fifo" "$@" ;;
    esac
}

fiu_wrap_stockd() {
    local bin=$1 fifo=$2
    shift 2
    local args="$*" preload="$FIU_RUN_PRELOAD $FIU_POSIX_PRELOAD ${FIU_EXTRA_PRELOAD:-}" asan=""
    mv "$bin/stockd" "$bin/stockd.real" 2>/dev/null || true
    # What fiu-run -x -f FIFO sets, written out so that one more library can
    # join the preload list (fiu-run's -l names a folder, not a library).
    case "$BUILD" in
    *san*) preload="$(gcc -print-file-name=libasan.so) $preload" asan=verify_asan_link_order=0 ;;
    esac
    printf '#!/bin/sh\nexec env ASAN_OPTIONS="%s" FIU_CTRL_FIFO="%s" LD_PRELOAD="%s" "%s" %s "$@"\n' \
        "$asan" "$fifo" "$preload" "$bin/stockd.real" "$args" >"$bin/stockd"
    chmod +x "$bin/stockd"
}

fiu_unwrap_stockd() {
    mv "$1/stockd.real" "$1/stockd"
}
