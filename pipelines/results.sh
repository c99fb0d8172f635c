#!/bin/sh
# pipelines/results.sh: a markdown table of finished runs for docs/RESULTS.md:
# per run, the best-validation epoch's test metrics, the best test epoch,
# the mean test Recall@20 over epochs FROM..end (summary.sh --results), and
# the median wall time per epoch (from the metrics files' times).
# usage: results.sh FROM RUN_DIR...
set -eu
from=$1; shift
here=$(dirname "$0")
echo "| run | epochs | best val epoch: test R@20 / N@20 / P@20 | best test epoch: R@20 / N@20 / P@20 | mean test R@20, epochs $from+ | median s/epoch |"
echo "|---|---|---|---|---|---|"
for r in "$@"; do
    n=$(ls "$r"/e*/metrics.json | wc -l)
    secs=$(for e in $(seq 0 $((n - 1))); do stat -c %Y "$r/e$e/metrics.json"; done |
           awk 'NR > 1 { print $1 - prev } { prev = $1 }' | sort -n | awk '{ a[NR] = $1 } END { print NR ? a[int((NR + 1) / 2)] : "-" }')
    "$here/summary.sh" "$r/metrics.jsonl" "$(basename "$r")" --results "$from" "$secs"
done
