/* recsys_io.c: the recommender's state in tensor streams, shared by train
 * and diffuse (which needs the same freshly initialised recommender at
 * epoch 0): modalities from `feat/<m>`, parameters from `model/...` or
 * from the seed.  Errors end the stage through cli_die. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "recsys.h"

void rec_modalities(ts_bag *bag, rec_config *cfg, const float **feat)
{
    cfg->nmod = 0;
    for (size_t i = 0; i < bag->n; i++) {
        ts_record *r = bag->recs[i];
        if (!r->name || strncmp(r->name, "feat/", 5) != 0) continue;
        if (cfg->nmod == REC_MAXMOD) cli_die("more than %d modalities", REC_MAXMOD);
        if (r->kind != TS_DENSE || r->ndim != 2) cli_die("'%s' must be a 2-d dense tensor", r->name);
        if (r->shape[0] != cfg->items)
            cli_die("'%s' has %lld rows but there are %lld items", r->name, (long long)r->shape[0],
                    (long long)cfg->items);
        if (strlen(r->name + 5) >= sizeof cfg->mod[0]) cli_die("modality name too long: %s", r->name);
        if (ts_record_to_f32(r) < 0) cli_die("out of memory");
        int m = cfg->nmod++;
        strcpy(cfg->mod[m], r->name + 5);
        cfg->featdim[m] = r->shape[1];
        feat[m] = r->data;
    }
}

int rec_load_block(ts_bag *bag, const rec_tensor *t, int nt, const char *prefix, float *block)
{
    int found = 0;
    for (int i = 0; i < nt; i++) {
        char name[200];
        snprintf(name, sizeof name, "%s%s", prefix, t[i].name);
        ts_record *r = ts_bag_get(bag, name);
        if (!r) continue;
        if (r->kind != TS_DENSE || r->ndim != t[i].ndim) cli_die("'%s' has the wrong kind or rank", name);
        for (int k = 0; k < t[i].ndim; k++)
            if (r->shape[k] != t[i].shape[k])
                cli_die("'%s' is %lld x %lld but the options ask for %lld x %lld (check --latdim, --trans and the "
                        "features)", name, (long long)r->shape[0], t[i].ndim > 1 ? (long long)r->shape[1] : 1LL,
                        (long long)t[i].shape[0], t[i].ndim > 1 ? (long long)t[i].shape[1] : 1LL);
        if (ts_record_to_f32(r) < 0) cli_die("out of memory");
        memcpy(block + t[i].offset, r->data, r->nbytes);
        found++;
    }
    if (found && found != nt)
        for (int i = 0; i < nt; i++) {
            char name[200];
            snprintf(name, sizeof name, "%s%s", prefix, t[i].name);
            if (!ts_bag_get(bag, name)) cli_die("the inputs hold some of the recommender's tensors but not '%s'", name);
        }
    return found > 0;
}

int rec_params_load(ts_bag *bag, const rec_config *cfg, float *block, uint64_t seed)
{
    rec_tensor t[3 * REC_MAXMOD + 3];
    int nt;
    rec_params p;
    rec_layout(cfg, block, &p, t, &nt);
    if (rec_load_block(bag, t, nt, "", block)) return 1;
    rec_init(cfg, &p, seed);
    return 0;
}
