#!/usr/bin/env bash
# install-deps.sh -- installs the Debian 12 packages stockd needs to build,
# test and benchmark. Idempotent: does nothing when all are present. Uses sudo
# when not run as root.
set -eu
# build-essential brings gcc, g++ and readelf, which 11-header uses to
# compile stock.h as C++ and read the soname. libfiu-dev and fiu-utils
# (fiu-run, fiu-ctrl, the POSIX preload library) inject the disk and memory
# faults of 80-81, faketime and libfaketime the clock jumps of 82.
packages=(
    build-essential pkg-config clang libclang-rt-14-dev xxd
    libuv1-dev libjansson-dev libhttp-parser-dev libpq-dev libhiredis-dev
    libxxhash-dev libcmocka-dev libssl-dev openssl
    postgresql-15 postgresql-client-15 redis-server redis-tools
    python3-redis curl gnuplot-nox prometheus jq iproute2
    nats-server libnats-dev
    libfiu-dev fiu-utils faketime libfaketime
)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
        missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
