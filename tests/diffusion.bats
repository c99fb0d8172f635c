#!/usr/bin/env bats
# diffusion.bats: the denoisers (diffuse) and the regenerated graphs
# (augment), ALGORITHM.md section 7.

load helpers

setup_file() {
    synthetic_data "$BATS_FILE_TMPDIR" 300 200
    "$BATS_TEST_DIRNAME/../bin/diffuse" -q "$DATA" --dims 64 -o "$BATS_FILE_TMPDIR/d1.ts"
    export D1="$BATS_FILE_TMPDIR/d1.ts"
}

# graphcheck FILE NAME K KEEP [REF]: structure of a regenerated graph.
graphcheck() {
    "$PY" - "$@" <<'PYEOF'
import sys
import numpy as np
sys.path.insert(0, "examples")
from ts_read import read_stream
path, name, k, keep = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
g = read_stream(path)[name]
ip, ix, v, (n, n2) = g
U, I = 300, 200
A = np.zeros((n, n)); rows = np.repeat(np.arange(n), np.diff(ip)); A[rows, ix] = v
if keep == 1:
    # structure: self loops, k items per user, symmetric, D^-1/2 (A+I) D^-1/2
    S = (A != 0).astype(float)
    assert np.all(np.diag(S) == 1), "self loops missing"
    assert np.array_equal(S, S.T), "not symmetric"
    assert np.all(S[:U, U:].sum(1) == k), "not k regenerated items per user"
    assert S[:U, :U].sum() == U and S[U:, U:].sum() == I, "edges beside the bipartite blocks"
    deg = S.sum(1); want = S / np.sqrt(np.outer(deg, deg))
    assert np.allclose(A, want, rtol=1e-6, atol=0), "normalisation"
    print(f"ok: {U} users x {k} edges, symmetric, normalised")
else:
    ref = read_stream(sys.argv[5])[name]
    R = np.zeros((n, n)); rr = np.repeat(np.arange(n), np.diff(ref[0])); R[rr, ref[1]] = ref[2]
    kept, total = (A != 0).sum(), (R != 0).sum()
    sd = np.sqrt(total * keep * (1 - keep))
    assert abs(kept - keep * total) <= 4 * sd, f"kept {kept} of {total}"
    assert np.all(R[A != 0] != 0), "an entry appeared that the undropped graph lacks"
    assert np.allclose(A[A != 0], R[A != 0] / keep, rtol=1e-6), "kept values not divided by keep"
    print(f"ok: kept {kept} of {total} ({kept / total:.3f}), scaled by {1 / keep:g}")
PYEOF
}

@test "schedule, time embedding, losses, gradients and the reverse process match the release, on both engines" {
    same_as_shared_golden diffusion.ts
    for eng in openblas onednn; do
        DIFFMM_GEMM=$eng run "$TOOLS/denoise-golden" "$GOLDEN/diffusion.ts"
        echo "$output"
        [ "$status" -eq 0 ]
        [[ "$output" == *"products: $eng"* ]]
        [[ "$output" == *"reverse/x (sparse first step)"*ok* ]]
        [[ "$output" == *"golden check passed"* ]]
    done
}

@test "the denoiser's forward pass and reverse process match plain loops, its gradients finite differences" {
    for args in "" "--dims 7,5" "--emb 5" "--norm 1" "--eloss 0" "--eloss 5 --dims 9,4,3" "--seed 2"; do
        for eng in openblas onednn; do
            DIFFMM_GEMM=$eng run "$TOOLS/denoise-fd" $args
            echo "$eng $args: $output"
            [ "$status" -eq 0 ]
            [[ "$output" == *"products: $eng"* ]]
        done
    done
}

