#!/usr/bin/python3
"""graph_check.py: test helper for the sparse kernels and the graph recipe
(tests/graph.bats).  numpy + msgpack only; `release` alone needs scipy.

  graph_check.py interactions OUT --users U --items I --n N [--seed S] [--extra]
      random binary `train` (U x I csr) from N random edges (repeats merged);
      the last 3 users and every 7th item get no interaction; --extra adds a
      `val` csr, a dense `feat/image` and a metadata record
  graph_check.py edges OUT --users U --items I --n N [--seed S] [--bad]
      dense <i4 `u`, `i`: N edges with repeats (--bad: one user out of range)
  graph_check.py recipe IN GRAPH [--from train] [--to graph/ui]
      GRAPH's csr equals the recipe computed densely from IN's interactions
  graph_check.py recipe-edges IN GRAPH U I    the same from IN's edge list, csr `G`
  graph_check.py interactions-messy TOOL DIR   graph-check interactions on a csr
      with stored zeros gives the recipe of its structure; one with unsorted
      and repeated columns is refused on reading
  graph_check.py spmm TOOL DIR            graph-check spmm against numpy
  graph_check.py spmm-threads TOOL DIR    1 and 2 OpenMP threads agree bit for bit
  graph_check.py transpose TOOL DIR       graph-check transpose against numpy
  graph_check.py dropout FULL DROPPED KEEP [--name graph/ui]
      DROPPED is FULL after edge dropout: kept fraction within 4 binomial
      standard deviations of KEEP, kept values exactly FULL's / KEEP
  graph_check.py same A B NAME            one csr record, identical arrays
  graph_check.py release PKL GRAPH        GRAPH's graph/ui equals the release's
      scipy recipe applied to the pickled training matrix
Prints one line saying what agreed; exits 1 with the reason otherwise.
"""
import argparse
import json
import os
import subprocess
import sys

import msgpack
import numpy as np

sys.path.insert(0, __file__.rsplit("/", 3)[0] + "/examples")
from ts_read import read_stream  # noqa: E402


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


# ---- streams ----

def csr_record(name, indptr, indices, values, shape):
    return {"name": name, "format": "csr", "shape": list(shape),
            "indptr": np.asarray(indptr, "<i8").tobytes(), "indices": np.asarray(indices, "<i4").tobytes(),
            "values": np.asarray(values, "<f4").tobytes()}


def dense_record(name, a):
    return {"name": name, "dtype": a.dtype.str, "shape": list(a.shape), "data": a.tobytes()}


def write(path, records):
    with open(path, "wb") as f:
        for r in records:
            f.write(msgpack.packb(r, use_bin_type=True))


def csr_of_dense(m):
    """Rows of a dense matrix as csr arrays (sorted columns)."""
    rows, cols = np.nonzero(m)
    indptr = np.zeros(m.shape[0] + 1, np.int64)
    np.add.at(indptr, rows + 1, 1)
    return np.cumsum(indptr), cols.astype(np.int32), m[rows, cols]


def dense_of_csr(t, dtype=np.float64):
    """Dense matrix of csr arrays; repeated entries are summed."""
    indptr, indices, values, shape = t
    m = np.zeros(shape, dtype)
    rows = np.repeat(np.arange(shape[0]), np.diff(indptr))
    np.add.at(m, (rows, indices), values)
    return m


def get_csr(path, name):
    t = read_stream(path)
    if name not in t or not isinstance(t[name], tuple):
        fail(f"{path}: no csr record '{name}' (has {sorted(t)})")
    return t[name]


# ---- generators ----

def random_interactions(rng, users, items, n):
    """Binary users x items matrix from n random edges; the last 3 users and
    every 7th item stay empty."""
    live_u = np.arange(max(users - 3, 1))
    live_i = np.array([i for i in range(items) if i % 7 != 3]) if items > 1 else np.arange(items)
    R = np.zeros((users, items), np.float32)
    R[rng.choice(live_u, n), rng.choice(live_i, n)] = 1
    return R


