#!/usr/bin/env bats
# streams.bats: the tensor stream format, read and written by C and Python,
# and the command-line habits every stage shares.

load helpers

streams() { "$PY" "$ROOT/tests/tools/streams.py" "$@"; }

@test "a stream Python wrote is read back by C with every dtype, csr and metadata intact" {
    streams write "$T/py.ts"
    run pick "$T/py.ts" -o "$T/c.ts"
    [ "$status" -eq 0 ]
    run streams compare "$T/py.ts" "$T/c.ts"
    [ "$status" -eq 0 ]
    [[ "$output" == *"10 records identical"* ]]
}

@test "the Python reader in examples reads what C wrote, raw and zstd" {
    streams write "$T/py.ts" --half
    pick --zstd 0 "$T/py.ts" -o "$T/raw.ts"
    pick --zstd 5 "$T/py.ts" -o "$T/z.ts"
    [ "$(head -c4 "$T/z.ts" | od -An -tx1 | tr -d ' ')" = "28b52ffd" ]
    [ "$(head -c1 "$T/raw.ts" | od -An -tx1 | tr -d ' ')" != "28" ]
    run "$PY" "$ROOT/examples/ts_read.py" "$T/z.ts"
    [ "$status" -eq 0 ]
    [[ "$output" == *"x/<f2: <f2 3x5"* ]]
    [[ "$output" == *"m: csr 3x4, 3 non-zeros"* ]]
    streams compare "$T/raw.ts" "$T/z.ts"
    streams compare "$T/py.ts" "$T/z.ts"
}

@test "inspect reports names, shapes, min, max, mean and checksums that numpy agrees with" {
    streams write "$T/py.ts" --framed --half
    run inspect --json "$T/py.ts"
    [ "$status" -eq 0 ]
    echo "$output" > "$T/i.jsonl"
    [ "$(wc -l < "$T/i.jsonl")" -eq 13 ]
    run streams stats "$T/py.ts" "$T/i.jsonl"
    [ "$status" -eq 0 ]
    run inspect "$T/py.ts"
    [[ "$output" == *"cube"*"dense"*"<i4"*"2x3x4"* ]]
    [[ "$output" == *"m "*"csr"*"3x4"*" 3 "* ]]
}

@test "checksums do not depend on compression" {
    streams write "$T/py.ts"
    pick --zstd 0 "$T/py.ts" -o "$T/a.ts"
    pick --zstd 19 "$T/py.ts" -o "$T/b.ts"
    diff <(inspect "$T/a.ts") <(inspect "$T/b.ts")
}

@test "float16 is widened to float32 exactly for all 65536 bit patterns" {
    streams write "$T/py.ts" --half
    run pick --f32 "$T/py.ts" -o "$T/w.ts"
    [ "$status" -eq 0 ]
    run streams widened "$T/w.ts" "$T/py.ts"
    [ "$status" -eq 0 ]
    [[ "$output" == *"float tensors widened exactly"* ]]
}

@test "concatenated raw and zstd streams read as one stream" {
    streams write "$T/py.ts"
    pick --zstd 0 "$T/py.ts" -o "$T/raw.ts"
    pick --zstd 3 "$T/py.ts" -o "$T/z.ts"
    cat "$T/z.ts" "$T/raw.ts" "$T/z.ts" "$T/py.ts" > "$T/cat.ts"
    run inspect "$T/cat.ts"
    [ "$status" -eq 0 ]
    [ "$(grep -c '^x/<f4 ' <<< "$output")" -eq 4 ]
    pick "$T/cat.ts" -o "$T/merged.ts"
    streams compare "$T/py.ts" "$T/merged.ts"
}

@test "streams are read from pipes, including large tensors in zstd" {
    streams write "$T/big.ts" --big 24
    run bash -c "cat '$T/big.ts' | pick --zstd 1 | cat | pick --zstd 0 | pick > '$T/out.ts'"
    [ "$status" -eq 0 ]
    streams compare "$T/big.ts" "$T/out.ts"
    run bash -c "cat '$T/big.ts' | inspect"
    [ "$status" -eq 0 ]
    [[ "$output" == *"big"*"6291456"* ]]
}

@test "a later record replaces an earlier one of the same name" {
    streams write "$T/a.ts"
    "$PY" -c "
import msgpack, numpy as np
a = np.full((2, 2), 7, '<f4')
open('$T/b.ts', 'wb').write(msgpack.packb({'name': 'x/<f4', 'dtype': '<f4', 'shape': [2, 2], 'data': a.tobytes()}))"
    run bash -c "pick '$T/a.ts' '$T/b.ts' | inspect"
    [[ "$output" == *"x/<f4"*"2x2"*" 7 "* ]]
    [ "$(grep -c '^x/<f4 ' <<< "$output")" -eq 1 ]
}

