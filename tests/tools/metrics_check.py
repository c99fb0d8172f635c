#!/usr/bin/python3
"""metrics_check.py: test helper for evaluate and recommend, by brute force.

Writes small recommendation problems as tensor streams and checks what the C
stages print against an independent numpy version of ALGORITHM.md section 9:
every score in float64, training items set to -inf, a full stable argsort
per user (so equal scores keep the lower item index first), then the
definitions of Recall, Precision and NDCG written out plainly.

  metrics_check.py make OUT [--users U] [--items I] [--dim D] [--seed S]
        [--ties | --zeros] [--f64] [--nan] [--empty-val] [--plain]
        [--train-rate P] [--test-rate P] [--only-user U]
      emb/user, emb/item, train, val, test and two unrelated records.
      Users 0-4 are special: 0 has no test or val item, 1 has test items
      only among its training items, 2 has 3 unseen items, 3 has none, 4
      has every test item it can.  Unless --plain, a user's embedding is
      drawn again while two of its 102 best unseen scores are within 1e-5
      of each other, so float32 and float64 rank alike (K <= 100).  --only-user U: no test item but
      user U's.  --ties: small integer embeddings
      (many exactly equal scores); --zeros: every score 0.
  metrics_check.py embed DATA OUT [--dim D] [--seed S]
      random emb/user and emb/item for the train matrix in DATA.
  metrics_check.py evaluate INPUT... --json LINE [--split S] [--topk K,..]
        [--tol T] [--label L]
      the JSON line evaluate printed agrees with brute force within T.
  metrics_check.py recommend INPUT... --k K [--users IDS] (--tsv FILE |
        --stream FILE) [--tol T]
      recommend's output lists the same items in the same order (scores
      within relative T) and never a training item.
"""
import argparse
import json
import math
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples"))
from streams import dense, frame  # noqa: E402
from ts_read import read_stream  # noqa: E402


def fail(msg):
    print("metrics_check: " + msg, file=sys.stderr)
    sys.exit(1)


# ---- problems -------------------------------------------------------------

def csr(rows, shape):
    """A csr record from a list of item lists."""
    indptr = np.zeros(shape[0] + 1, "<i8")
    indptr[1:] = np.cumsum([len(r) for r in rows])
    indices = np.concatenate([np.sort(np.asarray(r, "<i4")) for r in rows]) if rows else np.zeros(0, "<i4")
    return indptr, indices.astype("<i4"), np.ones(len(indices), "<f4")


def csr_record(name, rows, shape):
    indptr, indices, values = csr(rows, shape)
    return {"name": name, "format": "csr", "shape": list(shape), "indptr": indptr.tobytes(),
            "indices": indices.tobytes(), "values": values.tobytes()}


