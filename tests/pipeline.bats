#!/usr/bin/env bats
# pipeline.bats: the make recipes (pipelines/run.mk): epochs as files,
# resuming, run folders, bounded disk, variants, and the one-pipe example.

load helpers

setup_file() {
    export SYN="$BATS_FILE_TMPDIR/syn"
    /usr/bin/python3 "$BATS_TEST_DIRNAME/../examples/make_synthetic.py" "$SYN" --users 300 --items 250 >/dev/null
}

# runmk ARGS...: the recipe on the small synthetic data, runs under $T/runs
runmk() {
    make --no-print-directory -C "$ROOT" -f pipelines/run.mk DATASET=demo DATA="$SYN" RUNS="$T/runs" DIMS=64 "$@"
}

# no_state DIR: an epoch folder holds only its small files (metrics, logs)
no_state() { [ -e "$1/metrics.json" ] && ! ls "$1"/*.ts > /dev/null 2>&1; }


@test "the recipe writes every epoch's files, one metrics line per epoch and a summary" {
    run runmk EPOCHS=3 RUN=r run
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(wc -l < "$T/runs/demo/r/metrics.jsonl")" -eq 3 ]
    for key in test_recall@20 test_ndcg@20 test_precision@20 val_recall@20 train_bpr train_cl train_seconds \
               diffuse_loss/image diffuse_seconds augment_edges/image augment_seconds evaluate_seconds; do
        grep -q "\"$key\"" "$T/runs/demo/r/metrics.jsonl" || { echo "missing $key"; false; }
    done
    [[ "$output" == *"best validation epoch"*"best test epoch"* ]]
}

@test "epoch 0 of the recipe and the one-pipe example give the same metrics" {
    runmk EPOCHS=1 RUN=r run
    want=$(grep -o '"test_recall@20": [0-9.]*' "$T/runs/demo/r/metrics.jsonl" | cut -d' ' -f2)
    run env TRANS=1 DIMS=64 "$ROOT/examples/one-epoch.sh" "$SYN" --reg 1e-4 --cl-method 1
    echo "$output"
    [ "$status" -eq 0 ]
    got=$(grep -o '"recall@20": [0-9.]*' <<< "$output" | cut -d' ' -f2)
    [ "$got" = "$want" ]
}

@test "a run killed in the middle continues to the same metrics as one never interrupted" {
    runmk EPOCHS=3 RUN=whole run
    runmk EPOCHS=3 RUN=cut run > /dev/null 2>&1 &
    pid=$!
    for _ in $(seq 300); do [ -e "$T/runs/demo/cut/e1/diffuse.ts" ] && break; sleep 0.05; done
    kill -TERM -- "$pid" 2>/dev/null || true
    pkill -TERM -f "RUN=cut" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    [ ! -e "$T/runs/demo/cut/summary.txt" ]
    runmk EPOCHS=3 RUN=cut run
    diff <(untimed "$T/runs/demo/whole/metrics.jsonl") <(untimed "$T/runs/demo/cut/metrics.jsonl")
}

@test "a finished run does nothing more, and make -n shows what a new one would run" {
    runmk EPOCHS=2 RUN=r run
    run runmk EPOCHS=2 RUN=r run
    [[ "$output" != *"bin/train"* ]]
    run runmk EPOCHS=3 RUN=r -n run
    [[ "$output" == *"bin/diffuse"*"e2/diffuse.ts"* ]]
    [[ "$output" == *"bin/train"*"e2/train.ts"* ]]
    [ ! -e "$T/runs/demo/r/e2" ]
}

@test "parameters set on the command line get their own run folder" {
    run runmk EPOCHS=1 REG=1e-3 print-run
    [[ "$output" == *"/demo/diffmm-seed421-"*"reg1e-3"* ]]
    [[ "$output" != *" "* ]]
    run runmk EPOCHS=1 SEED=7 VARIANT=nocl print-run
    [[ "$output" == *"/demo/nocl-seed7-"* ]]
    run runmk EPOCHS=1 print-run
    a="$output"
    run runmk EPOCHS=5 print-run
    [ "$output" = "$a" ]                # more epochs continue the same run
}

@test "the large state of epochs older than the last two is removed as the run advances" {
    runmk EPOCHS=2 RUN=r run
    cp -p -r "$T/runs/demo/r/e0" "$T/e0-state"
    runmk EPOCHS=4 RUN=r run
    no_state "$T/runs/demo/r/e0"
    no_state "$T/runs/demo/r/e1"
    [ -e "$T/runs/demo/r/e3/diffuse.ts" ] && [ -e "$T/runs/demo/r/e2/train.ts" ]
    # state left behind by a make killed between two of its steps goes too
    cp -p "$T"/e0-state/*.ts "$T/runs/demo/r/e0/"
    run runmk EPOCHS=5 RUN=r run
    [ "$status" -eq 0 ]
    [[ "$output" != *"e0/"* ]]
    no_state "$T/runs/demo/r/e0"
    no_state "$T/runs/demo/r/e2"
}

@test "the variants run: no diffusion, no contrast, one modality, LightGCN" {
    run runmk EPOCHS=1 VARIANT=nodiff RUN=nodiff run
    [ "$status" -eq 0 ]
    [ ! -e "$T/runs/demo/nodiff/e0/diffuse.ts" ] && [ -e "$T/runs/demo/nodiff/e0/train.ts" ]
    run runmk EPOCHS=1 VARIANT=nocl RUN=nocl run
    [ "$status" -eq 0 ]
    grep -q '"train_cl": 0,' "$T/runs/demo/nocl/metrics.jsonl"
    run runmk EPOCHS=1 MODALITIES=image RUN=img run
    [ "$status" -eq 0 ]
    run inspect "$T/runs/demo/img/base.ts"
    [[ "$output" == *"feat/image"* ]] && [[ "$output" != *"feat/audio"* ]]
    run runmk EPOCHS=1 VARIANT=lightgcn RUN=lgcn run
    [ "$status" -eq 0 ]
    run inspect "$T/runs/demo/lgcn/base.ts"
    [[ "$output" != *"feat/"* ]]
}

@test "a dataset without feature files says so and points to the LightGCN baseline" {
    mkdir "$T/plain"
    cp "$SYN"/*.pkl "$T/plain/"
    run make --no-print-directory -C "$ROOT" -f pipelines/run.mk DATASET=baby DATA="$T/plain" RUNS="$T/runs" EPOCHS=1 run
    [ "$status" -ne 0 ]
    [[ "$output" == *"no feature files"*"VARIANT=lightgcn"* ]]
    run make --no-print-directory -C "$ROOT" -f pipelines/run.mk DATASET=baby DATA="$T/plain" RUNS="$T/runs" EPOCHS=1 \
        VARIANT=lightgcn run
    [ "$status" -eq 0 ]
}

@test "the ablation table lists every variant" {
    run runmk EPOCHS=1 ablation
    echo "$output"
    [ "$status" -eq 0 ]
    table=$(ls "$T"/runs/demo/ablation-seed421*.md)
    for v in diffmm nodiff nocl simgraph only-audio only-image lightgcn; do
        grep -q "^| $v |" "$table" || { echo "no row for $v"; false; }
    done
}

@test "a long finished run is checked in a fraction of a second: make stays linear in the epochs" {
    # 40 epochs on 60 users: each epoch's old state is gone, which once made
    # make walk 2^epochs paths through the missing files
    /usr/bin/python3 "$ROOT/examples/make_synthetic.py" "$T/tiny" --users 60 --items 40 >/dev/null
    tiny() { make --no-print-directory -C "$ROOT" -f pipelines/run.mk DATASET=demo DATA="$T/tiny" RUNS="$T/runs" \
                  DIMS=8 LATDIM=8 RUN=long "$@"; }
    tiny EPOCHS=40 run > /dev/null
    [ "$(ls -d "$T"/runs/demo/long/e*/ | wc -l)" -eq 40 ]
    run timeout 10 bash -c "$(declare -f tiny); ROOT='$ROOT' T='$T'; tiny EPOCHS=40 -n run"
    [ "$status" -eq 0 ]
    [[ "$output" != *"bin/"* ]]
    run timeout 10 bash -c "$(declare -f tiny); ROOT='$ROOT' T='$T'; tiny EPOCHS=41 -n run"
    [ "$status" -eq 0 ]
    [[ "$output" == *"e39/train.ts"*"e40/train.ts"* ]]
}

