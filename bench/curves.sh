#!/usr/bin/env bash
# bench/curves.sh -- how the cost of the embedded engine grows as the work
# grows, in-process (stockbench --store DIR) and through stockd
# (stockbench --store stockd://), on loopback, in a temporary folder:
#
#   skus         ops/s and p99 against the number of SKUs; memory per SKU
#   lines        ops/s and p99 against the lines the store holds; memory per
#                line; recovery time and snapshot size against lines
#   connections  ops/s and p99 through stockd against client connections
#   soak         an open-loop rate through stockd for SOAK_SECONDS: p99 per
#                second, stockd's RSS and the size of its data folder over time
#
# Every measured run is stockbench's uniform workload (qty 1-3 on a random
# SKU), durable (an fdatasync before a batch is acknowledged), and must pass
# stockbench's own check (I1, I2, I4, I5) or the script fails. Prints one
# markdown table per part; with --out, also writes DIR/curves-PART.tsv,
# .md and .png (gnuplot), and every stockbench report under DIR/json/.
#
# usage: bench/curves.sh [--part LIST] [--out DIR] [--seconds N]
#        bench/curves.sh [--part LIST] --replot DIR
#   --part LIST  comma-separated subset of skus,lines,connections,soak
#                (default all)
#   --out DIR    write the tables (.tsv, .md) and plots (.png) there
#   --seconds N  length of each closed-loop run of skus and connections
#                (1..600, default 3)
#   --replot DIR measure nothing: redraw the plots of DIR (an earlier --out)
#                from its .tsv files
# Environment (each a space-separated list of whole numbers, or a number):
#   SKU_POINTS        default "1 100 10000 1000000 10000000" (max 10,000,000)
#   LINE_POINTS       default "0 1000000 10000000 50000000", increasing; the
#                     store is filled up to each point with relaxed
#                     durability (about 70-90 bytes of memory per line)
#   LINE_RUN_OPS      ops of each measured run of the lines part
#                     (default 400000); each point adds two runs' lines
#   CONN_POINTS       default "1 10 100 1000" (max 1024)
#   CONN_PIPELINES    default "1 16": ops per batch in the connections part
#   SOAK_SECONDS      default 1800; SOAK_RATE ops/s, default 20000;
#                     SOAK_SAMPLE_SECONDS between samples, default 5
#   CURVES_TMP        parent of the temporary folder (default $TMPDIR or
#                     /tmp): must be a real disk, a tmpfs makes fdatasync free
#   BUILD             default build (make -j2 bench first)
# Ports: the first free ones of 17630-17649 on 127.0.0.1.
# Needs redis-cli and redis-benchmark (the Redis GET yardstick), jq and
# gnuplot (scripts/install-deps.sh).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
parts=skus,lines,connections,soak
out=""
replot=""
seconds=3
die_usage() { echo "curves.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
    --part) parts=${2:?--part needs a list}; shift 2 ;;
    --out) out=${2:?--out needs a folder}; shift 2 ;;
    --seconds) seconds=${2:?--seconds needs a value}; shift 2 ;;
    --replot) replot=${2:?--replot needs a folder}; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) die_usage "unknown argument '$1' (see --help)" ;;
    esac
done

# whole NAME VALUE LOW HIGH: VALUE is a whole number in LOW..HIGH.
whole() {
    case $2 in
    ''|*[!0-9]*) die_usage "$1 must be a whole number, not '$2'" ;;
    esac
    [ ${#2} -le 12 ] && [ "$2" -ge "$3" ] && [ "$2" -le "$4" ] ||
        die_usage "$1 must be in $3..$4, not '$2'"
}
# points NAME LIST LOW HIGH: LIST is non-empty, each in LOW..HIGH, increasing.
points() {
    local previous=-1 value
    [ -n "${2// /}" ] || die_usage "$1 is empty"
    for value in $2; do
        whole "$1 (each point)" "$value" "$3" "$4"
        [ "$value" -gt "$previous" ] || die_usage "$1 must be increasing: '$2'"
        previous=$value
    done
}
whole --seconds "$seconds" 1 600
for part in ${parts//,/ }; do
    case $part in
    skus|lines|connections|soak) ;;
    *) die_usage "--part takes skus, lines, connections, soak; not '$part'" ;;
    esac
