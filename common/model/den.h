/* den.h: DiffMM's modality-aware diffusion (ALGORITHM.md section 7):
 * the noise schedule, the denoiser MLP with its hand-written backward pass,
 * the training losses and the reverse process.  Prefix den_.
 *
 * A denoiser maps a user's whole item row x (I) and a step t to a row (I):
 *   temb = [cos(t freqs), sin(t freqs)]                 [e]
 *   emb  = Linear_e->e(temb)
 *   h    = tanh(Linear_(I+e)->h1([dropout(x), emb]))     then more in-layers
 *   out  = out-layers (tanh between, none after the last) -> [I]
 * Layer sizes: in-layers (I+e) -> dims reversed; out-layers dims -> I, so
 * dims = [1000] gives (I+e) -> 1000 -> I.  Weights in torch's layout
 * (out x in). */
#ifndef DEN_H
#define DEN_H

#include <stdint.h>

#include "kernels/rng.h"
#include "io/ts.h"

#define DEN_MAXDIMS 4
#define DEN_MAXSTEPS 1000

/* Section 7's schedule, in double. */
typedef struct {
    int steps;                                   /* T */
    double betas[DEN_MAXSTEPS], abar[DEN_MAXSTEPS];
    double coef1[DEN_MAXSTEPS], coef2[DEN_MAXSTEPS];  /* posterior mean */
    double logvar[DEN_MAXSTEPS];                 /* clipped posterior log variance */
    double weight[DEN_MAXSTEPS];                 /* SNR(t-1) - SNR(t), 1 at t = 0 */
} den_schedule;

/* Returns 0, or -1 when the settings give no valid schedule. */
int den_schedule_make(den_schedule *s, int steps, double noise_scale, double noise_min, double noise_max);

typedef struct {
    int64_t items;                /* I */
    int64_t emb;                  /* e, d_emb_size */
    int ndims;
    int64_t dims[DEN_MAXDIMS];    /* hidden sizes, the release's --dims */
    int norm;                     /* L2-normalise the input rows first */
} den_config;

#define DEN_MAXLAYERS (2 * DEN_MAXDIMS + 1)

/* Parameter layout over one contiguous block: layer 0 is the time
 * embedding (e -> e), then the in-layers, then the out-layers. */
typedef struct {
    int nlayers;
    int64_t in[DEN_MAXLAYERS], out[DEN_MAXLAYERS];  /* fan-in, fan-out */
    int64_t w[DEN_MAXLAYERS], b[DEN_MAXLAYERS];     /* offsets in floats */
    char name[DEN_MAXLAYERS][16];                   /* "emb", "in0", "out0", ... */
    int64_t total;
    int64_t widest;                                 /* largest hidden size */
} den_layout;

void den_layout_make(const den_config *c, den_layout *l);
/* N(0, sqrt(2/(fan_in+fan_out))) weights, N(0, 0.001) biases. */
void den_init(const den_layout *l, float *params, rng_t *rng);

/* Workspace for batches of up to max_b rows. */
typedef struct den_work den_work;
den_work *den_work_new(const den_config *c, const den_layout *l, int64_t max_b);
void den_work_free(den_work *w);
/* The version of the weights the next passes use: callers change it
 * whenever the parameters change (diffuse: each Adam step; augment: each
 * denoiser), which lets the products keep their bf16 copies of the weights
 * in between (gemm_run_weights). */
void den_work_weights(den_work *w, uint64_t version);

/* Forward pass of b rows x ([b x I]) at steps t[b]; returns out [b x I]
 * (owned by w).  keep_mask: NULL for no dropout, else [b x I] of 0 or
 * 1/(1-p), multiplied into a copy of x (inference: NULL).  Without norm
 * that copy is made on first use: NULL when memory for it runs out (a
 * caller can multiply the mask into x itself and pass NULL: the same bits,
 * as diffuse does).  x must stay unchanged until den_backward. */
const float *den_forward(const den_config *c, const den_layout *l, const float *params, den_work *w,
                         const float *x, const int32_t *t, int64_t b, const float *keep_mask);
/* Backward from dout [b x I] (clobbered): adds the gradient of every
 * parameter into grad (same layout as params). */
void den_backward(const den_config *c, const den_layout *l, const float *params, den_work *w, float *dout,
                  int64_t b, float *grad);

/* Section 7's training loss for b rows: x0 [b x I] the rows (users rows[k]
 * of R, also used sparsely for x0 E), t[b] their steps, out [b x I] the
 * denoiser's output, E [I x d] item embeddings, F [I x d] transformed
 * features (both constant):
 *   sum_u w_t mean_i (x0 - out)^2 / count + e_loss sum_u mean_k (out F - x0 E)^2 / count
 * count is the batch size the means are over (a batch may be processed in
 * chunks).  Writes dout [b x I] = d loss / d out, and the per-row terms
 * diff[b] and gc[b] (both required).  scratch: [2 b d] floats.  Rows run in
 * parallel; the result does not depend on the number of threads. */
