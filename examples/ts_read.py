#!/usr/bin/python3
"""ts_read.py: read a DiffMM tensor stream into numpy (msgpack + numpy only).

    from ts_read import read_stream
    t = read_stream("tiktok.ts")     # {name: ndarray | (indptr, indices, values, shape)}

A zstd-compressed stream is decompressed with the `zstd` command.  Run as
a script, it prints each record's name, shape and dtype.  The format is
described in docs/STREAMS.md.
"""
import subprocess
import sys

import msgpack
import numpy as np


def read_stream(path):
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
        # anything else (stream header and end, metadata) is skipped
    return tensors


if __name__ == "__main__":
    for name, t in read_stream(sys.argv[1] if len(sys.argv) > 1 else "-").items():
        if isinstance(t, tuple):
            print(f"{name}: csr {t[3][0]}x{t[3][1]}, {len(t[1])} non-zeros")
        else:
            print(f"{name}: {t.dtype.str} {'x'.join(map(str, t.shape))}")
