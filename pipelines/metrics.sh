#!/bin/sh
# pipelines/metrics.sh: one epoch's line of metrics.jsonl, flat JSON:
# evaluate's figures on test and val (keys prefixed test_ / val_), the logs
# of train, diffuse and augment (prefixed train_ / diffuse_ / augment_; each
# has the stage's "seconds"), and evaluate_seconds for the two evaluations.
# usage: metrics.sh BIN RUN_DIR EPOCH [with-diffusion]
set -eu
bin=$1 r=$2 e=$3 diff=${4:-}
flat() { sed -e 's/^{//' -e 's/}$//' -e "s/\"\([a-z/@0-9_]*\)\":/\"$1\1\":/g"; }
t0=$(date +%s.%N)
test=$("$bin/evaluate" -q "$r/base.ts" "$r/e$e/train.ts" --split test | flat test_)
val=$("$bin/evaluate" -q "$r/base.ts" "$r/e$e/train.ts" --split val 2>/dev/null | flat val_ || true)
t1=$(date +%s.%N)
train=$("$bin/inspect" --print log/train "$r/e$e/train.ts" | sed 's/"stage": "train", //; s/"epoch": [0-9]*, //' | flat train_)
line="{\"epoch\": $e, $test"
[ -n "$val" ] && line="$line, $val"
line="$line, $train"
if [ -n "$diff" ]; then
    # diffuse's log line from its sidecar file (the last line: a re-run appends),
    # else from the 325 MB stream itself
    if [ -s "$r/e$e/diffuse.log" ]; then d=$(tail -n 1 "$r/e$e/diffuse.log")
    else d=$("$bin/inspect" --print log/diffuse "$r/e$e/diffuse.ts"); fi
    d=$(printf '%s\n' "$d" | sed 's/"stage": "diffuse", //; s/"epoch": [0-9]*, //' | flat diffuse_)
    line="$line, $d"
    a=$("$bin/inspect" --print log/augment "$r/e$e/augment.ts" 2>/dev/null \
        | sed 's/"stage": "augment", //; s/"epoch": [0-9]*, //' | flat augment_ || true)
    [ -n "$a" ] && line="$line, $a"
fi
line="$line, $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "\"evaluate_seconds\": %.3f", b - a }')"
echo "$line}"
