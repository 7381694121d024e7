#!/usr/bin/env bash
# install-deps.sh -- installs the Debian 12 packages stockd needs to build,
# test and benchmark, and the npm packages of tests/openapi. Idempotent:
# does nothing when all are present. Uses sudo when not run as root.
set -eu
# build-essential brings gcc, g++ and readelf, which 11-header uses to
# compile stock.h as C++ and read the soname. libfiu-dev and fiu-utils
# (fiu-run, fiu-ctrl, the POSIX preload library) inject the disk and memory
# faults of 80-81, faketime and libfaketime the clock jumps of 82.
# liblmdb-dev is the embedded engine's cold store (retention, docs/engine.md).
# gdb prints the stacks of a suite that hangs (tests/harness/watchdog.sh).
packages=(
    build-essential pkg-config clang libclang-rt-14-dev xxd
    libuv1-dev libjansson-dev libhttp-parser-dev libpq-dev libhiredis-dev
    libxxhash-dev libcmocka-dev libssl-dev openssl liburing-dev liblmdb-dev
    postgresql-15 postgresql-client-15 redis-server redis-tools
    python3-redis curl gnuplot-nox prometheus jq iproute2 nodejs systemd
    nats-server libnats-dev
    libfiu-dev fiu-utils faketime libfaketime gdb
)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
        missing+=("$package")
done
# npm comes with some builds of nodejs; Debian's own nodejs needs the npm package.
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -q
    $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# The OpenAPI validator of 43-openapi, at the versions package-lock.json
# pins, into tests/openapi/node_modules (not committed); again whenever the
# lock file changes.
openapi=$(dirname "$0")/../tests/openapi
if [ ! -f "$openapi/node_modules/.package-lock.json" ] ||
    [ "$openapi/package-lock.json" -nt "$openapi/node_modules/.package-lock.json" ]; then
    echo "install-deps: npm ci in tests/openapi"
    (cd "$openapi" && npm ci --no-audit --no-fund --loglevel=error)
fi
