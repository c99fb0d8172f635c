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

# synthetic_data DIR USERS ITEMS: a small synthetic dataset in DIR/syn (the
# release's layout) and its stream with graph/ui in DIR/syn.ts; exports SYN
# and DATA.  For setup_file.
synthetic_data() {
    export SYN="$1/syn" DATA="$1/syn.ts"
    "$PY" "$ROOT/examples/make_synthetic.py" "$SYN" --users "$2" --items "$3" >/dev/null
    "$BIN/convert-pkl" -q "$SYN" | "$BIN/build-graph" -q --pass -o "$DATA"
}
