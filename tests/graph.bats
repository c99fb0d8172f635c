#!/usr/bin/env bats
# graph.bats: the normalised user-item graph recipe and its edge dropout
# (common/kernels/graph.c), and the build-graph stage, checked against numpy (and,
# on the real data, against the release's scipy code).

load helpers

gc() { "$PY" "$ROOT/tests/tools/graph_check.py" "$@"; }

@test "build-graph writes graph/ui equal to numpy's dense recipe, users and items without interactions included" {
    gc interactions "$T/r.ts" --users 60 --items 45 --n 200 --seed 3
    run build-graph "$T/r.ts" -o "$T/g.ts"
    [ "$status" -eq 0 ]
    [[ "$output" == "build-graph: graph/ui: 105 x 105, "*" non-zeros from 'train' (60 users x 45 items"*" s" ]]
    run gc recipe "$T/r.ts" "$T/g.ts"
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"symmetric, self loops, "*" empty users and "*" empty items"*"agrees"* ]]
    [[ "$output" != *" 0 empty users"* && "$output" != *" 0 empty items"* ]]
}

@test "build-graph's graph of a larger matrix has 2 nnz(R) + U + I entries and matches the recipe" {
    gc interactions "$T/r.ts" --users 400 --items 300 --n 3000 --seed 4
    build-graph -q "$T/r.ts" > "$T/g.ts"
    run gc recipe "$T/r.ts" "$T/g.ts"
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "graph_normalized turns an edge list with repeats into the recipe's graph" {
    gc edges "$T/e.ts" --users 50 --items 40 --n 300
    run "$TOOLS/graph-check" normalized "$T/e.ts" "$T/g.ts" 50 40
    [ "$status" -eq 0 ]
    run gc recipe-edges "$T/e.ts" "$T/g.ts" 50 40
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "graph_normalized refuses an edge out of range and writes nothing" {
    gc edges "$T/e.ts" --users 50 --items 40 --n 300 --bad
    run "$TOOLS/graph-check" normalized "$T/e.ts" "$T/g.ts" 50 40
    [ "$status" -eq 1 ]
    [[ "$output" == *"refused"* ]]
    [ ! -e "$T/g.ts" ]
    gc edges "$T/e.ts" --users 50 --items 40 --n 300
    run "$TOOLS/graph-check" normalized "$T/e.ts" "$T/g.ts" 50 39     # some item is 39
    [ "$status" -eq 1 ]
}

@test "graph_from_interactions counts stored entries as edges whatever their values; unsorted or repeated columns are refused" {
    run gc interactions-messy "$TOOLS/graph-check" "$T"
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "edge dropout at keep rate 0.5 keeps about half the entries, each doubled exactly" {
    gc interactions "$T/r.ts" --users 20000 --items 10000 --n 150000 --seed 5
    build-graph -q "$T/r.ts" > "$T/full.ts"
    run build-graph "$T/r.ts" --keep-rate 0.5 -o "$T/half.ts"
    [ "$status" -eq 0 ]
    [[ "$output" == *"kept of"*"keep rate 0.5, seed 421"* ]]
    run gc dropout "$T/full.ts" "$T/half.ts" 0.5
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "graph_dropout keeps about keep of the entries, scaled by 1 / keep, for another keep rate" {
    gc interactions "$T/r.ts" --users 5000 --items 3000 --n 40000 --seed 6
    build-graph -q "$T/r.ts" --to G > "$T/full.ts"
    "$TOOLS/graph-check" dropout "$T/full.ts" "$T/d.ts" 0.3 9
    run gc dropout "$T/full.ts" "$T/d.ts" 0.3 --name G
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "edge dropout repeats with the same seed and differs with another" {
    gc interactions "$T/r.ts" --users 300 --items 200 --n 2000
    build-graph -q "$T/r.ts" --keep-rate 0.5 > "$T/a.ts"
    build-graph -q "$T/r.ts" --keep-rate 0.5 --seed 421 > "$T/b.ts"
    build-graph -q "$T/r.ts" --keep-rate 0.5 --seed 422 > "$T/c.ts"
    cmp "$T/a.ts" "$T/b.ts"
    ! cmp -s "$T/a.ts" "$T/c.ts"
    build-graph -q "$T/r.ts" --to G > "$T/full.ts"
    "$TOOLS/graph-check" dropout "$T/full.ts" "$T/d1.ts" 0.5 7
    "$TOOLS/graph-check" dropout "$T/full.ts" "$T/d2.ts" 0.5 7
    "$TOOLS/graph-check" dropout "$T/full.ts" "$T/d3.ts" 0.5 8
    cmp "$T/d1.ts" "$T/d2.ts"
    ! cmp -s "$T/d1.ts" "$T/d3.ts"
}

@test "a keep rate of 1 changes nothing" {
    gc interactions "$T/r.ts" --users 300 --items 200 --n 2000
    build-graph -q "$T/r.ts" > "$T/a.ts"
    build-graph -q "$T/r.ts" --keep-rate 1 --seed 5 > "$T/b.ts"
    cmp "$T/a.ts" "$T/b.ts"
    build-graph -q "$T/r.ts" --to G > "$T/full.ts"
    "$TOOLS/graph-check" dropout "$T/full.ts" "$T/d.ts" 1 7
    run gc same "$T/full.ts" "$T/d.ts" G
    [ "$status" -eq 0 ]
}

@test "build-graph --pass forwards every input record after the graph" {
    gc interactions "$T/r.ts" --users 30 --items 20 --n 100 --extra
    run bash -c "build-graph -q --pass '$T/r.ts' | inspect"
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "${lines[1]}" == "graph/ui "*"csr"*"50x50"* ]]
    for name in train meta/dataset val feat/image; do
        grep -q "^$name " <<< "$output" || { echo "missing $name"; false; }
    done
    [ "${#lines[@]}" -eq 6 ]
    pick --only train,val,feat/image,meta/dataset "$T/r.ts" -o "$T/in.ts"
    build-graph -q --pass "$T/r.ts" | pick --drop graph/ui -o "$T/out.ts"
    "$PY" "$ROOT/tests/tools/streams.py" compare "$T/in.ts" "$T/out.ts"
    run bash -c "build-graph -q '$T/r.ts' | inspect"
    [ "${#lines[@]}" -eq 2 ]
}

@test "build-graph reads and writes the names --from and --to give" {
    gc interactions "$T/r.ts" --users 30 --items 20 --n 100 --extra
    build-graph -q --from val --to graph/val "$T/r.ts" > "$T/g.ts"
    run gc recipe "$T/r.ts" "$T/g.ts" --from val --to graph/val
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "build-graph without a train record exits 1 naming it" {
    gc interactions "$T/r.ts" --users 30 --items 20 --n 100 --extra
    pick --drop train "$T/r.ts" -o "$T/notrain.ts"
    run build-graph "$T/notrain.ts" -o "$T/g.ts"
    [ "$status" -eq 1 ]
    [[ "$output" == *"build-graph: "*"'train'"* ]]
    [ ! -e "$T/g.ts" ]
    run build-graph --from nothing "$T/r.ts" -o "$T/g.ts"
    [ "$status" -eq 1 ]
    [[ "$output" == *"'nothing'"* ]]
}

@test "build-graph refuses a train record that is not a csr matrix" {
    gc interactions "$T/r.ts" --users 30 --items 20 --n 100 --extra
    run build-graph --from feat/image "$T/r.ts" -o "$T/g.ts"
    [ "$status" -eq 1 ]
    [[ "$output" == *"record 'feat/image' is a dense tensor, not a csr matrix"* ]]
    run build-graph --from meta/dataset "$T/r.ts" -o "$T/g.ts"
    [ "$status" -eq 1 ]
    [[ "$output" == *"not a csr matrix"* ]]
}

@test "build-graph refuses a keep rate outside (0, 1] as a usage error" {
    for k in 0 -0.5 1.5; do
        run build-graph --keep-rate "$k"
        [ "$status" -eq 2 ] || { echo "$k: $status"; false; }
        [[ "$output" == *"--keep-rate takes a probability in (0, 1]"* ]]
    done
}

@test "build-graph -h prints its usage and options" {
    run build-graph -h
    [ "$status" -eq 0 ]
    [[ "${lines[0]}" == "usage: build-graph [OPTIONS] [INPUT...]" ]]
    for opt in --from --to --keep-rate --seed --pass --zstd; do
        [[ "$output" == *"$opt"* ]] || { echo "no $opt"; false; }
    done
}

@test "on TikTok, convert-pkl | build-graph gives exactly the release's scipy graph" {
    skip_without_data tiktok
    need_python scipy
    run bash -c "convert-pkl '$SHARED/datasets/tiktok' | build-graph -o '$T/g.ts'"
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"graph/ui: 16018 x 16018"* ]]
    run gc release "$SHARED/datasets/tiktok/trnMat.pkl" "$T/g.ts"
    echo "$output"
    [ "$status" -eq 0 ]
    "$TOOLS/graph-check" bench "$T/g.ts" graph/ui 64 11 | sed "s/^/# /" >&3 || true
}

@test "on the synthetic data, convert-pkl | build-graph gives exactly the release's scipy graph" {
    need_python scipy
    "$PY" "$ROOT/examples/make_synthetic.py" "$T/syn" --users 250 --items 180 > /dev/null
    run bash -c "convert-pkl '$T/syn' | build-graph -o '$T/g.ts'"
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"graph/ui: 430 x 430"* ]]
    run gc release "$T/syn/trnMat.pkl" "$T/g.ts"
    echo "$output"
    [ "$status" -eq 0 ]
}
