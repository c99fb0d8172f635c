/* rec_model.c: the recommender's parameter layout and initialisation. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model/rec.h"
#include "kernels/rng.h"

static void lay(rec_tensor *t, int *nt, const char *name, int64_t off, int ndim, int64_t r, int64_t c)
{
    if (!t) { (*nt)++; return; }
    rec_tensor *x = &t[(*nt)++];
    snprintf(x->name, sizeof x->name, "%s", name);
    x->offset = off;
    x->ndim = ndim;
    x->shape[0] = r;
    x->shape[1] = c;
}

int64_t rec_layout(const rec_config *cfg, float *base, rec_params *v, rec_tensor *t, int *nt)
{
    int64_t off = 0, d = cfg->d;
    int n = 0;
    rec_params tmp;
    if (!v) v = &tmp;
    memset(v, 0, sizeof *v);
#define AT(o) (base ? base + (o) : NULL)
    v->user = AT(off);
    lay(t, &n, "model/user", off, 2, cfg->users, d);
    off += cfg->users * d;
    v->item = AT(off);
    lay(t, &n, "model/item", off, 2, cfg->items, d);
    off += cfg->items * d;
    if (cfg->nmod > 0) {
        v->modal_weight = AT(off);
        lay(t, &n, "model/modal_weight", off, 1, cfg->nmod, 0);
        off += cfg->nmod;
    }
    for (int m = 0; m < cfg->nmod; m++) {
        char name[160];
        int64_t D = cfg->featdim[m];
        v->trans_w[m] = AT(off);
        snprintf(name, sizeof name, "model/trans/%s/weight", cfg->mod[m]);
        if (cfg->trans == 1) lay(t, &n, name, off, 2, d, D);
        else lay(t, &n, name, off, 2, D, d);
        off += D * d;
        if (cfg->trans == 1) {
            v->trans_b[m] = AT(off);
            snprintf(name, sizeof name, "model/trans/%s/bias", cfg->mod[m]);
            lay(t, &n, name, off, 1, d, 0);
            off += d;
        }
    }
#undef AT
    if (nt) *nt = n;
    return off;
}

static void uniform_fill(float *x, int64_t n, double bound, rng_t *r)
{
    for (int64_t i = 0; i < n; i++) x[i] = (float)((2 * rng_uniform(r) - 1) * bound);
}

void rec_init(const rec_config *cfg, const rec_params *p, uint64_t seed)
{
    rng_t r;
    rng_seed(&r, seed, rng_stream(RNG_INIT, 0, 0, 0));
    int64_t d = cfg->d;
    uniform_fill(p->user, cfg->users * d, sqrt(6.0 / (double)(cfg->users + d)), &r);
    uniform_fill(p->item, cfg->items * d, sqrt(6.0 / (double)(cfg->items + d)), &r);
    for (int m = 0; m < cfg->nmod; m++) {
        int64_t D = cfg->featdim[m];
        p->modal_weight[m] = 1.0f / (float)cfg->nmod;
        if (cfg->trans == 1) {
            double b = 1.0 / sqrt((double)D);             /* torch nn.Linear default */
            uniform_fill(p->trans_w[m], d * D, b, &r);
            uniform_fill(p->trans_b[m], d, b, &r);
        } else {
            uniform_fill(p->trans_w[m], D * d, sqrt(6.0 / (double)(D + d)), &r);  /* Xavier */
        }
    }
}
