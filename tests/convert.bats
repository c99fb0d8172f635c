#!/usr/bin/env bats
# convert.bats: convert-pkl, from the release's files to tensor streams.

load helpers

# binary_of EXPECTED: the (row col) pairs scipy's (M != 0) keeps after
# summing duplicates, from a pkl-dump .expected file ("rows cols n" then
# "row col value" lines).
binary_of() {
    "$PY" - "$1" <<'PYEOF'
import sys
from collections import defaultdict
lines = open(sys.argv[1]).read().split("\n")
rows, cols, n = map(int, lines[0].split())
acc = defaultdict(float)
for line in lines[1:1 + n]:
    r, c, v = line.split()
    acc[(int(r), int(c))] += float(v)
print(rows, cols)
for (r, c) in sorted(k for k, v in acc.items() if v != 0):
    print(r, c)
PYEOF
}

# csr_pairs STREAM NAME: the same listing from a converted stream.
csr_pairs() {
    "$PY" - "$1" "$2" <<'PYEOF'
import sys
sys.path.insert(0, "examples")
from ts_read import read_stream
ip, ix, v, (rows, cols) = read_stream(sys.argv[1])[sys.argv[2]]
assert (v == 1).all(), "values are not all 1"
print(rows, cols)
for r in range(rows):
    for k in range(ip[r], ip[r + 1]):
        print(r, ix[k])
PYEOF
}

