#!/usr/bin/env bats
# evaluate.bats: the top-K metrics (common/kernels/metrics.c) through the evaluate
# stage (recommend has its own suite, recommend.bats), checked against a
# brute-force numpy version
# (tests/tools/metrics_check.py) and against values worked out by hand.

load helpers

mc() { "$PY" "$ROOT/tests/tools/metrics_check.py" "$@"; }

# check_eval FILE... -- ARGS: evaluate's JSON line agrees with brute force
# within $TOL (default 1e-6).
check_eval() {
    local files=() args=()
    while [ "$1" != "--" ]; do files+=("$1"); shift; done
    shift
    args=("$@")
    local json
    json=$(evaluate -q "${files[@]}" "${args[@]}")
    mc evaluate "${files[@]}" "${args[@]}" --json "$json" --tol "${TOL:-1e-6}"
}

# json_field JSON KEY: one value of evaluate's JSON line.
json_field() { "$PY" -c 'import json, sys; print(json.dumps(json.loads(sys.argv[1])[sys.argv[2]]))' "$1" "$2"; }

# tiktok_data OUT: the real TikTok train/val/test when ../shared has them
# (a conversion that fails there fails the test), else a synthetic problem
# of the same shape.
tiktok_data() {
    if [ -d "$SHARED/datasets/tiktok" ]; then
        convert-pkl -q "$SHARED/datasets/tiktok" -o "$1" || return 1
        echo "real"
    else
        mc make "$1" --users 9308 --items 6710 --dim 64 --plain --train-rate 0.001 --test-rate 0.0001
        echo "synthetic"
    fi
}

@test "evaluate agrees with brute force on random problems for several K" {
    mc make "$T/a.ts" --seed 1
    mc make "$T/b.ts" --seed 2 --users 100 --items 300 --dim 16
    mc make "$T/c.ts" --seed 3 --users 37 --items 1500 --dim 5 --train-rate 0.5
    mc make "$T/d.ts" --seed 4 --users 2500 --items 100 --dim 8   # several blocks of users
    for f in a b c d; do
        run check_eval "$T/$f.ts" -- --topk 1,5,10,20,50
        [ "$status" -eq 0 ]
        [[ "$output" == "agree: "*" users, 5 K values"* ]]
    done
}

@test "users without held-out items are not counted" {
    mc make "$T/a.ts" --users 60
    run evaluate -q "$T/a.ts"
    [ "$status" -eq 0 ]
    [ "$(json_field "$output" users)" = 59 ]    # user 0 has no test item
    mc make "$T/one.ts" --only-user 4
    run evaluate -q "$T/one.ts" --topk 2,20
    [ "$(json_field "$output" users)" = 1 ]
}

@test "a user whose held-out items are all training items counts, with zero hits" {
    mc make "$T/u1.ts" --only-user 1
    run evaluate -q "$T/u1.ts" --topk 2,20
    [ "$status" -eq 0 ]
    [ "$output" = '{"split": "test", "users": 1, "recall@2": 0, "ndcg@2": 0, "precision@2": 0, "recall@20": 0, "ndcg@20": 0, "precision@20": 0}' ]
}

@test "K larger than the unseen items: the list is short and precision still divides by K" {
    # user 2 has 3 unseen items, all of them held out
    mc make "$T/u2.ts" --only-user 2
    run evaluate -q "$T/u2.ts" --topk 2,20,100
    [ "$status" -eq 0 ]
    [ "$output" = '{"split": "test", "users": 1, "recall@2": 0.66666667, "ndcg@2": 1, "precision@2": 1, "recall@20": 1, "ndcg@20": 1, "precision@20": 0.15, "recall@100": 1, "ndcg@100": 1, "precision@100": 0.03}' ]
    # user 3 has no unseen item at all
    mc make "$T/u3.ts" --only-user 3
    run evaluate -q "$T/u3.ts" --topk 20
    [ "$output" = '{"split": "test", "users": 1, "recall@20": 0, "ndcg@20": 0, "precision@20": 0}' ]
    run recommend -q "$T/u3.ts" --users 3,2
    [ "${#lines[@]}" -eq 4 ]                    # header and user 2's three items
    [[ "${lines[1]}" == "2	1	"* ]]
}

