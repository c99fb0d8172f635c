/* rec.h: DiffMM's recommender (ALGORITHM.md sections 3-6): parameters,
 * initialisation, the forward pass and its hand-written backward pass, and
 * the losses (BPR, regularisation, contrastive).  Prefix rec_.
 *
 * Notation: U users, I items, N = U + I nodes, d latent size, M modalities
 * (0 means plain LightGCN: no features, no modality graphs). */
#ifndef REC_H
#define REC_H

#include <stdint.h>

#include "io/ts.h"

#define REC_MAXMOD 8

typedef struct {
    int64_t users, items, d;
    int nmod;                          /* M, 0..REC_MAXMOD */
    char mod[REC_MAXMOD][64];          /* modality names: feat/<name> */
    int64_t featdim[REC_MAXMOD];       /* D_m */
    int trans;                         /* 0: LeakyReLU(F W); 1: F W^T + b */
    int gnn_layer;                     /* L, summed propagations */
    double ris_lambda, ris_adj_lambda; /* section 4's lambda, lambda_adj */
} rec_config;

/* Views into one contiguous block (parameters, gradients or Adam moments
 * share this layout).  user and item are adjacent: user is [E_u; E_i]. */
typedef struct {
    float *user;                 /* [U x d] E_u, followed by item */
    float *item;                 /* [I x d] E_i */
    float *modal_weight;         /* [M] w, used through softmax */
    float *trans_w[REC_MAXMOD];  /* trans 1: [d x D_m] (out x in); trans 0: [D_m x d] */
    float *trans_b[REC_MAXMOD];  /* trans 1: [d]; trans 0: NULL */
} rec_params;

/* A named tensor of the layout, for streams: "model/user", ... */
#define REC_MAXTENSORS (2 * REC_MAXMOD + 3)
typedef struct {
    char name[160];
    int64_t offset;              /* into the block, in floats */
    int ndim;
    int64_t shape[2];
} rec_tensor;

/* Lay out the parameters of cfg over base (may be NULL to count): sets
 * views (may be NULL), fills up to REC_MAXTENSORS entries of tensors (may
 * be NULL) and their count, returns the number of floats. */
int64_t rec_layout(const rec_config *cfg, float *base, rec_params *views, rec_tensor *tensors, int *ntensors);

/* Section 3's initialisation from seed: Xavier-uniform E_u, E_i (and W for
 * trans 0), uniform +-1/sqrt(D_m) for trans 1, modality weights 1/M. */
void rec_init(const rec_config *cfg, const rec_params *p, uint64_t seed);

/* The graphs and features a forward pass reads. */
typedef struct {
    const ts_csr *adj, *adj_t;                         /* A-hat and its transpose, N x N */
    const ts_csr *g[REC_MAXMOD], *g_t[REC_MAXMOD];     /* G_m and transposes, N x N */
    const float *feat[REC_MAXMOD];                     /* [I x D_m] */
} rec_graphs;

/* Activations kept for the backward pass, and scratch. */
typedef struct rec_work rec_work;
rec_work *rec_work_new(const rec_config *cfg);
void rec_work_free(rec_work *w);

/* Section 4 (and, with views, section 5) for all nodes.  Returns the final
 * embeddings X, [N x d] (users first), owned by w; views[m] likewise
 * [N x d] when views is non-NULL. */
const float *rec_forward(const rec_config *cfg, const rec_params *p, const rec_graphs *g, rec_work *w,
                         int want_views, const float **views);

/* Backward pass: given dX [N x d] and, when views were computed, dZ[m]
 * [N x d] (NULL entries: no gradient), overwrite grad (same layout as p)
 * with the gradient of the loss.  dX and dZ are used as scratch. */
void rec_backward(const rec_config *cfg, const rec_params *p, const rec_graphs *g, rec_work *w, float *dX,
                  float **dZ, const rec_params *grad);

/* The transform output f_m = T_m(F_m) ([I x d]) alone, as the diffusion's
 * modality-aware loss uses it. */
int rec_transform_out(const rec_config *cfg, const rec_params *p, int m, const float *feat, float *f);  /* -1: no memory */

