#!/usr/bin/env bash
# 30-crash: kill -9 of a process writing to the embedded engine, at random
# moments (snapshots included), then reopen and check that every
# acknowledged operation survived and I1-I5 hold. CRASH_ROUNDS=N for more
# than the default 20 rounds, CRASH_SEED=S to replay a run.
set -eu
rounds=${CRASH_ROUNDS:-20}
seed=${CRASH_SEED:-$(date +%s)}
work=$(mktemp -d /tmp/stock-crash.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "crash test: $rounds rounds, seed $seed, in $work"
"$BUILD/tests/crash_writer" run "$work" "$rounds" "$seed"
