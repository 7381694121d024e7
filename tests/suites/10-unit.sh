#!/usr/bin/env bash
# Every cmocka unit test binary built from tests/unit/test_*.c.
set -eu
count=0
for bin in "$BUILD"/tests/test_*; do
    [ -x "$bin" ] || continue
    echo "== $bin"
    "$bin"
    count=$((count + 1))
done
[ "$count" -gt 0 ] || { echo "no unit test binaries in $BUILD/tests"; exit 1; }
