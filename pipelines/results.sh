#!/bin/sh
# pipelines/results.sh: a markdown table of finished runs for docs/RESULTS.md:
# per run, the best-validation epoch's test metrics, the best test epoch,
# the mean test Recall@20 over epochs FROM..end, and the median wall time
# per epoch (from the metrics files' times), then the mean and spread.
# usage: results.sh FROM RUN_DIR...
set -eu
from=$1; shift
echo "| run | epochs | best val epoch: test R@20 / N@20 / P@20 | best test epoch: R@20 / N@20 / P@20 | mean test R@20, epochs $from+ | median s/epoch |"
echo "|---|---|---|---|---|---|"
for r in "$@"; do
    n=$(ls "$r"/e*/metrics.json | wc -l)
    secs=$(for e in $(seq 0 $((n - 1))); do stat -c %Y "$r/e$e/metrics.json"; done |
           awk 'NR > 1 { print $1 - prev } { prev = $1 }' | sort -n | awk '{ a[NR] = $1 } END { print NR ? a[int((NR + 1) / 2)] : "-" }')
    awk -v run="$(basename "$r")" -v from="$from" -v secs="$secs" '
    function num(key,   m) { if (match($0, "\"" key "\": [-0-9.e+]+")) { m = substr($0, RSTART, RLENGTH); sub(/.*: /, "", m); return m + 0 } return -1 }
    BEGIN { bt = -1; bv = -1 }
    {
        e = num("epoch"); tr = num("test_recall@20"); vr = num("val_recall@20"); n++
        S[e] = sprintf("%.4f / %.4f / %.4f", tr, num("test_ndcg@20"), num("test_precision@20"))
        if (tr > bt) { bt = tr; et = e }
        if (vr > bv) { bv = vr; ev = e }
        if (e >= from) { sum += tr; cnt++ }
    }
    END { printf "| %s | %d | %d: %s | %d: %s | %s | %s |\n", run, n, ev, S[ev], et, S[et], cnt ? sprintf("%.4f", sum / cnt) : "-", secs }
    ' "$r/metrics.jsonl"
done