@test "diffuse writes every denoiser, its Adam state, the epoch and the schedule" {
    run inspect "$D1"
    for name in denoise/image/emb/weight denoise/image/in0/weight denoise/audio/out0/bias \
                adam/m/denoise/image/in0/weight adam/v/denoise/audio/out0/weight adam/step/denoise/image \
                denoise/epoch denoise/hyper/steps denoise/hyper/noise_scale denoise/hyper/noise_min \
                denoise/hyper/noise_max denoise/hyper/d_emb_size denoise/hyper/norm log/diffuse; do
        [[ "$output" == *"$name "* ]] || { echo "missing $name"; false; }
    done
    [[ "$output" == *"denoise/image/in0/weight"*"64x210"* ]]   # (I + e) -> 64
    [[ "$output" == *"denoise/image/out0/weight"*"200x64"* ]]
}

@test "augment regenerates one edge per user, symmetric and normalised, without dropout" {
    augment -q "$DATA" "$D1" --keep-rate 1 -o "$T/g1.ts"
    cd "$ROOT"
    run graphcheck "$T/g1.ts" graph/image 1 1
    echo "$output"; [ "$status" -eq 0 ]
    run graphcheck "$T/g1.ts" graph/audio 1 1
    [ "$status" -eq 0 ]
}

@test "augment with --rebuild-k 3 gives three edges per user" {
    augment -q "$DATA" "$D1" --keep-rate 1 --rebuild-k 3 -o "$T/g3.ts"
    cd "$ROOT"
    run graphcheck "$T/g3.ts" graph/image 3 1
    echo "$output"; [ "$status" -eq 0 ]
}

@test "edge dropout keeps about keep-rate of the entries and divides them by it" {
    augment -q "$DATA" "$D1" --keep-rate 1 -o "$T/g1.ts"
    augment -q "$DATA" "$D1" --keep-rate 0.5 -o "$T/g05.ts"
    cd "$ROOT"
    run graphcheck "$T/g05.ts" graph/image 1 0.5 "$T/g1.ts"
    echo "$output"; [ "$status" -eq 0 ]
    run graphcheck "$T/g05.ts" graph/audio 1 0.5 "$T/g1.ts"
    [ "$status" -eq 0 ]
}

@test "the same seed gives byte-identical denoisers and graphs, another seed different ones" {
    diffuse -q "$DATA" --dims 64 --zstd 0 -o "$T/a.ts"
    diffuse -q "$DATA" --dims 64 --zstd 0 -o "$T/b.ts"
    diffuse -q "$DATA" --dims 64 --zstd 0 --seed 7 -o "$T/c.ts"
    diff <(pick --drop log/diffuse --zstd 0 "$T/a.ts") <(pick --drop log/diffuse --zstd 0 "$T/b.ts")
    ! diff -q <(pick --only 'denoise/image/*' "$T/a.ts") <(pick --only 'denoise/image/*' "$T/c.ts")
    augment -q "$DATA" "$T/a.ts" --zstd 0 -o "$T/ga.ts"
    augment -q "$DATA" "$T/b.ts" --zstd 0 -o "$T/gb.ts"
    augment -q "$DATA" "$T/a.ts" --zstd 0 --seed 8 -o "$T/gc.ts"
    cmp <(pick --drop log/augment --zstd 0 "$T/ga.ts") <(pick --drop log/augment --zstd 0 "$T/gb.ts")
    ! cmp -s <(pick --drop log/augment --zstd 0 "$T/ga.ts") <(pick --drop log/augment --zstd 0 "$T/gc.ts")
}

@test "two diffusion epochs at once equal one epoch resumed from its output" {
    diffuse -q "$DATA" --dims 64 --epochs 2 -o "$T/two.ts"
    diffuse -q "$DATA" --dims 64 -o "$T/one.ts"
    diffuse -q "$DATA" "$T/one.ts" --dims 64 -o "$T/resumed.ts"
    diff <(pick --drop log/diffuse --zstd 0 "$T/two.ts") <(pick --drop log/diffuse --zstd 0 "$T/resumed.ts")
}

@test "denoiser losses fall over a few epochs and stay finite" {
    run diffuse "$DATA" --dims 64 --epochs 5 --trans 1 -o "$T/five.ts"
    [ "$status" -eq 0 ]
    grep -o '"loss/image": [^,]*' <<< "$output"
    first=$(grep -o '"loss/image": [^,]*' <<< "$output" | head -1 | cut -d' ' -f2)
    last=$(grep -o '"loss/image": [^,]*' <<< "$output" | tail -1 | cut -d' ' -f2)
    awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a && b == b) }'
    ! grep -qi nan <<< "$output"
}

