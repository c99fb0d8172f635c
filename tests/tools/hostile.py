#!/usr/bin/python3
"""hostile.py: writes the malformed inputs that tests/hostile.bats feeds to
the stages (defects found by fuzzing; each must end in exit 1 with a message
naming what is wrong, never a signal and never a huge allocation).

  hostile.py KIND OUT      write one input of the given kind to OUT
  hostile.py list          the kinds

Everything is built here from numpy and msgpack (or by hand, byte by byte,
where those would refuse to write something this malformed); no binary is
committed.  Streams are raw msgpack without our header/end framing (records
outside a segment are read without the count and checksum checks), so each
file holds exactly the bytes that matter.
"""
import io
import pickle
import struct
import sys
import types

import msgpack
import numpy as np


def dense(name, a):
    return {"name": name, "dtype": a.dtype.str, "shape": list(a.shape), "data": a.tobytes()}


def csr(name, shape, indptr, indices, values=None):
    indices = np.asarray(indices, "<i4")
    if values is None:
        values = np.ones(len(indices), "<f4")
    return {"name": name, "format": "csr", "shape": list(shape), "indptr": np.asarray(indptr, "<i8").tobytes(),
            "indices": indices.tobytes(), "values": np.asarray(values, "<f4").tobytes()}


def stream(*recs):
    return b"".join(msgpack.packb(r, use_bin_type=True) for r in recs)


OK = dense("ok", np.ones(1, "<f4"))

# ---- stream records ---------------------------------------------------------


def long_name():
    """A record whose name is 70,000 bytes: names are at most 4096."""
    return stream(dense("n" * 70000, np.ones(1, "<f4")))


def empty_name():
    return stream(OK, dense("", np.ones(1, "<f4")))


def nul_name():
    return stream(OK, dense("train\0evil", np.ones(1, "<f4")))


def csr_nnz_wrap():
    """indptr ends at 2^62: nnz * 4 wraps to 0 in 64 bits, matching the
    empty indices and values of this record."""
    return stream(csr("train", (1, 5), [0, 1 << 62], []))


def dense_dims_wrap():
    """Four dimensions of 2^32: the product is 2^128, 0 modulo 2^128, and
    the record has no data."""
    return stream({"name": "x", "dtype": "<f4", "shape": [1 << 32] * 4, "data": b""})


def dense_empty_huge():
    """No elements (a zero dimension) but another of 2^40: nothing backs it."""
    return stream({"name": "x", "dtype": "<f4", "shape": [0, 1 << 40], "data": b""})


def csr_huge_cols():
    """A one-entry matrix claiming 2^30 columns (items): tiny file, and a
    transposed graph of it would need 8 GiB of indptr."""
    return stream(csr("train", (1, 1 << 30), [0, 1], [7]))


def empty_json():
    return stream({"name": "log/x", "json": ""})


def bin_too_long():
    """A raw stream whose 'data' bin32 declares 4 GiB - 1 bytes; 16 follow."""
    head = msgpack.packb({"name": "x", "dtype": "|u1", "shape": [(1 << 32) - 1]})
    # the same map, one more key: fixmap count + 1, then "data" and a bin32 header
    head = bytes([head[0] + 1]) + head[1:] + msgpack.packb("data") + b"\xc6" + struct.pack(">I", (1 << 32) - 1)
    return head + b"\0" * 16


def csr_unsorted():
    return stream(csr("train", (3, 6), [0, 2, 4, 6], [0, 4, 5, 1, 2, 3]))


def csr_duplicate():
    return stream(csr("train", (3, 6), [0, 2, 4, 6], [0, 4, 2, 2, 1, 3]))


def many_records():
    """80,000 tiny dense records (3.5 MB): a bag of many names."""
    one = np.ones(1, "<f4").tobytes()
    return b"".join(msgpack.packb({"name": "r/%06d" % i, "dtype": "<f4", "shape": [1], "data": one})
                    for i in range(80000))


