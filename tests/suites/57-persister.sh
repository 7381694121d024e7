#!/usr/bin/env bash
# 57-persister.sh -- the redis backend's outbox and stockpersist, on a real
# redis-server 7 (appendonly yes, appendfsync always: tests/harness/redis.sh)
# and a real PostgreSQL 15 (tests/harness/pg.sh):
#   - the outbox: a change appends one record, a REPLAY and a refusal none;
#     layouts 1 to 3 are upgraded to 4; outbox_lag_max refuses deductions with
#     a clear error while the outbox is behind, and lets them through again
#     once the persister caught up; a store with buckets=4 writes the same
#     records, which the persister applies;
#   - a batch of 16 deductions is one outbox entry (kind lines) of 16
#     sequences; a persister killed inside one (PostgreSQL holds it on the
#     9th line) with its session ended too leaves none of it, with its
#     session going on all or none, and after a drain every line is in
#     PostgreSQL once;
#   - stockpersist's options;
#   - kill -9 of the persister at random points under load, round after
#     round, sometimes two persisters at once: after a drain, every SKU (get)
#     and every line id (line) reads the same through redis:// and
#     postgres:// (none lost, none applied twice);
#   - kill -9 of redis-server, then of PostgreSQL, while a persister runs
#     under load: it resumes and the stores converge.
#   - stockd --persist-to: refusals, the lag in INFO and /metrics while
#     PostgreSQL is down and after, orders persisted so that retrying them
#     on PostgreSQL is a REPLAY, a clean stop on SIGTERM;
#   - the persister on a 3-master Redis Cluster through a failover.
# ROUNDS (default 10, 4 under the sanitizers) sets the number of kill
# rounds; SEED the random points.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/harness/redis.sh
. tests/harness/pg.sh
. tests/system/server_helpers.sh
# Under the sanitizers (several times slower) 4 kill rounds: the cluster's
# failover below keeps the suite's time in CI's budget.
case $BUILD in
*san*) ROUNDS=${ROUNDS:-4} ;;
*) ROUNDS=${ROUNDS:-10} ;;
esac
SEED=${SEED:-$$}
RANDOM=$SEED
LEASE_MS=500
OPS=1200                    # ops per writer run
pids=()
cleanup() {
    stop_pids "${pids[@]}"
    redis_stop
    [ -z "${REDIS_CLUSTER_DIR:-}" ] || redis_cluster_stop
    pg_stop
}
trap cleanup EXIT
redis_start
pg_start
echo "redis $REDIS_URI (pid $REDIS_PID), postgres $PG_URI (pid $PG_PID), seed $SEED"
fail() { echo "FAIL $*"; exit 1; }


# Starts a persister NAME [OPTIONS...] in the background (its log in
# $REDIS_DIR/persist-NAME.log); sets PERSIST_PID (not a subshell: the suite
# must be its parent to wait for it and to stop it at the end).
persist_start() {
    local name=$1
    shift
    "$BUILD/stockpersist" --redis "$REDIS_URI" --postgres "$PG_URI" --name "$name" \
        --lease-ms "$LEASE_MS" --stats-s 1 "$@" >>"$REDIS_DIR/persist-$name.log" 2>&1 &
    PERSIST_PID=$!
    pids+=("$PERSIST_PID")
}

persist_drain() {
    timeout -k 10 300 "$BUILD/stockpersist" --redis "$REDIS_URI" --postgres "$PG_URI" \
        --name drain --lease-ms "$LEASE_MS" --drain --stats-s 0 2>&1 | tail -n 1
    [ "${PIPESTATUS[0]}" -eq 0 ] || fail "the drain did not finish"
}

echo "== the outbox: one record per change, none for a replay or a refusal"
ctl() { "$BUILD/stockctl" --store "$REDIS_URI?prefix=ob:" "$@" >/dev/null; }
ctl set ob-sku 10
[ "$(redis_outbox_len ob:)" -eq 1 ] || fail "set wrote $(redis_outbox_len ob:) records, not 1"
ctl deduct ob-l1 ob-sku 2
ctl deduct ob-l1 ob-sku 2                       # REPLAY
ctl deduct ob-l2 ob-sku 50 && fail "an oversized deduction succeeded" || true
ctl refund ob-r1 ob-l1 1
ctl refund ob-r1 ob-l1 1                        # REPLAY
ctl add ob-sku 5 --id ob-a1
ctl add ob-sku 5 --id ob-a1                     # REPLAY
[ "$(redis_outbox_len ob:)" -eq 4 ] || fail "4 changes wrote $(redis_outbox_len ob:) records"
key=$(redis_cli --scan --pattern 'ob:{outbox:*}')
redis_cli XRANGE "$key" - + | tr '\n' ' ' | grep -q '0-2 ms [0-9]* k line sku ob-sku av 8 adj 10 ded 2 ref 0 id ob-l1 q 2' ||
    fail "the deduction's record: $(redis_cli XRANGE "$key" 0-2 0-2 | tr '\n' ' ')"
