/* metrics.h: top-K ranking of items for users, and the ranking metrics of
 * ALGORITHM.md section 9 (Recall, Precision and NDCG at K).
 *
 * Middle floor: it knows embeddings and interaction matrices (ts_csr), not
 * which model made the embeddings nor where they came from.
 *
 * Scores are users x items^T (float32, OpenBLAS sgemm), computed for a block
 * of users at a time, so memory is O(block x items) and a dense users x
 * items matrix never exists.  Items a user interacted with in the exclusion
 * matrix (the training matrix) are never ranked.  The ranking is by score,
 * highest first; equal scores rank the lower item index first, so results
 * are deterministic.  Every stored entry of a csr matrix counts as an
 * interaction, whatever its value (convert-pkl stores only ones).
 *
 * Functions return 0, or -1 with a one-line reason in err. */
#ifndef METRICS_H
#define METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "io/ts.h"

#define METRICS_MAXK 32   /* K values in one evaluation */

/* What scoring needs. */
typedef struct {
    const float *user;       /* [users x dim] row-major */
    const float *item;       /* [items x dim] row-major */
    int64_t users, items, dim;
    const ts_csr *exclude;   /* [users x items] never ranked (train), or NULL */
} metrics_scorer;

/* Metrics of one evaluation. */
typedef struct {
    int nk;                            /* number of K values */
    int k[METRICS_MAXK];               /* ascending, distinct */
    int64_t users;                     /* users with at least one held-out item */
    double recall[METRICS_MAXK];       /* means over those users, [nk] */
    double precision[METRICS_MAXK];
    double ndcg[METRICS_MAXK];
    double sgemm_seconds;              /* time in scoring (BLAS) */
    double select_seconds;             /* time masking, selecting, counting */
} metrics_result;

/* Check a scorer before use: sizes that BLAS takes, finite embeddings,
 * scores that cannot overflow float32, an exclusion matrix of users x
 * items.  user_name / item_name / exclude_name name the inputs in err. */
int metrics_check(const metrics_scorer *s, const char *user_name, const char *item_name,
                  const char *exclude_name, char *err, size_t errlen);

/* Fill s from the records of a bag: dense 2-D float matrices user
 * [users x dim] and item [items x dim] (float16/float64 widened to float32
 * in place) and, unless exclude is NULL, the csr matrix exclude [users x
 * items]; then metrics_check.  Errors name the records. */
int metrics_load(ts_bag *bag, const char *user, const char *item, const char *exclude, metrics_scorer *s,
                 char *err, size_t errlen);
/* The csr record name of bag as a held-out matrix for s (users x items). */
int metrics_held(const ts_bag *bag, const char *name, const metrics_scorer *s, const ts_csr **held, char *err,
                 size_t errlen);

/* The k best items for n users: uids[n] (or users 0..n-1 when uids is NULL;
 * every id must be in range).  items [n x k] int32 and scores [n x k]
 * float32 are filled best first; a user with fewer than k items left after
 * exclusion gets its list padded with item -1 and score -inf. */
int metrics_topk(const metrics_scorer *s, const int32_t *uids, int64_t n, int k, int32_t *items,
                 float *scores, char *err, size_t errlen);

/* Recall, Precision and NDCG at each of ks[nk] (any order, duplicates
 * allowed, each >= 1) against the held-out matrix held [users x items].
 * Only users with at least one held-out item count; out->users is 0 (and
 * the means 0) when there are none.  |held| counts a user's distinct
 * held-out items, also those in the exclusion matrix (they can never be
 * hits).  Precision is hits / K even when fewer than K items are left. */
int metrics_evaluate(const metrics_scorer *s, const ts_csr *held, const int *ks, int nk,
                     metrics_result *out, char *err, size_t errlen);

#endif
