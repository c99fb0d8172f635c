#!/usr/bin/env bats
# gemm.bats: the product engines (common/kernels/gemm.h): OpenBLAS and
# oneDNN, f32 and bf16, against a product in double; the stages' choice of
# engine (DIFFMM_GEMM) and precision (--precision).

load helpers

setup_file() {
    synthetic_data "$BATS_FILE_TMPDIR" 300 200
}

# the value of a JSON member in a log record of a stream: jsonfield FILE RECORD KEY
jsonfield() {
    inspect --print "$2" "$1" | "$PY" -c "import json, sys; print(json.load(sys.stdin)['$3'])"
}

@test "both engines match a product in double within f32's bound, bf16 within bf16's, for every transpose and stride" {
    run "$TOOLS/gemm-check"
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"onednn bf16 TT"*"rounded"* ]]
    [[ "$output" == *"ok   onednn bf16 network"* ]]
    [[ "$output" == *"gemm-check: "*" checks, 0 failed"* ]]
}

@test "oneDNN runs its AVX-512 kernels here, not its reference code, and is the default" {
    run "$TOOLS/gemm-bench" 300 500 64 1
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"brg:avx512_core"* ]]
    [[ "$output" != *"ref"* ]]
    run "$TOOLS/gemm-check"
    [[ "$output" == *"auto engine here: onednn"* ]]
}

@test "DIFFMM_GEMM chooses the engine and the stage's log says which; an unknown name is a usage error" {
    for eng in openblas onednn; do
        DIFFMM_GEMM=$eng diffuse -q "$DATA" --dims 32 -o "$T/d-$eng.ts"
        [ "$(jsonfield "$T/d-$eng.ts" log/diffuse gemm)" = "$eng" ]
        [ "$(jsonfield "$T/d-$eng.ts" log/diffuse precision)" = "f32" ]
        [ "$(jsonfield "$T/d-$eng.ts" log/diffuse gemm_fallbacks)" = "0" ]
    done
    DIFFMM_GEMM=mkl run diffuse -q "$DATA" --dims 32 -o "$T/x.ts"
    echo "$output"
    [ "$status" -eq 2 ]
    [[ "$output" == *"gemm engine 'mkl'"* ]]
}

@test "a diffuse epoch on either engine gives the same losses to f32 rounding" {
    for eng in openblas onednn; do
        DIFFMM_GEMM=$eng diffuse -q "$DATA" --dims 32 -o "$T/d-$eng.ts"
    done
    for key in loss/image diff/image gc/audio; do
        a=$(jsonfield "$T/d-openblas.ts" log/diffuse "$key")
        b=$(jsonfield "$T/d-onednn.ts" log/diffuse "$key")
        echo "$key: $a $b"
        "$PY" -c "import sys; a, b = $a, $b; sys.exit(abs(a - b) > 1e-4 * abs(a))"
    done
}

@test "--precision bf16 runs diffuse, augment and train and says so; other precisions are refused" {
    diffuse -q "$DATA" --dims 32 --precision bf16 -o "$T/d.ts"
    [ "$(jsonfield "$T/d.ts" log/diffuse precision)" = "bf16" ]
    augment -q "$DATA" "$T/d.ts" --precision bf16 -o "$T/a.ts"
    [ "$(jsonfield "$T/a.ts" log/augment precision)" = "bf16" ]
    train -q "$DATA" "$T/a.ts" --precision bf16 -o "$T/t.ts"
    [ "$(jsonfield "$T/t.ts" log/train precision)" = "bf16" ]
    run evaluate "$DATA" "$T/t.ts"
    [ "$status" -eq 0 ]
    [[ "$output" == *"recall@20"* ]]
    for stage in diffuse augment train; do
        run "$stage" -q "$DATA" --precision f16 -o "$T/x.ts"
        [ "$status" -eq 2 ]
        [[ "$output" == *"precision 'f16'"* ]]
    done
}

@test "a bf16 diffuse batch's loss is within bf16's bound of f32's, and not equal to it" {
    diffuse -q "$DATA" --dims 32 -o "$T/f.ts"
    diffuse -q "$DATA" --dims 32 --precision bf16 -o "$T/b.ts"
    a=$(jsonfield "$T/f.ts" log/diffuse loss/image)
    b=$(jsonfield "$T/b.ts" log/diffuse loss/image)
    echo "f32 $a bf16 $b"
    # 300 users: one batch, so both losses come from the same initial weights.
    # The output goes through three products, each off by at most 2^-7 of
    # |inputs| in bf16 (gemm-check), and the loss is a mean of squares:
    # |d loss| / loss <= 2 * 3 * 2^-7 = 0.047.  f32 alone differs by ~1e-7.
    "$PY" -c "import sys; a, b = $a, $b; r = abs(a - b) / abs(a); print(r); sys.exit(not (1e-6 < r <= 6 * 2**-7))"
}