@test "the chunk size inside a batch changes nothing but rounding" {
    diffuse -q "$DATA" --dims 64 --chunk 256 --log "$T/a.jsonl" -o "$T/a.ts"
    diffuse -q "$DATA" --dims 64 --chunk 37 --log "$T/b.jsonl" -o "$T/b.ts"
    a=$(grep -o '"loss/audio": [^,]*' "$T/a.jsonl" | cut -d' ' -f2)
    b=$(grep -o '"loss/audio": [^,]*' "$T/b.jsonl" | cut -d' ' -f2)
    awk -v a="$a" -v b="$b" 'BEGIN { d = (a - b) / a; if (d < 0) d = -d; exit !(d < 1e-4) }'
}

@test "sampling steps and sampling noise give valid graphs, repeatably" {
    augment -q "$DATA" "$D1" --keep-rate 1 --sampling-steps 2 --sampling-noise 1 --zstd 0 -o "$T/s1.ts"
    augment -q "$DATA" "$D1" --keep-rate 1 --sampling-steps 2 --sampling-noise 1 --zstd 0 -o "$T/s2.ts"
    cmp <(pick --drop log/augment --zstd 0 "$T/s1.ts") <(pick --drop log/augment --zstd 0 "$T/s2.ts")
    cd "$ROOT"
    run graphcheck "$T/s1.ts" graph/audio 1 1
    [ "$status" -eq 0 ]
}

@test "augment reads the older denoise/hyper record of six numbers as the named ones" {
    "$PY" - "$D1" "$T/old.ts" "$ROOT/examples" <<'PYEOF'
import sys, msgpack, numpy as np
sys.path.insert(0, sys.argv[3])
from ts_read import read_stream
t = read_stream(sys.argv[1])
v = np.array([float(t["denoise/hyper/" + k][0]) for k in
              ("steps", "noise_scale", "noise_min", "noise_max", "d_emb_size", "norm")], "<f8")
open(sys.argv[2], "wb").write(msgpack.packb({"name": "denoise/hyper", "dtype": "<f8", "shape": [6], "data": v.tobytes()}))
PYEOF
    pick "$D1" --drop 'denoise/hyper/*' "$T/old.ts" -o "$T/d-old.ts"
    augment -q "$DATA" "$D1" --zstd 0 -o "$T/new.ts"
    augment -q "$DATA" "$T/d-old.ts" --zstd 0 -o "$T/old-graphs.ts"
    cmp <(pick --drop log/augment --zstd 0 "$T/new.ts") <(pick --drop log/augment --zstd 0 "$T/old-graphs.ts")
    # and the named records are read: a changed schedule changes the graphs
    "$PY" -c 'import sys, msgpack, numpy as np; open(sys.argv[1], "wb").write(msgpack.packb({"name": "denoise/hyper/steps", "dtype": "<i8", "shape": [1], "data": np.array([3], "<i8").tobytes()}))' "$T/steps3.ts"
    augment -q "$DATA" "$D1" "$T/steps3.ts" --zstd 0 -o "$T/s3.ts"
    ! cmp -s <(pick --drop log/augment --zstd 0 "$T/new.ts") <(pick --drop log/augment --zstd 0 "$T/s3.ts")
}

@test "augment without denoisers, or diffuse without features, says what is missing" {
    run augment "$DATA" -o "$T/x.ts"
    [ "$status" -eq 1 ]
    [[ "$output" == *"denoise/hyper"* ]]
    pick "$D1" --drop 'denoise/audio/*' -o "$T/noaudio.ts"
    run augment "$DATA" "$T/noaudio.ts" -o "$T/x.ts"
    [ "$status" -eq 1 ]
    [[ "$output" == *"no denoiser for modality 'audio'"*"run diffuse first"* ]]
    pick "$DATA" --drop 'feat/*' -o "$T/plain.ts"
    run diffuse "$T/plain.ts" -o "$T/x.ts"
    [ "$status" -eq 1 ]
    [[ "$output" == *"nothing to diffuse"* ]]
    run diffuse "$DATA" --dims 10,x -o "$T/x.ts"
    [ "$status" -eq 2 ]
    run augment "$DATA" "$D1" --keep-rate 0 -o "$T/x.ts"
    [ "$status" -eq 2 ]
}

