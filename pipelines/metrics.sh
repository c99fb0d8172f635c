#!/bin/sh
# pipelines/metrics.sh: one epoch's line of metrics.jsonl, flat JSON, joined
# from the epoch folder's files: evaluate's lines on test and val (eval.json,
# one line per split; keys prefixed test_ / val_), the logs of train, diffuse and
# augment (prefixed train_ / diffuse_ / augment_; each has the stage's
# "seconds"), and evaluate_seconds, the two evaluations' time together
# (from evaluate.log).
# (feature-graph's log instead of diffuse's and augment's for simgraph)
# usage: metrics.sh BIN EPOCH_DIR [diffusion|simgraph]
# One awk does the joining (it runs once an epoch: each process started here
# costs milliseconds, and a chain of seds took 0.2 s); the logs inside the
# streams come from inspect, through the environment (no escapes undone).
set -eu
bin=$1 d=$2 diff=${3:-}
e=${d%/}; e=${e##*/e}
METRICS_TRAIN=$("$bin/inspect" --print log/train "$d/train.ts")
case $diff in
    simgraph) METRICS_AUG=$("$bin/inspect" --print log/feature-graph "$d/augment.ts") ;;
    '') METRICS_AUG= ;;
    *) METRICS_AUG=$("$bin/inspect" --print log/augment "$d/augment.ts") ;;
esac
export METRICS_TRAIN METRICS_AUG
exec awk -v e="$e" -v d="$d" -v diff="$diff" '
# a JSON object line without its braces, every key prefixed
function flat(s, p) {
    sub(/^\{/, "", s); sub(/\}$/, "", s)
    gsub(/"[a-z\/@0-9_]*":/, "\001&", s)
    gsub(/\001"/, "\"" p, s)
    return s
}
# a stage log line without the keys the line has already
function logline(s, p) {
    sub(/"stage": "[a-z-]*", /, "", s); sub(/"epoch": [0-9]*, /, "", s)
    return flat(s, p)
}
# the last "seconds" number of a line
function seconds(s,    v) {
    v = ""
    while (match(s, /"seconds": [0-9.e+-]*/)) {
        v = substr(s, RSTART + 11, RLENGTH - 11)
        s = substr(s, RSTART + RLENGTH)
    }
    return v
}
BEGIN {
    f = d "/eval.json"
    while ((r = (getline l < f)) > 0) {
        if (t == "" && index(l, "\"split\": \"test\"")) t = l
        if (v == "" && index(l, "\"split\": \"val\"")) v = l
    }
    if (t == "") { print "metrics.sh: " f " has no test line" > "/dev/stderr"; exit 1 }
    line = "{\"epoch\": " e ", " flat(t, "test_")
    if (v != "") line = line ", " flat(v, "val_")
    line = line ", " logline(ENVIRON["METRICS_TRAIN"], "train_")
    if (diff == "simgraph") {
        line = line ", " logline(ENVIRON["METRICS_AUG"], "feature_graph_")
    } else if (diff != "") {
        # diffuse'"'"'s log from its sidecar file (the last line: a re-run appends)
        f = d "/diffuse.log"; last = ""; n = 0
        while ((r = (getline l < f)) > 0) { last = l; n++ }
        if (r < 0 || n == 0) { print "metrics.sh: no " f > "/dev/stderr"; exit 1 }
        line = line ", " logline(last, "diffuse_")
        line = line ", " logline(ENVIRON["METRICS_AUG"], "augment_")
    }
    # the last line per split of evaluate.log (a re-run appends)
    f = d "/evaluate.log"
    while ((getline l < f) > 0) {
        if (index(l, "\"split\": \"test\"")) st = seconds(l)
        if (index(l, "\"split\": \"val\"")) sv = seconds(l)
    }
    printf "%s, \"evaluate_seconds\": %.3f}\n", line, st + sv
}'
