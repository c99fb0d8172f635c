/* den_state.c: the denoisers' state in tensor streams, loaded and
 * saved here only (diffuse trains it, augment reads it).  Names:
 *   denoise/<m>/<layer>/{weight,bias}      parameters, torch's (out x in)
 *   adam/{m,v}/denoise/<m>/<layer>/...     Adam's moments, same shapes
 *   adam/step/denoise/<m>                  Adam steps taken, <i8
 *   denoise/epoch                          epochs completed, <i8
 *   denoise/hyper/<name>                   the settings augment must reuse
 * Errors are returned with a message, never raised. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/den.h"
#include "io/err.h"

static const char *const den_prefix[3] = {"", "adam/m/", "adam/v/"};

/* The name of layer k's weight or bias under prefix s (0 parameters, 1 m, 2 v). */
static void den_name(char *dst, size_t cap, int s, const char *mod, const den_layout *l, int k, int bias)
{
    snprintf(dst, cap, "%sdenoise/%.63s/%.15s/%s", den_prefix[s], mod, l->name[k], bias ? "bias" : "weight");
}

/* ---- hyper-parameters ---- */

int den_hyper_save(const den_hyper *h, ts_emit_fn emit, void *ctx)
{
    int64_t one = 1, steps = h->steps, emb = h->emb, norm = h->norm;
    return emit(ctx, "denoise/hyper/steps", DT_I64, 1, &one, &steps) < 0 ||
           emit(ctx, "denoise/hyper/noise_scale", DT_F64, 1, &one, &h->noise_scale) < 0 ||
           emit(ctx, "denoise/hyper/noise_min", DT_F64, 1, &one, &h->noise_min) < 0 ||
           emit(ctx, "denoise/hyper/noise_max", DT_F64, 1, &one, &h->noise_max) < 0 ||
           emit(ctx, "denoise/hyper/d_emb_size", DT_I64, 1, &one, &emb) < 0 ||
           emit(ctx, "denoise/hyper/norm", DT_I64, 1, &one, &norm) < 0
               ? -1 : 0;
}

/* One named value as a double: 1 found, 0 absent, -1 not one number. */
static int den_scalar(const ts_bag *bag, const char *name, double *v, char *err, size_t cap)
{
    ts_record *r = ts_bag_get(bag, name);
    if (!r) return 0;
    if (r->kind != TS_DENSE || ts_numel(r) != 1 || (r->dtype != DT_I64 && r->dtype != DT_F64))
        return err_set(err, cap, "'%s' must be one <i8 or <f8 value", name);
    *v = r->dtype == DT_I64 ? (double)*(const int64_t *)r->data : *(const double *)r->data;
    return 1;
}

int den_hyper_load(const ts_bag *bag, den_hyper *h, char *err, size_t cap)
{
    static const char *const key[6] = {"steps", "noise_scale", "noise_min", "noise_max", "d_emb_size", "norm"};
    double v[6];
    ts_record *old = ts_bag_get(bag, "denoise/hyper");      /* streams before named records: six <f8 in this order */
    if (old) {
        if (old->kind != TS_DENSE || old->dtype != DT_F64 || ts_numel(old) != 6)
            return err_set(err, cap, "'denoise/hyper' must be 6 <f8");
        memcpy(v, old->data, sizeof v);
    } else {
        for (int i = 0; i < 6; i++) {
            char name[64];
            snprintf(name, sizeof name, "denoise/hyper/%s", key[i]);
            int got = den_scalar(bag, name, &v[i], err, cap);
            if (got < 0) return -1;
            if (!got) return err_set(err, cap, "missing input: no record '%s' (diffuse writes it)", name);
        }
    }
    if (v[0] < 1 || v[0] > DEN_MAXSTEPS || v[4] < 1 || v[4] > 1 << 20)
        return err_set(err, cap, "the denoiser's steps (%g) or step embedding size (%g) are out of range", v[0], v[4]);
    *h = (den_hyper){.steps = (int)v[0], .noise_scale = v[1], .noise_min = v[2], .noise_max = v[3],
                     .emb = (int64_t)v[4], .norm = v[5] != 0};
    return 0;
}

/* ---- one modality's training state ---- */

/* Copy a tensor of the bag into dst and drop it from the bag (its memory is
 * freed: the denoisers are large): 1 if it was there, 0 if not, -1 if its
 * size differs. */
static int den_take_into(ts_bag *bag, const char *name, float *dst, int64_t n, char *err, size_t cap)
{
    ts_record *r = ts_bag_take(bag, name);
    if (!r) return 0;
    int ok = r->kind == TS_DENSE && ts_numel(r) == n && ts_record_to_f32(r) == 0;
    if (ok) memcpy(dst, r->data, (size_t)n * 4);
    ts_record_free(r);
    return ok ? 1 : err_set(err, cap, "'%s' does not match the denoiser's size (check --dims and --d-emb-size)", name);
}

