#!/usr/bin/env bats
# npy.bats: the .npy reader (common/io/npy.c) through build/tests/npy-dump,
# against the fixtures of tests/fixtures/make_npy.py and the real TikTok
# features.  numpy (Debian's python3) is the reference throughout.

load helpers

NPY="$FIX/npy"

# bad FIXTURE SUBSTRING: npy-dump refuses FIXTURE with exit 1 and a one-line
# "npy-dump: FILE: REASON" that contains SUBSTRING.
bad() {
    run "$TOOLS/npy-dump" "$NPY/$1.npy"
    echo "$1: status $status, output: $output"
    [ "$status" -eq 1 ]
    [ "${#lines[@]}" -eq 1 ]
    [[ "$output" == "npy-dump: $NPY/$1.npy: "* ]]
    [[ "$output" == *"$2"* ]]
}

# same_as_numpy FILE: npy-dump FILE prints exactly what numpy's
# np.load(FILE).astype(np.float32) gives, formatted the same way.
same_as_numpy() {
    "$TOOLS/npy-dump" "$1" >"$T/dump.txt"
    "$PY" - "$1" "$T/dump.txt" <<'EOF'
import math, sys
import numpy as np
path, dump = sys.argv[1], sys.argv[2]
a = np.load(path, allow_pickle=False)
with np.errstate(over="ignore"):
    b = a.astype(np.float32)
if b.ndim == 1:
    b = b.reshape(-1, 1)
out = ["%d %d %s" % (b.shape[0], b.shape[1], a.dtype.str)]
for row in b.tolist():
    out.append(" ".join("nan" if math.isnan(v) else "%.9g" % v for v in row))
want = "\n".join(out) + "\n"
got = open(dump).read()
if got != want:
    gl, wl = got.split("\n"), want.split("\n")
    for i, (g, w) in enumerate(zip(gl, wl)):
        if g != w:
            sys.exit("line %d differs:\n got  %s\n want %s" % (i + 1, g[:200], w[:200]))
    sys.exit("lengths differ: %d vs %d lines" % (len(gl), len(wl)))
EOF
}

@test "npy-dump is built" {
    [ -x "$TOOLS/npy-dump" ]
}

@test "npy fixtures are present (regenerate with tests/fixtures/make_npy.py)" {
    n=$(ls "$NPY"/good_*.expected | wc -l)
    [ "$n" -ge 30 ]
    for e in "$NPY"/good_*.expected; do [ -f "${e%.expected}.npy" ]; done
}

@test "npy reader dumps every good fixture exactly as numpy reads it" {
    for e in "$NPY"/good_*.expected; do
        f="${e%.expected}.npy"
        run "$TOOLS/npy-dump" "$f"
        [ "$status" -eq 0 ] || { echo "$f: status $status: $output"; false; }
        diff -u "$e" <("$TOOLS/npy-dump" "$f") || { echo "$f differs"; false; }
    done
}

@test "npy reader accepts format versions 1.0, 2.0 and 3.0 alike" {
    for v in v1 v2 v3; do
        run "$TOOLS/npy-dump" "$NPY/good_${v}_f4.npy"
        [ "$status" -eq 0 ]
        [ "$output" = "$(cat "$NPY/good_v1_f4.expected")" ]
    done
}

@test "npy reader widens float16 to float32 exactly, specials included" {
    run "$TOOLS/npy-dump" "$NPY/good_f2_special.npy"
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "3 6 <f2" ]
    [ "${lines[1]}" = "0 -0 5.96046448e-08 -5.96046448e-08 6.09755516e-05 6.10351562e-05" ]
    [ "${lines[2]}" = "65504 -65504 inf -inf nan nan" ]
    [ "${lines[3]}" = "nan 1 0.333251953 0.0999755859 3.05175781e-05 -2" ]
    run "$TOOLS/npy-dump" "$NPY/good_f2_special_be.npy"
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "3 6 >f2" ]
    [ "${lines[2]}" = "65504 -65504 inf -inf nan nan" ]
}

@test "npy reader widens every one of the 65536 float16 bit patterns like numpy, in both byte orders" {
    "$PY" -c '
import numpy as np, sys
b = np.arange(65536, dtype="<u2").view("<f2").reshape(256, 256)
np.save(sys.argv[1], b)
np.save(sys.argv[2], b.astype(">f2"))
' "$T/all_le.npy" "$T/all_be.npy"
    same_as_numpy "$T/all_le.npy"
    same_as_numpy "$T/all_be.npy"
}

@test "npy reader converts f4, f8, i4 and i8 in both byte orders" {
    for k in f4 f8 i4 i8; do
        for o in le be; do
            diff -u "$NPY/good_${k}_$o.expected" <("$TOOLS/npy-dump" "$NPY/good_${k}_$o.npy")
        done
    done
    run "$TOOLS/npy-dump" "$NPY/good_i8_be.npy"
    [ "${lines[1]}" = "0 -1 9.22337204e+18 -9.22337204e+18" ]
}

