#!/usr/bin/python3
"""make_corpus.py: writes the fuzz harnesses' seed corpora, tests/fuzz/corpus/
{pkl,npy,ts}/, from the project's fixtures and test generators.

  tests/fuzz/make_corpus.py          (run from anywhere; `make fuzz-corpus`)

Needs bin/pick (`make`), zstd and Debian's python3 with numpy and msgpack.
The output is deterministic: run it again and git shows no change.

  pkl  every pickle of tests/fixtures/pkl (good and bad) and hostile.py's
       pkl-huge-rows
  npy  every .npy of tests/fixtures/npy and hostile.py's npy kinds
  ts   streams from tests/tools/streams.py (every dtype, csr, metadata, a
       foreign map; unframed, framed, cut before the end record, and each
       of its malformed records), the same written again by our own writer
       (bin/pick) raw and zstd-compressed, a concatenation, a skippable
       frame, a flipped bit, and hostile.py's stream kinds.  Each starts
       with the harness's mode byte (tests/fuzz/fuzz-ts.c): filter, pipe,
       zstd round trip, chosen so that every mode appears.
"""
import glob
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PY = "/usr/bin/python3"
OUT = os.path.join(HERE, "corpus")
TMP = os.path.join(ROOT, "build", "fuzz", "corpus-tmp")


def run(*args, **kw):
    return subprocess.run(args, check=True, stdout=subprocess.PIPE, **kw).stdout


def streams(*args):
    path = os.path.join(TMP, "s.ts")
    a = list(args)
    # streams.py write OUT [flags] | bad OUT KIND
    run(PY, os.path.join(ROOT, "tests", "tools", "streams.py"), a[0], path, *a[1:])
    return open(path, "rb").read()


def hostile(kind):
    path = os.path.join(TMP, "h")
    run(PY, os.path.join(ROOT, "tests", "tools", "hostile.py"), kind, path)
    return open(path, "rb").read()


def pick(data, *flags):
    """data rewritten by our writer (bin/pick, stdin to stdout)."""
    return run(os.path.join(ROOT, "bin", "pick"), *flags, "-", input=data)


def main():
    if not os.access(os.path.join(ROOT, "bin", "pick"), os.X_OK):
        sys.exit("make_corpus.py: needs bin/pick: run make first")
    os.makedirs(TMP, exist_ok=True)
    for h in ("pkl", "npy", "ts"):
        shutil.rmtree(os.path.join(OUT, h), ignore_errors=True)
        os.makedirs(os.path.join(OUT, h))

    def put(h, name, data):
        with open(os.path.join(OUT, h, name), "wb") as f:
            f.write(data)

    for f in sorted(glob.glob(os.path.join(ROOT, "tests", "fixtures", "pkl", "*.pkl"))):
        shutil.copyfile(f, os.path.join(OUT, "pkl", os.path.basename(f)))
    put("pkl", "hostile_huge_rows.pkl", hostile("pkl-huge-rows"))

    for f in sorted(glob.glob(os.path.join(ROOT, "tests", "fixtures", "npy", "*.npy"))):
        shutil.copyfile(f, os.path.join(OUT, "npy", os.path.basename(f)))
    for kind in ("npy-empty-huge", "npy-nan", "npy-empty-at-cap", "npy-empty-over-cap"):
        put("npy", "hostile_" + kind.replace("-", "_") + ".npy", hostile(kind))

    # mode byte: 1 filter, 2 pipe, 4 zstd round trip, 0x10 the filter keeps odd first bytes
    plain = streams("write")
    framed_py = streams("write", "--framed")
    raw = pick(plain, "--zstd", "0")
    z1 = pick(plain, "--zstd", "1")
    z19 = pick(plain, "--zstd", "19")
    ts = {
        "plain": (0x00, plain),
        "plain_filter": (0x01, plain),
        "plain_pipe_filter_odd": (0x13, plain),
        "framed_python": (0x04, framed_py),
        "framed_python_no_end": (0x00, streams("write", "--framed", "--no-end")),
        "pick_raw": (0x02, raw),
        "pick_raw_filter_zrt": (0x05, raw),
        "pick_zstd1": (0x00, z1),
        "pick_zstd1_pipe_filter": (0x03, z1),
        "pick_zstd19_odd": (0x17, z19),
        "cat_raw_zstd": (0x06, raw + z1),
        "cat_zstd_plain": (0x01, z1 + plain),
        "skippable_then_zstd": (0x00, bytes.fromhex("502a4d18") + (5).to_bytes(4, "little") + b"skip!"
                                + run("zstd", "-q", "-c", "-3", input=plain)),
        "flipped_bit": (0x00, raw[:200] + bytes([raw[200] ^ 0x10]) + raw[201:]),
        "cut_zstd": (0x02, z1[:len(z1) // 2]),
    }
    for kind in ("dtype", "shape", "negshape", "index", "indptr", "format", "noname", "notmap"):
        ts["bad_" + kind] = (0x01 if kind in ("index", "shape") else 0x00, streams("bad", kind))
    for kind in ("empty-name", "nul-name", "csr-nnz-wrap", "dense-dims-wrap", "dense-empty-huge", "csr-huge-cols",
                 "empty-json", "bin-too-long", "csr-unsorted", "csr-duplicate", "feat-nan", "feat-inf-f2",
                 "dense-empty-over-cap"):
        ts["hostile_" + kind.replace("-", "_")] = (0x03 if kind == "bin-too-long" else 0x00, hostile(kind))
    ts["hostile_bin_too_long_file"] = (0x00, hostile("bin-too-long"))
    for name, (mode, data) in sorted(ts.items()):
        put("ts", name + ".ts", bytes([mode]) + data)
    shutil.rmtree(TMP, ignore_errors=True)
    for h in ("pkl", "npy", "ts"):
        files = os.listdir(os.path.join(OUT, h))
        size = sum(os.path.getsize(os.path.join(OUT, h, f)) for f in files)
        print(f"{h}: {len(files)} files, {size} bytes")


if __name__ == "__main__":
    main()