/* ---- state in streams (rec_io.c): 0 or 1 on success, -1 and a message in err ---- */

/* The modalities: every `feat/<m>` of the bag in stream order (widened to
 * float32); sets cfg->nmod, mod, featdim and feat[m] ([I x D_m]). */
int rec_modalities(ts_bag *bag, rec_config *cfg, const float **feat, char *err, size_t cap);
/* The parameters from `model/...`, or initialised from seed when absent:
 * 1 if loaded, 0 if initialised.  block: rec_layout's size. */
int rec_params_load(ts_bag *bag, const rec_config *cfg, float *block, uint64_t seed, char *err, size_t cap);

/* What a saved recommender counts besides its tensors. */
typedef struct {
    int64_t adam_step;           /* `adam/step`: Adam steps taken */
    int64_t epoch;               /* `model/epoch`: epochs completed */
} rec_counters;
/* The whole training state: parameters as rec_params_load, Adam's moments m
 * and v (zero when absent; each rec_layout's size) and the counters. */
int rec_state_load(ts_bag *bag, const rec_config *cfg, float *param, float *m, float *v, uint64_t seed,
                   rec_counters *n, char *err, size_t cap);
/* Save what rec_state_load reads, each tensor through emit (-1 stops). */
int rec_state_save(const rec_config *cfg, const float *param, const float *m, const float *v, const rec_counters *n,
                   ts_emit_fn emit, void *ctx);

/* ---- losses (rec_loss.c) ---- */

/* BPR over b triples: -sum log sigmoid(x_u.x_p - x_u.x_n) / divisor.
 * x is [N x d] with items at rows U + i.  Adds the gradient into dx. */
double rec_bpr(const float *x, int64_t users, int64_t d, const int32_t *u, const int32_t *pos,
               const int32_t *neg, int64_t b, double divisor, float *dx);

/* reg * (||E_u||^2 + ||E_i||^2); adds 2 reg E into gE ([N x d]). */
double rec_reg(const float *e, int64_t n, int64_t d, double reg, float *ge);

/* Contrastive loss cl(A, B, nodes, tau) * weight (section 6): rows of A and
 * B ([R x d] each) L2-normalised; for each of the b nodes,
 * -log(exp(a_n.b_n/tau) / sum_k exp(a_n.b_k/tau)), averaged.  Adds the
 * gradient into dA (rows at nodes) and dB (all rows).  ws: rec_cl_work. */
typedef struct rec_cl_work rec_cl_work;
rec_cl_work *rec_cl_work_new(int64_t max_b, int64_t max_r, int64_t d);
void rec_cl_work_free(rec_cl_work *ws);
/* rows of the batch per logits block (default 512, at most 1024 and max_b);
 * returns the block in use.  For benchmarks: results differ by rounding. */
int64_t rec_cl_work_block(rec_cl_work *ws, int64_t rows);
/* d = 64: the backward products by dn_n64.c (on, the default) or by
 * OpenBLAS (off).  For tests and benchmarks. */
void rec_cl_work_unpacked(rec_cl_work *ws, int on);
double rec_cl(const float *A, const float *B, int64_t R, int64_t d, const int32_t *nodes, int64_t b, double tau,
              double weight, float *dA, float *dB, rec_cl_work *ws);

/* Does the contrastive term apply?  It needs modalities, a non-zero
 * weight, and with cl_method 0 at least two modalities to pair. */
int rec_cl_active(const rec_config *cfg, int cl_method, double ssl_reg);
/* Section 6's contrastive term of a batch, the pairing of the release:
 * cl_method 1 contrasts each modality's view with the main embeddings X,
 * cl_method 0 every pair of modality views; each for the batch's users
 * (users [b]) and for its positive items (items [b]).  X and views[m] are
 * [N x d]; adds the gradients into dX and dZ[m] ([N x d] each). */
double rec_cl_batch(const rec_config *cfg, int cl_method, const float *X, const float *const *views,
                    const int32_t *users, const int32_t *items, int64_t b, double tau, double weight, float *dX,
                    float **dZ, rec_cl_work *ws);

#endif
