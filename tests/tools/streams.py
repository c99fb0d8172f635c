#!/usr/bin/python3
"""streams.py: test helper that writes and checks tensor streams from Python.

  streams.py write OUT [--framed] [--no-end] [--big MB] [--half]
      every dtype, a csr matrix and a metadata record; --half adds all 65536
      float16 bit patterns; --big adds an MB-sized float32 tensor; --framed
      wraps it in our header/end records (--no-end leaves the end out).
  streams.py bad OUT KIND      a stream with one malformed record
  streams.py compare A B       same records (names, dtypes, shapes, bytes)
  streams.py widened W ORIG    every float tensor of ORIG is float32 in W,
                               equal bit for bit to numpy's astype(float32)
  streams.py stats FILE JSONL  inspect --json's min/max/mean agree with numpy
"""
import json
import struct
import sys
import zlib

import msgpack
import numpy as np

sys.path.insert(0, __file__.rsplit("/", 3)[0] + "/examples")
from ts_read import read_stream  # noqa: E402


def crc32c(data):
    crc = 0xFFFFFFFF
    table = crc32c.table
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        t.append(c)
    return t


crc32c.table = _table()


def dense(name, a):
    return {"name": name, "dtype": a.dtype.str, "shape": list(a.shape), "data": a.tobytes()}


def records(half=False, big=0):
    rng = np.random.default_rng(7)
    out = [{"name": "meta", "json": json.dumps({"what": "test", "n": 3})}]
    for dt in ["<f4", "<f2", "<f8", "<i4", "<i8", "|u1"]:
        a = (rng.standard_normal((3, 5)) * 50).astype(dt)
        out.append(dense("x/" + dt, a))
    out.append(dense("scalar", np.array(2.5, "<f8")))
    out.append(dense("empty", np.zeros((0, 4), "<f4")))
    out.append(dense("cube", np.arange(24, dtype="<i4").reshape(2, 3, 4)))
    out.append({"name": "m", "format": "csr", "shape": [3, 4],
                "indptr": np.array([0, 2, 2, 3], "<i8").tobytes(),
                "indices": np.array([1, 3, 0], "<i4").tobytes(),
                "values": np.array([1, 0.5, 2], "<f4").tobytes()})
    out.append({"note": "a foreign map without a name", "list": [1, 2.5, None, True, {"k": b"\x00\x01"}]})
    if half:
        out.append(dense("half/all", np.arange(65536, dtype="<u2").view("<f2").reshape(256, 256)))
    if big:
        out.append(dense("big", rng.standard_normal(big * 262144).astype("<f4")))
    return out


def frame(recs, end=True):
    body = msgpack.packb({"stream": "diffmm-ts", "version": 1, "writer": "streams.py"})
    body += b"".join(msgpack.packb(r) for r in recs)
    if end:
        body += msgpack.packb({"end": "diffmm-ts", "records": len(recs), "crc32c": crc32c(body)})
    return body


def cmd_write(out, *flags):
    big = int(flags[flags.index("--big") + 1]) if "--big" in flags else 0
    recs = records(half="--half" in flags, big=big)
    data = frame(recs, end="--no-end" not in flags) if "--framed" in flags else b"".join(
        msgpack.packb(r) for r in recs)
    open(out, "wb").write(data)


BAD = {
    "dtype": {"name": "a", "dtype": "<c8", "shape": [1], "data": b"\0" * 8},
    "shape": {"name": "a", "dtype": "<f4", "shape": [2, 3], "data": b"\0" * 20},
    "negshape": {"name": "a", "dtype": "<f4", "shape": [-1], "data": b""},
    "index": {"name": "m", "format": "csr", "shape": [2, 2], "indptr": np.array([0, 1, 2], "<i8").tobytes(),
              "indices": np.array([0, 5], "<i4").tobytes(), "values": np.ones(2, "<f4").tobytes()},
    "indptr": {"name": "m", "format": "csr", "shape": [2, 2], "indptr": np.array([0, 2, 1], "<i8").tobytes(),
               "indices": np.array([0, 1], "<i4").tobytes(), "values": np.ones(2, "<f4").tobytes()},
    "format": {"name": "m", "format": "coo", "shape": [2, 2]},
    "noname": {"dtype": "<f4", "shape": [1], "data": b"\0" * 4},
    "notmap": [1, 2, 3],
}


def cmd_bad(out, kind):
    open(out, "wb").write(msgpack.packb({"name": "ok", "dtype": "<f4", "shape": [1], "data": b"\0" * 4})
                          + msgpack.packb(BAD[kind]))


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def same(x, y):
    if isinstance(x, tuple) != isinstance(y, tuple):
        return False
    if isinstance(x, tuple):
        return all(np.array_equal(a, b) for a, b in zip(x[:3], y[:3])) and x[3] == y[3]
    return x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()


def cmd_compare(a, b):
    ta, tb = read_stream(a), read_stream(b)
    if sorted(ta) != sorted(tb):
        fail(f"names differ: {sorted(ta)} vs {sorted(tb)}")
    for k in ta:
        if not same(ta[k], tb[k]):
            fail(f"record {k} differs")
    print(f"{len(ta)} records identical")


def cmd_widened(w, orig):
    tw, to = read_stream(w), read_stream(orig)
    n = 0
    for k, v in to.items():
        if isinstance(v, tuple) or v.dtype.kind != "f":
            continue
        got = tw[k]
        if got.dtype.str != "<f4":
            fail(f"{k} is {got.dtype.str}, not <f4")
        want = v.astype(np.float32)
        if want.view("<u4").tobytes() != got.view("<u4").tobytes():
            bad = np.flatnonzero(want.view("<u4").ravel() != got.view("<u4").ravel())
            fail(f"{k}: {len(bad)} values differ, first at {bad[0]}")
        n += 1
    print(f"{n} float tensors widened exactly")


def cmd_stats(path, jsonl):
    t = read_stream(path)
    for line in open(jsonl):
        r = json.loads(line)
        if r["kind"] == "other":
            continue
        v = t[r["name"]]
        vals = v[2] if isinstance(v, tuple) else v.ravel()
        vals = vals.astype(np.float64) if vals.dtype != np.float64 else vals
        vals = vals[~np.isnan(vals)]
        if len(vals) == 0:
            continue
        with np.errstate(invalid="ignore"):
            mean = vals.mean()
        for key, want in [("min", vals.min()), ("max", vals.max()), ("mean", mean)]:
            got = r[key]
            if got is None and not np.isfinite(want):
                continue
            if got is None or abs(got - want) > 1e-6 * max(1.0, abs(want)):
                fail(f"{r['name']} {key}: inspect says {got}, numpy {want}")
        raw = (v[0].tobytes() + v[1].tobytes() + v[2].tobytes()) if isinstance(v, tuple) else v.tobytes()
        if r["crc32c"] != "%08x" % crc32c(raw):
            fail(f"{r['name']} crc32c: inspect says {r['crc32c']}, python {crc32c(raw):08x}")
    print("stats agree")


if __name__ == "__main__":
    {"write": cmd_write, "bad": cmd_bad, "compare": cmd_compare, "widened": cmd_widened,
     "stats": cmd_stats}[sys.argv[1]](*sys.argv[2:])
