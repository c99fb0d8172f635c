#!/usr/bin/env bats
# pkl.bats: the pickle reader (common/io/pkl.c), through build/tests/pkl-dump,
# on the fixtures that tests/fixtures/make_pickles.py wrote into
# tests/fixtures/pkl/ and on the release's own matrices when present.

load helpers

# dump_matches NAME...: each fixture dumps exactly to its NAME.expected.
dump_matches() {
    local name
    for name in "$@"; do
        [ -f "$FIX/pkl/$name.expected" ] || { echo "no fixture $name"; return 1; }
        "$TOOLS/pkl-dump" "$FIX/pkl/$name.pkl" >"$T/$name.out" || { echo "$name: pkl-dump failed"; return 1; }
        diff -u "$FIX/pkl/$name.expected" "$T/$name.out" || { echo "$name: dump differs"; return 1; }
    done
}

# rejects NAME TEXT: pkl-dump exits 1 with one line "pkl-dump: FILE: ...TEXT...".
rejects() {
    run "$TOOLS/pkl-dump" "$FIX/pkl/$1.pkl"
    echo "status $status, output: $output"
    [ "$status" -eq 1 ]
    [ "${#lines[@]}" -eq 1 ]
    [[ "$output" == "pkl-dump: $FIX/pkl/$1.pkl: "*"$2"* ]]
}

@test "pickle reader reads coo matrices pickled with protocols 2, 3, 4 and 5" {
    dump_matches coo_p2_codecs_scalar_shape coo_p3_old_dups_zero coo_p4_i8_u8_f4 coo_p5_u4_u2_i8
}

@test "pickle reader reads the release's layout: protocol 3 scipy.sparse.coo with int32 and float64" {
    grep -q 'scipy.sparse.coo' "$FIX/pkl/coo_p3_old_dups_zero.pkl"
    dump_matches coo_p3_old_dups_zero
}

@test "pickle reader accepts old and new scipy and numpy module spellings" {
    dump_matches csr_p2_old_i1_dups csc_p3_old_bigendian_f4 \
        coo_p3_numpy2_fortran_flag coo_p5_numpy2_frombuffer_F \
        coo_array_p3_bigendian_bool csr_array_p4_bigendian csc_array_p2_i2 \
        csr_array_p5_new_empty csc_array_p5_new coo_array_p4_coords_scipy113
}

@test "pickle reader expands csr and csc matrices to coordinates in stored order" {
    dump_matches csr_p3 csr_p2_old_i1_dups csr_array_p4_bigendian csc_p4_i8_u1 csc_array_p5_new
}

@test "pickle reader converts every integer, float and bool dtype in either byte order to double" {
    dump_matches coo_p4_i8_u8_f4 coo_p5_u4_u2_i8 coo_p5_numpy2_frombuffer_F \
        coo_array_p3_bigendian_bool csr_array_p4_bigendian csc_p4_i8_u1 \
        csc_p3_old_bigendian_f4 csc_array_p2_i2 csr_p2_old_i1_dups
}

@test "pickle reader keeps duplicate coordinates and explicit zeros" {
    dump_matches coo_p3_old_dups_zero csr_p2_old_i1_dups
    # the fixture really holds both: a repeated (row, col) and a stored 0
    [ "$(tail -n +2 "$T/coo_p3_old_dups_zero.out" | cut -d' ' -f1,2 | sort | uniq -d | wc -l)" -gt 0 ]
    [ "$(tail -n +2 "$T/coo_p3_old_dups_zero.out" | awk '$3 == 0' | wc -l)" -gt 0 ]
}

@test "pickle reader reads empty matrices, including protocol 2's bytes() for b''" {
    dump_matches coo_p2_empty csr_array_p5_new_empty
    [ "$(cat "$T/coo_p2_empty.out")" = "3 2 0" ]
    [ "$(cat "$T/csr_array_p5_new_empty.out")" = "3 7 0" ]
}

@test "pickle reader reads scipy 1.13's coo state with a coords tuple" {
    dump_matches coo_array_p4_coords_scipy113
}

@test "pickle reader takes numpy scalars as shape entries" {
    dump_matches coo_p2_codecs_scalar_shape coo_p3_numpy2_fortran_flag
}

@test "pickle reader reads Python 2 pickles and the rarer opcodes, ignoring bytes after STOP" {
    dump_matches coo_p2_python2_binstring csr_p4_rare_opcodes
}

