#!/usr/bin/env bats
# resume.bats: a pipeline run killed at any moment, with SIGKILL (no handler
# runs), then run again, ends exactly where an uninterrupted run ends: the
# same metrics (timings aside), the same model records, no temporary file
# left behind and the data guard (inputs.cksum) in place.

load helpers

setup_file() {
    export SYN="$BATS_FILE_TMPDIR/syn"
    "$PY" "$BATS_TEST_DIRNAME/../examples/make_synthetic.py" "$SYN" --users 150 --items 120 >/dev/null
}

# runmk ARGS...: the recipe on the tiny synthetic data, runs under $T/runs
runmk() {
    make --no-print-directory -C "$ROOT" -f pipelines/run.mk DATASET=demo DATA="$SYN" RUNS="$T/runs" \
         DIMS=16 LATDIM=8 EPOCHS=3 "$@"
}


# the model records of a run's last epoch, as name and checksum lines
model_of() { inspect "$1/e2/train.ts" | awk '$1 ~ /^(model|adam|emb)\// { print $1, $NF }'; }

# no process is still working on run folder $1 (a make killed alone leaves its stage running)
settle() { for _ in $(seq 400); do pgrep -f "$1/" > /dev/null || return 0; sleep 0.05; done; return 1; }

@test "a run killed with SIGKILL at random moments, its process group or make alone, ends as one never killed" {
    t0=$(date +%s%N)
    runmk RUN=whole run > /dev/null
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))          # how long a whole run takes on this machine
    want=$(untimed "$T/runs/demo/whole/metrics.jsonl")
    want_model=$(model_of "$T/runs/demo/whole")
    [ -n "$want_model" ]
    # the whole run's files in the order they appeared: each kill waits for a
    # random one of those the killed run lacks, then a random 0-199 ms more,
    # so the kills spread over the whole run whatever this machine's speed
    mapfile -t files < <(cd "$T/runs/demo/whole" && find . -type f -printf '%T@ %P\n' | sort -n | cut -d' ' -f2)
    RANDOM=421
    kills=0
    for i in 1 2 3 4 5 6 7 8; do
        rm -rf "$T/runs/demo/k"
        for round in 1 2; do
            missing=()
            for f in "${files[@]}"; do [ -e "$T/runs/demo/k/$f" ] || missing+=("$f"); done
            [ ${#missing[@]} -gt 0 ] || missing=(summary.txt)
            target=${missing[RANDOM % ${#missing[@]}]}
            setsid bash -c "$(declare -f runmk); ROOT='$ROOT' SYN='$SYN' T='$T'; runmk RUN=k run" > /dev/null 2>&1 &
            pid=$!
            for _ in $(seq 1000); do
                [ -e "$T/runs/demo/k/$target" ] && break
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.01
            done
            sleep "0.$(printf %03d $(( RANDOM % 200 )))"
            if [ $(( (i + round) % 2 )) -eq 0 ]; then
                kill -KILL -- "-$pid" 2>/dev/null && kills=$((kills + 1))      # the whole process group
            else
                pkill -KILL -f "^make .*RUN=k run" 2>/dev/null && kills=$((kills + 1))   # make alone
            fi
            wait "$pid" 2>/dev/null || true
            settle "$T/runs/demo/k"
        done
        runmk RUN=k run > /dev/null
        [ "$(untimed "$T/runs/demo/k/metrics.jsonl")" = "$want" ] || { echo "run $i: metrics differ"; false; }
        [ "$(model_of "$T/runs/demo/k")" = "$want_model" ] || { echo "run $i: model differs"; false; }
        ! find "$T/runs/demo/k" -name '*.tmp*' | grep . || { echo "run $i: temporary files left"; false; }
        [ -s "$T/runs/demo/k/inputs.cksum" ]
    done
    echo "# $kills kills landed in 16 attempts (a whole run: $ms ms)" >&3
    [ "$kills" -ge 8 ]
}