def feat_nan():
    """Item features with a NaN in row 5, as diffuse, augment and train read them."""
    f = np.arange(8 * 4, dtype="<f4").reshape(8, 4)
    f[5, 2] = np.nan
    return stream(dense("feat/image", np.ones((8, 4), "<f4")), dense("feat/text", f))


def feat_inf_f2():
    """Float16 features with an infinity in row 3."""
    f = np.zeros((6, 3), "<f2")
    f[3, 0] = np.inf
    return stream(dense("feat/audio", f))


# ---- .npy and pickle files ------------------------------------------------------


def npy_raw(descr, shape):
    """A .npy header (v1.0, padded as numpy pads) declaring shape, no data."""
    h = ("{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)).encode("latin1")
    total = 6 + 2 + 2 + len(h) + 1
    h += b" " * ((64 - total % 64) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h


def npy_empty_huge():
    """Shape (0, 2^60): zero bytes of data, every stream reader refuses it."""
    return npy_raw("<f4", "(0, %d)" % (1 << 60))


def npy_empty_at_cap():
    """Shape (0, 2^24): the largest dimension nothing backs, accepted everywhere."""
    return npy_raw("<f4", "(0, %d)" % (1 << 24))


def npy_empty_over_cap():
    return npy_raw("<f4", "(0, %d)" % ((1 << 24) + 1))


def dense_empty_over_cap():
    """The stream twin of npy_empty_over_cap: refused by the same limit."""
    return stream({"name": "feat/x", "dtype": "<f4", "shape": [0, (1 << 24) + 1], "data": b""})


def npy_nan():
    a = np.linspace(-1, 1, 4 * 3, dtype="<f4").reshape(4, 3)
    a[2, 1] = np.nan
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


def pkl_huge_rows():
    """A coo_matrix pickle (protocol 2) of shape (2^26, 16) with no entries:
    ~350 bytes that ask for 2^26 users.  The scipy class is a stand-in
    registered under scipy's module name, so scipy is not needed."""
    mod_name, cls_name = "scipy.sparse._coo", "coo_matrix"
    cls = type(cls_name, (), {})
    cls.__module__ = mod_name
    saved = {m: sys.modules.get(m) for m in ("scipy", "scipy.sparse", mod_name)}
    try:
        for m in saved:
            sys.modules[m] = types.ModuleType(m)
        setattr(sys.modules[mod_name], cls_name, cls)
        obj = cls()
        obj.__dict__.update({"_shape": (1 << 26, 16), "row": np.zeros(0, np.int32),
                             "col": np.zeros(0, np.int32), "data": np.zeros(0, np.float32)})
        return pickle.dumps(obj, protocol=2)
    finally:
        for m, old in saved.items():
            if old is None:
                sys.modules.pop(m, None)
            else:
                sys.modules[m] = old


KINDS = {
    "long-name": long_name, "empty-name": empty_name, "nul-name": nul_name, "csr-nnz-wrap": csr_nnz_wrap,
    "dense-dims-wrap": dense_dims_wrap, "dense-empty-huge": dense_empty_huge, "csr-huge-cols": csr_huge_cols,
    "empty-json": empty_json, "bin-too-long": bin_too_long, "csr-unsorted": csr_unsorted,
    "csr-duplicate": csr_duplicate, "many-records": many_records, "feat-nan": feat_nan,
    "feat-inf-f2": feat_inf_f2, "npy-empty-huge": npy_empty_huge, "npy-nan": npy_nan,
    "npy-empty-at-cap": npy_empty_at_cap, "npy-empty-over-cap": npy_empty_over_cap,
    "dense-empty-over-cap": dense_empty_over_cap,
    "pkl-huge-rows": pkl_huge_rows,
}

if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "list":
        print("\n".join(KINDS))
    elif len(sys.argv) == 3 and sys.argv[1] in KINDS:
        with open(sys.argv[2], "wb") as f:
            f.write(KINDS[sys.argv[1]]())
    else:
        sys.exit("usage: hostile.py KIND OUT | hostile.py list")
