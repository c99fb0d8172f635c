#!/usr/bin/env bats
# fuzz.bats: the libFuzzer harnesses of tests/fuzz/ (pickle, .npy and stream
# readers under ASan + UBSan + LeakSanitizer, docs/SECURITY.md) as standing
# tests: every committed seed and crash input replayed, then a few seconds
# of fuzzing each.  `make test` builds them (make fuzz-build); `make fuzz`
# runs them for longer.  A crash found here is written to
# tests/fuzz/crashes/HARNESS/ (commit it once the reader is fixed: it is
# replayed from then on).

load helpers

# DIFFMM_FUZZ_SECONDS: seconds of fuzzing per harness (6: ~20 s in all)
SECS=${DIFFMM_FUZZ_SECONDS:-6}

fuzz() { run "$ROOT/tests/fuzz/run" "$@"; echo "$output"; }

@test "the pickle reader's harness replays its seed corpus and committed crash inputs cleanly" {
    fuzz --replay pkl
    [ "$status" -eq 0 ]
}

@test "the .npy reader's harness replays its seed corpus and committed crash inputs cleanly" {
    fuzz --replay npy
    [ "$status" -eq 0 ]
}

@test "the stream reader's harness replays its seed corpus and committed crash inputs cleanly" {
    fuzz --replay ts
    [ "$status" -eq 0 ]
}

@test "the pickle reader survives a few seconds of fuzzing" {
    fuzz pkl "$SECS" "$T"
    [ "$status" -eq 0 ]
    echo "# ${output##*$'\n'}" >&3
}

@test "the .npy reader survives a few seconds of fuzzing" {
    fuzz npy "$SECS" "$T"
    [ "$status" -eq 0 ]
    echo "# ${output##*$'\n'}" >&3
}

@test "the stream reader survives a few seconds of fuzzing (filters, pipes, zstd, the writer's round trip)" {
    fuzz ts "$SECS" "$T"
    [ "$status" -eq 0 ]
    echo "# ${output##*$'\n'}" >&3
}
