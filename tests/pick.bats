#!/usr/bin/env bats
# pick.bats: the pick stage: merge streams (a later record replaces an
# earlier one), select by name and glob, widen to float32, recompress, and
# refuse what makes no sense.

load helpers

# a stream of three records: two float16 tensors and one int64
three() {
    "$PY" - "$1" "${2:-1}" <<'PYEOF'
import sys, msgpack, numpy as np
out, k = sys.argv[1], float(sys.argv[2])
recs = [("emb/user", np.arange(6, dtype="<f2").reshape(2, 3) * k),
        ("emb/item", np.full((3, 3), 0.5 * k, "<f2")),
        ("model/epoch", np.array([int(k)], "<i8"))]
with open(out, "wb") as f:
    for name, a in recs:
        f.write(msgpack.packb({"name": name, "dtype": a.dtype.str, "shape": list(a.shape), "data": a.tobytes()}))
PYEOF
}

names() { inspect "$1" | awk 'NR > 1 { print $1 }' | tr '\n' ' '; }

@test "pick merges streams in order, a later record replacing an earlier one of the same name" {
    three "$T/a.ts" 1
    three "$T/b.ts" 2
    "$PY" -c 'import sys, msgpack, numpy as np; open(sys.argv[1], "wb").write(msgpack.packb({"name": "extra", "dtype": "<i4", "shape": [1], "data": np.array([7], "<i4").tobytes()}))' "$T/c.ts"
    pick "$T/a.ts" "$T/c.ts" "$T/b.ts" -o "$T/m.ts"
    [ "$(names "$T/m.ts")" = "emb/user emb/item model/epoch extra " ]
    run inspect --json "$T/m.ts"
    [[ "$output" == *'"name": "model/epoch"'*'"max": 2'* ]]
}

@test "pick --only and --drop select by comma-separated names and globs" {
    three "$T/a.ts"
    pick "$T/a.ts" --only 'emb/*' -o "$T/o.ts"
    [ "$(names "$T/o.ts")" = "emb/user emb/item " ]
    pick "$T/a.ts" --drop 'emb/item,model/epoch' -o "$T/d.ts"
    [ "$(names "$T/d.ts")" = "emb/user " ]
}

@test "pick --f32 widens float16 exactly and leaves integers alone" {
    three "$T/a.ts"
    pick --f32 "$T/a.ts" -o "$T/w.ts"
    run inspect "$T/w.ts"
    [[ "$output" == *"emb/user"*"<f4"*"2x3"*" 0 "*" 5 "* ]]
    [[ "$output" == *"model/epoch"*"<i8"* ]]
}

@test "pick recompresses: zstd and raw copies hold the same records" {
    three "$T/a.ts"
    pick --zstd 19 "$T/a.ts" -o "$T/z.ts"
    pick --zstd 0 "$T/z.ts" -o "$T/r.ts"
    [ "$(head -c4 "$T/z.ts" | od -An -tx1 | tr -d ' ')" = "28b52ffd" ]
    diff <(inspect "$T/z.ts") <(inspect "$T/r.ts")
}

@test "pick refuses --pass and a binary stream to a terminal" {
    three "$T/a.ts"
    run pick --pass "$T/a.ts" -o "$T/x.ts"
    [ "$status" -eq 2 ]
    [[ "$output" == *"--pass makes no sense"* ]]
    run script -qec "pick '$T/a.ts'" /dev/null
    [ "$status" -eq 2 ]
    [[ "$output" == *"refusing to write a binary stream to a terminal"* ]]
}
