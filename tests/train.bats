#!/usr/bin/env bats
# train.bats: the recommender (ALGORITHM.md sections 3-6) against the
# authors' release, against finite differences, and as a stage.

load helpers

setup_file() {
    synthetic_data "$BATS_FILE_TMPDIR" 300 200
}

@test "forward, views, losses, gradients and one Adam step match the release (trans 1, cl_method 1), on both engines" {
    same_as_shared_golden recsys-trans1-cl1.ts
    for eng in openblas onednn; do
        DIFFMM_GEMM=$eng run "$TOOLS/recsys-golden" "$GOLDEN/recsys-trans1-cl1.ts"
        echo "$output"
        [ "$status" -eq 0 ]
        [[ "$output" == *"products: $eng"* ]]
        [[ "$output" == *"grad/model/trans/audio/bias"*ok* ]]
        [[ "$output" == *"golden check passed"* ]]
    done
}

@test "forward, views, losses, gradients and one Adam step match the release (trans 0, cl_method 0), on both engines" {
    same_as_shared_golden recsys-trans0-cl0.ts
    for eng in openblas onednn; do
        DIFFMM_GEMM=$eng run "$TOOLS/recsys-golden" "$GOLDEN/recsys-trans0-cl0.ts"
        echo "$output"
        [ "$status" -eq 0 ]
        [[ "$output" == *"products: $eng"* ]]
        [[ "$output" == *"adam1/model/trans/image/weight"*ok* ]]
    done
}

@test "every gradient matches finite differences: trans 1, main-vs-modality contrast, on both engines" {
    for seed in 1 2 3; do
        for eng in openblas onednn; do
            DIFFMM_GEMM=$eng run "$TOOLS/recsys-fd" --mods 2 --trans 1 --cl 1 --seed "$seed"
            echo "$output"; [ "$status" -eq 0 ]
            [[ "$output" == *"products: $eng"* ]]
        done
    done
}

@test "every gradient matches finite differences: trans 0 (LeakyReLU), modality-pair contrast, on both engines" {
    for seed in 1 2 3; do
        for eng in openblas onednn; do
            DIFFMM_GEMM=$eng run "$TOOLS/recsys-fd" --mods 2 --trans 0 --cl 0 --seed "$seed"
            echo "$output"; [ "$status" -eq 0 ]
            [[ "$output" == *"products: $eng"* ]]
        done
    done
}

@test "gradients match finite differences for three modalities and two propagation layers" {
    run "$TOOLS/recsys-fd" --mods 3 --trans 0 --cl 1 --layers 2
    echo "$output"; [ "$status" -eq 0 ]
    run "$TOOLS/recsys-fd" --mods 3 --trans 1 --cl 0 --layers 2
    echo "$output"; [ "$status" -eq 0 ]
    [[ "$output" == *"model/modal_weight"*"3 values"*ok* ]]
}

@test "each loss term's gradient matches finite differences on its own" {
    for term in bpr reg cl; do
        for cl in 0 1; do
            run "$TOOLS/recsys-fd" --mods 2 --term "$term" --cl "$cl"
            echo "$term/$cl: $output"; [ "$status" -eq 0 ]
        done
    done
}

@test "the contrastive loss computed in blocks of batch rows keeps every gradient exact" {
    for k in 1 2 4; do
        for cl in 0 1; do
            run "$TOOLS/recsys-fd" --mods 2 --term cl --cl "$cl" --cl-block "$k" --seed 4
            echo "block $k/$cl: $output"; [ "$status" -eq 0 ]
        done
    done
    run "$TOOLS/recsys-fd" --mods 2 --cl-block 0 --term cl
    [ "$status" -eq 0 ]
    run "$TOOLS/recsys-fd" --mods 2 --cl-block 5000
    [ "$status" -eq 2 ]
}

@test "the unpacked 64-wide products agree with OpenBLAS, alone and inside the contrastive loss" {
    run "$TOOLS/gemm64-check"
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(grep -c ' ok$' <<< "$output")" -eq 39 ]
}

@test "LightGCN gradients (no modalities) match finite differences" {
    for layers in 0 1 3; do
        run "$TOOLS/recsys-fd" --mods 0 --layers "$layers"
        echo "$output"; [ "$status" -eq 0 ]
    done
}

@test "Adam reproduces a step worked out by hand" {
    # p0 = 1, lr 0.1, betas 0.9/0.999, eps 1e-8, gradients 0.5, -1, 0.25:
    # step 1: m = 0.05, v = 2.5e-4, mhat = 0.5, vhat = 0.25 -> p = 1 - 0.1 * 0.5 / 0.5 = 0.9
    # steps 2 and 3 by the same formulas in double: 0.93661035, 0.95027942
    run "$TOOLS/adam-check" 0.5 -1 0.25
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "1 0.9000000" ]
    awk 'NR==2 { d = $2 - 0.93661035; if (d < 0) d = -d; exit !(d < 2e-7) }' <<< "$output"
    awk 'NR==3 { d = $2 - 0.95027942; if (d < 0) d = -d; exit !(d < 2e-7) }' <<< "$output"
}