echo "ok   set, deduct, refund, add: 4 records in order; their replays and a refusal none"

echo "== layouts 1, 2 and 3 are upgraded to 4 at open"
for v in 1 2 3; do
    redis_cli SET "v$v:stock:layout" "$v" >/dev/null
    "$BUILD/stockctl" --store "$REDIS_URI?prefix=v$v:" set "v$v-sku" 1 >/dev/null
    [ "$(redis_cli GET "v$v:stock:layout")" = 4 ] || fail "layout $v is now $(redis_cli GET "v$v:stock:layout")"
done
"$BUILD/stockctl" --store "$REDIS_URI?prefix=v4k:&buckets=4" set v4k-sku 1 >/dev/null
[ "$(redis_cli GET v4k:stock:layout)" = 4 ] || fail "a store with buckets=4 has layout $(redis_cli GET v4k:stock:layout)"
echo "ok   layouts 1, 2, 3 -> 4; a new store with buckets=4 is 4 too"

echo "== layout 5 (buckets on a Redis Cluster) without its K: the persister stops"
# Its records hold one bucket's totals each, written into PostgreSQL's row
# of that bucket, each row saying how many the SKU has (Pstock:buckets):
# without that record every cycle fails saying why, and nothing is written
# (75-buckets-readers persists such a store).
redis_cli SET v5:stock:layout 5 >/dev/null
set +e
timeout -k 10 5 "$BUILD/stockpersist" --redis "$REDIS_URI?prefix=v5:" --postgres "$PG_URI" --drain \
    --stats-s 0 2>"$REDIS_DIR/v5.err"; code=$?
set -e
[ "$code" -eq 124 ] || fail "the drain of a layout 5 store ended (exit $code): $(cat "$REDIS_DIR/v5.err")"
grep -q "holds layout 5 (buckets on a Redis Cluster) but its key v5:stock:buckets holds ''" \
    "$REDIS_DIR/v5.err" || fail "no warning naming layout 5: $(cat "$REDIS_DIR/v5.err")"
[ "$(redis_cli GET v5:stock:layout)" = 5 ] || fail "layout 5 is now $(redis_cli GET v5:stock:layout)"
echo "ok   $(grep -m 1 'layout 5' "$REDIS_DIR/v5.err")"

echo "== outbox_lag_max: deductions refused while the outbox is behind"
lag() { "$BUILD/stockctl" --store "$REDIS_URI?prefix=lag:&outbox_lag_max=3" "$@"; }
lag set lag-sku 100 >/dev/null
lag deduct lag-1 lag-sku 1 >/dev/null
lag deduct lag-2 lag-sku 1 >/dev/null
set +e
out=$(lag deduct lag-3 lag-sku 1 2>&1); code=$?
set -e
[ "$code" -eq 11 ] && echo "$out" | grep -q "further behind than the limit (outbox_lag_max=3" ||
    fail "the 4th record was not refused: exit $code: $out"
echo "ok   refused: $out"
lag get lag-sku | grep -q "available *98" || fail "the refusal changed stock: $(lag get lag-sku)"
"$BUILD/stockctl" --store "$REDIS_URI?prefix=lag:&outbox_lag_max_ms=1" deduct lag-4 lag-sku 1 \
    >/dev/null 2>&1 && fail "outbox_lag_max_ms=1 let a deduction through behind a full outbox"
timeout -k 10 60 "$BUILD/stockpersist" --redis "$REDIS_URI?prefix=lag:" --postgres "$PG_URI" --drain \
    --stats-s 0 2>/dev/null || fail "the drain of prefix lag: failed"
lag deduct lag-3 lag-sku 1 >/dev/null || fail "still refused after the persister caught up"
echo "ok   accepted again once persisted"

echo "== buckets=4: one record per change, with the SKU's totals, applied by the persister"
bk() { "$BUILD/stockctl" --store "$REDIS_URI?prefix=bko:&buckets=4" "$@"; }
bk set bko-sku 10 >/dev/null                    # buckets of 3, 3, 2, 2
bk deduct bko-l1 bko-sku 7 >/dev/null           # more than any bucket holds
bk refund bko-r1 bko-l1 2 >/dev/null
bk add bko-sku 5 --id bko-a1 >/dev/null
[ "$(redis_outbox_len bko:)" -eq 4 ] || fail "4 changes over buckets wrote $(redis_outbox_len bko:) records"
timeout -k 10 60 "$BUILD/stockpersist" --redis "$REDIS_URI?prefix=bko:" --postgres "$PG_URI" --drain \
    --stats-s 0 >/dev/null 2>&1 || fail "the drain of prefix bko: failed"
