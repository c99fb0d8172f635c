#!/bin/sh
# deps.sh: install the Debian packages the project needs, if any are missing.
# Usage: scripts/deps.sh build|test|plot   (each set includes the ones before)
# Runs apt-get as root, through sudo otherwise; prints what it installs.
set -eu
build="gcc make pkg-config libmsgpack-dev libopenblas-openmp-dev libzstd-dev"
test="bats bats-support bats-assert python3 python3-numpy python3-msgpack zstd time procps bsdutils"
plot="gnuplot-nox"
case "${1:-build}" in
    build) want="$build" ;;
    test) want="$build $test" ;;
    plot) want="$build $test $plot" ;;
    *) echo "deps.sh: unknown set '$1' (build|test|plot)" >&2; exit 2 ;;
esac
missing=""
for p in $want; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps.sh: installing missing Debian packages:$missing" >&2
if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else
    echo "deps.sh: not root and no sudo; install these by hand:$missing" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >&2
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >&2
