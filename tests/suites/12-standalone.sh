#!/usr/bin/env bash
# 12-standalone.sh -- the project stands on its own: no tracked file under
# src, include, docs, tests, tools, bench, scripts, nor README.md or the
# Makefile, cites a document outside the repository (an outside design
# brief, its numbered sections, a sibling folder of the checkout). Such
# citations are replaced by the project's own pages: docs/semantics.md
# (operations, invariants), docs/protocol.md (wire messages),
# docs/stockbench.md (workloads), docs/schemes.md (schemes).
#
# Then every reference inside the project must resolve: each page of docs/
# that a file names exists, each section it cites by title (the page, a
# comma, the title in double quotes) is a heading of that page or a bold
# paragraph lead, and each relative link of a markdown page reaches a file
# inside the repository (and, with #anchor, a heading).
#
# Each detector is tested first on planted faults, so a check that stops
# matching fails the suite instead of passing it silently.
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

# resolve FILE...: prints every reference of the files that does not
# resolve inside the project; succeeds only if there is none.
resolve() {
    python3 - "$@" <<'PYTHON'
import os, re, sys

def slug(heading):
    heading = re.sub(r'[^\w\- ]', '', heading.strip().lower())
    return heading.replace(' ', '-')

def sections(path):
    """The headings and bold paragraph leads of a markdown page, and slugs."""
    names, slugs = set(), set()
    with open(path, encoding='utf-8') as page:
        for line in page:
            heading = re.match(r'#+\s+(.*?)\s*$', line)
            if heading:
                names.add(heading.group(1))
                slugs.add(slug(heading.group(1)))
            names.update(re.findall(r'\*\*([^*]+?)\.\*\*', line))
    return names, slugs

def cites(doc, title):
    """A title matches a heading, or a heading that adds ' (...)' to it."""
    return any(name == title or name.startswith(title + ' (')
               for name in sections(doc)[0])

bad = []
for name in sys.argv[1:]:
    try:
        with open(name, encoding='utf-8') as source:
            text = source.read()
    except (UnicodeDecodeError, IsADirectoryError):
        continue
    for m in re.finditer(r'\bdocs/([A-Za-z0-9_-]+\.[a-z]+)', text):
        if not os.path.exists(os.path.join('docs', m.group(1))):
            bad.append(f'{name}: names docs/{m.group(1)}, which does not exist')
    for m in re.finditer(r'\bdocs/([A-Za-z0-9_-]+\.md),\s+"([^"]{1,100})"', text):
        doc = os.path.join('docs', m.group(1))
        # A title may wrap onto a comment's next line.
        title = re.sub(r'\s*\n\s*(\*|#|--)?\s*', ' ', m.group(2)).strip()
        if os.path.exists(doc) and not cites(doc, title):
            bad.append(f'{name}: cites "{title}" of {doc}, which has no such section')
    if not name.endswith('.md'):
        continue
    for m in re.finditer(r'\]\(([^)\s]+)\)', text):
        target = m.group(1)
        if re.match(r'[a-z]+:', target):
            continue
        path, _, anchor = target.partition('#')
        full = os.path.normpath(os.path.join(os.path.dirname(name), path)) if path else name
        if full.startswith('..') or os.path.isabs(full):
            bad.append(f'{name}: links to {target}, outside the repository')
        elif not os.path.exists(full):
            bad.append(f'{name}: links to {target}, which does not exist')
        elif anchor and full.endswith('.md') and anchor not in sections(full)[1]:
            bad.append(f'{name}: links to {target}, a heading that does not exist')
for line in bad:
    print(line)
sys.exit(1 if bad else 0)
PYTHON
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
pages=docs   # kept apart from the names, so that this file cites nothing
for planted in "$pages/engine.md, \"Threads\"" "$pages/no-such-page.md"; do
    printf '/* see %s */\n' "$planted" >"$work/planted.c"
    if resolve "$work/planted.c" >/dev/null; then
        echo "FAIL: the resolver missed: $planted"
        exit 1
    fi
done
printf '/* %s/engine.md, "Threads and\n * group commit" */\n' "$pages" >"$work/clean.c"
resolve "$work/clean.c" || { echo "FAIL: the resolver flagged a wrapped, valid section"; exit 1; }

echo "== no tracked file cites an outside document"
mapfile -t files < <(tracked_files)
[ "${#files[@]}" -gt 50 ] || { echo "FAIL: only ${#files[@]} files to check"; exit 1; }
if ! scan "${files[@]}"; then
    echo "FAIL: the lines above cite a document outside the repository;"
    echo "      cite docs/semantics.md, docs/protocol.md, docs/stockbench.md or docs/schemes.md"
    exit 1
fi

echo "== every reference inside the project resolves"
if ! resolve "${files[@]}"; then
    echo "FAIL: the lines above name pages, sections or links that do not exist"
    exit 1
fi
echo "checked ${#files[@]} files"
