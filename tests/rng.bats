#!/usr/bin/env bats
# rng.bats: the random streams (common/kernels/rng.h): one per (purpose, epoch,
# modality, index), never shared by accident.

load helpers

@test "every stream a TikTok-sized run draws starts with its own first value" {
    run "$TOOLS/rng-streams" 9308 421
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == *"67255200 streams"*": 0 first values equal"* ]]
    [[ "$output" == *"out-of-range fields refused"* ]]
}

@test "no stage or model piece composes a stream number by hand" {
    # every rng_seed names its stream through rng_stream(purpose, epoch, modality, index)
    run grep -nE 'rng_seed\(' "$ROOT"/stages/*.c "$ROOT"/common/*/*.c
    echo "$output"
    while IFS= read -r line; do
        [[ "$line" == *"rng_stream(RNG_"* || "$line" == *"common/kernels/rng.c"* ]] || { echo "by hand: $line"; false; }
    done <<< "$output"
    ! grep -nE 'rng_stream\([^)]*\)[^;]*(\^|<<|\|)' "$ROOT"/stages/*.c "$ROOT"/common/*/*.c
}
