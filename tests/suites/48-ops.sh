#!/usr/bin/env bash
# 48-ops.sh -- the operator's kit of ops/: `make install-ops` (which `make
# install` runs) puts each file where Debian's systemd, Prometheus and
# Grafana look; the systemd unit passes `systemd-analyze verify` without a
# word and `systemd-analyze security --offline` at exposure 2.5 or better,
# with its own user, ProtectSystem=strict, NoNewPrivileges, a restart policy
# and LimitNOFILE; the installed stockd.conf starts stockd; the alert rules
# pass `promtool check rules` and their unit tests (`promtool test rules`,
# tests/ops); every dashboard query is valid PromQL; and every stockd_
# metric the rules and the dashboard use is one stockd's /metrics serves.
set -eu
BUILD=${BUILD:-build}
. "$(dirname "$0")/../system/server_helpers.sh"
suite_dir ops
root=$(cd "$(dirname "$0")/../.." && pwd)
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok  $*"; }

# make install runs install-ops; install-ops alone needs no build.
[ "$(make -C "$root" -n install PREFIX="$dir/x" | grep -c install-ops)" -gt 0 ] || fail "make install does not run install-ops"
make -C "$root" --no-print-directory -s install-ops PREFIX="$dir/usr" SYSCONFDIR="$dir/etc"
for file in usr/lib/systemd/system/stockd.service usr/lib/sysusers.d/stockd.conf etc/stockd/stockd.conf \
            usr/share/doc/stockd/operations.md etc/prometheus/rules/stockd-alerts.yml \
            usr/share/stockd/grafana/stockd-dashboard.json etc/grafana/provisioning/dashboards/stockd.yaml; do
    [ -f "$dir/$file" ] || fail "make install-ops did not install $file"
done
ok "install-ops: unit, sysusers, settings, doc, rules, dashboard and its provisioning"
echo "# edited" >>"$dir/etc/stockd/stockd.conf"
make -C "$root" --no-print-directory -s install-ops PREFIX="$dir/usr" SYSCONFDIR="$dir/etc"
grep -q '^# edited$' "$dir/etc/stockd/stockd.conf" || fail "install-ops overwrote an edited stockd.conf"
ok "install-ops keeps an edited stockd.conf"
grep -qx "      path: $dir/usr/share/stockd/grafana" "$dir/etc/grafana/provisioning/dashboards/stockd.yaml" ||
    fail "Grafana's provisioning does not point at the dashboard's folder"

# The unit, with ExecStart at the stockd installed beside it.
unit=$dir/usr/lib/systemd/system/stockd.service
install -D -m 755 "$BUILD/stockd" "$dir/usr/bin/stockd"
grep -qx "ExecStart=$dir/usr/bin/stockd --config /etc/stockd/stockd.conf" "$unit" || fail "ExecStart: $(grep ExecStart "$unit")"
for directive in 'User=stockd' 'StateDirectory=stockd' 'ProtectSystem=strict' 'NoNewPrivileges=yes' \
                 'Restart=on-failure' 'LimitNOFILE=65536' 'PrivateTmp=yes' 'CapabilityBoundingSet='; do
    grep -qx "$directive" "$unit" || fail "the unit lacks $directive"
done
verify=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify: $verify"
[ -z "$verify" ] || fail "systemd-analyze verify has something to say: $verify"
ok "systemd-analyze verify: nothing to say"
exposure=$(systemd-analyze security --offline=true "$unit" 2>&1 | sed -n 's/.*Overall exposure level for stockd.service: \([0-9.]*\).*/\1/p')
[ -n "$exposure" ] || fail "systemd-analyze security gave no exposure level"
awk -v e="$exposure" 'BEGIN { exit !(e <= 2.5) }' || fail "the unit's exposure is $exposure (over 2.5)"
ok "systemd-analyze security --offline: exposure $exposure"
grep -q '^u stockd ' "$dir/usr/lib/sysusers.d/stockd.conf" || fail "no stockd user in sysusers.d"

# The installed settings start stockd (flags after --config win: ports, store).
port=$(pick_port 17482 17489)
http=$(pick_port 17490 17497)
BIN=$dir/usr/bin start_stockd "$port" "$dir/data" "$dir/stockd.log" --config "$dir/etc/stockd/stockd.conf" \
    --store "$dir/data" --port "$port" --http-port "$http" || fail "stockd does not start with the installed stockd.conf"
pid=$STOCKD_PID
curl -s "http://127.0.0.1:$http/metrics" >"$dir/metrics"
ok "stockd starts with the installed stockd.conf"

# Alert rules: valid, and each fires when it should (tests/ops).
rules=$dir/etc/prometheus/rules/stockd-alerts.yml
promtool check rules "$rules" || fail "promtool check rules"
promtool test rules "$root/tests/ops/stockd-alerts.test.yml" || fail "promtool test rules"
ok "alert rules: checked and unit-tested"

# Dashboard: JSON, and every query valid PromQL (as recording rules, with
# Grafana's variables given values).
dashboard=$dir/usr/share/stockd/grafana/stockd-dashboard.json
jq -e '.uid == "stockd" and (.panels | length) > 0' "$dashboard" >/dev/null || fail "the dashboard is not a stockd dashboard"
{
    echo "groups:"
    echo "  - name: dashboard"
    echo "    rules:"
    jq -r '.panels[].targets[].expr' "$dashboard" | sed -e 's/\$__rate_interval/5m/g' -e 's/\$instance/.*/g' |
        awk '{ gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); printf "      - record: dashboard:query_%d\n        expr: \"%s\"\n", NR, $0 }'
} >"$dir/dashboard-rules.yml"
promtool check rules "$dir/dashboard-rules.yml" || fail "a dashboard query is not valid PromQL"
ok "dashboard: $(jq '[.panels[].targets[]] | length' "$dashboard") queries, all valid PromQL"

# Every stockd_ metric used is served (a histogram by its _bucket, _sum, _count).
served=$(grep -v '^#' "$dir/metrics" | sed 's/[{ ].*//' | sort -u)
used=$( (cat "$rules"; jq -r '.panels[].targets[].expr' "$dashboard") | grep -o 'stockd_[a-z_]*' | sort -u)
for name in $used; do
    echo "$served" | grep -qx "$name" || fail "$name is used but stockd's /metrics does not serve it"
done
ok "every metric the rules and the dashboard use is served: $(echo $used | wc -w) names"
echo "48-ops: all passed"