@test "train writes the state, the embeddings and a log line" {
    run train -q "$DATA" --trans 1 --cl-method 1 -o "$T/e1.ts" --log "$T/log.jsonl"
    [ "$status" -eq 0 ]
    run inspect "$T/e1.ts"
    for name in model/user model/item model/modal_weight model/trans/image/weight model/trans/audio/bias \
                adam/m/model/user adam/v/model/item adam/step model/epoch emb/user emb/item log/train; do
        [[ "$output" == *"$name "* ]] || { echo "missing $name"; false; }
    done
    [[ "$output" == *"emb/user"*"300x64"* ]]
    [ "$(wc -l < "$T/log.jsonl")" -eq 1 ]
    grep -q '"epoch": 0, "batches": 5' "$T/log.jsonl"
}

@test "the same seed gives byte-identical outputs, another seed different ones" {
    train -q "$DATA" --seed 5 --zstd 0 -o "$T/a.ts"
    train -q "$DATA" --seed 5 --zstd 0 -o "$T/b.ts"
    train -q "$DATA" --seed 6 --zstd 0 -o "$T/c.ts"
    diff <(pick --drop log/train "$T/a.ts" --zstd 0) <(pick --drop log/train "$T/b.ts" --zstd 0)
    ! diff -q <(pick --only emb/user "$T/a.ts") <(pick --only emb/user "$T/c.ts")
}

@test "two epochs at once equal one epoch resumed from the saved state" {
    train -q "$DATA" --epochs 2 --trans 1 --cl-method 1 -o "$T/two.ts"
    train -q "$DATA" --trans 1 --cl-method 1 -o "$T/one.ts"
    train -q "$DATA" "$T/one.ts" --trans 1 --cl-method 1 -o "$T/resumed.ts"
    diff <(pick --drop log/train --zstd 0 "$T/two.ts") <(pick --drop log/train --zstd 0 "$T/resumed.ts")
    run inspect --json "$T/resumed.ts"
    [[ "$output" == *'"name": "model/epoch"'*'"min": 2,'* ]]
}

@test "LightGCN mode trains without features and its loss falls" {
    pick --drop 'feat/*' "$DATA" -o "$T/plain.ts"
    run train "$T/plain.ts" --epochs 4 -o "$T/out.ts"
    [ "$status" -eq 0 ]
    [[ "$output" == *"0 modalities (LightGCN)"* ]]
    first=$(grep -o '"loss": [0-9.e-]*' <<< "$output" | head -1 | cut -d' ' -f2)
    last=$(grep -o '"loss": [0-9.e-]*' <<< "$output" | tail -1 | cut -d' ' -f2)
    awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }'
    run inspect "$T/out.ts"
    [[ "$output" != *"model/trans"* ]]
}

@test "a modality graph in the inputs replaces graph/ui for that modality" {
    train -q "$DATA" --zstd 0 -o "$T/a.ts"
    pick "$DATA" --only graph/ui --zstd 0 -o "$T/g.ts"
    "$PY" - "$T/g.ts" "$T/gi.ts" <<'PYEOF'
import sys, msgpack, numpy as np
r = msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False)
for rec in r:
    if rec.get("name") == "graph/ui":
        rec["name"] = "graph/image"
        vals = np.frombuffer(rec["values"], "<f4") * 0.5
        rec["values"] = vals.astype("<f4").tobytes()
        open(sys.argv[2], "wb").write(msgpack.packb(rec))
PYEOF
    train -q "$DATA" "$T/gi.ts" --zstd 0 -o "$T/b.ts"
    ! diff -q <(pick --only emb/user "$T/a.ts") <(pick --only emb/user "$T/b.ts")
}

@test "a loss that turns NaN stops the run naming the epoch and batch" {
    # features are checked where they enter, so the NaN comes in with a
    # resumed state: one user embedding of epoch 0's model
    train -q "$DATA" -o "$T/e0.ts"
    "$PY" - "$T/e0.ts" "$T/nan.ts" "$ROOT/examples" <<'PYEOF'
import sys, msgpack, numpy as np
sys.path.insert(0, sys.argv[3])
from ts_read import read_stream
u = read_stream(sys.argv[1])["model/user"].copy(); u[3, 1] = np.nan
open(sys.argv[2], "wb").write(msgpack.packb({"name": "model/user", "dtype": "<f4", "shape": list(u.shape), "data": u.tobytes()}))
PYEOF
    run train "$DATA" "$T/e0.ts" "$T/nan.ts" -o "$T/out.ts"
    [ "$status" -eq 1 ]
    [[ "$output" == *"epoch 1, batch 0: the loss is not finite"* ]]
    [ ! -e "$T/out.ts" ]
}

@test "missing inputs and bad options are clear errors" {
    pick "$DATA" --drop graph/ui -o "$T/nograph.ts"
    run train "$T/nograph.ts" -o "$T/out.ts"
    [ "$status" -eq 1 ]
    [[ "$output" == *"missing input: no record 'graph/ui'"* ]]
    run train "$DATA" --trans 2 -o "$T/out.ts"
    [ "$status" -eq 2 ]
    [[ "$output" == *"--trans takes 0 or 1"* ]]
    run train "$DATA" --lr fast -o "$T/out.ts"
    [ "$status" -eq 2 ]
    train -q "$DATA" -o "$T/e1.ts"
    run train "$DATA" "$T/e1.ts" --latdim 32 -o "$T/out.ts"
    [ "$status" -eq 1 ]
    [[ "$output" == *"model/user"*"latdim"* ]]
}
