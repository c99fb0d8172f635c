#!/usr/bin/env bats
# layout.bats: the source tree's rules, checked on the source itself.  The
# library has three floors, each a folder of common/: io (streams and file
# formats), kernels (numerical kernels; may use io) and model (the two
# models; may use both).  Only stages (and their frame, stages/cli) die.

load helpers

# the "floor/name.h" headers a source file includes, one per line
includes_of() {
    sed -n 's/^#include "\([a-z]*\)\/[a-z_0-9]*\.h".*/\1/p' "$@" | sort -u
}

@test "files in common/io include nothing from the floors above" {
    run includes_of "$ROOT"/common/io/*.[ch]
    [ "$status" -eq 0 ]
    [ "$output" = "io" ]
}

@test "files in common/kernels include only io and kernels" {
    run includes_of "$ROOT"/common/kernels/*.[ch]
    [ "$status" -eq 0 ]
    [ "$output" = "$(printf 'io\nkernels')" ]
}

@test "files in common/model include io, kernels and model, never the stage frame" {
    run includes_of "$ROOT"/common/model/*.[ch]
    [ "$status" -eq 0 ]
    [ "$output" = "$(printf 'io\nkernels\nmodel')" ]
}

@test "nothing in common/ sits outside a floor" {
    run find "$ROOT/common" -maxdepth 1 -type f
    [ "$status" -eq 0 ]
    [ -z "$output" ]
}

@test "no function in common/ dies: no cli_ call, exit or abort" {
    run grep -nE '\b(cli_[a-z_]+|exit|_exit|abort)\(' "$ROOT"/common/*/*.c "$ROOT"/common/*/*.h
    echo "$output"
    [ "$status" -eq 1 ]
}

@test "every function a common/ header declares carries the header's name as prefix" {
    local h p bad=""
    for h in "$ROOT"/common/*/*.h "$ROOT"/stages/cli/cli.h; do
        p=$(basename "$h" .h)
        bad+=$(grep -hE '^[a-z_].*\b[a-z_][a-z0-9_]*\(' "$h" | grep -v '^typedef' |
               sed 's/^__attribute__((.*))) //' |
               grep -oE '\b[a-z_][a-z0-9_]*\(' | grep -v "^${p}_" | sed "s|^|$h: |")
    done
    echo "$bad"
    [ -z "$bad" ]
}

@test "the check above finds a function without its header's prefix" {
    mkdir -p "$BATS_TEST_TMPDIR/common/io"
    printf '/* x.h */\nint x_good(void);\nint other_name(int a);\n' > "$BATS_TEST_TMPDIR/common/io/x.h"
    run bash -c "grep -hE '^[a-z_].*\b[a-z_][a-z0-9_]*\(' '$BATS_TEST_TMPDIR/common/io/x.h' | grep -oE '\b[a-z_][a-z0-9_]*\(' | grep -v '^x_'"
    [ "$output" = "other_name(" ]
}

@test "no stage's main is longer than 100 lines" {
    local f n bad=""
    for f in "$ROOT"/stages/*.c; do
        n=$(awk '/^int main\(/ {on = 1} on {n++} on && /^}/ {print n; exit}' "$f")
        [ -n "$n" ] || { bad+="$f: no main; "; continue; }
        [ "$n" -le 100 ] || bad+="$f: main is $n lines; "
    done
    echo "$bad"
    [ -z "$bad" ]
}

@test "every source file says what it is for in its first line" {
    local f bad=""
    for f in "$ROOT"/common/*/*.[ch] "$ROOT"/stages/cli/*.[ch]; do
        head -1 "$f" | grep -q "^/\* $(basename "$f"): " || bad+="$f "
    done
    for f in "$ROOT"/stages/*.c; do      # a stage's file opens with the command's name
        head -1 "$f" | grep -q "^/\* $(basename "$f" .c): " || bad+="$f "
    done
    echo "$bad"
    [ -z "$bad" ]
}