@test "every fixture pickle converts to the binary matrix scipy would give" {
    cd "$ROOT"
    n=0
    for f in tests/fixtures/pkl/*.expected; do
        pkl="${f%.expected}.pkl"
        convert-pkl -q "train=$pkl" -o "$T/m.ts"
        diff <(binary_of "$f") <(csr_pairs "$T/m.ts" train) || { echo "differs: $pkl"; false; }
        n=$((n + 1))
    done
    [ "$n" -ge 15 ]
}

@test "every fixture .npy converts to float32 features equal to numpy's" {
    cd "$ROOT"
    for f in tests/fixtures/npy/good_f2_le.npy tests/fixtures/npy/good_fortran_f2_be.npy tests/fixtures/npy/good_f8_be.npy \
             tests/fixtures/npy/good_1d_f4.npy; do
        convert-pkl -q "feat/x=$f" -o "$T/f.ts"
        "$PY" - "$f" "$T/f.ts" <<'PYEOF'
import sys
import numpy as np
sys.path.insert(0, "examples")
from ts_read import read_stream
want = np.load(sys.argv[1]).astype(np.float32)
want = want.reshape(want.shape[0], -1)
got = read_stream(sys.argv[2])["feat/x"]
assert got.dtype == np.float32 and got.shape == want.shape, (got.dtype, got.shape, want.shape)
assert np.array_equal(got.view(np.uint32), np.ascontiguousarray(want).view(np.uint32)), "values differ"
PYEOF
    done
}

@test "a dataset folder becomes train, val, test, features and provenance" {
    "$PY" "$ROOT/examples/make_synthetic.py" "$T/syn" --users 50 --items 40 >/dev/null
    run convert-pkl "$T/syn" -o "$T/d.ts"
    [ "$status" -eq 0 ]
    [[ "$output" == *"train: $T/syn/trnMat.pkl 50 x 40"* ]]
    run inspect "$T/d.ts"
    for name in train val test feat/audio feat/image meta/dataset; do
        [[ "$output" == *"$name "* ]] || { echo "missing $name"; false; }
    done
    [[ "$output" == *"feat/image"*"dense"*"<f4"*"40x32"* ]]
    names=$(inspect --json "$T/d.ts" | grep -o '"name": "[a-z/]*"' | cut -d'"' -f4 | tr '\n' ' ')
    [ "$names" = "train val test feat/audio feat/image meta/dataset " ]
}

@test "convert-pkl works at the head of a pipe" {
    "$PY" "$ROOT/examples/make_synthetic.py" "$T/syn" --users 50 --items 40 >/dev/null
    run bash -c "convert-pkl -q '$T/syn' | inspect"
    [ "$status" -eq 0 ]
    [[ "$output" == *"train"*"csr"*"50x40"* ]]
}

@test "matrices of different shapes, or features of the wrong length, are refused" {
    cd "$ROOT"
    run convert-pkl "train=tests/fixtures/pkl/csr_p3.pkl" "test=tests/fixtures/pkl/coo_p3_old_dups_zero.pkl" -o "$T/x.ts"
    [ "$status" -eq 1 ]
    [[ "$output" == *"not the same users and items"* ]]
    run convert-pkl "train=tests/fixtures/pkl/csr_p3.pkl" "feat/x=tests/fixtures/npy/good_f4_le.npy" -o "$T/x.ts"
    [ "$status" -eq 1 ]
    [[ "$output" == *"'feat/x' has"*"rows but there are"*"items"* ]]
    [ ! -e "$T/x.ts" ]
}

@test "malicious, truncated and foreign files exit 1 naming the problem, with no output" {
    cd "$ROOT"
    run convert-pkl "train=tests/fixtures/pkl/bad_os_system.pkl" -o "$T/x.ts"
    [ "$status" -eq 1 ]
    [[ "$output" == *"refused global 'os.system'"* ]]
    [ ! -e pkl-pwned ] && [ ! -e "$T/pkl-pwned" ]
    run convert-pkl "train=tests/fixtures/pkl/bad_truncated.pkl" -o "$T/x.ts"
    [ "$status" -eq 1 ]
    [[ "$output" == *"truncated"* ]]
    run convert-pkl "train=tests/fixtures/pkl/bad_huge_length.pkl" -o "$T/x.ts"
    [ "$status" -eq 1 ]
    run convert-pkl "feat/x=tests/fixtures/npy/bad_huge_shape.npy" -o "$T/x.ts"
    [ "$status" -eq 1 ]
    [[ "$output" == *"header declares"* ]]
    [ ! -e "$T/x.ts" ]
}

@test "unknown files and missing folders are usage or runtime errors with a reason" {
    echo hi > "$T/notes.txt"
    run convert-pkl "$T/notes.txt"
    [ "$status" -eq 2 ]
    [[ "$output" == *"cannot tell what this file is"* ]]
    run convert-pkl "$T/nowhere"
    [ "$status" -eq 1 ]
    [[ "$output" == *"no such file or folder"* ]]
    mkdir "$T/empty"
    run convert-pkl "$T/empty" -o "$T/x.ts"
    [ "$status" -eq 1 ]
    [[ "$output" == *"no dataset files here"* ]]
    run convert-pkl
    [ "$status" -eq 2 ]
}

# need_real DATASET: skip unless the real data is here; fail without scipy.
need_real() {
    skip_without_data "$1"
    need_python scipy
}

# scipy_check DIR: scipy's matrices and numpy's features of the dataset in
# DIR equal what convert-pkl makes of it.
scipy_check() {
    convert-pkl -q "$1" -o "$T/d.ts"
    cd "$ROOT"
    "$PY" - "$1" "$T/d.ts" <<'PYEOF'
import glob, os, pickle, sys
import numpy as np
sys.path.insert(0, "examples")
from ts_read import read_stream
d, got = sys.argv[1], read_stream(sys.argv[2])
names = {"trnMat.pkl": "train", "valMat.pkl": "val", "tstMat.pkl": "test"}
for f, name in names.items():
    p = os.path.join(d, f)
    if not os.path.exists(p):
        assert name not in got, name
        continue
    m = (pickle.load(open(p, "rb")) != 0).tocsr().astype(np.float32)
    m.sort_indices()
    ip, ix, v, shape = got[name]
    assert shape == m.shape, (name, shape, m.shape)
    assert np.array_equal(ip, m.indptr) and np.array_equal(ix, m.indices) and (v == 1).all(), name
    print(f"{name}: {shape[0]} x {shape[1]}, {len(ix)} entries identical")
for p in glob.glob(os.path.join(d, "*_feat.npy")):
    name = "feat/" + os.path.basename(p)[:-len("_feat.npy")]
    want = np.load(p).astype(np.float32)
    assert np.array_equal(got[name].view(np.uint32), want.view(np.uint32)), name
    print(f"{name}: {want.shape} identical")
PYEOF
}

@test "TikTok converts to exactly scipy's matrices and numpy's features" {
    need_real tiktok
    run scipy_check "$SHARED/datasets/tiktok"
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"feat/image: (6710, 128) identical"* ]]
}

@test "Baby converts to exactly scipy's matrices" {
    need_real baby
    run scipy_check "$SHARED/datasets/baby"
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "Sports (no validation file) converts to exactly scipy's matrices" {
    need_real sports
    run scipy_check "$SHARED/datasets/sports"
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "the demo's data generator needs numpy alone: it runs where scipy cannot be imported" {
    run "$PY" "$ROOT/tests/tools/without_scipy.py" "$ROOT/examples/make_synthetic.py" "$T/syn" --users 40 --items 30
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"40 users, 30 items"* ]]
    # the guard is real: a script that needs scipy fails under it
    echo 'import scipy.sparse' > "$T/needs.py"
    run "$PY" "$ROOT/tests/tools/without_scipy.py" "$T/needs.py"
    [ "$status" -ne 0 ]
    [[ "$output" == *"scipy is hidden"* ]]
    # and scipy reads what the generator wrote as the matrices convert-pkl makes
    need_python scipy
    run scipy_check "$T/syn"
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"train: 40 x 30"*"identical"* ]]
    [[ "$output" == *"feat/audio: (30, 16) identical"* ]]
}

@test "matrices pickled by scipy itself, as coo, csr and csc at protocols 2 to 5, convert to exactly scipy's" {
    need_python scipy numpy
    "$PY" - "$T/d" <<'PYEOF'
import os, pickle, sys
import numpy as np, scipy.sparse as sp
d = sys.argv[1]; os.makedirs(d)
r = np.random.default_rng(5)
U, I = 70, 45
for k, (name, fmt, proto) in enumerate([("trnMat.pkl", "coo", 2), ("valMat.pkl", "csr", 4), ("tstMat.pkl", "csc", 5)]):
    m = sp.random(U, I, density=0.08 + 0.02 * k, format=fmt, random_state=k, dtype=np.float64)
    m.data[:] = r.choice([1.0, 2.0, 0.5], m.nnz)
    with open(os.path.join(d, name), "wb") as f:
        pickle.dump(m, f, protocol=proto)
np.save(os.path.join(d, "image_feat.npy"), r.standard_normal((I, 6)).astype(np.float32))
PYEOF
    run scipy_check "$T/d"
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"train: 70 x 45"*"identical"* ]]
    [[ "$output" == *"val: 70 x 45"*"identical"* ]]
    [[ "$output" == *"test: 70 x 45"*"identical"* ]]
}