for what in "get bko-sku" "line bko-l1"; do
    # shellcheck disable=SC2086
    want=$(bk $what) got=$("$BUILD/stockctl" --store "$PG_URI" $what)
    [ "$want" = "$got" ] || fail "$what: redis says '$want', postgres '$got'"
done
echo "ok   4 records; the SKU and its line read the same from postgres: $(bk get bko-sku | tr -s ' \n' ' ')"

echo "== a batch of deductions: one outbox entry, persisted exactly, also when the persister dies in it"
bt() { "$BUILD/stockctl" --store "$REDIS_URI?prefix=bt:" "$@"; }
# one batch of 16 deductions of one SKU (stockbench -c 1 -P 16): one
# deduct_many call, after the SKU's set
"$BUILD/stockbench" -s "$REDIS_URI?prefix=bt:" -w hot --prefix bt- -c 1 -P 16 -n 16 \
    --no-progress >/dev/null || fail "stockbench on prefix bt: failed"
key=$(redis_cli --scan --pattern 'bt:{outbox:*}')
[ "$(redis_cli XLEN "$key")" -eq 2 ] || fail "a set and a batch of 16 wrote $(redis_cli XLEN "$key") entries, not 2"
redis_cli XRANGE "$key" 0-2 0-2 | tr '\n' ' ' | grep -q '^0-2 ms [0-9]* k lines nr 16 t [0-9]* r bt-S0 bt-L0 1 ' ||
    fail "the batch's entry: $(redis_cli XRANGE "$key" 0-2 0-2 | tr '\n' ' ')"
bt deduct bt-x bt-S0 1 >/dev/null               # its lines took sequences 2..17
redis_cli XRANGE "$key" 0-18 0-18 | grep -qx 0-18 || fail "the next record is not 0-18: $(redis_cli XRANGE "$key" - + | grep '^0-')"
echo "ok   16 deductions in one entry of kind lines (sequences 2-17), the next record 0-18"
# crash_in_entry ID MODE: a batch of 16 deductions (lines ID-L0..15 of SKU
# ID-S0, one entry) and a persister that dies inside it: PostgreSQL holds
# it on the entry's 9th line (a trigger sleeps there) while the 8 before it
# are applied in its open transaction, and it is killed then. MODE
# rollback also ends its session in PostgreSQL, so the transaction rolls
# back (nothing of the entry may be there); MODE kill leaves the session,
# which has the whole pipeline and may commit it after its client died (all
# of the entry is there, not yet acknowledged in Redis). Sets HALF to the
# entry's lines in PostgreSQL then; after a drain each is there once.
crash_in_entry() {
    local id=$1 mode=$2 one what want got
    "$BUILD/stockbench" -s "$REDIS_URI?prefix=bt:" -w hot --prefix "$id-" -c 1 -P 16 -n 16 \
        --no-progress >/dev/null || fail "stockbench $id on prefix bt: failed"
    pg_psql -c "CREATE FUNCTION bt_hold() RETURNS trigger LANGUAGE plpgsql AS \$\$
        BEGIN IF NEW.line_id = '$id-L8' THEN PERFORM pg_sleep(3); END IF; RETURN NEW; END \$\$;
        CREATE TRIGGER bt_hold BEFORE INSERT ON inventory_flow FOR EACH ROW EXECUTE FUNCTION bt_hold();"
    "$BUILD/stockpersist" --redis "$REDIS_URI?prefix=bt:" --postgres "$PG_URI" --name "bt$id" \
        --lease-ms "$LEASE_MS" --stats-s 0 >>"$REDIS_DIR/persist-bt.log" 2>&1 &
    one=$!
    pids+=("$one")
    sleeping() { pg_psql -c "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'"; }
    for _ in $(seq 200); do
        [ "$(sleeping)" -gt 0 ] && break
        sleep 0.05
    done
    [ "$(sleeping)" -gt 0 ] || fail "$id: the persister never reached the batch's 9th line"
    kill -KILL "$one"
    wait "$one" 2>/dev/null || true
    [ "$mode" = kill ] ||
        pg_psql -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'PgSleep'" >/dev/null
    for _ in $(seq 100); do   # until its session has ended (committed or rolled back)
        [ "$(sleeping)" -eq 0 ] && break
        sleep 0.1
    done
    pg_psql -c "DROP TRIGGER bt_hold ON inventory_flow; DROP FUNCTION bt_hold();"
    HALF=$(pg_psql -c "SELECT count(*) FROM inventory_flow WHERE line_id LIKE '$id-L%'")
    if [ "$mode" = rollback ]; then
        [ "$HALF" -eq 0 ] || fail "$id: a rolled-back persister left $HALF of the entry's 16 lines"
    else
        [ "$HALF" -eq 0 ] || [ "$HALF" -eq 16 ] || fail "$id: a dead persister left $HALF of the entry's 16 lines"
    fi
    timeout -k 10 60 "$BUILD/stockpersist" --redis "$REDIS_URI?prefix=bt:" --postgres "$PG_URI" --drain \
        --stats-s 0 >/dev/null 2>&1 || fail "$id: the drain of prefix bt: failed"
    [ "$(pg_psql -c "SELECT count(*), count(DISTINCT line_id) FROM inventory_flow WHERE line_id LIKE '$id-L%'")" = "16|16" ] ||
        fail "$id: postgres holds $(pg_psql -c "SELECT count(*), count(DISTINCT line_id) FROM inventory_flow WHERE line_id LIKE '$id-L%'") (rows, ids) of the 16 lines"
    for what in "get $id-S0" "line $id-L0" "line $id-L8" "line $id-L15"; do
        # shellcheck disable=SC2086
        want=$(bt $what) got=$("$BUILD/stockctl" --store "$PG_URI" $what)
        [ "$want" = "$got" ] || fail "$what: redis says '$want', postgres '$got'"
    done
}
crash_in_entry bc rollback
echo "ok   killed inside the entry, its transaction rolled back ($HALF lines in PostgreSQL); after a drain every line once, the SKU the same"
crash_in_entry bd kill
echo "ok   killed inside the entry, its session went on ($HALF of 16 lines in PostgreSQL); after a drain every line once, the SKU the same"
[ "$(pg_psql -c "SELECT count(*) FROM inventory_flow WHERE line_id LIKE 'bt-L%' OR line_id = 'bt-x'")" -eq 17 ] ||
    fail "the first batch and bt-x: $(pg_psql -c "SELECT count(*) FROM inventory_flow WHERE line_id LIKE 'bt-L%' OR line_id = 'bt-x'") lines in postgres, not 17"
