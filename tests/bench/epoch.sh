#!/usr/bin/env bash
# tests/bench/epoch.sh: one DiffMM epoch on a dataset, stage by stage: wall
# time, peak resident memory, flop count and rate, next to OpenBLAS's sgemm
# rate on the same shapes measured in the same run.
# usage: tests/bench/epoch.sh [DATASET_DIR] [EXTRA TRAIN OPTIONS...]
#        (default ../shared/datasets/tiktok with the release's TikTok settings)
set -eu
cd "$(dirname "$0")/../.."
data=${1:-../shared/datasets/tiktok}
[ -d "$data" ] || { echo "epoch.sh: no dataset at $data (skipping the epoch benchmark)"; exit 0; }
shift || true
B=bin
dir=$(mktemp -d "${TMPDIR:-/tmp}/diffmm-epoch.XXXXXX")
trap 'rm -rf "$dir"' EXIT
rec_opts=${REC_OPTS:---trans 1 --cl-method 1 --reg 1e-4 --ssl-reg 1e-2}

"$B/convert-pkl" -q "$data" | "$B/build-graph" -q --pass --zstd 0 -o "$dir/base.ts"
read -r U I <<< "$("$B/inspect" --json "$dir/base.ts" | grep '"name": "train"' | grep -o '"shape": \[[0-9]*, [0-9]*' | tr -dc '0-9 ' | awk '{print $1, $2}')"
M=$("$B/inspect" --json "$dir/base.ts" | grep -c '"name": "feat/' || true)
nnz=$("$B/inspect" --json "$dir/base.ts" | awk -F'"nnz": ' '/"name": "train"/ {split($2, a, ","); print a[1]}')
echo "== one epoch on $data: $U users, $I items, $M modalities, $nnz interactions"

# measure STAGE ARGS...: run under GNU time, print wall seconds and peak MB
# (the stage's stdout goes to $dir/STAGE.out).
measure() {
    local name=$1; shift
    /usr/bin/time -f "%e %M" -o "$dir/time" "$@" > "$dir/$name.out" 2> "$dir/$name.err" || { cat "$dir/$name.err" >&2; exit 1; }
    read -r secs kb < "$dir/time"
    echo "$secs $((kb / 1024))"
}

ref=$(build/tests/sgemm-bench "$I" "$U" 256 5)
ref_den=$(awk -F': ' '/denoiser shapes/ {print $2 + 0}' <<< "$ref")
ref_aug=$(build/tests/sgemm-bench "$I" "$U" 1024 3 | awk -F': ' '/denoiser shapes/ {print $2 + 0}')
ref_cl=$(awk -F': ' '/contrastive shapes/ {print $2 + 0}' <<< "$ref")
H=1000; E=10; D=64
read -r t_d m_d <<< "$(measure diffuse "$B/diffuse" -q "$dir/base.ts" --trans 1 --zstd 0 -o "$dir/d.ts")"
read -r t_a m_a <<< "$(measure augment "$B/augment" -q "$dir/base.ts" "$dir/d.ts" --zstd 0 -o "$dir/a.ts")"
read -r t_t m_t <<< "$(measure train "$B/train" "$dir/base.ts" "$dir/a.ts" $rec_opts --zstd 0 -o "$dir/t.ts")"
read -r t_e m_e <<< "$(measure evaluate "$B/evaluate" -q "$dir/base.ts" "$dir/t.ts")"
# the next epoch's diffuse resumes from 325 MB of saved state: its own peak
read -r t_d2 m_d2 <<< "$(measure diffuse2 "$B/diffuse" -q "$dir/base.ts" "$dir/d.ts" "$dir/t.ts" --trans 1 --zstd 0 -o "$dir/d2.ts")"
cl=$(grep -o '"t_loss": [0-9.]*' "$dir/train.err" | cut -d' ' -f2)
printf "%-10s %8s %8s %9s %9s %s\n" stage seconds "peak MB" Gflop Gflop/s "of sgemm on the same shapes"
awk -v U="$U" -v I="$I" -v M="$M" -v H=$H -v E=$E -v D=$D -v n="$nnz" \
    -v td="$t_d" -v md="$m_d" -v ta="$t_a" -v ma="$m_a" -v tt="$t_t" -v mt="$m_t" -v te="$t_e" -v me="$m_e" \
    -v rd="$ref_den" -v ra="$ref_aug" -v rc="$ref_cl" -v cl="$cl" -v td2="$t_d2" -v md2="$m_d2" 'BEGIN {
    fd = M * U * (2*(I+E)*H*2 + 2*H*I*3) / 1e9;          # forward 2 products, backward 3
    fa = M * U * (2*(I+E)*H*4 + 2*H*I*5) / 1e9;          # 5 reverse steps, the first product sparse
    nb = int((n + 1023) / 1024);
    fc = nb * M * 3 * 2 * 1024 * (U + I) * D / 1e9;      # contrastive products (cl_method 1)
    printf "%-10s %8.2f %8d %9.0f %9.1f %5.0f%% of %.0f\n", "diffuse", td, md, fd, fd/td, 100*fd/td/rd, rd;
    printf "%-10s %8.2f %8d %9.0f %9.1f %5.0f%% of %.0f\n", "augment", ta, ma, fa, fa/ta, 100*fa/ta/ra, ra;
    printf "%-10s %8.2f %8d %9.0f %9.1f %5.0f%% of %.0f (contrastive part: %.1f s, %.1f Gflop/s)\n", "train", tt, mt, fc, fc/tt, 100*fc/tt/rc, rc, cl, fc/cl;
    printf "%-10s %8.2f %8d\n", "evaluate", te, me;
    printf "%-10s %8.2f %8d %9.0f %9.1f %5.0f%% of %.0f (epoch 1, resumed from epoch 0)\n", "diffuse", td2, md2, fd, fd/td2, 100*fd/td2/rd, rd;
    printf "%-10s %8.2f\n", "epoch", td + ta + tt + te;
}'
grep -h '^train: {' "$dir/train.err" | sed 's/^/  /'
sed 's/^/  /' "$dir/evaluate.out"
