# sku_totals.sh -- what the suites that open fixture stores with stockctl
# in-process share (21-holds-upgrade, 22-formats). Sourced; needs $ctl (the
# stockctl binary) and a fail function.
#
# sku_totals STORE SKU WANT: fails unless the SKU's totals, as JSON
# [available, adjusted, deducted, refunded, held], are WANT.
sku_totals() {
    local out
    out=$("$ctl" --store "$1" --json get "$2") || fail "get $2 on $1: $out"
    [ "$(echo "$out" | jq -c '[.available,.adjusted,.deducted,.refunded,.held]')" = "$3" ] ||
        fail "get $2 on $1: $out, wanted [available,adjusted,deducted,refunded,held] = $3"
}
