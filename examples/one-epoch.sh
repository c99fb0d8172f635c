#!/bin/sh
# one-epoch.sh: one whole DiffMM epoch as a single shell pipeline, from the
# release's dataset files to the test metrics; every stage passes on what it
# does not replace (--pass).  TRANS and DIMS set the feature transform and
# the denoiser's hidden sizes for both diffuse and train; further arguments
# go to train.
# The stages run through the one command diffmm (bin/diffmm here; DIFFMM=
# another one, e.g. an installed /usr/local/bin/diffmm).
# usage: [TRANS=1] [DIMS=1000] examples/one-epoch.sh DATASET_DIR [TRAIN OPTIONS...]
#   e.g. TRANS=1 examples/one-epoch.sh ../shared/datasets/tiktok --cl-method 1 --reg 1e-4
set -eu
dir=$1
shift
d=${DIFFMM:-$(dirname "$0")/../bin/diffmm}
"$d" convert-pkl -q "$dir" \
    | "$d" build-graph -q --pass \
    | "$d" diffuse -q --pass --trans "${TRANS:-0}" --dims "${DIMS:-1000}" \
    | "$d" augment -q --pass \
    | "$d" train -q --pass --trans "${TRANS:-0}" "$@" \
    | "$d" evaluate -q
