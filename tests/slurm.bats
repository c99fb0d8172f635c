#!/usr/bin/env bats
# slurm.bats: the recipes through a real Slurm (issue 13): a private
# one-node cluster on loopback (tests/tools/minislurm.sh: Debian's munge,
# slurmctld, slurmd, its own key, ports and files), a sweep and a sharded
# augment with SUBMIT=srun, each against the same work done without Slurm.
# Never skips: scripts/deps.sh test installs the daemons, and one that does
# not start is a failure.

load helpers

setup_file() {
    export SYN="$BATS_FILE_TMPDIR/syn" CLUSTER="$BATS_FILE_TMPDIR/slurm"
    /usr/bin/python3 "$BATS_TEST_DIRNAME/../examples/make_synthetic.py" "$SYN" --users 300 --items 250 >/dev/null
    eval "$("$BATS_TEST_DIRNAME/tools/minislurm.sh" start "$CLUSTER")"
    export SLURM_CONF
}

teardown_file() {
    "$BATS_TEST_DIRNAME/tools/minislurm.sh" stop "$CLUSTER"
}

# the job steps Slurm has finished so far
steps_done() { grep -c '_job_complete: JobId=[0-9]* done' "$CLUSTER/log/slurmctld.log" || true; }

SUBMIT_SRUN='srun --quiet --cpus-per-task=1 --mem=500M'

@test "the private cluster runs a job step" {
    run srun --quiet -n1 sh -c 'echo "job $SLURM_JOB_ID on $SLURMD_NODENAME"'
    echo "$output"
    [ "$status" -eq 0 ] && [[ "$output" == "job "[0-9]*" on "* ]]
}

@test "a sweep through Slurm (make -j4, SUBMIT=srun) gives the metrics of the same sweep without it" {
    sweep() { make --no-print-directory -C "$ROOT" sweep DATASET=demo DATA="$SYN" DIMS=64 EPOCHS=1 SEEDS="1 2" \
                   VARIANTS="diffmm nodiff" "$@"; }
    run sweep RUNS="$T/plain"
    [ "$status" -eq 0 ]
    before=$(steps_done)
    run sweep -j4 RUNS="$T/slurm" SUBMIT="$SUBMIT_SRUN"
    echo "$output"
    [ "$status" -eq 0 ]
    # every stage command was a job step: 4 runs x (train, evaluate), + 2 runs' diffuse and augment
    steps=$(($(steps_done) - before))
    echo "$steps job steps"
    [ "$steps" -ge $((4 * 2 + 2 * 2)) ]
    n=0
    for d in "$T"/plain/demo/*/; do
        r=$(basename "$d")
        diff <(untimed "$d/metrics.jsonl") <(untimed "$T/slurm/demo/$r/metrics.jsonl")
        n=$((n + 1))
    done
    [ "$n" -eq 4 ]
    diff <(grep -v '^|---' "$T"/plain/demo/sweep-*.md) <(grep -v '^|---' "$T"/slurm/demo/sweep-*.md)
}

@test "augment split into Slurm jobs (SHARDS=2, 3) is byte-identical to one augment without Slurm" {
    runmk() { make --no-print-directory -C "$ROOT" -f pipelines/run.mk DATASET=demo DATA="$SYN" RUNS="$T/runs" DIMS=64 \
                   EPOCHS=1 AUGMENT_BATCH=64 "$@" epochs; }
    runmk RUN=one
    for n in 2 3; do
        before=$(steps_done)
        runmk -j3 RUN=s$n SHARDS=$n SUBMIT="$SUBMIT_SRUN"
        # diffuse, n shards, the merge, train, evaluate (both splits)
        [ $(($(steps_done) - before)) -ge $((n + 4)) ]
        cmp <(pick --drop log/augment --zstd 0 "$T/runs/demo/one/e0/augment.ts") \
            <(pick --drop log/augment --zstd 0 "$T/runs/demo/s$n/e0/augment.ts")
        diff <(outcomes "$T/runs/demo/one/metrics.jsonl") <(outcomes "$T/runs/demo/s$n/metrics.jsonl")
    done
}

@test "examples/sbatch-sweep.sh runs a sweep as one batch job whose stages are its steps" {
    cd "$ROOT"
    args=(DATASET=demo DATA="$SYN" DIMS=64 EPOCHS=2 SEEDS=3 "VARIANTS=diffmm lightgcn")
    make --no-print-directory sweep "${args[@]}" RUNS="$T/plain" > /dev/null
    run sbatch --wait --ntasks=2 --cpus-per-task=1 --mem-per-cpu=500M --output="$T/job.log" \
        examples/sbatch-sweep.sh "${args[@]}" RUNS="$T/batch"
    cat "$T/job.log"
    [ "$status" -eq 0 ]
    grep -q "sbatch-sweep: job [0-9]* on .*2 tasks x 1 cpus" "$T/job.log"
    for r in diffmm-seed3-dims64-datasyn lightgcn-seed3-dims64-datasyn; do
        diff <(untimed "$T/plain/demo/$r/metrics.jsonl") <(untimed "$T/batch/demo/$r/metrics.jsonl")
    done
    # its stages ran as steps of the batch job: diffmm 2 epochs x (diffuse, augment,
    # train, evaluate), lightgcn 2 x (train, evaluate)
    job=$(sed -n 's/^sbatch-sweep: job \([0-9]*\) .*/\1/p' "$T/job.log")
    steps=$(grep -c "launch task StepId=$job\.[0-9]" "$CLUSTER/log/slurmd.log")
    echo "$steps steps"
    [ "$steps" -ge 12 ]
}
