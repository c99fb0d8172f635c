#!/usr/bin/env bats
# install.bats: the one command (diffmm), make install / uninstall into a
# temporary prefix, pipes and recipes run from there, man pages and
# completion.

load helpers

setup_file() {
    export SYN="$BATS_FILE_TMPDIR/syn" P="$BATS_FILE_TMPDIR/prefix"
    "$PY" "$BATS_TEST_DIRNAME/../examples/make_synthetic.py" "$SYN" --users 200 --items 150 >/dev/null
    mkdir -p "$P/bin"
    echo "not ours" > "$P/bin/other-tool"
    make --no-print-directory -C "$BATS_TEST_DIRNAME/.." install PREFIX="$P" > "$BATS_FILE_TMPDIR/install.log"
}

@test "make install puts diffmm, every stage, the recipes, man pages and completion under the prefix" {
    cat "$BATS_FILE_TMPDIR/install.log"
    [ -x "$P/bin/diffmm" ]
    for s in $(ls "$ROOT/bin" | grep -vx diffmm); do
        [ -x "$P/libexec/diffmm/$s" ] || { echo "no stage $s"; false; }
        [ -s "$P/share/man/man1/diffmm-$s.1" ] || { echo "no page for $s"; false; }
    done
    [ -s "$P/share/man/man1/diffmm.1" ] && [ -s "$P/share/bash-completion/completions/diffmm" ]
    [ -f "$P/share/diffmm/pipelines/run.mk" ] && [ -x "$P/share/diffmm/pipelines/summary.sh" ]
    # the stages do not land on PATH under their own (colliding) names
    [ ! -e "$P/bin/train" ] && [ ! -e "$P/bin/evaluate" ]
}

@test "diffmm runs a whole epoch as one pipe from the prefix, with the repository's results" {
    d="$P/bin/diffmm"
    cd "$T"
    "$d" convert-pkl -q "$SYN" | "$d" build-graph -q --pass | "$d" diffuse -q --pass --dims 64 | "$d" augment -q --pass |
        "$d" train -q --pass | "$d" evaluate > installed.json
    convert-pkl -q "$SYN" | build-graph -q --pass | diffuse -q --pass --dims 64 | augment -q --pass |
        train -q --pass | evaluate > repo.json
    cat installed.json
    grep -q '"recall@20"' installed.json
    diff <(sed 's/"seconds": [0-9.]*//' repo.json) <(sed 's/"seconds": [0-9.]*//' installed.json)
}

@test "diffmm help, --version, a stage's -h, and unknown names" {
    run "$P/bin/diffmm" help
    [ "$status" -eq 0 ] && [[ "$output" == *"convert-mmrec"*"train "* ]]
    run "$P/bin/diffmm" --version
    [ "$status" -eq 0 ] && [[ "$output" == "diffmm "?* ]]
    run "$P/bin/diffmm" evaluate -h
    [ "$status" -eq 0 ] && [[ "$output" == "usage: evaluate"* ]]
    run "$P/bin/diffmm" help pick
    [ "$status" -eq 0 ] && [[ "$output" == "usage: pick"* ]]
    run "$P/bin/diffmm" nosuchstage
    [ "$status" -eq 2 ] && [[ "$output" == *"not a stage"* ]]
    run "$P/bin/diffmm" ../bin/sh
    [ "$status" -eq 2 ]
    # bin/diffmm in the repository works the same on bin/'s stages
    run "$ROOT/bin/diffmm" inspect -h
    [ "$status" -eq 0 ] && [[ "$output" == "usage: inspect"* ]]
}

@test "diffmm run runs the installed recipes from any folder" {
    mkdir "$T/elsewhere" && cd "$T/elsewhere"
    run "$P/bin/diffmm" run DATA="$SYN" DATASET=demo EPOCHS=1 DIMS=64 RUN=r
    echo "$output"
    [ "$status" -eq 0 ] && [[ "$output" == *"best validation epoch 0"* ]]
    [ -s "$T/elsewhere/runs/demo/r/metrics.jsonl" ]
    # a folder with no settings file of its own: the release's defaults (generic)
    run "$P/bin/diffmm" run DATA="$SYN" EPOCHS=1 DIMS=64 print-run
    [ "$status" -eq 0 ] && [[ "$output" == "runs/generic/"* ]]
}

@test "every option a stage's -h lists is in its man page" {
    for s in $(ls "$P/libexec/diffmm"); do
        page="$P/share/man/man1/diffmm-$s.1"
        for o in $("$P/libexec/diffmm/$s" -h | grep -o -- '--[a-z0-9][a-z0-9-]*' | sort -u); do
            grep -qF -- "$(sed 's/-/\\-/g' <<< "$o")" "$page" || { echo "$s: $o not in $page"; false; }
        done
        grep -q '^\.SH OPTIONS' "$page" && grep -q "^\.TH DIFFMM\\\\-" "$page"
    done
    # the check can fail: an option the page lacks is found
    ! grep -qF -- '\-\-no\-such\-option' "$P/share/man/man1/diffmm-train.1"
}

@test "bash completion offers stage names, then the stage's own options" {
    complete_words() {
        PATH="$P/bin:$PATH" bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _diffmm; printf "%s\n" "${COMPREPLY[@]}"' \
            _ "$P/share/bash-completion/completions/diffmm" "$@"
    }
    run complete_words diffmm conv
    [ "$status" -eq 0 ] && [ "$(sort <<< "$output" | tr '\n' ' ')" = "convert-mmrec convert-pkl " ]
    run complete_words diffmm augment --sh
    [ "$output" = "--shard" ]
    run complete_words diffmm convert-mmrec --user
    [ "$output" = "--user-field" ]
}

@test "make uninstall removes exactly what install wrote; DESTDIR stages an install" {
    cp -a "$P" "$T/p2"
    make --no-print-directory -C "$ROOT" uninstall PREFIX="$T/p2"
    [ "$(find "$T/p2" -type f | sed "s|$T/p2/||")" = "bin/other-tool" ]
    [ ! -e "$T/p2/libexec/diffmm" ] && [ ! -e "$T/p2/share/diffmm" ]
    run make --no-print-directory -C "$ROOT" uninstall PREFIX="$T/p2"
    [ "$status" -ne 0 ] && [[ "$output" == *"nothing installed"* ]]
    make --no-print-directory -C "$ROOT" install DESTDIR="$T/stage" PREFIX=/opt/diffmm > /dev/null
    [ -x "$T/stage/opt/diffmm/bin/diffmm" ] && [ -x "$T/stage/opt/diffmm/libexec/diffmm/train" ]
    [ "$(find "$T/stage/opt/diffmm" -type f | wc -l)" -eq "$(wc -l < "$T/stage/opt/diffmm/share/diffmm/installed")" ]
}