@test "equal scores rank the lower item index first, the same with 1 or 2 threads" {
    for kind in ties zeros; do
        mc make "$T/$kind.ts" --$kind --seed 3
        run check_eval "$T/$kind.ts" -- --topk 1,2,5,10,37,40,100
        [ "$status" -eq 0 ]
        recommend -q "$T/$kind.ts" --k 7 > "$T/$kind.tsv"
        run mc recommend "$T/$kind.ts" --k 7 --tsv "$T/$kind.tsv"
        [ "$status" -eq 0 ]
        one=$(OMP_NUM_THREADS=1 evaluate -q "$T/$kind.ts" --topk 3,10)
        two=$(OMP_NUM_THREADS=2 evaluate -q "$T/$kind.ts" --topk 3,10)
        [ "$one" = "$two" ]
        [ "$(OMP_NUM_THREADS=1 recommend -q "$T/$kind.ts")" = "$(OMP_NUM_THREADS=2 recommend -q "$T/$kind.ts")" ]
    done
    # every score 0: user 5 gets the lowest-numbered items it has not seen
    want=$("$PY" -c 'import sys; sys.path.insert(0, "'"$ROOT"'/examples"); from ts_read import read_stream
p, i, _, _ = read_stream(sys.argv[1])["train"]; seen = set(i[p[5]:p[6]].tolist())
print(",".join([str(j) for j in range(40) if j not in seen][:4]))' "$T/zeros.ts")
    got=$(recommend -q "$T/zeros.ts" --users 5 --k 4 | tail -n +2 | cut -f3 | paste -sd,)
    [ "$got" = "$want" ]
}

@test "evaluate scores the val split with --split val" {
    mc make "$T/a.ts" --seed 5 --users 80 --items 120
    run check_eval "$T/a.ts" -- --split val --topk 5,20
    [ "$status" -eq 0 ]
    run evaluate -q "$T/a.ts" --split val
    [[ "$output" == '{"split": "val", "users": '* ]]
    [ "$output" != "$(evaluate -q "$T/a.ts")" ]
}

@test "--split test,val prints each split's line, in the order asked, as two runs would" {
    mc make "$T/a.ts" --seed 6 --users 80 --items 120
    test_line=$(evaluate -q "$T/a.ts" --split test --topk 5,20 --label e3)
    val_line=$(evaluate -q "$T/a.ts" --split val --topk 5,20 --label e3)
    [ "$test_line" != "$val_line" ]
    run evaluate -q "$T/a.ts" --split test,val --topk 5,20 --label e3 --log "$T/ev.log"
    [ "$status" -eq 0 ]
    [ "$output" = "$test_line"$'\n'"$val_line" ]
    run evaluate -q "$T/a.ts" --split val,test --topk 5,20 --label e3
    [ "$output" = "$val_line"$'\n'"$test_line" ]
    # one log line per split, each with its own time
    [ "$(wc -l < "$T/ev.log")" -eq 2 ]
    grep -q '"split": "test", "seconds": ' "$T/ev.log"
    grep -q '"split": "val", "seconds": ' "$T/ev.log"
}

@test "evaluate ends a pipe, ignores records it does not know and takes float64 embeddings" {
    mc make "$T/a.ts" --seed 6
    mc make "$T/f64.ts" --seed 6 --f64
    want=$(evaluate -q "$T/a.ts" --topk 10)
    [ "$(cat "$T/a.ts" | pick | evaluate -q --topk 10)" = "$want" ]
    [ "$(evaluate -q "$T/f64.ts" --topk 10)" = "$want" ]
    # embeddings and interactions from separate streams
    pick "$T/a.ts" --only 'emb/*' -o "$T/emb.ts"
    pick "$T/a.ts" --drop 'emb/*' -o "$T/data.ts"
    [ "$(evaluate -q "$T/data.ts" "$T/emb.ts" --topk 10)" = "$want" ]
}

@test "evaluate prints one JSON line with a label and every K, ascending" {
    mc make "$T/a.ts"
    run evaluate -q "$T/a.ts" --topk 50,10,20,10 --label 'epoch 7 "best"'
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 1 ]
    [[ "$output" == '{"label": "epoch 7 \"best\"", "split": "test", "users": 59, "recall@10": '*'"precision@50": '*'}' ]]
    run check_eval "$T/a.ts" -- --topk 50,10,20,10 --label 'epoch 7 "best"'
    [ "$status" -eq 0 ]
    run evaluate "$T/a.ts"
    [[ "$output" == *"evaluate: test: 59 users x 40 items scored in"*"sgemm"* ]]   # progress on stderr
}

@test "an empty split gives users 0 and null metrics, a note on stderr, and exit 0" {
    mc make "$T/a.ts" --empty-val
    run evaluate "$T/a.ts" --split val
    [ "$status" -eq 0 ]
    [[ "$output" == *"no user has a val item"* ]]
    [ "$(evaluate -q "$T/a.ts" --split val 2>/dev/null)" = '{"split": "val", "users": 0, "recall@20": null, "ndcg@20": null, "precision@20": null}' ]
}

@test "evaluate names a missing record" {
    mc make "$T/a.ts"
    pick "$T/a.ts" --drop emb/item -o "$T/noitem.ts"
    run evaluate "$T/noitem.ts"
    [ "$status" -eq 1 ]
    [ "$output" = "evaluate: missing input: no record 'emb/item' in the inputs" ]
    pick "$T/a.ts" --drop test -o "$T/notest.ts"
    run evaluate "$T/notest.ts"
    [ "$status" -eq 1 ]
    [[ "$output" == *"no record 'test'"* ]]
    run evaluate "$T/notest.ts" --split val
    [ "$status" -eq 0 ]
}