[ "$(pg_psql -c "SELECT seq FROM stock_outbox_position WHERE stream = '$key'")" -ge 18 ] ||
    fail "the first stream's position is $(pg_psql -c "SELECT seq FROM stock_outbox_position WHERE stream = '$key'"), below 18"

echo "== an outbox entry it cannot read stops the persister there, saying which"
"$BUILD/stockctl" --store "$REDIS_URI?prefix=bad:" set bad-sku 5 >/dev/null
bad_key=$(redis-cli -p "$REDIS_PORT" --scan --pattern 'bad:{outbox:*}' | grep -v ':lease$' | head -n 1)
[ -n "$bad_key" ] || fail "no outbox stream under prefix bad:"
# A 'lines' entry whose r holds fewer records than its nr says.
bad_id=$(redis-cli -p "$REDIS_PORT" XADD "$bad_key" '0-*' ms 1 k lines nr 3 t 1 \
    r "bad-sku bad-l1 1 4 5 1 0 5")
set +e
timeout -k 10 5 "$BUILD/stockpersist" --redis "$REDIS_URI?prefix=bad:" --postgres "$PG_URI" --drain \
    --stats-s 0 2>"$REDIS_DIR/bad.err"; code=$?
set -e
[ "$code" -eq 124 ] || fail "the drain past an unreadable entry ended (exit $code): $(cat "$REDIS_DIR/bad.err")"
grep -q "outbox entry $bad_id of $bad_key cannot be read" "$REDIS_DIR/bad.err" ||
    fail "no warning naming the entry: $(cat "$REDIS_DIR/bad.err")"
[ "$(pg_psql -c "SELECT count(*) FROM inventory_flow WHERE line_id = 'bad-l1'")" -eq 0 ] ||
    fail "a record of the unreadable entry was applied"
echo "ok   $(grep -m 1 'cannot be read' "$REDIS_DIR/bad.err")"
redis-cli -p "$REDIS_PORT" DEL "$bad_key" >/dev/null

echo "== stockpersist's options"
"$BUILD/stockpersist" --help | grep -q -- "--drain" || fail "--help"
for bad in "--batch 0" "--lease-ms 5" "--stats-s x" "--name" "--redis redis://h?nope=1 --postgres x" ""; do
    set +e
    # shellcheck disable=SC2086
    "$BUILD/stockpersist" $bad >/dev/null 2>"$REDIS_DIR/usage.err"; code=$?
    set -e
    [ "$code" -eq 2 ] || fail "stockpersist $bad: exit $code"
    echo "ok   stockpersist $bad: $(head -n 1 "$REDIS_DIR/usage.err")"
