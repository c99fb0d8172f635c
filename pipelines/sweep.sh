#!/bin/sh
# pipelines/sweep.sh: the table of a sweep (pipelines/sweep.mk) for one
# dataset: per variant, the best-validation epoch's test Recall@20 and
# NDCG@20, the best test epoch's, and the mean test Recall@20 over the last
# 80% of the epochs (epochs 10-49 of 50), each as mean +- sd over the seeds
# (sample sd; "-" for one seed), with the number of seeds.  Printed and
# written to RUNS/DATASET/sweep-<variants>-seeds-<seeds>.md.
# usage: sweep.sh DATASET "VARIANTS" "SEEDS" RUNS
# Run folders are found by asking pipelines/run.mk (print-run), so the
# command line's NAME=value overrides (in MAKEFLAGS) name them as they did.
set -eu
dataset=$1 variants=$2 seeds=$3 runs=$4
here=$(dirname "$0")
slug=$(printf '%s-seeds-%s' "$variants" "$seeds" | tr -c 'A-Za-z0-9.+\n' '-')
out="$runs/$dataset/sweep-$slug.md"
mk() { ${MAKE:-make} -s --no-print-directory -f "$here/run.mk" "$@"; }
trap 'rm -f "$out.tmp"' EXIT
{
    echo "| $dataset: variant | seeds | best val epoch: test R@20 | N@20 | best test epoch: R@20 | N@20 | mean test R@20 (epochs) |"
    echo "|---|---|---|---|---|---|---|"
    for v in $variants; do
        case $v in only-*) args="VARIANT=diffmm MODALITIES=${v#only-}" ;; *) args="VARIANT=$v" ;; esac
        nums=$(for s in $seeds; do
            # shellcheck disable=SC2086
            d=$(mk DATASET="$dataset" $args SEED="$s" RUNS="$runs" print-run)
            [ -s "$d/metrics.jsonl" ] || { echo "sweep.sh: $d has no metrics.jsonl (the run did not finish)" >&2; exit 1; }
            "$here/summary.sh" "$d/metrics.jsonl" "" --numbers
        done) || exit 1
        printf '%s\n' "$nums" | awk -v v="$v" '
            { for (c = 1; c <= 5; c++) { x[NR, c] = $c; s[c] += $c } lo = $6; hi = $7 }
            END {
                printf "| %s | %d", v, NR
                for (c = 1; c <= 5; c++) {
                    m = s[c] / NR; ss = 0
                    for (r = 1; r <= NR; r++) ss += (x[r, c] - m) ^ 2
                    if (x[1, c] < 0) printf " | -"
                    else if (NR > 1) printf " | %.4f +- %.4f", m, sqrt(ss / (NR - 1))
                    else printf " | %.4f", m
                }
                printf " (%d-%d) |\n", lo, hi
            }'
    done
} > "$out.tmp"
mv "$out.tmp" "$out"
cat "$out"