done
SKU_POINTS=${SKU_POINTS:-1 100 10000 1000000 10000000}
LINE_POINTS=${LINE_POINTS:-0 1000000 10000000 50000000}
LINE_RUN_OPS=${LINE_RUN_OPS:-400000}
CONN_POINTS=${CONN_POINTS:-1 10 100 1000}
CONN_PIPELINES=${CONN_PIPELINES:-1 16}
SOAK_SECONDS=${SOAK_SECONDS:-1800}
SOAK_RATE=${SOAK_RATE:-20000}
SOAK_SAMPLE_SECONDS=${SOAK_SAMPLE_SECONDS:-5}
points SKU_POINTS "$SKU_POINTS" 1 10000000
points LINE_POINTS "$LINE_POINTS" 0 1000000000
whole LINE_RUN_OPS "$LINE_RUN_OPS" 1000 100000000
points CONN_POINTS "$CONN_POINTS" 1 1024
points CONN_PIPELINES "$CONN_PIPELINES" 1 64
whole SOAK_SECONDS "$SOAK_SECONDS" 10 3600
whole SOAK_RATE "$SOAK_RATE" 100 10000000
whole SOAK_SAMPLE_SECONDS "$SOAK_SAMPLE_SECONDS" 1 600
for tool in stockd stockbench; do
    [ -x "$BUILD/$tool" ] || { echo "curves.sh: missing $BUILD/$tool (make -j2 bench)" >&2; exit 2; }
done
for tool in redis-cli redis-benchmark redis-server jq gnuplot; do
    command -v "$tool" >/dev/null || { echo "curves.sh: $tool not found (scripts/install-deps.sh)" >&2; exit 2; }
done
if [ -n "$out" ]; then
    mkdir -p "$out" || { echo "curves.sh: cannot create --out $out" >&2; exit 2; }
    out=$(cd "$out" && pwd)