done

echo "== stockd --persist-to: the persister on a thread of stockd; its lag in INFO, /metrics, the log"
sd=$REDIS_DIR/stockd
mkdir -p "$sd"
set +e
out=$("$BUILD/stockd" --store "$sd/data" --persist-to "$PG_URI" 2>&1); code=$?
set -e
[ "$code" -eq 2 ] && echo "$out" | grep -q "it needs --store redis://" ||
    fail "--persist-to with an embedded store: exit $code: $out"
echo "ok   refused without a redis store: $out"
out=$("$BUILD/stockd" --store "$REDIS_URI" --persist-to "mysql://x" 2>&1) && fail "a mysql:// URI was taken"
echo "$out" | grep -q "postgres:// or postgresql://" || fail "--persist-to mysql://: $out"
"$BUILD/stockd" --help | grep -q -- "--persist-to URI" || fail "stockd --help lacks --persist-to"
sdctl() { "$BUILD/stockctl" --store "$REDIS_URI?prefix=sd:" "$@" >/dev/null; }
sdctl set sd-sku 50
sdctl deduct sd-l1 sd-sku 3
sdctl deduct sd-l2 sd-sku 4
port=$(pick_port 17690 17694)
http=$(pick_port 17695 17699)
info() { timeout -k 2 10 redis-cli -p "$port" INFO | tr -d '\r' | sed -n "s/^$1://p"; }
# First PostgreSQL down (nothing listens on port 1): the lag is measured
# all the same, and grows; SIGTERM stops the thread with stockd.
start_stockd "$port" "$REDIS_URI?prefix=sd:" "$sd/stockd.log" --http-port "$http" \
    --persist-to "postgresql://postgres@127.0.0.1:1/postgres" || fail "stockd did not start"
pids+=("$STOCKD_PID")
wait_info() { for ((i = 0; i < $3; i++)); do [ "$(info "$1")" = "$2" ] && break; sleep 0.1; done; }
wait_info persister_lag_records 3 100
[ "$(info persister)" = 1 ] && [ "$(info persister_linked)" = 0 ] &&
    [ "$(info persister_lag_records)" = 3 ] || fail "INFO: $(redis-cli -p "$port" INFO | grep persister)"
curl -s --max-time 10 "http://127.0.0.1:$http/metrics" | grep -q '^stockd_persister_lag_records 3$' ||
    fail "/metrics: $(curl -s --max-time 10 "http://127.0.0.1:$http/metrics" | grep persister)"
echo "ok   PostgreSQL down: INFO and /metrics say 3 records behind, not linked"
term_wait "$STOCKD_PID" || fail "stockd with a persister did not exit 0 on SIGTERM"
grep -q "WARN persister: postgres.*(retrying)" "$sd/stockd.log" || fail "no retry line: $(cat "$sd/stockd.log")"
grep -q "persister stopped" "$sd/stockd.log" || fail "the persister did not stop with stockd"
# Then with PostgreSQL: the records arrive, the lag falls to 0.
start_stockd "$port" "$REDIS_URI?prefix=sd:" "$sd/stockd.log" --http-port "$http" \
    --persist-to "$PG_URI" || fail "stockd did not start"
pids+=("$STOCKD_PID")
wait_info persister_applied 3 100
wait_info persister_lag_records 0 30
[ "$(info persister_applied)" = 3 ] && [ "$(info persister_lag_records)" = 0 ] &&
    [ "$(info persister_linked)" = 1 ] || fail "INFO: $(redis-cli -p "$port" INFO | grep persister)"
curl -s --max-time 10 "http://127.0.0.1:$http/metrics" | grep -q '^stockd_persister_lag_seconds 0.000$' ||
    fail "/metrics: $(curl -s --max-time 10 "http://127.0.0.1:$http/metrics" | grep persister)"
"$BUILD/stockctl" --store "$PG_URI" get sd-sku | grep -q "available *43" ||
    fail "PostgreSQL: $("$BUILD/stockctl" --store "$PG_URI" get sd-sku)"
# Orders: one in one slot, one over two slots, one that fails after a slot
# took its line (given back): PostgreSQL gets the first two as the postgres
# backend keeps orders, so retrying them there is a REPLAY, not a new order.
sdctl set sd-b 5
sdctl order sd-o1 sd-o1a sd-sku 1 sd-o1b sd-sku 2
sdctl order sd-o2 sd-o2a sd-sku 1 sd-o2b sd-b 1
sdctl order sd-o3 sd-o3a sd-sku 1 sd-o3b sd-b 99 && fail "an order larger than the stock passed"
for ((i = 0; i < 100; i++)); do [ "$(redis_outbox_len sd:)" -eq 0 ] && break; sleep 0.1; done
[ "$(redis_outbox_len sd:)" -eq 0 ] || fail "stockd's persister did not drain the orders"
pgctl() { "$BUILD/stockctl" --store "$PG_URI" "$@" 2>&1; }
out=$(pgctl order sd-o1 sd-o1a sd-sku 1 sd-o1b sd-sku 2) && echo "$out" | grep -q "(replay: already done" ||
    fail "the one-slot order retried on PostgreSQL: $out"