def interactions(rng, users, items, train_rate, test_rate):
    """train, val, test as lists of item lists, disjoint per user except user 1."""
    train, val, test = [], [], []
    for u in range(users):
        perm = rng.permutation(items)
        nt = max(1, int(rng.binomial(items, train_rate)))
        nv = int(rng.binomial(items, test_rate))
        ns = int(rng.binomial(items, test_rate))
        train.append(perm[:nt])
        val.append(perm[nt:nt + nv])
        test.append(perm[nt + nv:nt + nv + ns])
    special = {0: (train[0], [], []),
               1: (train[1], val[1], train[1][:2]),               # held-out only among training items
               2: (np.arange(3, items), val[2][:0], np.arange(3)),  # 3 unseen items, all held out
               3: (np.arange(items), [], [0, 1]),                 # no unseen item at all
               4: (np.arange(items // 2), [items - 1], np.arange(items // 2, items))}
    for u, (tr, va, te) in special.items():
        if u < users:
            train[u], val[u], test[u] = np.asarray(tr, int), np.asarray(va, int), np.asarray(te, int)
    return train, val, test


def min_gap(u, items, seen):
    """Smallest gap between the 102 best scores of user u's unseen items."""
    s = items.astype(np.float64) @ u.astype(np.float64)
    s = np.delete(s, seen)
    s = np.sort(s)[-102:]
    return np.min(np.diff(s)) if len(s) > 1 else np.inf


def embeddings(rng, a, train):
    users, items, dim = a.users, a.items, a.dim
    if a.zeros:
        return np.zeros((users, dim), "<f4"), np.zeros((items, dim), "<f4")
    if a.ties:
        return (rng.integers(-1, 2, (users, dim)).astype("<f4"), rng.integers(-1, 2, (items, dim)).astype("<f4"))
    item = (rng.standard_normal((items, dim)) / math.sqrt(dim)).astype("<f4")
    user = (rng.standard_normal((users, dim))).astype("<f4")
    if not a.plain:   # float32 rounding is below 1e-5 for these sizes
        for u in range(users):
            while min_gap(user[u], item, train[u]) < 1e-5:
                user[u] = rng.standard_normal(dim).astype("<f4")
    return user, item


def cmd_make(argv):
    p = argparse.ArgumentParser(prog="metrics_check.py make")
    p.add_argument("out")
    p.add_argument("--users", type=int, default=60)
    p.add_argument("--items", type=int, default=40)
    p.add_argument("--dim", type=int, default=8)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--train-rate", type=float, default=0.2)
    p.add_argument("--test-rate", type=float, default=0.1)
    p.add_argument("--only-user", type=int)
    for flag in ["ties", "zeros", "f64", "nan", "empty-val", "plain"]:
        p.add_argument("--" + flag, action="store_true")
    a = p.parse_args(argv)
    rng = np.random.default_rng(a.seed)
    train, val, test = interactions(rng, a.users, a.items, a.train_rate, a.test_rate)
    if a.only_user is not None:
        test = [t if u == a.only_user else [] for u, t in enumerate(test)]
    if a.empty_val:
        val = [[] for _ in range(a.users)]
    user, item = embeddings(rng, a, train)
    if a.nan:
        user[3, 1] = np.nan
    if a.f64:
        user, item = user.astype("<f8"), item.astype("<f8")
    shape = (a.users, a.items)
    recs = [{"name": "meta/problem", "json": json.dumps({"seed": a.seed})},
            dense("model/unrelated", np.arange(6, dtype="<i4").reshape(2, 3)),
            dense("emb/user", user), dense("emb/item", item),
            csr_record("train", train, shape), csr_record("val", val, shape), csr_record("test", test, shape)]
    open(a.out, "wb").write(frame(recs))


def cmd_embed(argv):
    p = argparse.ArgumentParser(prog="metrics_check.py embed")
    p.add_argument("data")
    p.add_argument("out")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    users, items = read_stream(a.data)["train"][3]
    rng = np.random.default_rng(a.seed)
    user = rng.standard_normal((users, a.dim)).astype("<f4")
    item = rng.standard_normal((items, a.dim)).astype("<f4")
    open(a.out, "wb").write(frame([dense("emb/user", user), dense("emb/item", item)]))


# ---- brute force ------------------------------------------------------------

def load(paths):
    t = {}
    for path in paths:
        t.update(read_stream(path))
    return t


def rows_of(m):
    indptr, indices, _, shape = m
    return [indices[indptr[u]:indptr[u + 1]] for u in range(shape[0])]


def rankings(t, users):
    """For each user of users: its unseen items, best first (full sort)."""
    user = t["emb/user"].astype(np.float64)
    item = t["emb/item"].astype(np.float64)
    train = rows_of(t["train"])
    out = []
    for start in range(0, len(users), 512):
        block = users[start:start + 512]
        s = user[block] @ item.T
        for b, u in enumerate(block):
            row = s[b].copy()
            seen = np.unique(train[u])
            row[seen] = -np.inf
            order = np.argsort(-row, kind="stable")       # equal scores: lower index first
            out.append((order[:len(row) - len(seen)], row))
    return out


def brute_metrics(t, split, ks):
    held = rows_of(t[split])
    users = [u for u in range(len(held)) if len(held[u]) > 0]
    sums = {k: [0.0, 0.0, 0.0] for k in ks}
    for u, (order, _) in zip(users, rankings(t, users)):
        h = set(held[u].tolist())
        for k in ks:
            hits = [r for r, i in enumerate(order[:k]) if i in h]
            dcg = sum(1 / math.log2(r + 2) for r in hits)
            idcg = sum(1 / math.log2(r + 2) for r in range(min(len(h), k)))
            sums[k][0] += len(hits) / len(h)
            sums[k][1] += len(hits) / k
            sums[k][2] += dcg / idcg
    n = len(users)
    return n, {k: [v / n for v in sums[k]] if n else [None] * 3 for k in ks}


def cmd_evaluate(argv):
    p = argparse.ArgumentParser(prog="metrics_check.py evaluate")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--json", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--topk", default="20")
    p.add_argument("--tol", type=float, default=1e-6)
    p.add_argument("--label")
    a = p.parse_args(argv)
    got = json.loads(a.json)
    ks = sorted(set(int(k) for k in a.topk.split(",")))
    n, want = brute_metrics(load(a.inputs), a.split, ks)
    keys = (["label"] if a.label is not None else []) + ["split", "users"] + [
        f"{m}@{k}" for k in ks for m in ("recall", "ndcg", "precision")]
    if list(got) != keys:
        fail(f"keys {list(got)}, expected {keys}")
    if got["split"] != a.split or got.get("label") != a.label:
        fail(f"split/label {got['split']!r}/{got.get('label')!r}, expected {a.split!r}/{a.label!r}")
    if got["users"] != n:
        fail(f"users {got['users']}, brute force counts {n}")
    worst = 0.0
    for k in ks:
        for m, w in zip(("recall", "precision", "ndcg"), want[k]):
            g = got[f"{m}@{k}"]
            if (g is None) != (w is None):
                fail(f"{m}@{k}: evaluate says {g}, brute force {w}")
            if w is not None:
                worst = max(worst, abs(g - w))
                if abs(g - w) > a.tol:
                    fail(f"{m}@{k}: evaluate says {g}, brute force {w} (off by {abs(g - w):.3g} > {a.tol})")
    print(f"agree: {n} users, {len(ks)} K values, largest difference {worst:.3g}")


def parse_tsv(path):
    lines = open(path).read().splitlines()
    if not lines or lines[0] != "user\trank\titem\tscore":
        fail(f"TSV header is {lines[:1]}, expected user/rank/item/score")
    lists = {}
    order = []
    for line in lines[1:]:
        u, r, i, s = line.split("\t")
        u, r, i, s = int(u), int(r), int(i), float(s)
        if u not in lists:
            lists[u] = ([], [])
            order.append(u)
        if r != len(lists[u][0]) + 1:
            fail(f"user {u}: rank {r} out of sequence")
        lists[u][0].append(i)
        lists[u][1].append(s)
    return order, lists


def parse_rec_stream(path, k):
    t = read_stream(path)
    users, items, scores = t["rec/users"], t["rec/items"], t["rec/scores"]
    if users.dtype.str != "<i4" or items.dtype.str != "<i4" or scores.dtype.str != "<f4":
        fail("rec/* dtypes are not int32 / int32 / float32")
    if items.shape != (len(users), k) or scores.shape != items.shape:
        fail(f"rec/items {items.shape}, rec/scores {scores.shape}, expected ({len(users)}, {k})")
    lists = []
    for b in range(len(users)):
        real = items[b] >= 0
        n = int(real.sum())
        if not real[:n].all() or not np.all(np.isneginf(scores[b][n:])):
            fail(f"row {b}: padding is not item -1 / score -inf at the end")
        lists.append((items[b][:n].tolist(), scores[b][:n].tolist()))
    return users.tolist(), lists


def cmd_recommend(argv):
    p = argparse.ArgumentParser(prog="metrics_check.py recommend")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--users")
    p.add_argument("--tsv")
    p.add_argument("--stream")
    p.add_argument("--tol", type=float, default=1e-5)
    a = p.parse_args(argv)
    t = load(a.inputs)
    n_users, n_items = t["train"][3]
    users = [int(x) for x in a.users.split(",")] if a.users else list(range(n_users))
    k = min(a.k, n_items)
    if a.tsv:
        order, d = parse_tsv(a.tsv)
        got = [d.get(u, ([], [])) for u in users]
        if [u for u in order] != [u for u in dict.fromkeys(users) if d.get(u, ([],))[0]]:
            fail(f"TSV users in order {order[:10]}..., expected {users[:10]}...")
    else:
        got_users, got = parse_rec_stream(a.stream, k)
        if got_users != users:
            fail(f"rec/users {got_users[:10]}..., expected {users[:10]}...")
    train = rows_of(t["train"])
    for u, (order, row), (items, scores) in zip(users, rankings(t, users), got):
        want = order[:k].tolist()
        bad = set(items) & set(train[u].tolist())
        if bad:
            fail(f"user {u}: recommended training items {sorted(bad)}")
        if items != want:
            fail(f"user {u}: items {items}, brute force {want}")
        for i, s in zip(items, scores):
            if abs(s - row[i]) > a.tol * max(1.0, abs(row[i])):
                fail(f"user {u} item {i}: score {s}, brute force {row[i]}")
    print(f"agree: {len(users)} users, top {k}")


if __name__ == "__main__":
    cmds = {"make": cmd_make, "embed": cmd_embed, "evaluate": cmd_evaluate, "recommend": cmd_recommend}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        print(__doc__)
        sys.exit(2)
    cmds[sys.argv[1]](sys.argv[2:])