@test "a raw stream cut at any byte is an error that says truncated" {
    streams write "$T/py.ts"
    pick --zstd 0 "$T/py.ts" -o "$T/raw.ts"
    size=$(stat -c %s "$T/raw.ts")
    for cut in $(seq 1 7 $((size - 1))) $((size - 1)); do
        head -c "$cut" "$T/raw.ts" > "$T/cut.ts"
        run inspect "$T/cut.ts"
        [ "$status" -eq 1 ] || { echo "cut at $cut: status $status"; false; }
        [[ "$output" == *"truncated"* ]] || { echo "cut at $cut: $output"; false; }
    done
}

@test "a zstd stream cut at any byte is an error" {
    streams write "$T/py.ts"
    pick --zstd 3 "$T/py.ts" -o "$T/z.ts"
    size=$(stat -c %s "$T/z.ts")
    for cut in $(seq 1 5 $((size - 1))) $((size - 1)); do
        head -c "$cut" "$T/z.ts" > "$T/cut.ts"
        run inspect "$T/cut.ts"
        [ "$status" -eq 1 ] || { echo "cut at $cut: status $status"; false; }
        [[ "$output" == *"truncated"* || "$output" == *"corrupt"* ]] || { echo "cut at $cut: $output"; false; }
    done
}

@test "a flipped bit anywhere in a raw stream is an error, never a crash" {
    streams write "$T/py.ts"
    pick --zstd 0 "$T/py.ts" -o "$T/raw.ts"
    run "$PY" - "$T/raw.ts" "$BIN/inspect" <<'PYEOF'
import subprocess, sys, random
data = bytearray(open(sys.argv[1], "rb").read())
random.seed(3)
bad = []
for i in random.sample(range(len(data)), min(300, len(data))):
    e = bytearray(data); e[i] ^= 1 << random.randrange(8)
    p = subprocess.run([sys.argv[2], "-"], input=bytes(e), capture_output=True, timeout=10)
    if p.returncode != 1:
        bad.append((i, p.returncode))
print("bad:", bad)
sys.exit(1 if bad else 0)
PYEOF
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "a flipped bit in a zstd stream is an error or reads back the same records" {
    streams write "$T/py.ts"
    pick --zstd 3 "$T/py.ts" -o "$T/z.ts"
    run "$PY" - "$T/z.ts" "$BIN/pick" "$T" <<'PYEOF'
import subprocess, sys, random
data = bytearray(open(sys.argv[1], "rb").read())
good = subprocess.run([sys.argv[2], "--zstd", "0", "-"], input=bytes(data), capture_output=True).stdout
bad = []
random.seed(4)
for i in random.sample(range(len(data)), min(300, len(data))):
    e = bytearray(data); e[i] ^= 1 << random.randrange(8)
    p = subprocess.run([sys.argv[2], "--zstd", "0", "-"], input=bytes(e), capture_output=True, timeout=10)
    if p.returncode not in (0, 1) or (p.returncode == 0 and p.stdout != good):
        bad.append((i, p.returncode))
print("bad:", bad)
sys.exit(1 if bad else 0)
PYEOF
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "a framed stream without its end record is an error; a foreign one is read" {
    streams write "$T/noend.ts" --framed --no-end
    run inspect "$T/noend.ts"
    [ "$status" -eq 1 ]
    [[ "$output" == *"without its end record"* ]]
    streams write "$T/foreign.ts"
    run inspect "$T/foreign.ts"
    [ "$status" -eq 0 ]
}

@test "malformed records are errors that name the record and the problem" {
    for kind in dtype shape negshape index indptr format noname notmap; do
        streams bad "$T/bad.ts" "$kind"
        run inspect "$T/bad.ts"
        [ "$status" -eq 1 ] || { echo "$kind: status $status"; false; }
        echo "$kind: $output"
    done
    streams bad "$T/bad.ts" dtype;  run inspect "$T/bad.ts"; [[ "$output" == *"record 'a': unsupported dtype '<c8'"* ]]
    streams bad "$T/bad.ts" shape;  run inspect "$T/bad.ts"; [[ "$output" == *"need 24 bytes but 'data' holds 20"* ]]
    streams bad "$T/bad.ts" index;  run inspect "$T/bad.ts"; [[ "$output" == *"column index 5 out of range"* ]]
    streams bad "$T/bad.ts" indptr; run inspect "$T/bad.ts"; [[ "$output" == *"indptr decreases at row 1"* ]]
    streams bad "$T/bad.ts" notmap; run inspect "$T/bad.ts"; [[ "$output" == *"not a msgpack map"* ]]
}

@test "a file that is not a stream is refused with a clear message" {
    echo "hello, world" > "$T/text.ts"
    run inspect "$T/text.ts"
    [ "$status" -eq 1 ]
    [[ "$output" == *"not a tensor stream"* ]]
    run inspect "$T/missing.ts"
    [ "$status" -eq 1 ]
    [[ "$output" == *"missing.ts: cannot open"* ]]
}

@test "a failed stage leaves no output file behind" {
    echo "garbage" > "$T/bad.ts"
    run pick "$T/bad.ts" -o "$T/out.ts"
    [ "$status" -eq 1 ]
    [ ! -e "$T/out.ts" ]
    [ -z "$(ls "$T" | grep tmp)" ]
}

@test "a stage killed while writing leaves neither the output nor its temporary file" {
    streams write "$T/a.ts" --big 24
    pick --zstd 19 "$T/a.ts" -o "$T/out.ts" 3>&- &
    pid=$!
    for _ in $(seq 200); do ls "$T" | grep -q 'out.ts.tmp' && break; sleep 0.02; done
    ls "$T" | grep -q 'out.ts.tmp'      # caught in the middle of writing
    kill -TERM "$pid"
    status=0
    wait "$pid" || status=$?
    [ "$status" -eq 143 ]               # died of SIGTERM, as it should
    [ ! -e "$T/out.ts" ]
    [ -z "$(ls "$T" | grep 'out.ts.tmp')" ]
}

@test "the output file appears complete, under its own name, only at the end" {
    streams write "$T/a.ts" --big 8
    pick "$T/a.ts" -o "$T/out.ts"
    [ -z "$(ls "$T" | grep tmp)" ]
    streams compare "$T/a.ts" "$T/out.ts"
}

@test "a binary stream is never written to a terminal" {
    streams write "$T/a.ts"
    run script -qec "$BIN/pick $T/a.ts" /dev/null
    [ "$status" -eq 2 ]
    [[ "$output" == *"refusing to write a binary stream to a terminal"* ]]
}

@test "every stage prints usage with -h and exits 0" {
    for s in "$BIN"/*; do
        run "$s" --help
        [ "$status" -eq 0 ] || { echo "$s: $status"; false; }
        [[ "$output" == "usage: $(basename "$s") "* ]] || { echo "$s: $output"; false; }
    done
}

@test "a usage error exits 2 with a one-line reason" {
    for s in "$BIN"/*; do
        run "$s" --no-such-option
        [ "$status" -eq 2 ] || { echo "$s: $status"; false; }
        [[ "$output" == *"unknown option '--no-such-option'"* ]]
        [ "${#lines[@]}" -eq 1 ]
    done
    run pick --zstd many
    [ "$status" -eq 2 ]
    [[ "$output" == *"--zstd needs a whole number, not 'many'"* ]]
    run pick --zstd 40 -o x
    [ "$status" -eq 2 ]
}

@test "the binaries load the OpenMP build of OpenBLAS, whose sgemm is right" {
    run "$TOOLS/blas-check"
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "${lines[0]}" == "library: /usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0" ]]
    [[ "$output" == *"USE_OPENMP"* ]]
    [[ "$output" == *"parallel: 2"* ]]
    for s in "$BIN"/*; do
        ! ldd "$s" | grep -q 'libblas.so' || { echo "$s links the reference libblas"; false; }
    done
}

@test "records a stage does not use are skipped while reading, still checksummed" {
    "$PY" "$ROOT/examples/make_synthetic.py" "$T/syn" --users 60 --items 50 >/dev/null
    convert-pkl -q "$T/syn" | build-graph -q --pass | train -q --pass --zstd 0 -o "$T/run.ts"
    run evaluate -q "$T/run.ts"
    [ "$status" -eq 0 ]
    want="$output"
    # flip one bit deep inside an unused record's payload (the features)
    "$PY" - "$T/run.ts" "$T/bad.ts" <<'PYEOF'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
at = data.find(b"feat/image") + 400
data[at] ^= 0x10
open(sys.argv[2], "wb").write(data)
PYEOF
    run evaluate "$T/bad.ts"
    [ "$status" -eq 1 ]
    [[ "$output" == *"checksum mismatch"* ]]
    pick "$T/run.ts" --drop 'feat/*' -o "$T/nofeat.ts"
    run evaluate -q "$T/nofeat.ts"
    [ "$output" = "$want" ]
}

@test "-o onto a device or a FIFO writes in place and leaves it a device or a FIFO" {
    streams write "$T/py.ts"
    mknod "$T/null" c 1 3          # a private /dev/null: a regression must not replace the real one
    run pick "$T/py.ts" -o "$T/null"
    [ "$status" -eq 0 ]
    [ -c "$T/null" ]
    mkfifo "$T/fifo"
    inspect < "$T/fifo" > "$T/seen.txt" &
    reader=$!
    pick "$T/py.ts" -o "$T/fifo"
    wait "$reader"
    [ -p "$T/fifo" ]
    diff <(inspect "$T/py.ts") "$T/seen.txt"
}

@test "examples/ts_read.py writes streams, raw and zstd, that the stages read as the records they were read from" {
    synthetic_data "$T" 120 90
    cd "$ROOT"
    "$PY" - "$DATA" "$T" <<'PYEOF'
import sys
import numpy as np
sys.path.insert(0, "examples")
from ts_read import crc32c, read_stream, write_stream
assert crc32c(b"123456789") == 0xE3069283            # the CRC-32C check value
src, d = sys.argv[1], sys.argv[2]
t = read_stream(src, meta=True)
write_stream(f"{d}/raw.ts", t)
write_stream(f"{d}/z.ts", t, zstd_level=5)
# a notebook's own features, big-endian float64 on the way in: stored as <f8
rng = np.random.default_rng(3)
write_stream(f"{d}/mine.ts", {"feat/text": rng.standard_normal((90, 6)).astype(">f8")}, writer="notebook")
try:
    write_stream(f"{d}/bad.ts", {"x": np.zeros(3, np.complex64)})
    raise SystemExit("a complex dtype was written")
except ValueError:
    pass
PYEOF
    head -c 4 "$T/z.ts" | od -An -tx1 | grep -q '28 b5 2f fd'
    for f in raw z; do
        cmp <(pick --zstd 0 "$DATA") <(pick --zstd 0 "$T/$f.ts")
    done
    # framed: a damaged byte is refused by the end record's checksum
    "$PY" -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[-200] ^= 1; open(sys.argv[2], "wb").write(b)' \
        "$T/raw.ts" "$T/bad.ts"
    run inspect "$T/bad.ts"
    [ "$status" -eq 1 ] && [[ "$output" == *"checksum mismatch in the stream written by ts_read.py"* ]]
    # the notebook's features go straight into training (widened to float32)
    run inspect "$T/mine.ts"
    [[ "$output" == *"feat/text "*"<f8 "*"90x6"* ]]
    pick --drop 'feat/*' "$DATA" "$T/mine.ts" -o "$T/with-text.ts"
    train -q "$T/with-text.ts" --latdim 16 -o "$T/model.ts"
    inspect "$T/model.ts" | grep -q "emb/user"
}

@test "ts_alloc gives zeroed memory, on 2 MiB boundaries (huge pages) from 1 MiB on" {
    run "$TOOLS/fresh-bench" --check
    [ "$status" -eq 0 ]
    [ "$output" = "ok" ]
}

@test "--reuse writes the same bytes over an older, longer file, which is gone after" {
    streams write "$T/py.ts"
    pick --zstd 0 "$T/py.ts" -o "$T/new.ts"
    head -c 3000000 /dev/urandom > "$T/old.bin"           # longer than the stream
    run pick --zstd 0 "$T/py.ts" --reuse "$T/old.bin" -o "$T/over.ts"
    [ "$status" -eq 0 ]
    cmp "$T/new.ts" "$T/over.ts"
    [ ! -e "$T/old.bin" ]
    # shorter than the stream, and zstd: grows to length
    head -c 100 /dev/urandom > "$T/short.bin"
    pick --zstd 3 "$T/py.ts" -o "$T/z.ts"
    pick --zstd 3 "$T/py.ts" --reuse "$T/short.bin" -o "$T/z2.ts"
    cmp "$T/z.ts" "$T/z2.ts"
    # nothing there to reuse: made new
    run pick --zstd 0 "$T/py.ts" --reuse "$T/missing" -o "$T/made.ts"
    [ "$status" -eq 0 ]
    cmp "$T/new.ts" "$T/made.ts"
}

@test "--reuse refuses an input and stdout, and leaves a file with another hard link alone" {
    streams write "$T/py.ts"
    run pick "$T/py.ts" --reuse "$T/py.ts" -o "$T/x.ts"
    [ "$status" -eq 2 ]
    [[ "$output" == *"--reuse $T/py.ts is an input"* ]]
    [ -s "$T/py.ts" ] && [ ! -e "$T/x.ts" ]
    run pick "$T/py.ts" --reuse "$T/other"
    [ "$status" -eq 2 ]
    [[ "$output" == *"--reuse needs -o FILE"* ]]
    printf 'keep me' > "$T/linked"
    ln "$T/linked" "$T/link2"
    run pick --zstd 0 "$T/py.ts" --reuse "$T/linked" -o "$T/y.ts"
    [ "$status" -eq 0 ]
    [ "$(cat "$T/linked")" = "keep me" ] && [ "$(cat "$T/link2")" = "keep me" ]
    pick --zstd 0 "$T/py.ts" -o "$T/new.ts"
    cmp "$T/new.ts" "$T/y.ts"
}