out=$(pgctl order sd-o2 sd-o2a sd-sku 1 sd-o2b sd-b 1) && echo "$out" | grep -q "(replay: already done" ||
    fail "the two-slot order retried on PostgreSQL: $out"
out=$(pgctl order sd-o2 sd-o2a sd-sku 1 sd-o2b sd-b 2) && fail "a changed order was taken: $out"
echo "$out" | grep -q CONFLICT || fail "a changed order: $out"
pgctl line sd-o3a | grep -q NOTFOUND || fail "the failed order's line is in PostgreSQL"
pgctl get sd-sku | grep -q "available *39" || fail "PostgreSQL: $(pgctl get sd-sku)"
echo "ok   orders persisted: retried on PostgreSQL they are REPLAYs, a changed one a CONFLICT"
term_wait "$STOCKD_PID" || fail "stockd with a persister did not exit 0 on SIGTERM"
grep "INFO persister: exit" "$sd/stockd.log" | tail -n 1 | grep -q "applied=[0-9]* .*lag_records=0" ||
    fail "the log's last stats line: $(grep 'persister: exit' "$sd/stockd.log")"
echo "ok   persisted by stockd: $(grep 'persister: exit' "$sd/stockd.log" | tail -n 1)"

echo "== kill -9 of the persister under load, $ROUNDS rounds"
"$BUILD/tests/persist_load" setup "$REDIS_URI"
runs=()
kills=0
for ((round = 1; round <= ROUNDS; round++)); do
    "$BUILD/tests/persist_load" write "$REDIS_URI" "k$round" "$OPS" &
    writer=$!
    pids+=("$writer")
    # While the writer runs: a persister (two at once every third round)
    # killed after 0.3 to 2.2 s, then, after up to 0.5 s more of backlog,
    # the next one. Small batches: many transactions, so a kill lands
    # between a read, its COMMIT and its XACK as often as not.
    for ((life = 0; life == 0 || (life < 200 && $(kill -0 "$writer" 2>/dev/null && echo 1 || echo 0)); life++)); do
        sleep "0.$((RANDOM % 5))"
        persist_start "a$round.$life" --batch 32
        one=$PERSIST_PID two=""
        [ $((round % 3)) -ne 0 ] || { persist_start "b$round.$life" --batch 32; two=$PERSIST_PID; }
        sleep "$((RANDOM % 2)).$((RANDOM % 10))$((RANDOM % 10))"
        sleep 0.3
        kill -KILL "$one" ${two:+"$two"}
        wait "$one" ${two:+"$two"} 2>/dev/null || true
        kills=$((kills + 1))
    done
    ! kill -0 "$writer" 2>/dev/null || { term_wait "$writer" 5; fail "the writer of round $round still runs"; }
    wait "$writer" || fail "the writer of round $round failed"
    runs+=("k$round:$OPS")
    echo "round $round: $life persister lives; the outbox holds $(redis_outbox_len) records after the last kill"
done
applied=$(cat "$REDIS_DIR"/persist-[ab]*.log | sed -n 's/.* applied=\([0-9]*\) .*/\1/p' | sort -n | tail -n 1)
echo "$kills kills; a killed persister had applied up to ${applied:-0} records (from its last stats line)"
[ "${applied:-0}" -gt 0 ] || fail "no persister applied anything before it was killed"
persist_drain
"$BUILD/tests/persist_load" check "$REDIS_URI" "$PG_URI" "${runs[@]}" || fail "the stores differ"
[ "$(redis_outbox_len)" -eq 0 ] || fail "the outbox still holds $(redis_outbox_len) records"

echo "== kill -9 of redis-server, then of PostgreSQL, while a persister runs"
persist_start crash
one=$PERSIST_PID
"$BUILD/tests/persist_load" write "$REDIS_URI" crash1 "$OPS" || true
sleep 0.3
redis_restart
echo "redis restarted from its append-only file (pid $REDIS_PID)"
"$BUILD/tests/persist_load" write "$REDIS_URI" crash2 "$OPS" || true
kill -KILL "$PG_PID"
# Its backends leave when they see the postmaster gone; until then the old
# shared memory refuses a new start.
for ((i = 0; i < 60; i++)); do
    PG_PID=$(pg_launch "$PG_DIR/primary" "$PG_PORT" 2>/dev/null) && break
    PG_PID=""
    sleep 1
