#!/usr/bin/env bash
# The conformance suite (tests/conformance) against the embedded engine in a
# fresh temporary folder. Other backends' suites run the same binary with
# their own URI. Sanitizer builds ($BUILD contains "san") run the quick
# variant of the concurrency tests.
set -eu
bin="$BUILD/tests/conformance"
[ -x "$bin" ] || { echo "missing $bin (make tests)"; exit 1; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/stockd-conformance.XXXXXX")
trap 'rm -rf "$dir"' EXIT
case "$BUILD" in
*san*) export CONFORMANCE_QUICK=1 ;;
esac
# A hung batch (a done callback never called) must fail the suite, not stall it.
timeout 300 "$bin" "$dir"
