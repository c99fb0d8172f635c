# helpers.bash: shared set-up for the bats suites (load with `load helpers`).
# Gives ROOT (the checkout), BIN (built stages), TOOLS (test programs),
# PY (Debian's python3, which has numpy and msgpack), FIX (fixtures) and a
# fresh per-test directory T.
ROOT="$(cd "$BATS_TEST_DIRNAME/.." && pwd)"
BIN="$ROOT/bin"
TOOLS="$ROOT/build/tests"
FIX="$ROOT/tests/fixtures"
PY=/usr/bin/python3
SHARED="$ROOT/../shared"
export PATH="$BIN:$PATH"

setup() {
    T="$BATS_TEST_TMPDIR"
}

# skip_without_data DATASET: skip a test that needs ../shared/datasets/DATASET.
skip_without_data() {
    [ -d "$SHARED/datasets/$1" ] || skip "needs ../shared/datasets/$1 (real data, absent here)"
}
