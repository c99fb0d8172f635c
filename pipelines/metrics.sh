#!/bin/sh
# pipelines/metrics.sh: one epoch's line of metrics.jsonl, flat JSON, joined
# from the epoch folder's files: evaluate's lines on test and val (eval.json,
# one line per split; keys prefixed test_ / val_), the logs of train, diffuse and
# augment (prefixed train_ / diffuse_ / augment_; each has the stage's
# "seconds"), and evaluate_seconds, the two evaluations' time together
# (from evaluate.log).
# (feature-graph's log instead of diffuse's and augment's for simgraph)
# usage: metrics.sh BIN EPOCH_DIR [diffusion|simgraph]
set -eu
bin=$1 d=$2 diff=${3:-}
e=${d%/}; e=${e##*/e}
flat() { sed -e 's/^{//' -e 's/}$//' -e "s/\"\([a-z/@0-9_]*\)\":/\"$1\1\":/g"; }
# a stage's log line without the keys the line has already
log() { sed 's/"stage": "[a-z-]*", //; s/"epoch": [0-9]*, //' | flat "$1"; }
split_line() { grep "\"split\": \"$1\"" "$d/eval.json" || true; }
test_line=$(split_line test) val_line=$(split_line val)
[ -n "$test_line" ] || { echo "metrics.sh: $d/eval.json has no test line" >&2; exit 1; }
line="{\"epoch\": $e, $(echo "$test_line" | flat test_)"
[ -n "$val_line" ] && line="$line, $(echo "$val_line" | flat val_)"
line="$line, $("$bin/inspect" --print log/train "$d/train.ts" | log train_)"
if [ "$diff" = simgraph ]; then
    line="$line, $("$bin/inspect" --print log/feature-graph "$d/augment.ts" | log feature_graph_)"
elif [ -n "$diff" ]; then
    # diffuse's log from its sidecar file (the last line: a re-run appends)
    line="$line, $(tail -n 1 "$d/diffuse.log" | log diffuse_)"
    line="$line, $("$bin/inspect" --print log/augment "$d/augment.ts" | log augment_)"
fi
# the last line per split of evaluate.log (a re-run appends)
secs=$(for s in test val; do grep "\"split\": \"$s\"" "$d/evaluate.log" 2>/dev/null | tail -n 1; done |
       sed -n 's/.*"seconds": \([0-9.e+-]*\).*/\1/p' | awk '{ s += $1 } END { printf "%.3f", s }')
echo "$line, \"evaluate_seconds\": $secs}"