double den_loss(const den_schedule *s, const float *x0, const ts_csr *R, const int32_t *rows, const int32_t *t,
                int64_t b, const float *out, const float *E, const float *F, int64_t d, double e_loss,
                int64_t count, float *dout, double *diff, double *gc, float *scratch);

/* The reverse process (p_sample) for b rows, in place on x [b x I]: for
 * t = T-1 .. 0, x = coef1_t den(x, t) + coef2_t x, no dropout; with
 * noise_rng, the release's sampling noise is added for t > 0.  When x0 is
 * given as a csr view of exactly these b rows (x holding the same rows
 * densely) and wt_first is the first layer's x-part transposed ([I x h]),
 * the first step's first layer runs as a sparse product. */
int den_reverse(const den_config *c, const den_layout *l, const float *p, den_work *w, const den_schedule *s,
                float *x, int64_t b, const ts_csr *x0, const float *wt_first, rng_t *noise_rng);  /* -1: no memory */
/* The same reverse process folded (norm off).  The first in-layer reads x
 * only through W_x x (W_x its x-part, [h1 x I]), and x moves by
 * x = c1 out + c2 x with out = W_out hid + b_out, so the process can carry
 * y = W_x x ([h1]) instead of x:
 *   y = c1 (M hid + W_x b_out) + c2 y,   M = W_x W_out [h1 x hl],
 * and needs the output layer only at t = 0, where coef2 = 0.  Sampling
 * noise, drawn as den_reverse draws it, enters as y += sd W_x noise (a
 * dense product per step).  Per user and step that is an h1 x hl product
 * in place of two h x I ones (TikTok: 2 Mflop against 27).  fold
 * [den_fold_size] from den_fold_make (M, then W_x b_out), made once per set
 * of weights.  x [b x I]: the input rows on entry (read only when x0 is
 * NULL), the result on return.  The sums are reassociated, so the result
 * is the direct one's up to float rounding.  Returns 0; -1 no memory; -2
 * with norm on (use den_reverse). */
int64_t den_fold_size(const den_layout *l);
void den_fold_make(const den_config *c, const den_layout *l, const float *p, float *fold);
int den_reverse_folded(const den_config *c, const den_layout *l, const float *p, den_work *w, const den_schedule *s,
                       float *x, int64_t b, const ts_csr *x0, const float *wt_first, const float *fold,
                       rng_t *noise_rng);
/* wt [I x h]: the x-part of the first in-layer's weight, transposed. */
void den_first_layer_t(const den_config *c, const den_layout *l, const float *p, float *wt);

/* Time embedding [b x e] of steps t (exposed for tests). */
void den_time_embedding(int64_t e, const int32_t *t, int64_t b, float *out);

/* ---- state in streams (den_state.c): 0 or 1 on success, -1 and a message in err ---- */

#define DEN_EPOCH "denoise/epoch"   /* <i8: epochs the denoisers have completed */

/* The settings augment must reuse to regenerate with what diffuse trained:
 * records denoise/hyper/{steps, noise_scale, noise_min, noise_max,
 * d_emb_size, norm}.  The load also reads the older `denoise/hyper`, six
 * <f8 in that order. */
typedef struct {
    int steps;
    double noise_scale, noise_min, noise_max;
    int64_t emb;                  /* d_emb_size */
    int norm;
} den_hyper;
int den_hyper_save(const den_hyper *h, ts_emit_fn emit, void *ctx);
int den_hyper_load(const ts_bag *bag, den_hyper *h, char *err, size_t cap);

/* One modality's training state: parameters and Adam's moments,
 * [l->total] each in l's layout, and the Adam steps taken. */
typedef struct {
    float *p, *m, *v;
    int64_t step;
} den_state;
/* Take modality mod's state out of the bag (each record freed once copied):
 * 1 loaded, 0 absent (all zero: the caller initialises p), -1 error (part
 * of a state, a size that differs, no memory).  Free with den_state_free. */
int den_state_take(ts_bag *bag, const den_layout *l, const char *mod, den_state *st, char *err, size_t cap);
/* Save what den_state_take reads, each tensor through emit (-1 stops). */
int den_state_save(const den_layout *l, const char *mod, const den_state *st, ts_emit_fn emit, void *ctx);
void den_state_free(den_state *st);
/* The parameters alone, for the reverse process: dc->dims are read off the
 * weights' shapes (dc->items, emb and norm must be set), l laid out, and
 * *params ([l->total], free()) filled. */
int den_params_load(const ts_bag *bag, const char *mod, den_config *dc, den_layout *l, float **params, char *err,
                    size_t cap);

#endif
