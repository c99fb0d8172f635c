#!/usr/bin/python3
"""ts_read.py: read and write DiffMM tensor streams with numpy (msgpack +
numpy only).

    from ts_read import read_stream, write_stream
    t = read_stream("tiktok.ts")     # {name: ndarray | (indptr, indices, values, shape)}
    write_stream("mine.ts", {"feat/text": my_features})   # then: train base.ts mine.ts ...

A zstd-compressed stream is decompressed (and with zstd_level > 0 written)
through the `zstd` command.  write_stream frames its records with the
header and end record the stages write (record count, CRC-32C), so a cut
or damaged file is refused by every reader.  Run as a script, it prints
each record's name, shape and dtype.  The format is described in
docs/STREAMS.md.
"""
import os
import subprocess
import sys

import msgpack
import numpy as np


def read_stream(path, meta=False):
    """{name: ndarray | (indptr, indices, values, shape)}; with meta=True
    also metadata records (logs, meta/dataset) as their JSON text."""
    data = sys.stdin.buffer.read() if path == "-" else open(path, "rb").read()
    if data[:4] == b"\x28\xb5\x2f\xfd":  # zstd magic
        data = subprocess.run(["zstd", "-dcq"], input=data, stdout=subprocess.PIPE, check=True).stdout
    unpacker = msgpack.Unpacker(raw=False, max_buffer_size=max(len(data), 1))
    unpacker.feed(data)
    tensors = {}
    for r in unpacker:
        if "dtype" in r:  # dense: row-major, little-endian
            tensors[r["name"]] = np.frombuffer(r["data"], r["dtype"]).reshape(r["shape"])
        elif r.get("format") == "csr":
            tensors[r["name"]] = (np.frombuffer(r["indptr"], "<i8"), np.frombuffer(r["indices"], "<i4"),
                                  np.frombuffer(r["values"], "<f4"), tuple(r["shape"]))
        elif meta and "json" in r and "name" in r:
            tensors[r["name"]] = r["json"]
        # anything else (stream header and end, metadata unless asked for) is skipped
    return tensors


def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def crc32c(data, crc=0):
    """CRC-32C (Castagnoli) of bytes, as the streams' end record holds it
    (pure Python: about 10 MB/s)."""
    crc ^= 0xFFFFFFFF
    t = _CRC32C
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


_DTYPES = {"<f4", "<f2", "<f8", "<i4", "<i8", "|u1"}


def _record(name, t):
    if isinstance(t, str):  # metadata: a JSON text
        return {"name": name, "json": t}
    if isinstance(t, tuple):  # csr: (indptr, indices, values, (rows, cols))
        ip, ix, v, shape = t
        return {"name": name, "format": "csr", "shape": [int(shape[0]), int(shape[1])],
                "indptr": np.ascontiguousarray(ip, "<i8").tobytes(),
                "indices": np.ascontiguousarray(ix, "<i4").tobytes(),
                "values": np.ascontiguousarray(v, "<f4").tobytes()}
    a = np.asarray(t)
    dt = a.dtype.newbyteorder("<") if a.dtype.byteorder not in "|" else a.dtype
    if dt.str not in _DTYPES:
        raise ValueError(f"{name}: dtype {a.dtype} is not one of {sorted(_DTYPES)} (cast it first)")
    return {"name": name, "dtype": dt.str, "shape": [int(n) for n in a.shape],
            "data": np.ascontiguousarray(a, dt).tobytes()}


def write_stream(path, tensors, writer="ts_read.py", zstd_level=0):
    """Write {name: ndarray | (indptr, indices, values, shape) | json str} to
    path ("-": stdout), framed by the header and end records; written to
    path.tmp and renamed when complete."""
    pack = msgpack.Packer(use_bin_type=True)
    body = bytearray(pack.pack({"stream": "diffmm-ts", "version": 1, "writer": writer}))
    for name, t in tensors.items():
        body += pack.pack(_record(name, t))
    body += pack.pack({"end": "diffmm-ts", "records": len(tensors), "crc32c": crc32c(body)})
    data = bytes(body)
    if zstd_level > 0:
        data = subprocess.run(["zstd", "-cq", f"-{zstd_level}"], input=data, stdout=subprocess.PIPE,
                              check=True).stdout
    if path == "-":
        sys.stdout.buffer.write(data)
        return
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    for name, t in read_stream(sys.argv[1] if len(sys.argv) > 1 else "-", meta=True).items():
        if isinstance(t, str):
            print(f"{name}: metadata")
        elif isinstance(t, tuple):
            print(f"{name}: csr {t[3][0]}x{t[3][1]}, {len(t[1])} non-zeros")
        else:
            print(f"{name}: {t.dtype.str} {'x'.join(map(str, t.shape))}")
