/* rec_io.c: the recommender's state in tensor streams, loaded and saved
 * here only, shared by train and diffuse (which needs the same freshly
 * initialised recommender at epoch 0): modalities from `feat/<m>`,
 * parameters `model/...` (or their initialisation from the seed), Adam's
 * moments `adam/m/model/...`, `adam/v/model/...`, `adam/step`, and
 * `model/epoch`.  Errors are returned with a message, never raised. */
#include <stdio.h>
#include <string.h>

#include "io/err.h"
#include "model/rec.h"

int rec_modalities(ts_bag *bag, rec_config *cfg, const float **feat, char *err, size_t cap)
{
    cfg->nmod = 0;
    for (size_t i = 0; i < bag->n; i++) {
        ts_record *r = bag->recs[i];
        if (!r->name || strncmp(r->name, "feat/", 5) != 0) continue;
        if (cfg->nmod == REC_MAXMOD) return err_set(err, cap, "more than %d modalities", REC_MAXMOD);
        if (r->kind != TS_DENSE || r->ndim != 2) return err_set(err, cap, "'%s' must be a 2-d dense tensor", r->name);
        if (r->shape[0] != cfg->items)
            return err_set(err, cap, "'%s' has %lld rows but there are %lld items", r->name,
                            (long long)r->shape[0], (long long)cfg->items);
        if (strlen(r->name + 5) >= sizeof cfg->mod[0]) return err_set(err, cap, "modality name too long: %s", r->name);
        if (ts_record_to_f32(r) < 0) return err_set(err, cap, "out of memory widening %s", r->name);
        int m = cfg->nmod++;
        strcpy(cfg->mod[m], r->name + 5);
        cfg->featdim[m] = r->shape[1];
        feat[m] = r->data;
    }
    return 0;
}

/* Copy the tensors t (names prefixed by prefix, e.g. "adam/m/") from the
 * bag into block: 1 if present, 0 if none are, -1 on error (some but not
 * all, or a shape that differs). */
static int rec_load_block(ts_bag *bag, const rec_tensor *t, int nt, const char *prefix, float *block, char *err,
                          size_t cap)
{
    int found = 0;
    for (int i = 0; i < nt; i++) {
        char name[200];
        snprintf(name, sizeof name, "%s%s", prefix, t[i].name);
        ts_record *r = ts_bag_get(bag, name);
        if (!r) continue;
        if (r->kind != TS_DENSE || r->ndim != t[i].ndim) return err_set(err, cap, "'%s' has the wrong kind or rank", name);
        for (int k = 0; k < t[i].ndim; k++)
            if (r->shape[k] != t[i].shape[k])
                return err_set(err, cap, "'%s' is %lld x %lld but the options ask for %lld x %lld (check --latdim, "
                                "--trans and the features)", name, (long long)r->shape[0],
                                t[i].ndim > 1 ? (long long)r->shape[1] : 1LL, (long long)t[i].shape[0],
                                t[i].ndim > 1 ? (long long)t[i].shape[1] : 1LL);
        if (ts_record_to_f32(r) < 0) return err_set(err, cap, "out of memory widening %s", name);
        memcpy(block + t[i].offset, r->data, r->nbytes);
        found++;
    }
    if (found && found != nt)
        for (int i = 0; i < nt; i++) {
            char name[200];
            snprintf(name, sizeof name, "%s%s", prefix, t[i].name);
            if (!ts_bag_get(bag, name))
                return err_set(err, cap, "the inputs hold some of the recommender's tensors but not '%s'", name);
        }
    return found > 0;
}

/* A one-element <i8 record's value, dflt when absent, -1 on error. */
static int rec_i64(ts_bag *bag, const char *name, int64_t dflt, int64_t *v, char *err, size_t cap)
{
    ts_record *r = ts_bag_get(bag, name);
    if (!r) { *v = dflt; return 0; }
    if (r->kind != TS_DENSE || r->dtype != DT_I64 || ts_numel(r) != 1)
        return err_set(err, cap, "'%s' must be one <i8 value", name);
    *v = *(const int64_t *)r->data;
    return 0;
}

int rec_params_load(ts_bag *bag, const rec_config *cfg, float *block, uint64_t seed, char *err, size_t cap)
{
    rec_tensor t[REC_MAXTENSORS];
    int nt;
    rec_params p;
    rec_layout(cfg, block, &p, t, &nt);
    int found = rec_load_block(bag, t, nt, "", block, err, cap);
    if (found != 0) return found;
    rec_init(cfg, &p, seed);
    return 0;
}

int rec_state_load(ts_bag *bag, const rec_config *cfg, float *param, float *m, float *v, uint64_t seed,
                   rec_counters *n, char *err, size_t cap)
{
    rec_tensor t[REC_MAXTENSORS];
    int nt;
    rec_layout(cfg, NULL, NULL, t, &nt);
    int found = rec_params_load(bag, cfg, param, seed, err, cap);
    if (found < 0 || rec_load_block(bag, t, nt, "adam/m/", m, err, cap) < 0 ||
        rec_load_block(bag, t, nt, "adam/v/", v, err, cap) < 0 ||
        rec_i64(bag, "adam/step", 0, &n->adam_step, err, cap) < 0 || rec_i64(bag, "model/epoch", 0, &n->epoch, err, cap) < 0)
        return -1;
    return found;
}

int rec_state_save(const rec_config *cfg, const float *param, const float *m, const float *v, const rec_counters *n,
                   ts_emit_fn emit, void *ctx)
{
    rec_tensor t[REC_MAXTENSORS];
    int nt;
    rec_layout(cfg, NULL, NULL, t, &nt);
    const char *prefix[3] = {"", "adam/m/", "adam/v/"};
    const float *src[3] = {param, m, v};
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < nt; i++) {
            char name[200];
            snprintf(name, sizeof name, "%.15s%.159s", prefix[s], t[i].name);
            if (emit(ctx, name, DT_F32, t[i].ndim, t[i].shape, src[s] + t[i].offset) < 0) return -1;
        }
    int64_t one = 1;
    if (emit(ctx, "adam/step", DT_I64, 1, &one, &n->adam_step) < 0 ||
        emit(ctx, "model/epoch", DT_I64, 1, &one, &n->epoch) < 0)
        return -1;
    return 0;
}
