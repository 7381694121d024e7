# tests/harness/reconcile_fill.sh -- fills a postgres and a redis store
# (started by pg.sh and redis.sh) with the same SKUs and lines, written
# directly in each backend's documented layout, so that a reconcile of
# millions of lines does not wait for millions of deductions. Source it
# after pg.sh and redis.sh:
#
#   reconcile_fill SKUS PER   # SKUs S1..S<SKUS>, each with PER lines
#                             # L<k>-<i> of qty 1 (available 1000000 - PER)
#
# Used by 58-reconcile and bench/reconcile.sh.

reconcile_fill() {
    local skus=$1 per=$2
    # Each SKU S<k> with per lines L<k>-<i> of qty 1, as a deduction makes them:
    # postgres rows and redis keys (the SKU hash, its flow, each line's
    # directory entry) of the documented layouts.
    pg_psql -c "INSERT INTO inventory (sku_id, bucket, leaved_amount, adjusted, deducted)
            SELECT 'S' || k, 0, 1000000 - $per, 1000000, $per FROM generate_series(1, $skus) k;
            INSERT INTO inventory_flow (line_id, sku_id, qty, order_id, position, bucket, time_us,
                                        available_after)
            SELECT 'L' || k || '-' || i, 'S' || k, 1, '', 0, 0, 1796000000000000, 1000000 - i
              FROM generate_series(1, $skus) k, generate_series(1, $per) i"
    python3 - "$skus" "$per" <<'EOF' | redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --pipe >/dev/null
import sys
skus, per = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout.buffer
def cmd(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    out.write(b"".join(parts))
cmd("SET", "stock:layout", "1")
for k in range(1, skus + 1):
    sku = "S%d" % k
    cmd("HSET", "{sku:%s}" % sku, "av", str(1000000 - per), "adj", "1000000", "ded", str(per), "ref", "0")
    fields = []
    for i in range(1, per + 1):
        line = "L%d-%d" % (k, i)
        fields += [line, "1 0 1796000000000000 %d -" % (1000000 - i)]
        cmd("SET", "{line:%s}" % line, "1 %s" % sku)
    for j in range(0, len(fields), 2000):
        cmd("HSET", "{sku:%s}:flow" % sku, *fields[j:j + 2000])
EOF
}
