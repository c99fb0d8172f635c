#!/usr/bin/python3
"""make_synthetic.py: a small multi-modal dataset with planted structure, in
the release's layout (trnMat.pkl, valMat.pkl, tstMat.pkl, image_feat.npy,
audio_feat.npy) or MMRec's (--format mmrec: OUTDIR/<name>.inter with
userID, itemID, rating, timestamp, x_label, and the same feature files),
made with numpy alone.

Items belong to latent topics; each modality's features are a noisy linear
image of the item's topic vector (so features really predict interactions);
each user likes a few topics and interacts mostly with items from them.
Per user, interactions are split 80/10/10 into train/val/test.

usage: make_synthetic.py OUTDIR [--users N] [--items N] [--seed S] [--format pkl|mmrec]
"""
import argparse
import os
import pickle
import sys
import types

import numpy as np


def coo_pickle(rows, cols, shape, path):
    """Pickle a scipy.sparse coo_matrix without scipy: a stand-in class that
    pickles under the old module path the release's files use.  pickle looks
    the class up again by importing its module, parents first, so stand-in
    modules for "scipy" and "scipy.sparse" are registered too: the real scipy
    is never imported, whether it is installed or not (the bytes are the same
    either way)."""
    for name in ("scipy", "scipy.sparse", "scipy.sparse.coo"):
        sys.modules.setdefault(name, types.ModuleType(name))
    mod = sys.modules["scipy.sparse.coo"]

    class coo_matrix:  # noqa: N801 (scipy's name)
        pass

    coo_matrix.__module__ = "scipy.sparse.coo"
    coo_matrix.__qualname__ = "coo_matrix"
    mod.coo_matrix = coo_matrix
    m = coo_matrix()
    m.__dict__.update({"_shape": shape, "maxprint": 50, "row": np.asarray(rows, np.int32),
                       "col": np.asarray(cols, np.int32), "data": np.ones(len(rows), np.float64),
                       "has_canonical_format": False})
    with open(path, "wb") as f:
        pickle.dump(m, f, protocol=3)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--users", type=int, default=1500)
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--topics", type=int, default=12)
    ap.add_argument("--per-user", type=int, default=20, help="mean interactions per user")
    ap.add_argument("--popularity", type=float, default=1.0, help="exponent on the heavy-tailed item popularity")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--format", choices=["pkl", "mmrec"], default="pkl",
                    help="the release's pickles, or MMRec's <name>.inter (name: OUTDIR's own)")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    U, I, T = a.users, a.items, a.topics
    # items: a main topic plus a little of the others
    topic = rng.integers(0, T, I)
    item_vec = np.eye(T)[topic] + 0.15 * rng.random((I, T))
    popularity = (rng.pareto(1.5, I) + 1) ** a.popularity
    # users: like two or three topics
    rows, cols = [], []
    for u in range(U):
        liked = rng.choice(T, rng.integers(2, 4), replace=False)
        taste = np.zeros(T)
        taste[liked] = rng.dirichlet(np.ones(len(liked)))
        p = (item_vec @ taste) ** 4 * popularity + 1e-3
        p /= p.sum()
        n = max(5, int(rng.poisson(a.per_user)))
        items = rng.choice(I, min(n, I // 2), replace=False, p=p)
        rows += [u] * len(items)
        cols += list(items)
    rows, cols = np.array(rows), np.array(cols)
    # split per user: 80% train, 10% val, 10% test (at least one train item)
    split = np.zeros(len(rows), int)
    for u in range(U):
        idx = rng.permutation(np.flatnonzero(rows == u))
        k = len(idx)
        split[idx[int(0.8 * k):int(0.9 * k)]] = 1
        split[idx[int(0.9 * k):]] = 2
    os.makedirs(a.outdir, exist_ok=True)
    if a.format == "mmrec":
        # MMRec: one tab-separated file, a header, columns it ignores beside its own
        name = os.path.basename(os.path.normpath(a.outdir))
        with open(os.path.join(a.outdir, name + ".inter"), "w") as f:
            f.write("userID\titemID\trating\ttimestamp\tx_label\n")
            for k in range(len(rows)):
                f.write(f"{rows[k]}\t{cols[k]}\t5\t{1600000000 + k}\t{split[k]}\n")
    else:
        for s, name in enumerate(["trnMat.pkl", "valMat.pkl", "tstMat.pkl"]):
            sel = split == s
            coo_pickle(rows[sel], cols[sel], (U, I), os.path.join(a.outdir, name))
    for name, dim, noise in [("image", 32, 0.3), ("audio", 16, 0.6)]:
        proj = rng.standard_normal((T, dim))
        feat = item_vec @ proj + noise * rng.standard_normal((I, dim))
        np.save(os.path.join(a.outdir, f"{name}_feat.npy"), feat.astype(np.float16))
    print(f"{a.outdir}: {U} users, {I} items, {len(rows)} interactions "
          f"({(split == 0).sum()} train, {(split == 1).sum()} val, {(split == 2).sum()} test)")


if __name__ == "__main__":
    main()