@test "pickle reader dumps every good fixture exactly as expected" {
    local e n=0
    for e in "$FIX"/pkl/*.expected; do
        dump_matches "$(basename "$e" .expected)"
        n=$((n + 1))
    done
    [ "$n" -ge 19 ]
}

@test "pickle reader refuses a foreign global by name without running it" {
    cd "$T"
    rejects bad_os_system "refused global 'os.system'"
    [ ! -e "$T/pkl-pwned" ]
}

@test "pickle reader refuses builtins.eval reached through STACK_GLOBAL" {
    cd "$T"
    rejects bad_builtins_eval "refused global 'builtins.eval'"
    [ ! -e "$T/pkl-pwned" ]
}

@test "pickle reader reports where a truncated pickle ends" {
    rejects bad_truncated "truncated at byte 620 in BINBYTES"
}

@test "pickle reader checks a 2^40-byte length against the input before allocating" {
    rejects bad_huge_length "in BINBYTES8 (needs 1099511627776 bytes"
}

@test "pickle reader rejects an index outside the matrix shape" {
    rejects bad_row_index "row index 7 out of range for 6 rows"
}

@test "pickle reader rejects a csr whose indptr decreases" {
    rejects bad_indptr "indptr decreases"
}

@test "pickle reader names an unknown opcode and where it is" {
    rejects bad_opcode "unknown opcode 0xff at byte 32"
}

@test "pickle reader refuses out-of-band buffers naming the opcode" {
    rejects bad_out_of_band "NEXT_BUFFER"
}

@test "pickle reader rejects integers wider than 64 bits" {
    rejects bad_bigint "does not fit in 64 bits"
}

@test "pickle reader rejects BUILD on the wrong object and a pickle that is no sparse matrix" {
    rejects bad_build_on_tuple "BUILD on a tuple"
    rejects bad_not_sparse "pickle holds a numpy array, not a scipy sparse matrix"
}

@test "pickle reader rejects files that are not pickles" {
    rejects not_a_pickle "not a pickle"
    : >"$T/empty.pkl"
    run "$TOOLS/pkl-dump" "$T/empty.pkl"
    [ "$status" -eq 1 ] && [[ "$output" == *"empty input"* ]]
    run "$TOOLS/pkl-dump" "$T/missing.pkl"
    [ "$status" -eq 1 ] && [[ "$output" == "pkl-dump: $T/missing.pkl: No such file"* ]]
}

@test "pickle reader matches Python's pickle and scipy on the release's matrices" {
    skip_without_data tiktok
    need_python scipy
    cat >"$T/ref.py" <<'EOF'
import pickle, sys, warnings
warnings.simplefilter("ignore")
with open(sys.argv[1], "rb") as f:
    m = pickle.load(f)  # the release's own files, trusted here
c = m.tocoo()
out = [f"{m.shape[0]} {m.shape[1]} {c.nnz}"]
out += [f"{r} {k} {float(v):.17g}" for r, k, v in zip(c.row.tolist(), c.col.tolist(), c.data.tolist())]
sys.stdout.write("\n".join(out) + "\n")
EOF
    local d f n=0
    for d in "$SHARED"/datasets/*/; do
        for f in "$d"*.pkl; do
            [ -f "$f" ] || continue
            "$TOOLS/pkl-dump" "$f" >"$T/c.txt"
            "$PY" "$T/ref.py" "$f" >"$T/py.txt"
            cmp "$T/c.txt" "$T/py.txt"
            n=$((n + 1))
        done
    done
    [ "$n" -gt 0 ]
}

@test "pickle reader survives truncations and bit flips without crashing or hanging" {
    "$PY" - "$FIX/pkl" "$T" <<'EOF'
import os, random, sys
src, out = sys.argv[1], sys.argv[2]
rnd = random.Random(20240501)
read = lambda n: open(os.path.join(src, n + ".pkl"), "rb").read()
k = 0
def write(b):
    global k
    with open(os.path.join(out, "m%04d.pkl" % k), "wb") as f:
        f.write(bytes(b))
    k += 1
for name in ("csr_p4_rare_opcodes", "coo_p2_codecs_scalar_shape"):
    blob = read(name)
    for cut in range(0, len(blob), 3):
        write(blob[:cut])
names = ("coo_p2_codecs_scalar_shape", "csr_p4_rare_opcodes", "coo_p5_u4_u2_i8",
         "coo_p2_python2_binstring", "csc_p3_old_bigendian_f4", "coo_array_p4_coords_scipy113")
for j in range(300):
    b = bytearray(read(names[j % len(names)]))
    for _ in range(rnd.randint(1, 4)):
        i = rnd.randrange(len(b))
        b[i] ^= 1 << rnd.randrange(8)
    write(b)
for j in range(60):
    write(b"\x80" + bytes([rnd.randint(2, 5)]) + bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 200))))
EOF
    local f st n=0 bad=0
    for f in "$T"/m*.pkl; do
        st=0
        timeout 10 "$TOOLS/pkl-dump" "$f" >/dev/null 2>&1 || st=$?
        if [ "$st" -gt 1 ]; then echo "$f: status $st"; bad=$((bad + 1)); fi
        n=$((n + 1))
    done
    echo "$n inputs, $bad crashed or hung"
    [ "$n" -ge 500 ] && [ "$bad" -eq 0 ]
}