@test "a whole epoch runs as one shell pipe" {
    run bash -c "convert-pkl -q '$SYN' | build-graph -q --pass | diffuse -q --pass --dims 64 | augment -q --pass | train -q --pass | evaluate"
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *'"recall@20": 0.'* ]]
}

@test "the denoiser's vectorised tanh is within 4 float32 ulps of tanh in double, and keeps +-0, +-inf and NaN" {
    run "$TOOLS/tanh-check" 4
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"+-0, +-inf, NaN right"* ]]
}

@test "augment in shards (--shard i/n, --users A:B) merges to the bytes of one augment, sampling noise too" {
    for opts in "" "--sampling-steps 2 --sampling-noise 1 --keep-rate 0.7"; do
        augment -q "$DATA" "$D1" --batch 64 $opts --zstd 0 -o "$T/one.ts"
        for i in 0 1 2; do augment -q "$DATA" "$D1" --batch 64 $opts --shard $i/3 -o "$T/s$i.ts"; done
        augment -q --merge "$DATA" "$T/s2.ts" "$T/s0.ts" "$T/s1.ts" $opts --zstd 0 -o "$T/merged.ts"
        cmp <(pick --drop log/augment --zstd 0 "$T/one.ts") <(pick --drop log/augment --zstd 0 "$T/merged.ts")
        augment -q "$DATA" "$D1" --batch 64 $opts --users 0:128 -o "$T/u0.ts"
        augment -q "$DATA" "$D1" --batch 64 $opts --users 128: -o "$T/u1.ts"
        augment -q --merge "$DATA" "$T/u0.ts" "$T/u1.ts" $opts --zstd 0 -o "$T/merged2.ts"
        cmp <(pick --drop log/augment --zstd 0 "$T/one.ts") <(pick --drop log/augment --zstd 0 "$T/merged2.ts")
    done
    inspect --print log/augment "$T/merged2.ts" | grep -q '"shards": 2,'
    # a shard holds its users' chosen items, not a graph
    run inspect "$T/u1.ts"
    [[ "$output" == *"shard/128-300/topk/image "*"172x1"* ]] && [[ "$output" != *"graph/"* ]]
}

@test "augment --merge refuses missing, overlapping and mixed-epoch shards; --users must follow the batches" {
    augment -q "$DATA" "$D1" --batch 64 --users 0:128 -o "$T/a.ts"
    augment -q "$DATA" "$D1" --batch 64 --users 64:192 -o "$T/b.ts"
    augment -q "$DATA" "$D1" --batch 64 --users 128: -o "$T/c.ts"
    run augment -q --merge "$DATA" "$T/a.ts" -o "$T/m.ts"
    [ "$status" -eq 1 ] && [[ "$output" == *"no shard holds user 128"* ]]
    run augment -q --merge "$DATA" "$T/a.ts" "$T/b.ts" "$T/c.ts" -o "$T/m.ts"
    [ "$status" -eq 1 ] && [[ "$output" == *"in two shards"* ]]
    run augment -q --merge "$DATA" -o "$T/m.ts"
    [ "$status" -eq 1 ] && [[ "$output" == *"no shards"* ]]
    diffuse -q "$DATA" "$D1" --dims 64 -o "$T/d2.ts"
    augment -q "$DATA" "$T/d2.ts" --batch 64 --users 128: -o "$T/c2.ts"
    run augment -q --merge "$DATA" "$T/a.ts" "$T/c2.ts" -o "$T/m.ts"
    [ "$status" -eq 1 ] && [[ "$output" == *"different epochs"* ]]
    run augment -q --merge "$DATA" "$T/a.ts" "$T/c.ts" --rebuild-k 2 -o "$T/m.ts"
    [ "$status" -eq 1 ] && [[ "$output" == *"wrong --rebuild-k"* ]]
    [ ! -e "$T/m.ts" ]
    for bad in "--users 10:64" "--users 0:100" "--users 5" "--users 0:x" "--users 200:100" "--shard 3/3" "--shard 1" \
               "--shard 0/2 --users 0:64" "--merge --shard 0/2"; do
        run augment -q "$DATA" "$D1" --batch 64 $bad -o "$T/x.ts"
        [ "$status" -eq 2 ] || { echo "$bad: status $status"; false; }
    done
}