int den_state_take(ts_bag *bag, const den_layout *l, const char *mod, den_state *st, char *err, size_t cap)
{
    float **dst[3] = {&st->p, &st->m, &st->v};
    int found[3] = {0, 0, 0}, expect = 2 * l->nlayers;
    memset(st, 0, sizeof *st);
    /* each array is allocated just before the bag's copy of it is taken and
     * freed, so the previous epoch's state and ours overlap by one array at
     * most (on TikTok 54 MB, not a whole denoiser's 161 MB) */
    for (int s = 0; s < 3; s++) {
        *dst[s] = ts_alloc((size_t)l->total * 4);                    /* zeroed */
        if (!*dst[s]) { den_state_free(st); return err_set(err, cap, "out of memory for the denoiser of %s", mod); }
        for (int k = 0; k < l->nlayers; k++)
            for (int bias = 0; bias < 2; bias++) {
                char name[200];
                den_name(name, sizeof name, s, mod, l, k, bias);
                int got = den_take_into(bag, name, *dst[s] + (bias ? l->b[k] : l->w[k]),
                                        bias ? l->out[k] : l->in[k] * l->out[k], err, cap);
                if (got < 0) { den_state_free(st); return -1; }
                found[s] += got;
            }
    }
    if ((found[0] && found[0] != expect) || (found[1] && found[1] != expect) || (found[2] && found[2] != expect) ||
        (!found[0] && (found[1] || found[2]))) {
        den_state_free(st);
        return err_set(err, cap, "%s: the inputs hold only part of the denoiser's state", mod);
    }
    char name[128];
    double step = 0;
    snprintf(name, sizeof name, "adam/step/denoise/%.63s", mod);
    if (den_scalar(bag, name, &step, err, cap) < 0) { den_state_free(st); return -1; }
    st->step = (int64_t)step;
    return found[0] > 0;
}

int den_state_save(const den_layout *l, const char *mod, const den_state *st, ts_emit_fn emit, void *ctx)
{
    const float *src[3] = {st->p, st->m, st->v};
    for (int s = 0; s < 3; s++)
        for (int k = 0; k < l->nlayers; k++) {
            char name[200];
            int64_t wshape[2] = {l->out[k], l->in[k]}, bshape[1] = {l->out[k]};
            den_name(name, sizeof name, s, mod, l, k, 0);
            if (emit(ctx, name, DT_F32, 2, wshape, src[s] + l->w[k]) < 0) return -1;
            den_name(name, sizeof name, s, mod, l, k, 1);
            if (emit(ctx, name, DT_F32, 1, bshape, src[s] + l->b[k]) < 0) return -1;
        }
    char name[128];
    int64_t one = 1;
    snprintf(name, sizeof name, "adam/step/denoise/%.63s", mod);
    return emit(ctx, name, DT_I64, 1, &one, &st->step);
}

void den_state_free(den_state *st)
{
    free(st->p); free(st->m); free(st->v);
    st->p = st->m = st->v = NULL;
}

/* ---- parameters alone, for the reverse process ---- */

int den_params_load(const ts_bag *bag, const char *mod, den_config *dc, den_layout *l, float **params, char *err,
                    size_t cap)
{
    char name[200];
    dc->ndims = 0;
    for (int k = 0; k < DEN_MAXDIMS; k++) {           /* the in-layers' sizes are the dims reversed */
        snprintf(name, sizeof name, "denoise/%.63s/in%d/weight", mod, k);
        ts_record *r = ts_bag_get(bag, name);
        if (!r) break;
        if (r->kind != TS_DENSE || r->ndim != 2) return err_set(err, cap, "'%s' must be a 2-d dense tensor", name);
        dc->dims[dc->ndims++] = r->shape[0];
    }
    if (dc->ndims == 0)
        return err_set(err, cap, "missing input: no denoiser for modality '%s' (denoise/%s/...): run diffuse first",
                        mod, mod);
    for (int i = 0; i < dc->ndims / 2; i++) {
        int64_t t = dc->dims[i]; dc->dims[i] = dc->dims[dc->ndims - 1 - i]; dc->dims[dc->ndims - 1 - i] = t;
    }
    den_layout_make(dc, l);
    float *p = ts_alloc((size_t)l->total * 4);
    if (!p) return err_set(err, cap, "out of memory for the denoiser of %s", mod);
    for (int k = 0; k < l->nlayers; k++)
        for (int bias = 0; bias < 2; bias++) {
            den_name(name, sizeof name, 0, mod, l, k, bias);
            ts_record *r = ts_bag_get(bag, name);
            int64_t n = bias ? l->out[k] : l->in[k] * l->out[k];
            if (!r) { free(p); return err_set(err, cap, "missing input: no record '%s'", name); }
            if (r->kind != TS_DENSE || ts_numel(r) != n || ts_record_to_f32(r) < 0) {
                free(p);
                return err_set(err, cap, "'%s' does not match the denoiser's shape", name);
            }
            memcpy(p + (bias ? l->b[k] : l->w[k]), r->data, (size_t)n * 4);
        }
    *params = p;
    return 0;
}
