#!/bin/sh
# deps.sh: install the Debian packages the project needs, if any are missing.
# Usage: scripts/deps.sh [--versions] build|test|plot
#   build  compiler and libraries          test  + what the suites run and compare with
#   plot   + gnuplot for `make plot`       (each set includes the ones before)
#   --versions  install nothing; print each package of the set and its
#               installed version, one line each (CI's log shows what it saw)
# Runs apt-get as root, through sudo otherwise; prints what it installs.
#
# Why each package:
#   gcc make pkg-config      the build (gcc brings OpenMP: libgomp)
#   libmsgpack-dev           msgpack-c: the tensor streams' encoding
#   libopenblas-openmp-dev   OpenBLAS built with OpenMP: dense products, sharing gcc's thread pool
#   libzstd-dev              zstd compression of streams
#   libdnnl-dev              oneDNN: the large dense products (matmul), about twice OpenBLAS's
#                            rate here in f32 and four times in bf16 (common/kernels/gemm.h)
#   bats bats-support bats-assert   the test suites
#   python3 python3-numpy python3-msgpack   fixture generators, the Python stream reader, the demo's data
#   python3-scipy            the strongest checks of convert-pkl and build-graph compare with scipy
#   zstd                     the command-line tool, to check our frames against it
#   time procps bsdutils     peak memory (GNU time), pkill in the kill-and-resume tests, script(1)
#   clang-14                 builds the libFuzzer harnesses of tests/fuzz (make fuzz; fuzz.bats in make test)
#   libclang-rt-14-dev       clang's runtimes: libFuzzer and its ASan/UBSan (gcc's, for make SANITIZE=1, come with gcc)
#   munge slurmctld slurmd slurm-client   a private one-node Slurm for tests/slurm.bats
#                            (tests/tools/minislurm.sh): SUBMIT=srun, sweeps, sharded augment
#   gnuplot-nox              make plot
set -eu
versions=0
[ "${1:-}" = "--versions" ] && { versions=1; shift; }
build="gcc make pkg-config libmsgpack-dev libopenblas-openmp-dev libzstd-dev libdnnl-dev"
test="bats bats-support bats-assert python3 python3-numpy python3-scipy python3-msgpack zstd time procps bsdutils clang-14 libclang-rt-14-dev munge slurmctld slurmd slurm-client"
plot="gnuplot-nox"
case "${1:-build}" in
    build) want="$build" ;;
    test) want="$build $test" ;;
    plot) want="$build $test $plot" ;;
    *) echo "deps.sh: unknown set '$1' (build|test|plot)" >&2; exit 2 ;;
esac
if [ $versions = 1 ]; then
    for p in $want; do
        v=$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null) || v=""
        echo "deps: $p ${v:-not installed}"
    done
    exit 0
fi
missing=""
for p in $want; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps.sh: installing missing Debian packages:$missing" >&2
if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else
    echo "deps.sh: not root and no sudo; install these by hand, then run make again:$missing" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >&2
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >&2