@test "npy reader rounds f8 to nearest float32, overflowing to inf like numpy" {
    run "$TOOLS/npy-dump" "$NPY/good_f8_rounding.npy"
    [ "$status" -eq 0 ]
    [ "${lines[1]}" = "0.100000001 9.9999461e-41 0 -0" ]
    [ "${lines[2]}" = "3.40282347e+38 inf -inf 16777216" ]
}

@test "npy reader transposes Fortran-order files into row-major" {
    run "$TOOLS/npy-dump" "$NPY/good_fortran_f4.npy"
    [ "$status" -eq 0 ]
    [ "$output" = "$(printf '3 4 <f4\n0 1.5 3 4.5\n6 7.5 9 10.5\n12 13.5 15 16.5')" ]
    run "$TOOLS/npy-dump" "$NPY/good_fortran_i8_4x2.npy"
    [ "$output" = "$(printf '4 2 <i8\n-3 -2\n-1 0\n1 2\n3 4')" ]
}

@test "npy reader reads a 1-D array of N as N x 1" {
    run "$TOOLS/npy-dump" "$NPY/good_1d_f4.npy"
    [ "$status" -eq 0 ]
    [ "$output" = "$(printf '5 1 <f4\n1.5\n-2.25\n3\n0.00400000019\n7')" ]
}

@test "npy reader accepts empty 0 x 5 and 5 x 0 arrays" {
    run "$TOOLS/npy-dump" "$NPY/good_0x5.npy"
    [ "$status" -eq 0 ]
    [ "$output" = "0 5 <f4" ]
    run "$TOOLS/npy-dump" "$NPY/good_5x0.npy"
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "5 0 <f8" ]
}

@test "npy reader parses hand-formatted headers: any key order, either quote, spaces, tabs, trailing commas, 2L" {
    for n in spaces no_trailing_comma tabs_nopad native_eq py2_long; do
        run "$TOOLS/npy-dump" "$NPY/good_hdr_$n.npy"
        [ "$status" -eq 0 ] || { echo "$n: $output"; false; }
        [ "${lines[1]}" = "0.5 1.5 2.5" ]
        [ "${lines[2]}" = "3.5 4.5 5.5" ]
    done
    run "$TOOLS/npy-dump" "$NPY/good_hdr_native_eq.npy"
    [ "${lines[0]}" = "2 3 =f4" ]
    run "$TOOLS/npy-dump" "$NPY/good_hdr_1d_spaces.npy"
    [ "$output" = "$(printf '3 1 <f4\n0.5\n1.5\n2.5')" ]
}

@test "npy reader refuses truncated data, naming declared and actual sizes" {
    bad bad_truncated "header declares 3 x 4 <f4 (48 bytes) but file holds 40 (truncated data)"
}

@test "npy reader refuses extra trailing bytes" {
    bad bad_trailing "header declares 3 x 4 <f4 (48 bytes) but file holds 52 (extra trailing bytes)"
}

@test "npy reader refuses a huge declared shape before allocating" {
    bad bad_huge_overflow "header declares 1099511627776 x 1099511627776 <f2: size overflows"
    bad bad_huge_shape "header declares 1048576 x 1048576 <f4 (4398046511104 bytes) but file holds 64"
}

@test "npy reader refuses unsupported dtypes, naming them" {
    bad bad_dtype_c8 "unsupported dtype '<c8'"
    bad bad_dtype_object "unsupported dtype '|O'"
    bad bad_dtype_U3 "unsupported dtype '<U3'"
    bad bad_dtype_b1 "unsupported dtype '|b1'"
    bad bad_dtype_i2 "unsupported dtype '<i2'"
    bad bad_dtype_u1 "unsupported dtype '|u1'"
    bad bad_dtype_pipe_f4 "unsupported dtype '|f4'"
    bad bad_dtype_structured "structured"
    bad bad_dtype_structured_v3 "structured"
}

@test "npy reader refuses 0-d and 3-D arrays" {
    bad bad_scalar "0-d"
    bad bad_shape_3d "3-D shape"
}

@test "npy reader refuses bad magic, short files and unknown format versions" {
    bad bad_magic "bad magic"
    bad bad_empty "empty file"
    bad bad_magic_only "too short"
    bad bad_version_9 "format version 9.0"
    bad bad_version_1_1 "format version 1.1"
    bad bad_header_len "header length 65520 exceeds file size"
    bad bad_header_len_v2_huge "header length 4294967295"
}

