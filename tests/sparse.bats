#!/usr/bin/env bats
# sparse.bats: the sparse kernels (common/kernels/sp.c: sp_spmm, sp_spmm_add, sp_transpose)
# against numpy, their thread independence, and their benchmark line.

load helpers

gc() { "$PY" "$ROOT/tests/tools/graph_check.py" "$@"; }

@test "sp_spmm agrees with numpy for alpha/beta variants, beta 0 over NaN, empty rows and d = 1, 3, 64, 130; sp_spmm_add gives its bits" {
    run gc spmm "$TOOLS/graph-check" "$T"
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"160 cases agree"* ]]
}

@test "sp_spmm gives bit-identical results on 1 and 2 OpenMP threads" {
    run gc spmm-threads "$TOOLS/graph-check" "$T"
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "sp_transpose agrees with numpy and sorts the columns of its result" {
    run gc transpose "$TOOLS/graph-check" "$T"
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "graph-check bench prints a timing line for sp_spmm of a graph" {
    gc interactions "$T/r.ts" --users 300 --items 200 --n 2000
    build-graph -q "$T/r.ts" > "$T/g.ts"
    run "$TOOLS/graph-check" bench "$T/g.ts" graph/ui 64 5
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == "sp_spmm 500x500 nnz "*" d 64 threads "*": median "*" ms"* ]]
}