fi
selected() { case ",$parts," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

# Every part opens many connections (1,000 in the connections part, each one
# a socket in stockbench and in stockd).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

tmp=$(mktemp -d "${CURVES_TMP:-${TMPDIR:-/tmp}}/stockd-curves.XXXXXX")
[ "$(stat -f -c %T "$tmp")" != tmpfs ] ||
    echo "curves.sh: warning: $tmp is a tmpfs: fdatasync costs nothing there" >&2
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
log() { printf '%s\n' "$*" >&2; }
fail() { log "curves.sh: $*"; exit 1; }

# forget PID: drops PID from the list cleanup stops.
forget() {
    local kept=() pid
    for pid in "${pids[@]}"; do [ "$pid" = "$1" ] || kept+=("$pid"); done
    pids=("${kept[@]}")
}

# free_port: the first port of 17630-17649 nothing listens on.
free_port() {
    local candidate
    for candidate in $(seq 17630 17649); do
        (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null || { echo "$candidate"; return 0; }
    done
    fail "no free port in 17630-17649"
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# rss_kib PID: resident set of PID in KiB.
rss_kib() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"; }

# info PORT FIELD: one field of stockd's INFO.
info() { redis-cli -p "$1" INFO | tr -d '\r' | awk -F: -v f="$2" '$1 == f { print $2 }'; }

# folder_bytes DIR GLOB: bytes of the files of DIR matching GLOB.
folder_bytes() {
    local total=0 file
    for file in "$1"/$2; do
        [ -f "$file" ] && total=$((total + $(stat -c %s "$file")))
    done
    echo "$total"
}

# newest_snapshot_bytes DIR: size of the snapshot with the highest lsn (the
# one recovery loads; the one before it is kept as a fallback), or 0.
newest_snapshot_bytes() {
    local newest
    [ -d "$1" ] || { echo 0; return 0; }
    newest=$(find "$1" -maxdepth 1 -name 'snap-*.snap' | sort | tail -n 1)
    [ -n "$newest" ] && stat -c %s "$newest" || echo 0
}

# start_stockd DIR [FLAG...]: starts stockd over DIR on a free port; sets
# stockd_pid, stockd_port and stockd_ready_s (spawn to the first PONG, which
# includes recovery). Waits up to 15 minutes (recovery of a large store).
start_stockd() {
    local dir=$1 start
    shift
    stockd_port=$(free_port)
    start=$(now)
    "$BUILD/stockd" --store "$dir" --port "$stockd_port" --http-port 0 \
        --bind 127.0.0.1 "$@" >>"$dir.log" 2>&1 &
    stockd_pid=$!
    pids+=("$stockd_pid")
    for _ in $(seq 18000); do
        redis-cli -p "$stockd_port" PING 2>/dev/null | grep -q PONG && break
        kill -0 "$stockd_pid" 2>/dev/null || { cat "$dir.log" >&2; fail "stockd exited at start"; }
        sleep 0.05
    done
    redis-cli -p "$stockd_port" PING 2>/dev/null | grep -q PONG ||
        { cat "$dir.log" >&2; fail "stockd did not answer PING"; }
    stockd_ready_s=$(elapsed "$start")
}

# stop_stockd: SIGTERM to stockd_pid and wait (a clean close, which may
# snapshot).
stop_stockd() {
    local status=0
    kill -TERM "$stockd_pid"
    wait "$stockd_pid" || status=$?
    forget "$stockd_pid"
    [ "$status" -eq 0 ] || fail "stockd exited $status when stopped"
}

# bench NAME ARGS...: one stockbench --json run that must pass its check;
# leaves the report in $tmp/NAME.json and sets b_ops (ops/s), b_p50, b_p99,
# b_max (ms), b_ok (operations answered OK).
bench() {
    local name=$1 status=0
    shift
    "$BUILD/stockbench" --json --no-progress "$@" >"$tmp/$name.json" 2>"$tmp/$name.err" || status=$?
    [ "$status" -eq 0 ] || { cat "$tmp/$name.err" >&2; fail "$name: stockbench exited $status ($*)"; }
    [ -z "$out" ] || { mkdir -p "$out/json" && cp "$tmp/$name.json" "$out/json/"; }
    read -r b_ops b_p50 b_p99 b_max b_ok < <(jq -r '[(.ops_per_s | floor),
        (.latency_ms.p50 * 1000 | round) / 1000, (.latency_ms.p99 * 1000 | round) / 1000,
        ((.latency_ms.max * 10 | round) / 10), (.results.OK // 0)] | map(tostring) | join(" ")' "$tmp/$name.json")
    log "  $name: $b_ops ops/s, p50 $b_p50 ms, p99 $b_p99 ms, max $b_max ms"
}

# yardstick: Redis 7 GET through redis-benchmark -c 50 -P 16 on this
# machine now (no persistence): what the machine gives a known server, so
# that figures from different runs can be compared by their ratio to it.
yardstick() {
    local port line
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize no >"$tmp/redis.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 200); do
        redis-cli -p "$port" PING 2>/dev/null | grep -q PONG && break
        sleep 0.05
    done
    redis-cli -p "$port" SET k v >/dev/null
    line=$(redis-benchmark -h 127.0.0.1 -p "$port" -c 50 -P 16 -n 1000000 --csv \
        GET k 2>/dev/null | tail -n 1 | tr -d '"')
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    forget "$pid"
    IFS=, read -r _ yard_ops _ _ _ _ yard_p99 _ <<<"$line"
    yard_ops=${yard_ops%.*}
    log "  yardstick: Redis GET -c 50 -P 16: $yard_ops ops/s, p99 $yard_p99 ms"
}

# machine: one line naming the machine and the moment.
machine() {
    printf '%s UTC, commit %s, %s cores (%s), Linux %s, load average %s' \
        "$(date -u '+%Y-%m-%d %H:%M')" "$(git rev-parse --short HEAD 2>/dev/null || echo '?')" \
        "$(nproc)" "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
        "$(uname -r)" "$(cut -d' ' -f1-3 /proc/loadavg)"
}

# emit PART TITLE HEADER: prints $tmp/PART.tsv (tab-separated, HEADER its
# first line) as a markdown table under TITLE, with the machine and the
# yardstick; copies it to --out.
emit() {
    local part=$1 title=$2 header=$3
    {
        echo "### $title"
        echo
        echo "$(machine); yardstick: Redis GET -c 50 -P 16 $yard_ops ops/s (p99 $yard_p99 ms) in this run"
        echo
        printf '%s\n' "$header" | awk -F'\t' '{ s = "|"; t = "|"; for (i = 1; i <= NF; i++) { s = s " " $i " |"; t = t "---|" } print s; print t }'
        awk -F'\t' '{ s = "|"; for (i = 1; i <= NF; i++) s = s " " $i " |"; print s }' "$tmp/$part.tsv"
        echo
    } >"$tmp/$part.md"
    cat "$tmp/$part.md"
    if [ -n "$out" ]; then
        { printf '%s\n' "$header"; cat "$tmp/$part.tsv"; } >"$out/curves-$part.tsv"
        cp "$tmp/$part.md" "$out/curves-$part.md"
    fi
}

# plot PART SCRIPT: runs the gnuplot SCRIPT (which writes to $png) when
# --out is given; pngcairo where it works, else the plain png terminal.
terminal=""
plot() {
    [ -n "$out" ] || return 0
    if [ -z "$terminal" ]; then
        terminal=png
        echo 'set terminal pngcairo; set output "/dev/null"; plot x' | gnuplot 2>/dev/null &&
            terminal=pngcairo
    fi
    png="$out/curves-$1.png"
    { echo "set terminal $terminal size 1000,$3 noenhanced font ',10'"
      echo "set output '$png'"
      echo "set datafile separator tab"
      echo "$2"; } | gnuplot || fail "gnuplot failed on $png"
    log "  plot: $png"
}

# The lines part spreads its lines over few SKUs (each run creates its own,
# under its own id prefix), so that SKUs weigh little in bytes per line.
readonly CLIENTS=50 PIPELINE=16 UNIFORM_SKUS=100000 LINE_SKUS=1000
# Memory per SKU is printed from this many SKUs up: below, a page of memory
# is more than all of them.
readonly SKU_MEMORY_MIN=10000

# ---------------------------------------------------------------- plots
# draw_PART: the plot of a part, from its table in $tmp (written by the part,
# or by --replot from --out).

draw_skus() {
    plot skus "set multiplot layout 1,2
set logscale x; set format x '10^%T'; set xlabel 'SKUs'; set key below
set ylabel 'ops/s'; set y2label 'p99 ms'; set ytics nomirror; set y2tics; set yrange [0:*]; set y2range [0:*]
set title 'throughput (lines) and p99 (points)'
plot '$tmp/skus.tsv' using 1:2 with linespoints title 'in-process ops/s', \
     '' using 1:4 with linespoints title 'stockd ops/s', \
     '' using 1:3 axes x1y2 with points pt 7 title 'in-process p99', \
     '' using 1:5 axes x1y2 with points pt 9 title 'stockd p99'
unset y2label; unset y2tics; set ytics mirror
set title 'memory per SKU (stockd, after creating them)'; set ylabel 'bytes per SKU'
plot '$tmp/skus.tsv' using 1:6 with linespoints title 'RSS delta / SKU', \
     '' using 1:7 with linespoints title 'stock_stats.memory_bytes / SKU'
unset multiplot" 450
}

draw_lines() {
    plot lines "set multiplot layout 1,3
set xlabel 'lines in the store (millions)'; set key below
set ylabel 'ops/s'; set y2label 'p99 ms'; set ytics nomirror; set y2tics; set yrange [0:*]; set y2range [0:*]
set title 'throughput (lines) and p99 (points)'
plot '$tmp/lines.tsv' using (\$2/1e6):4 with linespoints title 'in-process ops/s', \
     '' using (\$2/1e6):6 with linespoints title 'stockd ops/s', \
     '' using (\$2/1e6):5 axes x1y2 with points pt 7 title 'in-process p99', \
     '' using (\$2/1e6):7 axes x1y2 with points pt 9 title 'stockd p99'
set title 'memory per line (stockd after recovery)'; set ylabel 'bytes per line'; set y2label ''
unset y2tics; set ytics mirror
plot '$tmp/lines.tsv' using (\$2/1e6):8 with linespoints title 'memory_bytes / line', \
     '' using (\$2/1e6):9 with linespoints title 'RSS delta / line'
set title 'recovery and snapshot'; set ylabel 'seconds'; set y2label 'snapshot MB'
set ytics nomirror; set y2tics
plot '$tmp/lines.tsv' using (\$2/1e6):11 with linespoints title 'recovery_ms / 1000', \
     '' using (\$2/1e6):13 axes x1y2 with linespoints title 'snapshot MB'
unset multiplot" 450
}

draw_connections() {
    local pipeline column=2 using=""
    for pipeline in $CONN_PIPELINES; do
        using="$using${using:+, }'' using 1:$column with linespoints title '-P $pipeline ops/s', '' using 1:$((column + 2)) axes x1y2 with points title '-P $pipeline p99'"
        column=$((column + 3))
    done
    plot connections "set logscale x; set logscale y2; set xlabel 'connections'; set key below
set ylabel 'ops/s'; set y2label 'p99 ms (log scale)'; set ytics nomirror; set y2tics; set yrange [0:*]
set title 'stockd: throughput (lines) and p99 (points) against connections'
plot '$tmp/connections.tsv' using 1:(NaN) notitle, ${using#, }" 450
}

draw_soak() {
    plot soak "set multiplot layout 3,1
set xlabel 'seconds'; set key top left; set xrange [0:*]
set title 'p99 and p50 per second, mean fdatasync per sample interval (ms)'; set ylabel 'ms'; set yrange [0:*]
plot '$tmp/soak-series.tsv' using 1:4 with lines title 'p99', '' using 1:3 with lines title 'p50', \
     '$tmp/soak-samples.tsv' using 1:10 with lines title 'mean fdatasync'
set title 'stockd RSS and stock_stats.memory_bytes (MB)'; set ylabel 'MB'
plot '$tmp/soak-samples.tsv' using 1:(\$2*1024/1e6) with lines title 'RSS', '' using 1:(\$3/1e6) with lines title 'memory_bytes'
set title 'on disk (MB)'; set ylabel 'MB'
plot '$tmp/soak-samples.tsv' using 1:(\$5/1e6) with lines title 'log segments', '' using 1:(\$6/1e6) with lines title 'snapshots'
unset multiplot" 900
}

# ---------------------------------------------------------------- skus
# per_sku BEFORE AFTER UNIT N: (AFTER - BEFORE) * UNIT / N, or - below
# SKU_MEMORY_MIN SKUs.
per_sku() {
    awk -v a="$1" -v b="$2" -v u="$3" -v n="$4" -v min="$SKU_MEMORY_MIN" \
        'BEGIN { if (n < min) print "-"; else printf "%.0f", (b - a) * u / n }'
}

# For each point N: a fresh stockd; a run of one operation creates N SKUs
# (memory per SKU: stockd's RSS and stock_stats.memory_bytes before and
# after); then a closed-loop run over N other SKUs through stockd (the store
# then holds 2N), and one in-process over a fresh folder of N SKUs.
part_skus() {
    log "== skus: $SKU_POINTS"
    yardstick
    : >"$tmp/skus.tsv"
    local n dir rss0 mem0 rss1 mem1 start setup_s remote_ops remote_p99 remote_max
    for n in $SKU_POINTS; do
        dir=$tmp/skus-$n
        start_stockd "$dir"
        rss0=$(rss_kib "$stockd_pid")
        mem0=$(info "$stockd_port" memory_bytes)
        start=$(now)
        bench "skus-$n-setup" --store "stockd://127.0.0.1:$stockd_port" -w uniform --skus "$n" -n 1
        setup_s=$(elapsed "$start")
        rss1=$(rss_kib "$stockd_pid")
        mem1=$(info "$stockd_port" memory_bytes)
        bench "skus-$n-stockd" --store "stockd://127.0.0.1:$stockd_port" -w uniform --skus "$n" \
            -c "$CLIENTS" -P "$PIPELINE" -d "$seconds"
        remote_ops=$b_ops remote_p99=$b_p99 remote_max=$b_max
        stop_stockd
        rm -rf "$dir"
        bench "skus-$n-inproc" --store "$dir-inproc" -w uniform --skus "$n" \
            -c "$CLIENTS" -P "$PIPELINE" -d "$seconds"
        rm -rf "$dir-inproc"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$b_ops" "$b_p99" "$remote_ops" "$remote_p99" \
            "$(per_sku "$rss0" "$rss1" 1024 "$n")" "$(per_sku "$mem0" "$mem1" 1 "$n")" \
            "$setup_s" "$b_max" "$remote_max" >>"$tmp/skus.tsv"
    done
    emit skus "Throughput, p99 and memory against SKUs (uniform, -c $CLIENTS -P $PIPELINE, ${seconds} s a run)" \
        "$(printf 'SKUs\tin-process ops/s\tin-process p99 ms\tstockd ops/s\tstockd p99 ms\tstockd RSS bytes/SKU\tmemory_bytes/SKU\tcreating them through stockd, s\tin-process max ms\tstockd max ms')"
    draw_skus
}

# --------------------------------------------------------------- lines
# One store grows through the points. At each: stockd opens it (recovery:
# stockd's recovery_ms, the newest snapshot, the log records replayed after
# it; RSS and memory_bytes once open), LINE_RUN_OPS through stockd, a clean
# stop (which snapshots), the same in-process; then an in-process relaxed
# fill up to the next point. "lines" is what the store held when stockd
# opened it: the measured runs add theirs (2 x LINE_RUN_OPS) on top.
part_lines() {
    log "== lines: $LINE_POINTS"
    yardstick
    : >"$tmp/lines.tsv"
    local dir=$tmp/lines target lines=0 at skus rss rss0="" at0=0 mem snap records recovery
    local fill_rate=- remote_ops remote_p99 remote_max remote_ok delta start
    for target in $LINE_POINTS; do
        delta=$((target - lines))
        if [ "$delta" -gt 0 ]; then
            start=$(now)
            bench "lines-fill-$target" --store "$dir" -w uniform --skus "$LINE_SKUS" -n "$delta" \
                --durability relaxed -c 16 -P 1000
            fill_rate=$(awk -v n="$delta" -v s="$(elapsed "$start")" 'BEGIN { printf "%.0f", n / s }')
        fi
        snap=$(newest_snapshot_bytes "$dir")
        start_stockd "$dir"
        at=$(info "$stockd_port" lines)
        skus=$(info "$stockd_port" skus)
        rss=$(rss_kib "$stockd_pid")
        mem=$(info "$stockd_port" memory_bytes)
        recovery=$(info "$stockd_port" recovery_ms)
        records=$(info "$stockd_port" recovery_records)
        [ -n "$rss0" ] || { rss0=$rss; at0=$at; }
        bench "lines-$target-stockd" --store "stockd://127.0.0.1:$stockd_port" -w uniform \
            --skus "$LINE_SKUS" -c "$CLIENTS" -P "$PIPELINE" -n "$LINE_RUN_OPS"
        remote_ops=$b_ops remote_p99=$b_p99 remote_max=$b_max remote_ok=$b_ok
        stop_stockd
        bench "lines-$target-inproc" --store "$dir" -w uniform --skus "$LINE_SKUS" \
            -c "$CLIENTS" -P "$PIPELINE" -n "$LINE_RUN_OPS"
        lines=$((at + remote_ok + b_ok))
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
            "$target" "$at" "$skus" "$b_ops" "$b_p99" "$remote_ops" "$remote_p99" \
            "$(awk -v m="$mem" -v l="$at" 'BEGIN { if (l > 0) printf "%.1f", m / l; else print "-" }')" \
            "$(awk -v r="$rss" -v r0="$rss0" -v l="$at" -v l0="$at0" \
                'BEGIN { if (l > l0) printf "%.1f", (r - r0) * 1024 / (l - l0); else print "-" }')" \
            "$(awk -v r="$rss" 'BEGIN { printf "%.0f", r / 1024 }')" \
            "$(awk -v ms="$recovery" 'BEGIN { printf "%.2f", ms / 1000 }')" "$stockd_ready_s" \
            "$(awk -v b="$snap" 'BEGIN { printf "%.1f", b / 1e6 }')" "$records" "$fill_rate" \
            "$b_max" "$remote_max" \
            >>"$tmp/lines.tsv"
    done
    rm -rf "$dir" "$dir.log"
    emit lines "Throughput, p99, memory and recovery against stored lines (uniform over $LINE_SKUS SKUs, -c $CLIENTS -P $PIPELINE, $LINE_RUN_OPS ops a run)" \
        "$(printf 'target\tlines at open\tSKUs at open\tin-process ops/s\tin-process p99 ms\tstockd ops/s\tstockd p99 ms\tmemory_bytes/line\tstockd RSS delta/line\tstockd RSS MiB\trecovery s (recovery_ms)\tstart to first PONG s\tsnapshot MB\trecords replayed\tfill ops/s (relaxed, open to close)\tin-process max ms\tstockd max ms')"
    draw_lines
}

# --------------------------------------------------------- connections
# One stockd; for each pipeline depth and each point N, a closed-loop run of
# N connections (stockbench opens one per batch in flight). stockd's
# --maxclients default (10,000) is above 1,024, stockbench's own limit; the
# flag is set to at least twice the largest point anyway.
part_connections() {
    log "== connections: $CONN_POINTS, pipelines $CONN_PIPELINES"
    yardstick
    : >"$tmp/connections.tsv"
    local dir=$tmp/conn n pipeline largest=0 row
    for n in $CONN_POINTS; do largest=$n; done
    local maxclients=$((largest * 2 > 10000 ? largest * 2 : 10000))
    start_stockd "$dir" --maxclients "$maxclients"
    for n in $CONN_POINTS; do
        row=$n
        for pipeline in $CONN_PIPELINES; do
            bench "conn-$n-$pipeline" --store "stockd://127.0.0.1:$stockd_port" -w uniform \
                --skus "$UNIFORM_SKUS" -c "$n" -P "$pipeline" -d "$seconds"
            row="$row\t$b_ops\t$b_p50\t$b_p99"
        done
        printf '%b\n' "$row" >>"$tmp/connections.tsv"
    done
    stop_stockd
    rm -rf "$dir" "$dir.log"
    local header=connections
    for pipeline in $CONN_PIPELINES; do
        header="$header\t-P $pipeline ops/s\t-P $pipeline p50 ms\t-P $pipeline p99 ms"
    done
    emit connections "Throughput and latency through stockd against connections (uniform over $UNIFORM_SKUS SKUs, ${seconds} s a run, --maxclients $maxclients)" \
        "$(printf '%b' "$header")"
    draw_connections
}

# ---------------------------------------------------------------- soak
# One stockd, an open-loop SOAK_RATE for SOAK_SECONDS; every
# SOAK_SAMPLE_SECONDS: stockd's RSS, memory_bytes, lines, the bytes of its
# log segments and snapshots on disk, snapshots taken, and its fdatasyncs
# (count and total time), whose mean per interval tells a slow disk from a
# busy CPU when the p99 moves.
part_soak() {
    log "== soak: $SOAK_RATE ops/s for $SOAK_SECONDS s"
    yardstick
    local dir=$tmp/soak start
    start_stockd "$dir"
    : >"$tmp/soak-samples.tsv"
    "$BUILD/stockbench" --json --no-progress --store "stockd://127.0.0.1:$stockd_port" \
        -w uniform --skus "$UNIFORM_SKUS" -c 64 -P "$PIPELINE" -r "$SOAK_RATE" \
        -d "$SOAK_SECONDS" >"$tmp/soak.json" 2>"$tmp/soak.err" &
    local bench_pid=$!
    pids+=("$bench_pid")
    start=$(now)
    while kill -0 "$bench_pid" 2>/dev/null; do
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(elapsed "$start")" \
            "$(rss_kib "$stockd_pid")" "$(info "$stockd_port" memory_bytes)" \
            "$(info "$stockd_port" lines)" "$(folder_bytes "$dir" 'log-*.wal')" \
            "$(folder_bytes "$dir" 'snap-*.snap')" "$(info "$stockd_port" snapshots)" \
            "$(info "$stockd_port" syncs)" "$(info "$stockd_port" sync_latency_us_sum)" \
            >>"$tmp/soak-samples.tsv"
        sleep "$SOAK_SAMPLE_SECONDS"
    done
    local status=0
    wait "$bench_pid" || status=$?
    forget "$bench_pid"
    [ "$status" -eq 0 ] || { cat "$tmp/soak.err" >&2; fail "soak: stockbench exited $status"; }
    stop_stockd
    rm -rf "$dir" "$dir.log"
    jq -r '.series[] | [.time_s, .ops_per_s, .p50_ms, .p99_ms] | map(tostring) | join("\t")' \
        "$tmp/soak.json" >"$tmp/soak-series.tsv"
    read -r b_ops b_p50 b_p99 b_unsent < <(jq -r '[(.ops_per_s | floor),
        (.latency_ms.p50 * 1000 | round) / 1000, (.latency_ms.p99 * 1000 | round) / 1000,
        .unsent] | map(tostring) | join(" ")' "$tmp/soak.json")
    log "  soak: $b_ops ops/s, p50 $b_p50 ms, p99 $b_p99 ms, $b_unsent ops behind at the end"
    # Column 10: the mean fdatasync of the interval before each sample, ms.
    awk -F'\t' -v OFS='\t' '{ d = $8 - syncs; print $0, (NR > 1 && d > 0 ? ($9 - sum) / d / 1000 : 0)
                              syncs = $8; sum = $9 }' "$tmp/soak-samples.tsv" >"$tmp/soak-samples2.tsv"
    mv "$tmp/soak-samples2.tsv" "$tmp/soak-samples.tsv"
    # One row per tenth of the run: the p99 of its seconds (the highest of
    # their per-second p99s and their median), and the last sample in it.
    awk -F'\t' -v total="$SOAK_SECONDS" '
        FNR == NR { slot = int($1 * 10 / total); if (slot > 9) slot = 9
                    n[slot]++; v[slot, n[slot]] = $4; if ($4 > worst[slot]) worst[slot] = $4
                    ops[slot] += $2; next }
        { slot = int($1 * 10 / total); if (slot > 9) slot = 9; last[slot] = $0
          if (!(slot in first)) first[slot] = prev; prev = $0 }
        END { for (s = 0; s < 10; s++) {
                  if (!(s in last) || n[s] == 0) continue
                  m = n[s]; for (i = 1; i <= m; i++) a[i] = v[s, i]
                  for (i = 2; i <= m; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
                  split(last[s], f, "\t"); split(first[s], g, "\t")
                  mean_sync = f[8] > g[8] ? (f[9] - g[9]) / (f[8] - g[8]) / 1000 : 0
                  printf "%d-%d\t%.0f\t%.3f\t%.3f\t%.3f\t%.0f\t%.1f\t%.1f\t%.1f\t%d\n", s * total / 10, (s + 1) * total / 10,
                      ops[s] / n[s], a[int((m + 1) / 2)], worst[s], mean_sync, f[2] / 1024, f[4] / 1e6, f[5] / 1e6, f[6] / 1e6, f[7] }
        }' "$tmp/soak-series.tsv" "$tmp/soak-samples.tsv" >"$tmp/soak.tsv"
    emit soak "Soak through stockd: $SOAK_RATE ops/s open loop for $SOAK_SECONDS s (uniform over $UNIFORM_SKUS SKUs, at most 64 x $PIPELINE in flight); whole run: $b_ops ops/s, p50 $b_p50 ms, p99 $b_p99 ms, $b_unsent ops behind at the end" \
        "$(printf 'seconds\tops/s\tmedian of per-second p99 ms\tworst per-second p99 ms\tmean fdatasync ms\tstockd RSS MiB\tlines (millions)\tlog segments MB\tsnapshots MB\tsnapshots taken')"
    if [ -n "$out" ]; then
        mkdir -p "$out/json" && cp "$tmp/soak.json" "$out/json/"
        cp "$tmp/soak-series.tsv" "$out/curves-soak-series.tsv"
        { printf 'seconds\tRSS KiB\tmemory_bytes\tlines\tlog bytes\tsnapshot bytes\tsnapshots\tsyncs\tsync_latency_us_sum\tmean fdatasync ms\n'
          cat "$tmp/soak-samples.tsv"; } >"$out/curves-soak-samples.tsv"
    fi
    draw_soak
}

# --replot: the tables of an earlier --out, without their header line.
if [ -n "$replot" ]; then
    [ -d "$replot" ] || die_usage "--replot $replot is not a folder"
    out=$(cd "$replot" && pwd)
    for part in ${parts//,/ }; do
        [ -f "$out/curves-$part.tsv" ] || { log "curves.sh: no $out/curves-$part.tsv, skipped"; continue; }
        tail -n +2 "$out/curves-$part.tsv" >"$tmp/$part.tsv"
        if [ "$part" = soak ]; then
            cp "$out/curves-soak-series.tsv" "$tmp/soak-series.tsv"
            tail -n +2 "$out/curves-soak-samples.tsv" >"$tmp/soak-samples.tsv"
        fi
        if [ "$part" = connections ]; then
            CONN_PIPELINES=$(head -n 1 "$out/curves-connections.tsv" | grep -o -- '-P [0-9]* ops/s' | awk '{ printf "%s ", $2 }')
        fi
        "draw_$part"
    done
    exit 0
fi
log "curves.sh: $(machine); parts $parts; folder $tmp"
selected skus && part_skus
selected lines && part_lines
selected connections && part_connections
selected soak && part_soak
log "curves.sh: done, $(machine)"
