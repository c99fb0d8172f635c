# helpers.bash: shared set-up for the bats suites (load with `load helpers`).
# Gives ROOT (the checkout), BIN (built stages), TOOLS (test programs),
# PY (Debian's python3, which has numpy, scipy and msgpack), FIX (fixtures),
# GOLDEN (the release's values, tests/fixtures/golden) and a fresh per-test
# directory T.
ROOT="$(cd "$BATS_TEST_DIRNAME/.." && pwd)"
# DIFFMM_BIN / DIFFMM_TOOLS: another build of the stages and test programs,
# e.g. the sanitizer build (bin-san, build-san/tests) that tests/run uses
BIN="${DIFFMM_BIN:-$ROOT/bin}"
TOOLS="${DIFFMM_TOOLS:-$ROOT/build/tests}"
FIX="$ROOT/tests/fixtures"
GOLDEN="$FIX/golden"
PY=/usr/bin/python3
SHARED="$ROOT/../shared"
export PATH="$BIN:$PATH"

setup() {
    T="$BATS_TEST_TMPDIR"
}

# skip_without_data DATASET: skip a test that needs ../shared/datasets/DATASET,
# the one kind of test allowed to skip (a clone used without ../shared).
# Every such skip gives the same reason, so tests/run sums them in one line.
skip_without_data() {
    [ -d "$SHARED/datasets" ] || skip "needs the real datasets in ../shared/datasets (absent beside this clone)"
    [ -d "$SHARED/datasets/$1" ] || skip "needs ../shared/datasets/$1 (absent)"
}

# need_python MODULE...: fail (never skip) when $PY lacks a module the test
# compares with; scripts/deps.sh test installs them all.
need_python() {
    local m
    for m in "$@"; do
        "$PY" -c "import $m" 2>/dev/null && continue
        echo "$PY cannot import $m: run scripts/deps.sh test (make test does)" >&2
        return 1
    done
}

# same_as_shared_golden FILE: the project's golden copy is byte-identical to
# the brief's (../shared/golden), when that folder is beside the clone.
same_as_shared_golden() {
    [ -f "$GOLDEN/$1" ] || { echo "no $GOLDEN/$1" >&2; return 1; }
    [ -d "$SHARED/golden" ] || return 0
    cmp "$SHARED/golden/$1" "$GOLDEN/$1"
}

# synthetic_data DIR USERS ITEMS: a small synthetic dataset in DIR/syn (the
# release's layout) and its stream with graph/ui in DIR/syn.ts; exports SYN
# and DATA.  For setup_file.
synthetic_data() {
    export SYN="$1/syn" DATA="$1/syn.ts"
    "$PY" "$ROOT/examples/make_synthetic.py" "$SYN" --users "$2" --items "$3" >/dev/null
    "$BIN/convert-pkl" -q "$SYN" | "$BIN/build-graph" -q --pass -o "$DATA"
}

# untimed FILE...: metrics lines without their timing keys (they differ run to run)
untimed() { sed -E 's/, "(train|diffuse|augment|evaluate)_(seconds|t_[a-z]+|gemm_seconds)": [0-9.e+-]+//g' "$@"; }

# outcomes FILE...: only what a run computed, per metrics line: evaluations,
# losses, edge counts (not timings, engines or how augment was split)
outcomes() {
    sed -E 's/"((test|val)_[a-z@0-9_]+|train_(loss|bpr|reg|cl)|diffuse_(loss|diff|gc)\/[a-z]+|augment_edges\/[a-z]+)": ([^,}]+)/\n@\1=\5\n/g' "$@" |
        grep '^@'
}
