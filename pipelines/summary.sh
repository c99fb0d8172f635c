#!/bin/sh
# pipelines/summary.sh: the two epochs worth reporting from a metrics.jsonl:
# the best validation Recall@20 (with its test metrics: the honest figure)
# and the best test Recall@20 (the release's protocol).
# usage: summary.sh METRICS.JSONL TITLE [--table|--epochs]
#   --table: one markdown row, which also has the mean test Recall@20 over
#   the last 80% of the epochs (epochs 10-49 of 50, the steadier figure for
#   comparing single runs);
#   --epochs: one progress line per epoch: test Recall@20 and NDCG@20, and
#   the seconds its stages took (diffuse, augment, train, evaluate)
set -eu
awk -v title="$2" -v mode="${3:-}" '
function num(key,   m) { if (match($0, "\"" key "\": [-0-9.e+]+")) { m = substr($0, RSTART, RLENGTH); sub(/.*: /, "", m); return m + 0 } return -1 }
{
    e = num("epoch"); tr = num("test_recall@20"); vr = num("val_recall@20"); n++
    if (mode == "--epochs") {
        s = 0; split("diffuse_seconds augment_seconds train_seconds evaluate_seconds", ks, " ")
        for (i = 1; i <= 4; i++) if (num(ks[i]) > 0) s += num(ks[i])
        printf "%s epoch %d: test recall@20 %.4f, ndcg@20 %.4f, %.1f s\n", title, e, tr, num("test_ndcg@20"), s
        next
    }
    T[e] = sprintf("recall@20 %.4f  ndcg@20 %.4f  precision@20 %.4f", tr, num("test_ndcg@20"), num("test_precision@20"))
    S[e] = sprintf("%.4f / %.4f", tr, num("test_ndcg@20"))
    R[e] = tr
    if (tr > best_t) { best_t = tr; et = e }
    if (vr > best_v) { best_v = vr; ev = e }
    secs += num("train_seconds") + (num("diffuse_seconds") > 0 ? num("diffuse_seconds") : 0)
}
BEGIN { best_t = -1; best_v = -1 }
END {
    if (mode == "--epochs") exit
    if (mode == "--table") {
        from = int(n / 5); sum = 0
        for (k = from; k < n; k++) sum += R[k]
        printf "| %s | %s | %s | %.4f (epochs %d-%d) |\n", title, (best_v >= 0 ? "epoch " ev ": " S[ev] : "no validation split"),
               "epoch " et ": " S[et], sum / (n - from), from, n - 1
        exit
    }
    printf "%s: %d epochs\n", title, n
    if (best_v >= 0) printf "  best validation epoch %d (val recall@20 %.4f): test %s\n", ev, best_v, T[ev]
    else printf "  no validation split: no honest epoch choice\n"
    printf "  best test epoch %d: test %s\n", et, T[et]
}' "$1"
