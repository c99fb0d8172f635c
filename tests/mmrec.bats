#!/usr/bin/env bats
# mmrec.bats: MMRec's dataset layout in and out (convert-mmrec,
# export-mmrec), and the recipes on it (FORMAT=mmrec).

load helpers

setup_file() {
    export SYN="$BATS_FILE_TMPDIR/pkl/syn" MM="$BATS_FILE_TMPDIR/mm/syn"
    "$PY" "$BATS_TEST_DIRNAME/../examples/make_synthetic.py" "$SYN" --users 300 --items 250 >/dev/null
    "$PY" "$BATS_TEST_DIRNAME/../examples/make_synthetic.py" "$MM" --users 300 --items 250 --format mmrec >/dev/null
}

# records MMRec's file can hold (meta/dataset names the source), raw
same_records() { cmp <(pick --drop meta/dataset --zstd 0 "$1") <(pick --drop meta/dataset --zstd 0 "$2"); }

# inter DIR LINES...: a dataset folder DIR with syn.inter of the given lines
# (tabs written as \t) and the synthetic data's features
inter() {
    local d=$1; shift
    mkdir -p "$d"
    printf '%b\n' "$@" > "$d/syn.inter"
    cp "$MM"/*_feat.npy "$d/"
}

@test "the pickles, their MMRec export and its import are the same records, and numpy reads the export" {
    convert-pkl -q "$SYN" -o "$T/pkl.ts"
    export-mmrec -q "$T/pkl.ts" -o "$T/out/syn/"
    ls "$T/out/syn/syn.inter" "$T/out/syn/image_feat.npy" "$T/out/syn/audio_feat.npy"
    convert-mmrec -q "$T/out/syn" -o "$T/back.ts"
    same_records "$T/pkl.ts" "$T/back.ts"
    # and the other way: MMRec's layout, exported again, is the same file
    convert-mmrec -q "$MM" -o "$T/mm.ts"
    export-mmrec -q "$T/mm.ts" -o "$T/again/syn"
    diff <(sort "$MM/syn.inter" | cut -f1,2,5 | grep -v userID) <(sort "$T/again/syn/syn.inter" | grep -v userID)
    "$PY" - "$T/pkl.ts" "$T/out/syn" <<'PYEOF'
import sys
import numpy as np
sys.path.insert(0, "examples")
from ts_read import read_stream
t, d = read_stream(sys.argv[1]), sys.argv[2]
for m in ("image", "audio"):
    a = np.load(f"{d}/{m}_feat.npy")
    assert a.dtype == np.float32 and np.array_equal(a, t["feat/" + m]), m
rows = np.loadtxt(f"{d}/syn.inter", dtype=np.int64, skiprows=1, delimiter="\t")
for s, name in enumerate(("train", "val", "test")):
    ip, ix, v, (U, I) = t[name]
    want = {(u, i) for u in range(U) for i in ix[ip[u]:ip[u + 1]]}
    got = {(u, i) for u, i, x in rows if x == s}
    assert got == want, name
print("ok: numpy reads the features and the splits back")
PYEOF
}

@test "convert-mmrec takes renamed, reordered and extra columns, CRLF and blank lines; repeats count once" {
    inter "$T/a" 'userID\titemID\tx_label' '0\t1\t0' '0\t1\t0' '1\t2\t1' '2\t3\t2' '2\t4\t0'
    inter "$T/b" 'ts\titem_id:token\tlabel\tuser_id:token\trating' '9\t1\t0\t0\t5\r' '' '9\t2\t1\t1\t5\r' \
        '9\t3\t2\t2\t5\r' '9\t4\t0\t2\t5\r' ''
    convert-mmrec -q "$T/a" -o "$T/a.ts"
    convert-mmrec -q "$T/b" --user-field user_id:token --item-field item_id:token --split-field label -o "$T/b.ts"
    same_records "$T/a.ts" "$T/b.ts"
    run inspect "$T/a.ts"
    echo "$output"
    # 3 users (largest id + 1), the features' 250 items, the repeated line once
    [[ "$output" == *"train "*"3x250 "*" 2 "* ]]
    [[ "$output" == *"val "*"3x250 "*" 1 "* ]] && [[ "$output" == *"test "*"3x250 "*" 1 "* ]]
    # only the features named, or none
    convert-mmrec -q "$T/a" "$T/a/image_feat.npy" -o "$T/img.ts"
    run inspect "$T/img.ts"
    [[ "$output" == *"feat/image"* ]] && [[ "$output" != *"feat/audio"* ]]
    convert-mmrec -q "$T/a" --no-features -o "$T/none.ts"
    run inspect "$T/none.ts"
    [[ "$output" == *"train "*"3x5 "* ]] && [[ "$output" != *"feat/"* ]]
}

@test "convert-mmrec refuses leaks, bad ids and labels, missing columns, short lines and disagreeing features, naming file and line" {
    check() {   # check MESSAGE LINES...: exit 1 and the message, no output file
        local want=$1; shift
        rm -rf "$T/d"; inter "$T/d" "$@"
        run convert-mmrec -q "$T/d" -o "$T/x.ts"
        echo "$output"
        [ "$status" -eq 1 ] && [[ "$output" == *"$want"* ]] && [ ! -e "$T/x.ts" ]
    }
    check "syn.inter: line 4: user 0, item 1 is in test here and in train at line 2: a leak" \
        'userID\titemID\tx_label' '0\t1\t0' '1\t1\t1' '0\t1\t2'
    check "line 3: item 250, but the feature files have 250 rows" 'userID\titemID\tx_label' '0\t1\t0' '0\t250\t0'
    check "line 2: itemID '1.5' is not a non-negative integer" 'userID\titemID\tx_label' '0\t1.5\t0'
    check "line 2: userID '-1' is not a non-negative integer" 'userID\titemID\tx_label' '-1\t1\t0'
    check "line 2: userID '' is not" 'userID\titemID\tx_label' '\t1\t0'
    check "line 3: x_label 3 is not 0 (train), 1 (validation) or 2 (test)" 'userID\titemID\tx_label' '0\t1\t0' '0\t2\t3'
    check "line 1: no column 'x_label' in the header (another name: --split-field)" 'userID\titemID\tsplit' '0\t1\t0'
    check "line 3: 2 fields, but column 'x_label' is field 3" 'userID\titemID\tx_label' '0\t1\t0' '0\t2'
    check "no interactions" 'userID\titemID\tx_label'
    rm -rf "$T/d"; inter "$T/d" 'userID\titemID\tx_label' '0\t1\t0'
    "$PY" -c 'import numpy as np, sys; np.save(sys.argv[1], np.zeros((249, 4), np.float32))' "$T/d/text_feat.npy"
    run convert-mmrec -q "$T/d"
    [ "$status" -eq 1 ] && [[ "$output" == *"text_feat.npy has 249 rows but"*"has 250"* ]]
    cp "$T/d/syn.inter" "$T/d/other.inter"
    run convert-mmrec -q "$T/d" --no-features
    [ "$status" -eq 1 ] && [[ "$output" == *"several .inter files; choose one with --name"* ]]
    convert-mmrec -q "$T/d" --name other --no-features -o "$T/x.ts"
    run convert-mmrec -q "$T/nowhere"
    [ "$status" -eq 1 ]
}

@test "the recipes train from MMRec's layout to the metrics of the pickle layout" {
    mk() { make --no-print-directory -C "$ROOT" -f pipelines/run.mk DATASET=demo RUNS="$T/runs" DIMS=64 EPOCHS=2 "$@" epochs; }
    mk DATA="$SYN" RUN=pkl
    mk DATA="$MM" RUN=mmrec           # FORMAT=mmrec found by the .inter file
    same_records "$T/runs/demo/pkl/base.ts" "$T/runs/demo/mmrec/base.ts"
    diff <(outcomes "$T/runs/demo/pkl/metrics.jsonl") <(outcomes "$T/runs/demo/mmrec/metrics.jsonl")
    grep -q '"val_recall@20"' "$T/runs/demo/mmrec/metrics.jsonl"
    mk DATA="$MM" FORMAT=mmrec VARIANT=lightgcn RUN=lgcn
    run inspect "$T/runs/demo/lgcn/base.ts"
    [[ "$output" != *"feat/"* ]]
    run mk DATA="$MM" FORMAT=csv RUN=x
    [ "$status" -ne 0 ] && [[ "$output" == *"FORMAT=csv"* ]]
}

@test "convert-mmrec survives damaged .inter files: exit 0 or 1, never a crash" {
    inter "$T/d" 'userID\titemID\trating\tx_label' '0\t1\t5\t0' '1\t2\t4\t1' '2\t3\t3\t2' '3\t4\t5\t0'
    "$PY" - "$T/d/syn.inter" "$T/cases" <<'PYEOF'
import os, random, sys
src, out = open(sys.argv[1], "rb").read(), sys.argv[2]
rng = random.Random(7)
for n in range(60):
    b = bytearray(src)
    for _ in range(rng.randint(1, 6)):
        op, at = rng.randrange(4), rng.randrange(max(len(b), 1))
        if op == 0 and b: b[at] = rng.randrange(256)
        elif op == 1: del b[at:at + rng.randint(1, 8)]
        elif op == 2: b[at:at] = bytes(rng.choice(b"\t\n\r0123456789-x ") for _ in range(rng.randint(1, 8)))
        else: b = b[:at]
    os.makedirs(f"{out}/{n}", exist_ok=True)
    open(f"{out}/{n}/syn.inter", "wb").write(bytes(b))
PYEOF
    for c in "$T"/cases/*; do
        cp "$T/d/image_feat.npy" "$c/"
        run convert-mmrec -q "$c" -o "$c/out.ts"
        [ "$status" -eq 0 ] || [ "$status" -eq 1 ] || { echo "$c: status $status: $output"; false; }
        [ "$status" -eq 0 ] || [[ "$output" == "convert-mmrec: "* ]]
    done
}
