#!/usr/bin/env bash
# 22-formats.sh -- every released store format opens with this libstock,
# and a newer one is refused naming both versions (docs/engine.md, "Format
# versions").
#
# tests/fixtures/formats/vN/ holds a store written by the code of format N
# (tests/fixtures/formats/make.sh N says which, and made it): a snapshot and
# a log after it, of the same ops in every version. For each:
#   - every file header says version N;
#   - it opens (no torn tail), from its snapshot and log, and holds exactly
#     the content make.sh wrote: SKU totals, an order's line, a confirmed
#     and a released hold, a replay answering with the original result;
#   - it takes new writes, whose files are in the current format, and opens
#     again with all of it.
# There must be a fixture for every version from 1 to the current one.
# Then a copy of the newest fixture with a snapshot, then a segment, made
# one version newer: the open fails UNSUPPORTED naming both versions, and
# changes no file.
set -eu
BUILD=${BUILD:-build}
ctl="$BUILD/stockctl"
version_tool="$BUILD/tests/format_version"
for binary in "$ctl" "$version_tool"; do
    [ -x "$binary" ] || { echo "missing $binary (make tests)"; exit 1; }
done
fixtures="$(dirname "$0")/../fixtures/formats"
dir=$(mktemp -d "${TMPDIR:-/tmp}/stockd-formats.XXXXXX")
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

current=$(sed -n 's/^#define JOURNAL_FORMAT_VERSION \([0-9]*\)$/\1/p' \
    "$(dirname "$0")/../../src/journal/journal_internal.h")
[ -n "$current" ] || fail "cannot read JOURNAL_FORMAT_VERSION"

. "$(dirname "$0")/../harness/sku_totals.sh"

# content STORE EXTRA: what make.sh wrote, plus EXTRA units deducted from A.
content() {
    sku_totals "$1" A "[$((104 - $2)),110,$((7 + $2)),1,0]"
    sku_totals "$1" B "[41,45,5,1,0]"
    "$ctl" --store "$1" --json line L3 | jq -e '.order_id == "O1" and .qty == 4 and .sku == "B"' \
        >/dev/null || fail "line L3 of $1"
    "$ctl" --store "$1" --json hold-info H1 | jq -e '.state == "confirmed" and .confirmed == 2' \
        >/dev/null || fail "hold H1 of $1"
    "$ctl" --store "$1" --json hold-info H2 | jq -e '.state == "released"' >/dev/null ||
        fail "hold H2 of $1"
    "$ctl" --store "$1" --json deduct L1 A 3 | jq -e '.code == "REPLAY" and .available == 107' \
        >/dev/null || fail "the replay of L1 on $1"
}

for version in $(seq 1 "$current"); do
    [ -d "$fixtures/v$version" ] ||
        fail "no fixture of format $version (tests/fixtures/formats/make.sh $version)"
    echo "== format $version"
    for file in "$fixtures/v$version"/*; do
        [ "$("$version_tool" "$file")" = "$version" ] || fail "$file is not in format $version"
    done
    store="$dir/v$version"
    cp -r "$fixtures/v$version" "$store"
    stats=$("$ctl" --store "$store" --json stats)
    echo "$stats" | jq -e '.recovery_torn_bytes == 0 and .recovery_snapshot_lsn > 0 and .recovery_records > 0' \
        >/dev/null || fail "format $version did not open from its snapshot and log: $stats"
    content "$store" 0
    "$ctl" --store "$store" deduct L5 A 1 >/dev/null || fail "a write into format $version"
    content "$store" 1
    newest=$(ls "$store"/log-*.wal | sort | tail -n 1)
    [ "$("$version_tool" "$newest")" = "$current" ] ||
        fail "the newest segment of the upgraded store is not in format $current"
    echo "  opens with its content, takes writes (in format $current), opens again"
done

echo "== a newer format is refused, naming both versions, and nothing changes"
newer=$((current + 1))
for kind in snap log; do
    store="$dir/newer-$kind"
    cp -r "$fixtures/v$current" "$store"
    file=$(ls "$store"/$kind-* | sort | tail -n 1)
    "$version_tool" "$file" "$newer"
    before=$(cd "$store" && sha256sum * | sha256sum)
    if out=$("$ctl" --store "$store" get A 2>&1); then
        fail "a store with $(basename "$file") in format $newer opened: $out"
    fi
    echo "$out" | grep -q "$(basename "$file") is in store format version $newer, newer than this libstock .* reads (versions 1 to $current)" ||
        fail "the refusal does not name both versions: $out"
    echo "$out" | grep -q "not supported" || fail "the refusal is not UNSUPPORTED: $out"
    rm -f "$store/LOCK"
    [ "$(cd "$store" && sha256sum * | sha256sum)" = "$before" ] ||
        fail "the refused open changed files: $(ls "$store")"
    echo "  $(basename "$file") in format $newer: $out"
done
echo "formats test passed"
