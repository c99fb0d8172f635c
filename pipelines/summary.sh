#!/bin/sh
# pipelines/summary.sh: what the recipes report from metrics lines (one
# flat JSON object per epoch); the one place that reads numbers out of them.
# usage: summary.sh METRICS.JSONL TITLE [MODE [ARGS]]
#   (no mode)   the two epochs worth reporting: the best validation
#               Recall@20 (with its test metrics: the honest figure) and the
#               best test Recall@20 (the release's protocol)
#   --table     one markdown row for the ablation table, with the mean test
#               Recall@20 over the last 80% of the epochs (epochs 10-49 of
#               50, the steadier figure for comparing single runs)
#   --results FROM SECS   one markdown row for docs/RESULTS.md: epochs, both
#               epochs' test R/N/P@20, the mean test Recall@20 over epochs
#               FROM.., and SECS (median seconds per epoch, given)
#   --epochs    one progress line per epoch: test Recall@20 and NDCG@20,
#               and the seconds its stages took (diffuse, augment, train, evaluate)
#   --curves    epoch, test and val Recall@20, train loss; one line per epoch (for gnuplot)
#   --numbers   the --table figures as bare numbers for pipelines/sweep.sh:
#               best-val epoch's test R@20 N@20 (-1 -1 without validation),
#               best test epoch's R@20 N@20, mean test R@20, its first and last epoch
set -eu
awk -v title="$2" -v mode="${3:-}" -v from="${4:-0}" -v secs="${5:-}" '
function num(key,   m) { if (match($0, "\"" key "\": [-0-9.e+]+")) { m = substr($0, RSTART, RLENGTH); sub(/.*: /, "", m); return m + 0 } return -1 }
BEGIN { best_t = -1; best_v = -1; split("diffuse_seconds augment_seconds train_seconds evaluate_seconds", stage, " ") }
{
    e = num("epoch"); tr = num("test_recall@20"); vr = num("val_recall@20"); n++
    if (mode == "--epochs") {
        s = 0
        for (i = 1; i <= 4; i++) if (num(stage[i]) > 0) s += num(stage[i])
        printf "%s epoch %d: test recall@20 %.4f, ndcg@20 %.4f, %.1f s\n", title, e, tr, num("test_ndcg@20"), s
        next
    }
    if (mode == "--curves") {
        tl = num("train_loss")
        print e, tr, (vr >= 0 ? vr : "NaN"), (tl != -1 ? tl : "NaN")
        next
    }
    T[e] = sprintf("recall@20 %.4f  ndcg@20 %.4f  precision@20 %.4f", tr, num("test_ndcg@20"), num("test_precision@20"))
    S[e] = sprintf("%.4f / %.4f", tr, num("test_ndcg@20"))
    P[e] = sprintf("%.4f / %.4f / %.4f", tr, num("test_ndcg@20"), num("test_precision@20"))
    R[e] = tr; N[e] = num("test_ndcg@20")
    if (tr > best_t) { best_t = tr; et = e }
    if (vr > best_v) { best_v = vr; ev = e }
}
END {
    if (mode == "--epochs" || mode == "--curves") exit
    if (mode == "--table" || mode == "--numbers") {
        lo = int(n / 5); sum = 0
        for (k = lo; k < n; k++) sum += R[k]
        if (mode == "--numbers") {
            printf "%s %s %.6f %.6f %.6f %d %d\n", (best_v >= 0 ? sprintf("%.6f", R[ev]) : -1),
                   (best_v >= 0 ? sprintf("%.6f", N[ev]) : -1), R[et], N[et], sum / (n - lo), lo, n - 1
            exit
        }
        printf "| %s | %s | %s | %.4f (epochs %d-%d) |\n", title, (best_v >= 0 ? "epoch " ev ": " S[ev] : "no validation split"),
               "epoch " et ": " S[et], sum / (n - lo), lo, n - 1
        exit
    }
    if (mode == "--results") {
        sum = 0; cnt = 0
        for (k = from; k < n; k++) { sum += R[k]; cnt++ }
        printf "| %s | %d | %s | %d: %s | %s | %s |\n", title, n, (best_v >= 0 ? ev ": " P[ev] : "-"), et, P[et],
               cnt ? sprintf("%.4f", sum / cnt) : "-", secs
        exit
    }
    printf "%s: %d epochs\n", title, n
    if (best_v >= 0) printf "  best validation epoch %d (val recall@20 %.4f): test %s\n", ev, best_v, T[ev]
    else printf "  no validation split: no honest epoch choice\n"
    printf "  best test epoch %d: test %s\n", et, T[et]
}' "$1"