@test "npy reader refuses corrupted header dicts with a reason" {
    bad bad_hdr_garbage "expected '{'"
    bad bad_hdr_unclosed_shape "expected ',' or ')' in shape"
    bad bad_hdr_missing_key "missing key 'fortran_order'"
    bad bad_hdr_extra_key "unexpected key 'x'"
    bad bad_hdr_dup_key "duplicate key"
    bad bad_hdr_shape_not_tuple "not a tuple"
    bad bad_hdr_negative_dim "non-negative integer"
    bad bad_hdr_fortran_int "fortran_order is not True or False"
    bad bad_hdr_unterminated "bad header dict"
    bad bad_hdr_trailing_garbage "trailing garbage"
    bad bad_hdr_float_dim "in shape"
}

@test "npy reader refuses every bad fixture with exit 1 and one line on stderr" {
    n=0
    for f in "$NPY"/bad_*.npy; do
        run "$TOOLS/npy-dump" "$f"
        [ "$status" -eq 1 ] || { echo "$f: status $status"; false; }
        [ "${#lines[@]}" -eq 1 ]
        [[ "$output" == "npy-dump: $f: "* ]]
        n=$((n + 1))
    done
    [ "$n" -ge 30 ]
}

@test "npy-dump reports a missing file" {
    run "$TOOLS/npy-dump" "$T/nope.npy"
    [ "$status" -eq 1 ]
    [[ "$output" == "npy-dump: $T/nope.npy: No such file or directory" ]]
}

@test "npy reader handles arrays larger than its read chunk, in C and Fortran order" {
    "$PY" -c '
import numpy as np, sys
r = np.random.default_rng(7)
np.save(sys.argv[1], r.standard_normal((1100, 1000)).astype(">f4"))
np.save(sys.argv[2], np.asfortranarray(r.standard_normal((613, 1031))))
np.save(sys.argv[3], np.asfortranarray(r.integers(-2**40, 2**40, (1500, 701))))
' "$T/c.npy" "$T/f.npy" "$T/i.npy"
    same_as_numpy "$T/c.npy"
    same_as_numpy "$T/f.npy"
    same_as_numpy "$T/i.npy"
}

@test "npy reader reads the real TikTok image features exactly as numpy" {
    skip_without_data tiktok
    run "$TOOLS/npy-dump" "$SHARED/datasets/tiktok/image_feat.npy"
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "6710 128 <f2" ]
    same_as_numpy "$SHARED/datasets/tiktok/image_feat.npy"
}

@test "npy reader reads the real TikTok audio features exactly as numpy" {
    skip_without_data tiktok
    same_as_numpy "$SHARED/datasets/tiktok/audio_feat.npy"
}

@test "npy reader survives truncations and random bit flips: exit 0 or 1, never a crash" {
    # every prefix length of two fixtures, then 300 files with 1-4 random bit
    # flips (seeded) in header and data; each run must exit 0 or 1 quickly.
    "$PY" - "$NPY" "$T" <<'EOF'
import os, random, sys
src, out = sys.argv[1], sys.argv[2]
rnd = random.Random(12345)
n = 0
for name in ("good_f2_special.npy", "good_fortran_f4.npy"):
    data = open(os.path.join(src, name), "rb").read()
    for cut in range(len(data)):
        open(os.path.join(out, "z%05d.npy" % n), "wb").write(data[:cut]); n += 1
goods = sorted(f for f in os.listdir(src) if f.startswith("good_") and f.endswith(".npy"))
for i in range(300):
    data = bytearray(open(os.path.join(src, goods[i % len(goods)]), "rb").read())
    for _ in range(rnd.randint(1, 4)):
        # bias flips toward the header, where the parsing is
        pos = rnd.randrange(min(len(data), 140)) if rnd.random() < 0.7 else rnd.randrange(len(data))
        data[pos] ^= 1 << rnd.randrange(8)
    open(os.path.join(out, "z%05d.npy" % n), "wb").write(bytes(data)); n += 1
for i in range(50):  # random garbage, some with a valid magic
    data = bytes(rnd.randrange(256) for _ in range(rnd.randrange(200)))
    if i % 2:
        data = b"\x93NUMPY\x01\x00" + data
    open(os.path.join(out, "z%05d.npy" % n), "wb").write(data); n += 1
print(n)
EOF
    start=$SECONDS
    ok=0 refused=0
    for f in "$T"/z*.npy; do
        rc=0
        timeout 5 "$TOOLS/npy-dump" "$f" >/dev/null 2>"$T/err" || rc=$?
        case $rc in
            0) ok=$((ok + 1)) ;;
            1) refused=$((refused + 1)); grep -q "^npy-dump: $f: ." "$T/err" ;;
            *) echo "$f: exit $rc"; cat "$T/err"; false ;;
        esac
    done
    echo "accepted $ok, refused $refused in $((SECONDS - start))s"
    [ "$refused" -gt 400 ]
    [ $((SECONDS - start)) -lt 60 ]
}