def cmd_interactions(a):
    rng = np.random.default_rng(a.seed)
    R = random_interactions(rng, a.users, a.items, a.n)
    recs = [csr_record("train", *csr_of_dense(R), R.shape)]
    if a.extra:
        V = random_interactions(rng, a.users, a.items, max(a.n // 10, 1))
        recs += [{"name": "meta/dataset", "json": json.dumps({"users": a.users, "items": a.items})},
                 csr_record("val", *csr_of_dense(V), V.shape),
                 dense_record("feat/image", rng.standard_normal((a.items, 5)).astype("<f4"))]
    write(a.out, recs)


def cmd_edges(a):
    rng = np.random.default_rng(a.seed)
    u = rng.integers(0, a.users - 2, a.n).astype("<i4")   # the last two users get no edge
    i = rng.integers(0, a.items, a.n).astype("<i4")
    i[i % 5 == 2] = 0                                      # items 2, 7, ... get none
    u[: a.n // 4] = u[a.n // 4: 2 * (a.n // 4)]            # repeats
    i[: a.n // 4] = i[a.n // 4: 2 * (a.n // 4)]
    if a.bad:
        u[a.n // 2] = a.users
    write(a.out, [dense_record("u", u), dense_record("i", i)])


# ---- the recipe ----

def recipe_dense(R):
    """ALGORITHM.md section 2 in dense float64, as the release's scipy code
    orders it: value (1 * d_c) * d_r, rounded to float32 once."""
    U, I = R.shape
    A = np.zeros((U + I, U + I))
    A[:U, U:] = R != 0
    A[U:, :U] = (R != 0).T
    A = (A != 0) * 1.0 + np.eye(U + I)
    with np.errstate(divide="ignore"):
        d = np.power(A.sum(1), -0.5)
    d[np.isinf(d)] = 0
    return A, ((A * d[None, :]) * d[:, None]).astype(np.float32)


def check_graph(R, t, what):
    indptr, indices, values, shape = t
    U, I = R.shape
    n = U + I
    if tuple(shape) != (n, n):
        fail(f"{what}: shape {shape}, want {(n, n)}")
    nnz_R = int((R != 0).sum())
    if len(indices) != 2 * nnz_R + n:
        fail(f"{what}: {len(indices)} non-zeros, want 2 * {nnz_R} + {n}")
    for r in range(n):
        c = indices[indptr[r]:indptr[r + 1]]
        if np.any(np.diff(c) <= 0):
            fail(f"{what}: row {r} columns not strictly increasing: {c}")
    A, want = recipe_dense(R)
    got = dense_of_csr(t, np.float32)
    if not np.array_equal(got != 0, A != 0):
        fail(f"{what}: structure differs from A + I at {np.argwhere((got != 0) != (A != 0))[:5].tolist()}")
    if not np.all(np.diag(got) > 0):
        fail(f"{what}: a self loop is missing")
    if not np.array_equal(got, got.T):
        fail(f"{what}: not symmetric")
    err = np.abs(got - want).max() / np.abs(want).max()
    if not np.allclose(got, want, rtol=1e-6, atol=0):
        fail(f"{what}: values differ from numpy's recipe, max relative error {err:.3g}")
    empty_u = int((np.asarray(R != 0).sum(1) == 0).sum())
    empty_i = int((np.asarray(R != 0).sum(0) == 0).sum())
    print(f"{what}: {n}x{n}, {len(indices)} non-zeros = 2*{nnz_R}+{U}+{I}, symmetric, self loops, "
          f"{empty_u} empty users and {empty_i} empty items, max relative error {err:.3g}: agrees")


def cmd_recipe(a):
    R = dense_of_csr(get_csr(a.input, a.source))
    check_graph(R != 0, get_csr(a.graph, a.to), a.to)


def cmd_recipe_edges(a):
    t = read_stream(a.input)
    R = np.zeros((a.users, a.items))
    R[t["u"], t["i"]] = 1
    check_graph(R, get_csr(a.graph, "G"), f"G of {len(t['u'])} edges")


def tool(*args, env=None):
    p = subprocess.run([str(x) for x in args], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        fail(f"{' '.join(map(str, args))}: exit {p.returncode}: {p.stderr.strip()}")


def messy_csr(rng, rows, cols, density, repeats=True, shuffle=True):
    """csr arrays, every 5th row empty; with repeats and shuffle, columns
    shuffled within rows and some repeated (which the stream format refuses:
    a row's columns are strictly increasing)."""
    indptr, indices, values = [0], [], []
    for r in range(rows):
        c = np.nonzero(rng.random(cols) < density)[0] if r % 5 != 4 else np.zeros(0, int)
        if repeats and len(c) and r % 3 == 0:
            c = np.concatenate([c, c[: 1 + len(c) // 2]])
        if shuffle:
            rng.shuffle(c)
        indices += c.tolist()
        values += rng.standard_normal(len(c)).tolist()
        indptr.append(len(indices))
    return (np.array(indptr, np.int64), np.array(indices, np.int32), np.array(values, np.float32), (rows, cols))


def cmd_interactions_messy(a):
    rng = np.random.default_rng(5)
    t = messy_csr(rng, 40, 30, 0.08, repeats=False, shuffle=False)
    t = (t[0], t[1], np.zeros_like(t[2]), t[3])   # stored zeros still count as edges
    write(f"{a.dir}/R.ts", [csr_record("R", *t)])
    tool(a.tool, "interactions", f"{a.dir}/R.ts", f"{a.dir}/G.ts")
    R = dense_of_csr((t[0], t[1], np.ones_like(t[2]), t[3])) != 0
    check_graph(R, get_csr(f"{a.dir}/G.ts", "G"), "G of stored zeros")
    # unsorted and repeated columns never reach the recipe: the reader refuses them
    m = messy_csr(rng, 40, 30, 0.08)
    write(f"{a.dir}/M.ts", [csr_record("R", *m)])
    p = subprocess.run([a.tool, "interactions", f"{a.dir}/M.ts", f"{a.dir}/GM.ts"], capture_output=True, text=True)
    if p.returncode != 1 or "row" not in p.stderr:
        fail(f"unsorted, repeated columns: exit {p.returncode}, {p.stderr.strip()!r}")
    print("G of stored zeros agrees; unsorted or repeated columns refused:", p.stderr.strip())


# ---- kernels ----

def spmm_case(rng, rows, cols, d, density, nan_y=False, nan_x=False):
    """A random csr (every 5th row empty), x and y."""
    t = messy_csr(rng, rows, cols, density, repeats=False, shuffle=False)
    A = dense_of_csr(t)
    x = rng.standard_normal((cols, d)).astype("<f4")
    y = rng.standard_normal((rows, d)).astype("<f4")
    if nan_y:
        y[:] = np.nan
    if nan_x:
        x[:] = np.nan
    return t, A, x, y


def run_spmm(a, t, x, y, alpha, beta, env=None, tag="s", c=None):
    src, out = f"{a.dir}/{tag}_in.ts", f"{a.dir}/{tag}_out.ts"
    extra = [dense_record("c", c)] if c is not None else []
    write(src, [csr_record("A", *t), dense_record("x", x), dense_record("y", y)] + extra)
    tool(a.tool, "spmm", src, out, repr(alpha), repr(beta), env=env)
    return read_stream(out)["y"]


# (alpha, beta, which input is NaN and must not be read)
SPMM_AB = [(1.0, 0.0, "nan_y"), (0.5, 0.0, "nan_y"), (1.0, 1.0, ""), (-2.0, 0.25, ""), (0.0, 2.0, "nan_x")]


def cmd_spmm(a):
    rng = np.random.default_rng(11)
    n = 0
    for d in (1, 3, 64, 130):
        for rows, cols, density in ((37, 29, 0.15), (6, 8, 0.0), (1, 1, 1.0), (0, 4, 0.5), (200, 150, 0.3)):
            for alpha, beta, flag in SPMM_AB:
                t, A, x, y = spmm_case(rng, rows, cols, d, density, flag == "nan_y", flag == "nan_x")
                got = run_spmm(a, t, x, y, alpha, beta)
                ax = A @ x.astype(np.float64) if alpha != 0 else 0.0
                want = alpha * ax + (beta * y.astype(np.float64) if beta != 0 else 0.0)
                scale = (abs(alpha) * (np.abs(A) @ np.abs(x.astype(np.float64))) if alpha != 0 else 0.0) \
                    + (abs(beta) * np.abs(y.astype(np.float64)) if beta != 0 else 0.0)
                if got.shape != (rows, d) or not np.all(np.isfinite(got)):
                    fail(f"d={d} {rows}x{cols} alpha={alpha} beta={beta}: shape {got.shape} or non-finite values")
                if not np.all(np.abs(got - want) <= 1e-5 * scale + 1e-30):
                    fail(f"d={d} {rows}x{cols} alpha={alpha} beta={beta}: max error {np.abs(got - want).max():.3g}")
                n += 1
                if beta != 0:                   # sp_spmm_add: the addend from c, y's old values never read
                    got_c = run_spmm(a, t, x, np.full_like(y, np.nan), alpha, beta, c=y)
                    if got_c.tobytes() != got.tobytes():
                        fail(f"d={d} {rows}x{cols} alpha={alpha} beta={beta}: sp_spmm_add differs from sp_spmm")
                    n += 1
    print(f"sp_spmm: {n} cases agree with numpy (d = 1, 3, 64, 130; rows with no entries; beta = 0 over NaN; "
          "alpha = 0 over NaN x; sp_spmm_add with its addend apart, bit for bit, over NaN y)")


def cmd_spmm_threads(a):
    rng = np.random.default_rng(12)
    rows, cols = 3000, 2000
    lengths = np.minimum((rng.pareto(1.2, rows) * 3).astype(int), cols)   # a few very long rows
    lengths[::10] = 0
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    indices = np.concatenate([np.sort(rng.choice(cols, k, replace=False)) for k in lengths]).astype(np.int32)
    values = rng.standard_normal(len(indices)).astype(np.float32)
    t = (indptr, indices, values, (rows, cols))
    A = dense_of_csr(t)
    for d in (3, 64):
        x = rng.standard_normal((cols, d)).astype("<f4")
        y = rng.standard_normal((rows, d)).astype("<f4")
        outs = []
        for th in ("1", "2"):
            env = dict(os.environ, OMP_NUM_THREADS=th)
            outs.append(run_spmm(a, t, x, y, 0.75, 0.5, env=env, tag=f"t{th}"))
        if outs[0].tobytes() != outs[1].tobytes():
            fail(f"d={d}: 1 and 2 threads differ (max {np.abs(outs[0] - outs[1]).max():.3g})")
        want = 0.75 * (A @ x.astype(np.float64)) + 0.5 * y
        scale = 0.75 * (np.abs(A) @ np.abs(x.astype(np.float64))) + 0.5 * np.abs(y)
        if not np.all(np.abs(outs[0] - want) <= 1e-5 * scale):
            fail(f"d={d}: differs from numpy")
    print(f"sp_spmm: {rows}x{cols}, {len(indices)} non-zeros (longest row {lengths.max()}), d = 3 and 64: "
          "1 and 2 threads identical")


def cmd_transpose(a):
    rng = np.random.default_rng(13)
    n = 0
    for rows, cols, density in ((30, 50, 0.1), (50, 30, 0.3), (0, 5, 0.5), (5, 0, 0.5), (7, 7, 0.0), (1, 1000, 0.01)):
        t = messy_csr(rng, rows, cols, density, shuffle=False, repeats=False)
        write(f"{a.dir}/A.ts", [csr_record("A", *t)])
        tool(a.tool, "transpose", f"{a.dir}/A.ts", f"{a.dir}/At.ts")
        tt = get_csr(f"{a.dir}/At.ts", "At")
        ip, ix = tt[0], tt[1]
        if tuple(tt[3]) != (cols, rows) or len(ix) != len(t[1]) or ip[-1] != len(ix):
            fail(f"{rows}x{cols}: At has shape {tt[3]} and {len(ix)} entries")
        for r in range(cols):
            if np.any(np.diff(ix[ip[r]:ip[r + 1]]) < 0):
                fail(f"{rows}x{cols}: row {r} of At is not sorted")
        if not np.array_equal(dense_of_csr(tt), dense_of_csr(t).T):
            fail(f"{rows}x{cols}: At differs from numpy's transpose")
        n += 1
    print(f"sp_transpose: {n} shapes agree with numpy, rows sorted, repeats kept")


# ---- dropout ----

def cmd_dropout(a):
    f, g = get_csr(a.full, a.name), get_csr(a.dropped, a.name)
    keep = float(a.keep)
    if tuple(f[3]) != tuple(g[3]):
        fail(f"shape {g[3]} != {f[3]}")
    nf, nd = len(f[1]), len(g[1])
    if g[0][-1] != nd or np.any(np.diff(g[0]) < 0):
        fail("indptr of the dropped graph is inconsistent")
    rows = np.repeat(np.arange(f[3][0]), np.diff(f[0]))
    full = {(r, c): v for r, c, v in zip(rows.tolist(), f[1].tolist(), f[2].tolist())}
    grows = np.repeat(np.arange(g[3][0]), np.diff(g[0]))
    for r in range(g[3][0]):
        if np.any(np.diff(g[1][g[0][r]:g[0][r + 1]]) <= 0):
            fail(f"row {r} of the dropped graph is not sorted")
    for r, c, v in zip(grows.tolist(), g[1].tolist(), g[2]):
        if (r, c) not in full:
            fail(f"entry ({r}, {c}) is not in the full graph")
        if v != np.float32(full[(r, c)] / keep):
            fail(f"entry ({r}, {c}): {v!r}, want {full[(r, c)]!r} / {keep}")
    sd = np.sqrt(keep * (1 - keep) / nf)
    frac = nd / nf
    if abs(frac - keep) > 4 * sd:
        fail(f"kept {nd} of {nf} = {frac:.5f}, more than 4 sd ({sd:.5f}) from {keep}")
    print(f"dropout: kept {nd} of {nf} = {frac:.5f} ({(frac - keep) / sd:+.2f} sd from {keep}), "
          f"kept values exactly full / {keep}")


def cmd_same(a):
    x, y = get_csr(a.a, a.name), get_csr(a.b, a.name)
    if tuple(x[3]) != tuple(y[3]) or any(p.tobytes() != q.tobytes() for p, q in zip(x[:3], y[:3])):
        fail(f"'{a.name}' differs between {a.a} and {a.b}")
    print(f"'{a.name}' identical")


def cmd_release(a):
    import pickle

    import scipy.sparse as sp
    mat = pickle.load(open(a.pkl, "rb"))
    U, I = mat.shape
    # the release's DataHandler.makeTorchAdj and normalizeAdj
    z1, z2 = sp.csr_matrix((U, U)), sp.csr_matrix((I, I))
    mat = sp.vstack([sp.hstack([z1, mat]), sp.hstack([mat.transpose(), z2])])
    mat = (mat != 0) * 1.0
    mat = (mat + sp.eye(mat.shape[0])) * 1.0
    degree = np.array(mat.sum(axis=-1))
    d = np.reshape(np.power(degree, -0.5), [-1])
    d[np.isinf(d)] = 0.0
    D = sp.diags(d)
    g = mat.dot(D).transpose().dot(D).tocoo()
    want = sp.csr_matrix((g.data.astype(np.float32), (g.row, g.col)), shape=g.shape)
    want.sort_indices()
    indptr, indices, values, shape = get_csr(a.graph, "graph/ui")
    if tuple(shape) != want.shape or not np.array_equal(indptr, want.indptr) \
            or not np.array_equal(indices, want.indices):
        fail(f"structure differs from the release's ({shape} vs {want.shape}, nnz {len(indices)} vs {want.nnz})")
    rel = np.abs(values - want.data) / np.abs(want.data)
    if rel.max() > 1e-6:
        fail(f"values differ from the release's: max relative error {rel.max():.3g}")
    print(f"graph/ui: {shape[0]}x{shape[1]}, {len(indices)} non-zeros, same structure as the release's scipy "
          f"recipe, max relative error {rel.max():.3g} ({int((values != want.data).sum())} values not bit-equal)")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("interactions")
    s.add_argument("out"); s.add_argument("--users", type=int, required=True)
    s.add_argument("--items", type=int, required=True); s.add_argument("--n", type=int, required=True)
    s.add_argument("--seed", type=int, default=1); s.add_argument("--extra", action="store_true")
    s = sub.add_parser("edges")
    s.add_argument("out"); s.add_argument("--users", type=int, required=True)
    s.add_argument("--items", type=int, required=True); s.add_argument("--n", type=int, required=True)
    s.add_argument("--seed", type=int, default=1); s.add_argument("--bad", action="store_true")
    s = sub.add_parser("recipe")
    s.add_argument("input"); s.add_argument("graph")
    s.add_argument("--from", dest="source", default="train"); s.add_argument("--to", default="graph/ui")
    s = sub.add_parser("recipe-edges")
    s.add_argument("input"); s.add_argument("graph"); s.add_argument("users", type=int); s.add_argument("items", type=int)
    for name in ("interactions-messy", "spmm", "spmm-threads", "transpose"):
        s = sub.add_parser(name)
        s.add_argument("tool"); s.add_argument("dir")
    s = sub.add_parser("dropout")
    s.add_argument("full"); s.add_argument("dropped"); s.add_argument("keep"); s.add_argument("--name", default="graph/ui")
    s = sub.add_parser("same")
    s.add_argument("a"); s.add_argument("b"); s.add_argument("name")
    s = sub.add_parser("release")
    s.add_argument("pkl"); s.add_argument("graph")
    a = p.parse_args()
    {"interactions": cmd_interactions, "edges": cmd_edges, "recipe": cmd_recipe, "recipe-edges": cmd_recipe_edges,
     "interactions-messy": cmd_interactions_messy, "spmm": cmd_spmm, "spmm-threads": cmd_spmm_threads,
     "transpose": cmd_transpose, "dropout": cmd_dropout, "same": cmd_same, "release": cmd_release}[a.cmd](a)


if __name__ == "__main__":
    main()