done
[ -n "$PG_PID" ] || fail "PostgreSQL did not restart"
echo "postgres restarted (pid $PG_PID)"
"$BUILD/tests/persist_load" write "$REDIS_URI" crash3 "$OPS" || true
for ((i = 0; i < 600 && $(redis_outbox_len) > 0; i++)); do sleep 0.1; done
[ "$(redis_outbox_len)" -eq 0 ] || fail "the persister did not catch up: $(redis_outbox_len) records left"
term_wait "$one" || fail "the persister did not exit 0 on SIGTERM"
grep -q "retrying" "$REDIS_DIR/persist-crash.log" ||
    fail "the persister never saw a server go away: $(cat "$REDIS_DIR/persist-crash.log")"
grep "retrying" "$REDIS_DIR/persist-crash.log" | sort -u | head -n 4
tail -n 1 "$REDIS_DIR/persist-crash.log"
"$BUILD/tests/persist_load" check "$REDIS_URI" "$PG_URI" "${runs[@]}" crash1:$OPS crash2:$OPS \
    crash3:$OPS || fail "the stores differ after the server crashes"

echo "== warm-up: a cold Redis loaded from PostgreSQL"
redis_cli FLUSHALL >/dev/null
out=$("$BUILD/stockpersist" --redis "$REDIS_URI" --postgres "$PG_URI" --warm 2>&1) ||
    fail "warm: $out"
echo "$out"
echo "$out" | grep -q "warm done: [1-9][0-9]* SKUs loaded into Redis, 0 already there" ||
    fail "the first warm-up loaded nothing"
all=("${runs[@]}" crash1:$OPS crash2:$OPS crash3:$OPS)
"$BUILD/tests/persist_load" check "$REDIS_URI" "$PG_URI" "${all[@]}" ||
    fail "the warmed Redis differs from PostgreSQL"
out=$("$BUILD/stockpersist" --redis "$REDIS_URI" --postgres "$PG_URI" --warm 2>&1)
echo "$out" | grep -q "warm done: 0 SKUs loaded" || fail "a second warm-up loaded again: $out"
echo "ok   a second warm-up changes nothing: $out"
"$BUILD/tests/persist_load" write "$REDIS_URI" after "$OPS" || fail "the writer after the warm-up"
persist_drain
"$BUILD/tests/persist_load" check "$REDIS_URI" "$PG_URI" "${all[@]}" after:$OPS ||
    fail "records written after the warm-up were not persisted (the position)"
echo "== the wall clock set back an hour under a running persister"
# Under libfaketime, its time read from a file at every call (as 82-clock
# runs stockd); CLOCK_MONOTONIC is left real, as an NTP step leaves it.
# What a persister does on a schedule (lease renewals, lag measures,
# stats lines) goes on: on the wall clock it stopped for the hour, and a
# lease not renewed is lost after --lease-ms.
faketime_lib=/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1
[ -e "$faketime_lib" ] || fail "$faketime_lib missing (scripts/install-deps.sh)"
fake_preload=$faketime_lib sanitizer_env=""
case $BUILD in
*san*) fake_preload="$(gcc -print-file-name=libasan.so) $faketime_lib"
       sanitizer_env="ASAN_OPTIONS=verify_asan_link_order=0" ;;
esac
echo "+0" >"$REDIS_DIR/faketime"
env $sanitizer_env LD_PRELOAD="$fake_preload" FAKETIME_TIMESTAMP_FILE="$REDIS_DIR/faketime" \
    FAKETIME_NO_CACHE=1 FAKETIME_DONT_FAKE_MONOTONIC=1 \
    "$BUILD/stockpersist" --redis "$REDIS_URI" --postgres "$PG_URI" --name clock \
    --lease-ms "$LEASE_MS" --stats-s 1 >>"$REDIS_DIR/persist-clock.log" 2>&1 &
one=$!
pids+=("$one")
drained() { for ((i = 0; i < 300 && $(redis_outbox_len) > 0; i++)); do sleep 0.1; done; [ "$(redis_outbox_len)" -eq 0 ]; }
"$BUILD/tests/persist_load" write "$REDIS_URI" clk1 "$OPS" || fail "the writer before the clock jump"
drained || fail "the persister under libfaketime did not drain: $(tail -n 5 "$REDIS_DIR/persist-clock.log")"
echo "-1h" >"$REDIS_DIR/faketime"
stats_before=$(grep -c " stats applied=" "$REDIS_DIR/persist-clock.log" || true)
sleep 3   # six lease periods, three stats periods
leases=$(redis_cli --scan --pattern "{outbox:*}:lease" | wc -l)
held=0
for key in $(redis_cli --scan --pattern "{outbox:*}:lease"); do
    [ "$(redis_cli GET "$key")" != clock ] || [ "$(redis_cli PTTL "$key")" -le 0 ] || held=$((held + 1))
