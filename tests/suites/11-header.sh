#!/usr/bin/env bash
# 11-header: include/stock.h is a contract a stranger can embed. It compiles
# alone as C99 (-pedantic) and as C++; its version macros, stock_version(),
# the build's libstock.pc and the soname agree; and a program embedding the
# library (tests/system/embed_log.c) hears recovery's torn-tail notice
# through its log hook while nothing reaches its stderr, with a hook or
# without one (the default).
set -eu
helper=$BUILD/tests/embed_log
work=$(mktemp -d /tmp/stock-header.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
cd "$ROOT"

echo "== the header compiles alone (included twice: the guard holds)"
printf '#include "stock.h"\n#include "stock.h"\n' >"$work/alone.c"
cc -std=c99 -pedantic -Werror -Wall -Wextra -fsyntax-only -Iinclude "$work/alone.c"
cc -std=c11 -pedantic -Werror -Wall -Wextra -fsyntax-only -Iinclude "$work/alone.c"
c++ -fsyntax-only -Wall -Werror -Iinclude -x c++ "$work/alone.c"
c++ -std=c++11 -pedantic -fsyntax-only -Wall -Wextra -Werror -Iinclude -x c++ "$work/alone.c"
if grep -nE '\.\./|DESIGN' include/stock.h; then
    fail "stock.h refers to something outside the repository"
fi

echo "== one version everywhere"
read -r macros text library < <("$helper" version)
echo "macros $macros, STOCK_VERSION $text, stock_version() $library"
[ "$macros" = "$text" ] || fail "STOCK_VERSION $text is not the macros' $macros"
[ "$library" = "$text" ] || fail "stock_version() $library is not STOCK_VERSION $text"
pc_version=$(sed -n 's/^Version: *//p' "$BUILD/libstock.pc")
[ "$pc_version" = "$text" ] || fail "libstock.pc says $pc_version, stock.h $text"
soname=$(readelf -d "$BUILD/libstock.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = "libstock.so.${text%%.*}" ] || fail "soname '$soname', wanted libstock.so.${text%%.*}"

echo "== the log hook hears recovery; the library never prints"
store=$work/store
"$helper" write "$store" 2>"$work/err" || fail "write: $(cat "$work/err")"
[ ! -s "$work/err" ] || fail "the library wrote to stderr: $(cat "$work/err")"
segment=$(ls "$store"/log-*.wal | tail -1)
printf 'torn write' >>"$segment"   # a torn tail (docs/engine.md, "Recovery")
"$helper" reopen "$store" 2>"$work/err" || fail "reopen: $(cat "$work/err")"
[ ! -s "$work/err" ] || fail "the library wrote to stderr with a hook set: $(cat "$work/err")"

echo "== without a hook, the library writes nothing anywhere"
printf 'torn write' >>"$segment"
"$helper" silent "$store" 2>"$work/err" || fail "silent: $(cat "$work/err")"
[ ! -s "$work/err" ] || fail "the library wrote to stderr without a hook: $(cat "$work/err")"
echo "header suite passed"
