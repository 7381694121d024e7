#!/usr/bin/env bash
# 12-standalone.sh -- the project stands on its own: no tracked file under
# src, include, docs, tests, tools, bench, scripts, nor README.md or the
# Makefile, cites a document outside the repository (an outside design
# brief, its numbered sections, a sibling folder of the checkout). Such
# citations are replaced by the project's own pages: docs/semantics.md
# (operations, invariants), docs/protocol.md (wire messages),
# docs/stockbench.md (workloads), docs/schemes.md (schemes).
#
# The detector is tested first on a planted reference, so a pattern that
# stops matching fails the suite instead of passing it silently.
set -eu
cd "$(dirname "$0")/../.."

# The patterns are put together at run time, so this file does not match
# itself.
brief=DESIGN
sibling=shared
outside="(${brief}\\.md|${brief} +(section|§)|design"" article|\\.\\./${sibling}\\b|/work/${sibling}\\b)"

# scan FILE...: prints every line of the files that cites an outside
# document; succeeds only if there is none.
scan() {
    ! grep -nIE -- "$outside" "$@"
}

# tracked_files: the files to check, from git when this is a checkout.
paths=(src include docs tests tools bench scripts README.md Makefile)
tracked_files() {
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git ls-files -- "${paths[@]}"
    else
        find "${paths[@]}" -type f 2>/dev/null
    fi
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== the detector catches planted references"
for planted in "see ../${sibling}/${brief}.md" "in ../${sibling}" "(${brief} section 2)" "${brief} §8 workloads" \
               "the design"" article's scheme" "/work/${sibling}/notes.txt"; do
    printf 'clean line\n/* %s */\n' "$planted" >"$work/planted.c"
    if scan "$work/planted.c" >/dev/null; then
        echo "FAIL: the detector missed: $planted"
        exit 1
    fi
done
printf 'see docs/semantics.md and ../system/server_helpers.sh\n' >"$work/clean.c"
scan "$work/clean.c" || { echo "FAIL: the detector flagged a clean file"; exit 1; }

echo "== no tracked file cites an outside document"
mapfile -t files < <(tracked_files)
[ "${#files[@]}" -gt 50 ] || { echo "FAIL: only ${#files[@]} files to check"; exit 1; }
if ! scan "${files[@]}"; then
    echo "FAIL: the lines above cite a document outside the repository;"
    echo "      cite docs/semantics.md, docs/protocol.md, docs/stockbench.md or docs/schemes.md"
    exit 1
fi
echo "checked ${#files[@]} files"