@test "new times on the same data restart nothing; changed data stops the run with a message" {
    cp -r "$SYN" "$T/data"
    runmk DATA="$T/data" EPOCHS=1 RUN=r run > /dev/null
    touch "$T"/data/*
    run runmk DATA="$T/data" EPOCHS=1 RUN=r run
    [ "$status" -eq 0 ]
    [[ "$output" != *"bin/"* ]]
    /usr/bin/python3 "$ROOT/examples/make_synthetic.py" "$T/data" --users 300 --items 250 --seed 5 >/dev/null
    run runmk DATA="$T/data" EPOCHS=2 RUN=r run
    echo "$output"
    [ "$status" -ne 0 ]
    [[ "$output" == *"made from other data"*"RUN="* ]]
    [ ! -e "$T/runs/demo/r/e1" ]
}

@test "the data guard survives a kill: no base.ts without its checksum, a base.ts without one is refused" {
    cp -r "$SYN" "$T/data"
    # killed after the checksum and before base.ts: the next run makes base.ts, even on changed data
    mkdir -p "$T/runs/demo/r"
    cat "$T"/data/trnMat.pkl "$T"/data/valMat.pkl "$T"/data/tstMat.pkl "$T"/data/*_feat.npy | cksum > "$T/runs/demo/r/inputs.cksum"
    /usr/bin/python3 "$ROOT/examples/make_synthetic.py" "$T/data" --users 300 --items 250 --seed 5 >/dev/null
    run runmk DATA="$T/data" EPOCHS=1 RUN=r run
    echo "$output"
    [ "$status" -eq 0 ]
    # and its checksum is of the data base.ts was made from
    [ "$(cat "$T"/data/trnMat.pkl "$T"/data/valMat.pkl "$T"/data/tstMat.pkl "$T"/data/*_feat.npy | cksum)" = "$(cat "$T/runs/demo/r/inputs.cksum")" ]
    # a base.ts whose checksum is gone (an older recipe killed at the wrong moment) is refused
    rm "$T/runs/demo/r/inputs.cksum"
    run runmk DATA="$T/data" EPOCHS=2 RUN=r run
    echo "$output"
    [ "$status" -ne 0 ]
    [[ "$output" == *"base.ts has no inputs.cksum"*"RUN="* ]]
    [ ! -e "$T/runs/demo/r/e1" ]
}

@test "a stage killed with SIGKILL leaves a temporary file that the next write of that output removes" {
    runmk EPOCHS=1 RUN=r run > /dev/null
    r="$T/runs/demo/r"
    # a writer that is gone (a pid no process has), one that is alive, one
    # of another host sharing the folder (not judged here), an older name
    sleep 30 & live=$!
    dead=$(( $(cat /proc/sys/kernel/pid_max) - 1 ))
    h=$(uname -n)
    echo partial > "$r/base.ts.tmp.$h.$dead"
    echo partial > "$r/base.ts.tmp.$h.$live"
    echo partial > "$r/base.ts.tmp.other-node.$dead"
    echo partial > "$r/base.ts.tmp.$dead"
    run pick "$r/base.ts" -o "$r/base.ts"
    kill $live
    [ "$status" -eq 0 ]
    [ ! -e "$r/base.ts.tmp.$h.$dead" ] && [ ! -e "$r/base.ts.tmp.$dead" ]
    [ -e "$r/base.ts.tmp.$h.$live" ] && [ -e "$r/base.ts.tmp.other-node.$dead" ]
    # a real SIGKILL in the middle of writing (16 MB recompressed slowly), then the same command again
    "$PY" -c 'import numpy as np, sys; np.save(sys.argv[1], np.random.default_rng(1).standard_normal((2000, 2000)).astype(np.float32))' "$T/big.npy"
    convert-pkl -q feat/x="$T/big.npy" --zstd 0 -o "$T/big.ts"
    ( exec pick -q --zstd 12 "$T/big.ts" -o "$T/out.ts" ) & pid=$!
    for i in $(seq 200); do [ -e "$T/out.ts.tmp.$h.$pid" ] && break; sleep 0.02; done
    kill -9 $pid; wait $pid || true
    [ -e "$T/out.ts.tmp.$h.$pid" ]
    [ ! -e "$T/out.ts" ]
    pick -q --zstd 1 "$T/big.ts" -o "$T/out.ts"
    [ -e "$T/out.ts" ]
    ! ls "$T"/out.ts.tmp.* 2>/dev/null
}

@test "an ablation with an overridden parameter never reuses the default runs" {
    runmk EPOCHS=1 RUN=diffmm-seed421 run > /dev/null
    before=$(ls "$T/runs/demo" | sort)
    run runmk EPOCHS=1 LR=2e-3 ablation
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"ablation: nodiff in "*"nodiff-seed421-lr2e-3"* ]]
    # every variant got a new folder named after the override, and its own table
    [ "$(ls "$T/runs/demo" | grep -c -- '-lr2e-3')" -eq 8 ]
    for d in $before; do [ -d "$T/runs/demo/$d" ]; done
}

@test "the similarity-graph variant makes the modality graphs with feature-graph, without diffusion" {
    run runmk EPOCHS=2 VARIANT=simgraph RUN=sim run
    echo "$output"
    [ "$status" -eq 0 ]
    [ ! -e "$T/runs/demo/sim/e1/diffuse.ts" ]
    run inspect "$T/runs/demo/sim/e1/augment.ts"
    [[ "$output" == *"graph/audio"*"graph/image"*"log/feature-graph"* ]]
    grep -q '"feature_graph_edges/image": [1-9]' "$T/runs/demo/sim/e1/metrics.json"
    # each epoch draws its own edge dropout
    ! cmp -s <(pick --only graph/image --zstd 0 "$T/runs/demo/sim/e0/augment.ts") \
             <(pick --only graph/image --zstd 0 "$T/runs/demo/sim/e1/augment.ts")
}

@test "SHARDS=2 and 3 split augment into jobs whose merge is byte-identical to one augment" {
    runmk EPOCHS=2 AUGMENT_BATCH=64 RUN=one epochs
    for n in 2 3; do
        runmk EPOCHS=2 AUGMENT_BATCH=64 RUN=s$n SHARDS=$n epochs
        ls "$T/runs/demo/s$n/e1/augment-$((n - 1))of$n.ts"
        cmp <(pick --drop log/augment --zstd 0 "$T/runs/demo/one/e1/augment.ts") \
            <(pick --drop log/augment --zstd 0 "$T/runs/demo/s$n/e1/augment.ts")
        diff <(outcomes "$T/runs/demo/one/metrics.jsonl") <(outcomes "$T/runs/demo/s$n/metrics.jsonl")
        grep -q "\"augment_shards\": $n," "$T/runs/demo/s$n/e1/metrics.json"
    done
    # SHARDS is not part of the run folder's name: the results are the same
    [ "$(runmk SHARDS=2 print-run)" = "$(runmk print-run)" ]
    run runmk SHARDS=0 print-run
    [ "$status" -ne 0 ] && [[ "$output" == *"SHARDS=0"* ]]
}

@test "a sweep runs every variant and seed as its own target and tabulates mean and sd over seeds" {
    sweep() { make --no-print-directory -C "$ROOT" sweep DATASET=demo DATA="$SYN" RUNS="$T/runs" DIMS=64 EPOCHS=2 \
                   SEEDS="5 6" VARIANTS="only-image lightgcn" "$@"; }
    run sweep -n
    echo "$output"
    [ "$status" -eq 0 ]
    [ "$(grep -c 'pipelines/run.mk.* epochs$' <<< "$output")" -eq 4 ]
    [[ "$output" == *"VARIANT=diffmm MODALITIES=image SEED=6 epochs"* ]]
    [ ! -e "$T/runs/demo" ]
    run sweep -j2
    echo "$output"
    [ "$status" -eq 0 ]
    table=$(ls "$T"/runs/demo/sweep-*.md)
    # the table against the runs' own metrics, recomputed here
    "$PY" - "$table" "$T/runs/demo" <<'PYEOF'
import json, statistics, sys, glob
table, runs = sys.argv[1], sys.argv[2]
rows = {l.split("|")[1].strip(): [c.strip() for c in l.split("|")[2:-1]] for l in open(table) if l.startswith("| ") and "variant" not in l}
for v, pat in [("only-image", "diffmm-seed{}-dims64-modalitiesimage-datasyn"),
               ("lightgcn", "lightgcn-seed{}-dims64-datasyn")]:
    best_val, mean = [], []
    for seed in (5, 6):
        m = [json.loads(l) for l in open(f"{runs}/{pat.format(seed)}/metrics.jsonl")]
        assert len(m) == 2
        e = max(range(2), key=lambda i: (m[i]["val_recall@20"], -i))
        best_val.append(m[e]["test_recall@20"])
        mean.append(sum(x["test_recall@20"] for x in m) / 2)
    r = rows[v]
    assert r[0] == "2", r
    want = f"{statistics.mean(best_val):.4f} +- {statistics.stdev(best_val):.4f}"
    assert r[1] == want, (v, r[1], want)
    assert r[5].startswith(f"{statistics.mean(mean):.4f} +- {statistics.stdev(mean):.4f}"), (v, r[5])
print("table ok")
PYEOF
    # a run that has not finished: an error naming it, no table row of nothing
    run "$ROOT/pipelines/sweep.sh" demo lightgcn 99 "$T/runs"
    [ "$status" -eq 1 ] && [[ "$output" == *"lightgcn-seed99"*"did not finish"* ]] && [[ "$output" != *nan* ]]
}