done
stats_after=$(grep -c " stats applied=" "$REDIS_DIR/persist-clock.log" || true)
[ "$held" -gt 0 ] && [ "$held" -eq "$leases" ] ||
    fail "3 s after the clock went back an hour the persister holds $held leases ($leases lease keys exist, 0 once expired)"
[ "$stats_after" -ge $((stats_before + 2)) ] ||
    fail "$((stats_after - stats_before)) stats lines in the 3 s after the clock went back an hour"
"$BUILD/tests/persist_load" write "$REDIS_URI" clk2 "$OPS" || fail "the writer after the clock jump"
drained || fail "records written after the clock went back were not persisted"
term_wait "$one" || fail "the persister under libfaketime did not exit 0 on SIGTERM"
"$BUILD/tests/persist_load" check "$REDIS_URI" "$PG_URI" "${all[@]}" after:$OPS clk1:$OPS clk2:$OPS ||
    fail "the stores differ after the clock jump"
echo "ok   clock set back an hour: all $leases leases still held, $((stats_after - stats_before)) stats lines in 3 s, every record persisted"

echo "== Redis Cluster: every master's streams, and a failover followed"
redis_cluster_start || fail "the cluster did not start"
# Its own prefix: streams and SKUs apart from the single server's in
# PostgreSQL; wait=1: a write is acknowledged once a replica has it, so
# the failover below loses no acknowledged record.
cl="$REDIS_CLUSTER_URI&prefix=cl:&wait=1"
"$BUILD/tests/persist_load" setup "$cl"
"$BUILD/stockpersist" --redis "$cl" --postgres "$PG_URI" --name cl --lease-ms "$LEASE_MS" \
    --stats-s 1 >>"$REDIS_DIR/persist-cl.log" 2>&1 &
one=$!
pids+=("$one")
"$BUILD/tests/persist_load" write "$cl" cl1 "$OPS" || fail "the writer on the cluster"
redis_cluster_cli 0 INFO replication | tr -d '\r' | grep -qx "role:master" ||
    fail "node 0 is not a master"
redis_cluster_kill 0
echo "master 0 killed; waiting for a replica to take over"
promoted=""
for ((try = 0; try < 300 && ${#promoted} == 0; try++)); do
    for i in 3 4 5; do
        redis_cluster_cli "$i" INFO replication | tr -d '\r' | grep -qx "role:master" && promoted=$i
    done
    sleep 0.1
done
[ -n "$promoted" ] || fail "no replica was promoted in 30 s"
# The old master back as the new one's replica: wait=1 is answered again.
redis_cluster_wait_ok && redis_cluster_restart 0 && redis_cluster_wait_ok &&
    redis_cluster_wait_replicas || fail "the cluster did not recover"
echo "node $promoted is master now; node 0 its replica"
"$BUILD/tests/persist_load" write "$cl" cl2 "$OPS" || fail "the writer after the failover"
# Drained: a stats line printed two seconds or more after the writer ended
# says so (the lag it prints is measured once a second: the lines before
# may count from before cl2's records).
written=$(wc -l <"$REDIS_DIR/persist-cl.log")
for ((i = 0; i < 600; i++)); do
    [ "$(wc -l <"$REDIS_DIR/persist-cl.log")" -gt $((written + 2)) ] &&
        tail -n 1 "$REDIS_DIR/persist-cl.log" | grep -q "lag_records=0 lag_ms=0 outbox_records=0$" && break
    sleep 0.1
done
term_wait "$one" || fail "the cluster's persister did not exit 0 on SIGTERM"
grep "masters=3 " "$REDIS_DIR/persist-cl.log" | head -n 1 | grep -q "streams=[1-9]" ||
    fail "the persister did not read 3 masters: $(head -n 3 "$REDIS_DIR/persist-cl.log")"
grep -q "(retrying)" "$REDIS_DIR/persist-cl.log" || fail "the persister never saw the master go"
tail -n 1 "$REDIS_DIR/persist-cl.log" | grep -q "lag_records=0 lag_ms=0 outbox_records=0$" ||
    fail "the cluster's outbox was not drained: $(tail -n 20 "$REDIS_DIR/persist-cl.log")"
tail -n 1 "$REDIS_DIR/persist-cl.log"
"$BUILD/tests/persist_load" check "$cl" "$PG_URI" cl1:$OPS cl2:$OPS ||
    fail "PostgreSQL differs from the cluster"
echo "57-persister: ok"
