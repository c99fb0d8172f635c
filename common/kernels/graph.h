/* graph.h: the model's user-item graph recipe (ALGORITHM.md section 2),
 * shared by build-graph (graph/ui) and augment (the per-modality graphs).
 *
 * From U users, I items and interactions R (U x I), the graph is the
 * (U+I) x (U+I) matrix
 *
 *     A = [[0, R], [R^T, 0]] binarised, plus the identity,
 *     G = D^-1/2 A D^-1/2,   D = diag(row sums of A), 0^-1/2 taken as 0,
 *
 * users first (rows 0..U-1), items after (rows U..U+I-1), stored as csr
 * with sorted columns.  Degrees and products are computed in double and the
 * values rounded to float once, as the release's scipy code does:
 * G[r][c] = (float)(d[r] * d[c]) with d = pow(degree, -0.5). */
#ifndef GRAPH_H
#define GRAPH_H

#include <stdint.h>

#include "kernels/rng.h"
#include "io/ts.h"

/* The normalised graph of the edge list (u[k], i[k]), k < n:
 *   u, i  [n], 0 <= u[k] < users, 0 <= i[k] < items; duplicates allowed
 *   out   (users+items) x (users+items) csr, sorted columns
 * Returns 0, or -1 with *out empty when an index is out of range, when
 * users + items exceeds int32 column indices, or when out of memory. */
int graph_normalized(int64_t users, int64_t items, int64_t n, const int32_t *u, const int32_t *i, ts_csr *out);

/* The same from a users x items csr R: every stored entry is an edge,
 * whatever its value; columns may be unsorted or repeated. */
int graph_from_interactions(const ts_csr *R, ts_csr *out);

/* The release's edge dropout, in place: every stored entry of G (self loops
 * and both directions of an edge, each independently) is kept with
 * probability keep, kept values are divided by keep, dropped entries are
 * removed (arrays compacted, indptr and nnz fixed; capacity is not shrunk).
 * Draws one rng_uniform per stored entry, in row-major storage order, and
 * keeps the entry when the draw is < keep; so the result depends only on G
 * and the rng state.  keep >= 1 leaves G and rng untouched; keep <= 0 drops
 * every entry. */
void graph_dropout(ts_csr *G, double keep, rng_t *rng);

/* A regenerated modality graph (augment, feature-graph; ALGORITHM.md
 * section 7): the edges (u, top[u * k + j]) for every user u < users and
 * j < k, normalised as graph_normalized does, then graph_dropout with
 * probability keep drawn from the stream (RNG_EDGE_DROP, epoch, modality)
 * of seed.  So the graph depends only on the chosen items, whichever
 * process, shard or stage chose them.
 *   top  [users x k] item ids, 0 <= id < items
 *   out  (users+items) x (users+items) csr
 * Returns 0, or -1 as graph_normalized does (an id out of range, too many
 * nodes, out of memory). */
int graph_regenerated(int64_t users, int64_t items, int k, const int32_t *top, double keep, uint64_t seed,
                      int64_t epoch, int modality, ts_csr *out);

#endif