@test "evaluate refuses embeddings and splits whose shapes do not fit" {
    mc make "$T/a.ts"
    mc make "$T/fewer.ts" --users 50
    mc make "$T/narrow.ts" --dim 4
    mc make "$T/items.ts" --items 30
    run evaluate "$T/a.ts" <(pick "$T/fewer.ts" --only emb/user)
    [ "$status" -eq 1 ]
    [[ "$output" == *"train has 60 rows (users) but emb/user has 50"* ]]
    run evaluate "$T/a.ts" <(pick "$T/narrow.ts" --only emb/item)
    [ "$status" -eq 1 ]
    [[ "$output" == *"emb/user is 8 wide but emb/item is 4 wide"* ]]
    run evaluate "$T/a.ts" <(pick "$T/items.ts" --only emb/item)
    [ "$status" -eq 1 ]
    [[ "$output" == *"train has 40 columns (items) but emb/item has 30 rows"* ]]
    run evaluate "$T/a.ts" <(pick "$T/fewer.ts" --only test)
    [ "$status" -eq 1 ]
    [[ "$output" == *"test is 50 x 40 but the embeddings give 60 users x 40 items"* ]]
}

@test "evaluate refuses NaN and non-float embeddings" {
    mc make "$T/nan.ts" --nan
    run evaluate "$T/nan.ts"
    [ "$status" -eq 1 ]
    [ "$output" = "evaluate: emb/user holds NaN at row 3, column 1" ]
    mc make "$T/a.ts"
    run evaluate "$T/a.ts" <("$PY" -c 'import sys, msgpack, numpy as np
sys.stdout.buffer.write(msgpack.packb({"name": "emb/item", "dtype": "<i4", "shape": [40, 8], "data": np.zeros((40, 8), "<i4").tobytes()}))')
    [ "$status" -eq 1 ]
    [[ "$output" == *"emb/item is <i4, not a float tensor"* ]]
    run evaluate "$T/a.ts" <(pick "$T/a.ts" --only train | "$PY" -c 'import sys, msgpack
for r in msgpack.Unpacker(sys.stdin.buffer, raw=False):
    if r.get("name") == "train": r["name"] = "emb/user"; sys.stdout.buffer.write(msgpack.packb(r))')
    [ "$status" -eq 1 ]
    [[ "$output" == *"emb/user must be a dense matrix"* ]]
}

@test "evaluate rejects a bad --topk or --split with exit 2" {
    mc make "$T/a.ts"
    for bad in 0 x 10,,20 -5 10, '' 1.5; do
        run evaluate "$T/a.ts" --topk "$bad"
        [ "$status" -eq 2 ]
        [[ "$output" == "evaluate: --topk needs whole numbers of at least 1 separated by commas, not '$bad' (see evaluate --help)" ]]
    done
    for bad in foo test,test val,val test, ,val test,val,test 'test val'; do
        run evaluate "$T/a.ts" --split "$bad"
        [ "$status" -eq 2 ]
        [ "$output" = "evaluate: --split is test, val, or both comma-separated (test,val), not '$bad' (see evaluate --help)" ]
    done
    run evaluate "$T/a.ts" -o out.ts
    [ "$status" -eq 2 ]
    run evaluate --help
    [ "$status" -eq 0 ]
    [[ "$output" == *"--topk"*"--split"* || "$output" == *"--split"*"--topk"* ]]
}

@test "on TikTok's shapes evaluate agrees with brute force within 5e-4" {
    kind=$(tiktok_data "$T/data.ts")
    echo "# $kind train/test" >&3
    mc embed "$T/data.ts" "$T/emb.ts" --dim 64
    run inspect "$T/emb.ts"
    [[ "$output" == *"emb/user"*"9308x64"* ]]
    [[ "$output" == *"emb/item"*"6710x64"* ]]
    TOL=5e-4 run check_eval "$T/data.ts" "$T/emb.ts" -- --topk 10,20,50
    [ "$status" -eq 0 ]
    [[ "$output" == "agree: "* ]]
    recommend -q "$T/data.ts" "$T/emb.ts" --users 0,1,77,4000,9307 > "$T/r.tsv"
    run mc recommend "$T/data.ts" "$T/emb.ts" --users 0,1,77,4000,9307 --tsv "$T/r.tsv" --tol 1e-4
    [ "$status" -eq 0 ]
}

@test "on the real TikTok data the val split agrees with brute force too" {
    skip_without_data tiktok
    convert-pkl -q "$SHARED/datasets/tiktok" -o "$T/data.ts"
    mc embed "$T/data.ts" "$T/emb.ts" --dim 64 --seed 2
    TOL=5e-4 run check_eval "$T/data.ts" "$T/emb.ts" -- --split val --topk 20
    [ "$status" -eq 0 ]
}
