#!/usr/bin/env bash
# tests/bench/epoch.sh: one DiffMM epoch on a dataset, stage by stage, in
# f32 and in bf16: wall time, peak resident memory, and the dense products'
# flops, time and rate (from each stage's log: gemm_gflop, gemm_seconds)
# beside the engine's own rate on the same shapes, measured in the same run
# (tests/tools/gemm-bench.c).
# usage: tests/bench/epoch.sh [DATASET_DIR]
#        (default ../shared/datasets/tiktok with the release's TikTok settings)
# PRECISIONS='f32 bf16' by default; DIFFMM_GEMM chooses the engine as usual.
# SYNTH_FEATS='image:128 text:128': for a dataset without feature files
# (Baby, Sports here), random float32 features of those names and widths
# beside links to its pickles (the timing does not depend on the values).
set -eu
cd "$(dirname "$0")/../.."
data=${1:-../shared/datasets/tiktok}
[ -d "$data" ] || { echo "epoch.sh: no dataset at $data (skipping the epoch benchmark)"; exit 0; }
B=bin
dir=$(mktemp -d "${TMPDIR:-/tmp}/diffmm-epoch.XXXXXX")
trap 'rm -rf "$dir"' EXIT
if [ -n "${SYNTH_FEATS:-}" ]; then
    mkdir "$dir/data"
    for f in "$data"/*.pkl; do ln -s "$(realpath "$f")" "$dir/data/"; done
    items=$(/usr/bin/python3 -c "import pickle, sys; print(pickle.load(open(sys.argv[1], 'rb')).shape[1])" "$data/trnMat.pkl")
    for spec in $SYNTH_FEATS; do
        /usr/bin/python3 -c "import numpy as np, sys; np.save(sys.argv[1], np.random.default_rng(1).standard_normal((int(sys.argv[2]), int(sys.argv[3])), dtype=np.float32))" \
            "$dir/data/${spec%%:*}_feat.npy" "$items" "${spec##*:}"
    done
    data=$dir/data
fi
rec_opts=${REC_OPTS:---trans 1 --cl-method 1 --reg 1e-4 --ssl-reg 1e-2}

"$B/convert-pkl" -q "$data" | "$B/build-graph" -q --pass --zstd 0 -o "$dir/base.ts"
read -r U I <<< "$("$B/inspect" --json "$dir/base.ts" | grep '"name": "train"' | grep -o '"shape": \[[0-9]*, [0-9]*' | tr -dc '0-9 ' | awk '{print $1, $2}')"
M=$("$B/inspect" --json "$dir/base.ts" | grep -c '"name": "feat/' || true)
echo "== one epoch on $data: $U users, $I items, $M modalities"

# the engines' own rates at the stages' shapes: diffuse's chunks of 256 rows,
# augment's batches of 1024 (its folded reverse process), train's contrastive products
build/tests/gemm-bench "$I" "$U" 256 5 > "$dir/ref256"
build/tests/gemm-bench "$I" "$U" 1024 3 > "$dir/ref1024"
sed -n '1,3p' "$dir/ref256"
# ref FILE GROUP COLUMN: a group's flop-weighted rate for one engine column
ref() { awk -v g="$2 rate:" -v c="$3" 'index($0, g) == 1 { for (i = 1; i < NF; i++) if ($i == c) print $(i + 1) }' "$1"; }

# measure NAME ARGS...: run under GNU time; prints "seconds peakMB"
measure() {
    local name=$1; shift
    /usr/bin/time -f "%e %M" -o "$dir/time" "$@" > "$dir/$name.out" 2> "$dir/$name.err" || { cat "$dir/$name.err" >&2; exit 1; }
    read -r secs kb < "$dir/time"
    echo "$secs $((kb / 1024))"
}
# field FILE RECORD KEY: a member of a stage's log record
field() { "$B/inspect" --print "$2" "$1" | grep -o "\"$3\": [\"0-9.a-z]*" | head -1 | cut -d' ' -f2 | tr -d '"'; }

printf "%-6s %-10s %8s %8s %8s %8s %9s %s\n" prec stage seconds "peak MB" Gflop "dense s" Gflop/s "of the engine's own rate at these shapes"
for p in ${PRECISIONS:-f32 bf16}; do
    read -r t_d m_d <<< "$(measure diffuse "$B/diffuse" -q "$dir/base.ts" --trans 1 --precision "$p" --zstd 0 -o "$dir/d.ts")"
    read -r t_a m_a <<< "$(measure augment "$B/augment" -q "$dir/base.ts" "$dir/d.ts" --precision "$p" --zstd 0 -o "$dir/a.ts")"
    read -r t_t m_t <<< "$(measure train "$B/train" -q "$dir/base.ts" "$dir/a.ts" $rec_opts --precision "$p" --zstd 0 -o "$dir/t.ts")"
    read -r t_e m_e <<< "$(measure evaluate "$B/evaluate" -q "$dir/base.ts" "$dir/t.ts")"
    # the next epoch's diffuse resumes from the saved denoisers: its own peak
    read -r t_d2 m_d2 <<< "$(measure diffuse2 "$B/diffuse" -q "$dir/base.ts" "$dir/d.ts" "$dir/t.ts" --trans 1 --precision "$p" --zstd 0 -o "$dir/d2.ts")"
    eng=$(field "$dir/d.ts" log/diffuse gemm)
    col="$eng-$p"; [ "$eng" = openblas ] && col=openblas-f32
    row() {   # row STAGE SECONDS MB FILE RECORD REF
        local gf gs
        gf=$(field "$4" "$5" gemm_gflop); gs=$(field "$4" "$5" gemm_seconds)
        awk -v p="$p" -v s="$1" -v t="$2" -v m="$3" -v gf="$gf" -v gs="$gs" -v r="$6" -v col="$col" 'BEGIN {
            printf "%-6s %-10s %8.2f %8d %8.0f %8.2f %9.1f %5.0f%% of %.0f (%s)\n", p, s, t, m, gf, gs, gf / gs, 100 * gf / gs / r, r, col }'
    }
    row diffuse "$t_d" "$m_d" "$dir/d.ts" log/diffuse "$(ref "$dir/ref256" denoiser "$col")"
    row augment "$t_a" "$m_a" "$dir/a.ts" log/augment "$(ref "$dir/ref1024" reverse "$col")"
    row train "$t_t" "$m_t" "$dir/t.ts" log/train "$(ref "$dir/ref256" contrastive "$col")"
    printf "%-6s %-10s %8.2f %8d\n" "$p" evaluate "$t_e" "$m_e"
    row "diffuse+1" "$t_d2" "$m_d2" "$dir/d2.ts" log/diffuse "$(ref "$dir/ref256" denoiser "$col")"
    awk -v p="$p" -v a="$t_d" -v b="$t_a" -v c="$t_t" -v d="$t_e" 'BEGIN { printf "%-6s %-10s %8.2f\n", p, "epoch", a + b + c + d }'
    "$B/inspect" --print log/train "$dir/t.ts" | sed 's/^/  /'
    sed 's/^/  /' "$dir/evaluate.out"
done
