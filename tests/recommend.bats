#!/usr/bin/env bats
# recommend.bats: the recommend stage (each user's top K unseen items, as TSV
# or as a stream), checked against a brute-force numpy version
# (tests/tools/metrics_check.py).

load helpers

mc() { "$PY" "$ROOT/tests/tools/metrics_check.py" "$@"; }

@test "recommend's TSV lists every user's brute-force top K unseen items" {
    mc make "$T/a.ts" --seed 7
    mc make "$T/d.ts" --seed 8 --users 2500 --items 100
    for f in a d; do
        recommend -q "$T/$f.ts" > "$T/$f.tsv"
        [ "$(head -1 "$T/$f.tsv")" = "$(printf 'user\trank\titem\tscore')" ]
        run mc recommend "$T/$f.ts" --k 20 --tsv "$T/$f.tsv"
        [ "$status" -eq 0 ]
    done
    recommend -q "$T/a.ts" --k 3 > "$T/k3.tsv"
    run mc recommend "$T/a.ts" --k 3 --tsv "$T/k3.tsv"
    [ "$status" -eq 0 ]
    [ "$(recommend -q "$T/a.ts" --k 3 | head -4 | cut -f1,2 | tr '\t\n' ':,')" = "user:rank,0:1,0:2,0:3," ]
}

@test "recommend --stream writes rec/users, rec/items and rec/scores that agree with brute force" {
    mc make "$T/a.ts" --seed 9
    run recommend -q "$T/a.ts" --stream --k 50 -o "$T/rec.ts"
    [ "$status" -eq 0 ]
    run mc recommend "$T/a.ts" --k 50 --stream "$T/rec.ts"
    [ "$status" -eq 0 ]
    [[ "$output" == "agree: 60 users, top 40" ]]
    run inspect "$T/rec.ts"
    [[ "$output" == *"rec/users"*"<i4"*" 60 "* ]]
    [[ "$output" == *"rec/items"*"<i4"*"60x40"* ]]
    [[ "$output" == *"rec/scores"*"<f4"*"60x40"* ]]
    recommend -q "$T/a.ts" --stream --k 5 --users 9,3 | cat > "$T/piped.ts"
    run mc recommend "$T/a.ts" --k 5 --users 9,3 --stream "$T/piped.ts"
    [ "$status" -eq 0 ]
    recommend -q "$T/a.ts" --stream --k 5 --pass -o "$T/pass.ts"
    run inspect "$T/pass.ts"
    [[ "$output" == *"rec/items"*"emb/user"*"train"* ]]
    run script -qec "$BIN/recommend -q $T/a.ts --stream" /dev/null
    [ "$status" -eq 2 ]
    [[ "$output" == *"refusing to write a binary stream to a terminal"* ]]
}

@test "recommend --users and --users-file choose users, in the order given" {
    mc make "$T/a.ts" --seed 10
    recommend -q "$T/a.ts" --k 4 --users 17,2,59 > "$T/some.tsv"
    [ "$(tail -n +2 "$T/some.tsv" | cut -f1 | uniq | paste -sd,)" = "17,2,59" ]
    run mc recommend "$T/a.ts" --k 4 --users 17,2,59 --tsv "$T/some.tsv"
    [ "$status" -eq 0 ]
    printf '# users to score\n17\n\n  2 \n59  # last\n' > "$T/users.txt"
    [ "$(recommend -q "$T/a.ts" --k 4 --users-file "$T/users.txt")" = "$(cat "$T/some.tsv")" ]
    recommend -q "$T/a.ts" --k 4 --users-file "$T/users.txt" --stream -o "$T/some.ts"
    run mc recommend "$T/a.ts" --k 4 --users 17,2,59 --stream "$T/some.ts"
    [ "$status" -eq 0 ]
}

@test "recommend never recommends a training item, even when fewer than K are left" {
    mc make "$T/z.ts" --zeros --train-rate 0.8
    recommend -q "$T/z.ts" --k 40 > "$T/z.tsv"
    run mc recommend "$T/z.ts" --k 40 --tsv "$T/z.tsv"
    [ "$status" -eq 0 ]
    mc make "$T/a.ts" --train-rate 0.9
    recommend -q "$T/a.ts" --k 1000 --stream -o "$T/a.rec"
    run mc recommend "$T/a.ts" --k 1000 --stream "$T/a.rec"
    [ "$status" -eq 0 ]
}

@test "recommend refuses unknown user ids and bad options" {
    mc make "$T/a.ts"
    run recommend "$T/a.ts" --users 3,60
    [ "$status" -eq 1 ]
    [ "$output" = "recommend: user id 60 out of range: there are 60 users (0 to 59)" ]
    for bad in a 1,,2 -1 3.5 ''; do
        run recommend "$T/a.ts" --users "$bad"
        [ "$status" -eq 2 ]
        [[ "$output" == *"--users needs user ids"* ]]
    done
    printf '1\nseven\n' > "$T/bad.txt"
    run recommend "$T/a.ts" --users-file "$T/bad.txt"
    [ "$status" -eq 1 ]
    [[ "$output" == *"line 2: 'seven' is not a user id"* ]]
    run recommend "$T/a.ts" --users-file "$T/absent.txt"
    [ "$status" -eq 1 ]
    for bad in 0 -3 x; do
        run recommend "$T/a.ts" --k "$bad"
        [ "$status" -eq 2 ]
    done
    run recommend "$T/a.ts" -o "$T/x.tsv"
    [ "$status" -eq 2 ]
    pick "$T/a.ts" --drop train -o "$T/notrain.ts"
    run recommend "$T/notrain.ts"
    [ "$status" -eq 1 ]
    [ "$output" = "recommend: missing input: no record 'train' in the inputs" ]
}