@test "feature-graph links each user to the items closest by cosine to the mean of its training items" {
    feature-graph -q "$DATA" --keep-rate 1 --rebuild-k 2 -o "$T/fg.ts"
    cd "$ROOT"
    "$PY" - "$DATA" "$T/fg.ts" <<'PYEOF'
import sys
import numpy as np
sys.path.insert(0, "examples")
from ts_read import read_stream
d, g = read_stream(sys.argv[1]), read_stream(sys.argv[2])
ip, ix, v, (U, I) = d["train"]
R = np.zeros((U, I)); R[np.repeat(np.arange(U), np.diff(ip)), ix] = 1
for m in ("image", "audio"):
    F = d["feat/" + m].astype(np.float64)
    M = R @ F / np.maximum(R.sum(1, keepdims=True), 1)
    S = (M @ F.T) / np.outer(np.maximum(np.linalg.norm(M, axis=1), 1e-300), np.linalg.norm(F, axis=1))
    gp, gx, gv, (n, _) = g["graph/" + m]
    for u in range(U):
        items = [c - U for c in gx[gp[u]:gp[u + 1]] if c >= U]
        assert len(items) == 2, (m, u, items)
        best = np.sort(S[u])[::-1][:2]
        got = np.sort(S[u, items])[::-1]
        assert np.allclose(got, best, rtol=1e-5, atol=1e-6), (m, u, items, got, best)
print("ok: every user's two edges are its two most similar items")
PYEOF
    # the same edge dropout as augment's: about keep-rate kept, values scaled
    feature-graph -q "$DATA" --keep-rate 0.5 --epoch 2 -o "$T/f05.ts"
    feature-graph -q "$DATA" --keep-rate 1 --epoch 2 -o "$T/f1.ts"
    run graphcheck "$T/f05.ts" graph/image 1 0.5 "$T/f1.ts"
    echo "$output"; [ "$status" -eq 0 ]
    run feature-graph -q "$DATA" --rebuild-k 0
    [ "$status" -eq 2 ]
}

@test "augment's folded reverse process picks the items of the layer-by-layer one, and is the default" {
    # the synthetic denoiser after one epoch; --dims 64 keeps it small
    for opts in "" "--rebuild-k 3" "--sampling-steps 2 --sampling-noise 1"; do
        augment -q "$DATA" "$D1" $opts --reverse direct --shard 0/1 --zstd 0 -o "$T/direct.ts"
        augment -q "$DATA" "$D1" $opts --reverse folded --shard 0/1 --zstd 0 -o "$T/folded.ts"
        cmp <(pick --drop shard/0-300/log --zstd 0 "$T/direct.ts") <(pick --drop shard/0-300/log --zstd 0 "$T/folded.ts")
    done
    # the default is folded (the log says which ran)
    augment -q "$DATA" "$D1" --zstd 0 -o "$T/default.ts"
    inspect --print log/augment "$T/default.ts" | grep -q '"reverse": "folded"'
    augment -q "$DATA" "$D1" --reverse direct --zstd 0 -o "$T/direct.ts"
    inspect --print log/augment "$T/direct.ts" | grep -q '"reverse": "direct"'
    run augment -q "$DATA" "$D1" --reverse sideways -o "$T/x.ts"
    [ "$status" -eq 2 ] && [[ "$output" == *"--reverse takes folded or direct"* ]]
}
