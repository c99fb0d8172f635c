/* convert-pkl: the authors' dataset files -> a tensor stream.
 *
 * Reads a dataset folder in the release's layout (trnMat.pkl, valMat.pkl,
 * tstMat.pkl, <modality>_feat.npy) and/or single files, and writes
 * `train`, `val`, `test` (binary csr, U x I) and `feat/<modality>`
 * (float32, I x D_m), plus a `meta/dataset` record saying where they came
 * from.  Pickles are parsed by common/io/pkl.c, which never runs their code. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "io/pkl.h"
#include "kernels/sp.h"

#define MAX_SOURCES 64

typedef struct {
    char name[256];   /* record name: train, val, test, feat/<m> */
    char path[4096];
} source;

static source sources[MAX_SOURCES];
static int nsources;

static void add_source(const char *name, const char *path)
{
    for (int i = 0; i < nsources; i++)
        if (strcmp(sources[i].name, name) == 0) cli_usage_error("two inputs for '%s': %s and %s", name, sources[i].path, path);
    if (nsources == MAX_SOURCES) cli_usage_error("more than %d inputs", MAX_SOURCES);
    if (strlen(name) >= sizeof sources[0].name || strlen(path) >= sizeof sources[0].path)
        cli_usage_error("name or path too long: %s", path);
    strcpy(sources[nsources].name, name);
    strcpy(sources[nsources].path, path);
    nsources++;
}

/* The record name a release file name stands for, or 0 if none. */
static int name_for_file(const char *base, char *name, size_t cap)
{
    static const char *mats[][2] = {{"trnMat.pkl", "train"}, {"valMat.pkl", "val"}, {"tstMat.pkl", "test"}};
    for (int i = 0; i < 3; i++)
        if (strcmp(base, mats[i][0]) == 0) { snprintf(name, cap, "%s", mats[i][1]); return 1; }
    return cli_feature_name(base, name, cap);
}

/* Order: train, val, test, then features by name. */
static int source_rank(const char *name)
{
    return strcmp(name, "train") == 0 ? 0 : strcmp(name, "val") == 0 ? 1 : strcmp(name, "test") == 0 ? 2 : 3;
}

static int cmp_source(const void *a, const void *b)
{
    const char *x = ((const source *)a)->name, *y = ((const source *)b)->name;
    int rx = source_rank(x), ry = source_rank(y);
    return rx != ry ? rx - ry : strcmp(x, y);
}

/* A dataset folder: every file whose name the release uses. */
static void add_folder(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) cli_die("cannot read folder %s", dir);
    int before = nsources;
    struct dirent *e;
    while ((e = readdir(d))) {
        char name[256], path[4096];
        if (!name_for_file(e->d_name, name, sizeof name)) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        add_source(name, path);
    }
    closedir(d);
    if (nsources == before)
        cli_die("%s: no dataset files here (expected trnMat.pkl, valMat.pkl, tstMat.pkl, *_feat.npy)", dir);
    qsort(sources + before, (size_t)(nsources - before), sizeof *sources, cmp_source);
}

static void add_argument(const char *arg)
{
    struct stat st;
    const char *eq = strchr(arg, '=');
    if (eq && stat(arg, &st) != 0) {           /* NAME=FILE */
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(eq - arg), arg);
        add_source(name, eq + 1);
        return;
    }
    if (stat(arg, &st) != 0) cli_die("%s: no such file or folder", arg);
    if (S_ISDIR(st.st_mode)) { add_folder(arg); return; }
    const char *base = strrchr(arg, '/');
    base = base ? base + 1 : arg;
    char name[256];
    if (!name_for_file(base, name, sizeof name))
        cli_usage_error("%s: cannot tell what this file is; name it as NAME=FILE (e.g. train=%s)", arg, arg);
    add_source(name, arg);
}

static int is_npy(const char *path)
{
    size_t n = strlen(path);
    return n >= 4 && strcmp(path + n - 4, ".npy") == 0;
}

/* Read a whole (small) file; sizes are checked by the parsers. */
static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) cli_die("%s: cannot open", path);
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) cli_die("%s: not a regular file", path);
    uint8_t *buf = malloc((size_t)st.st_size + 1);
    if (!buf) cli_die("%s: out of memory for %lld bytes", path, (long long)st.st_size);
    if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) cli_die("%s: read failed", path);
    fclose(f);
    *len = (size_t)st.st_size;
    return buf;
}

static ts_record *load_matrix(const source *s)
{
    size_t len;
    uint8_t *buf = slurp(s->path, &len);
    pkl_coo coo;
    char err[512];
    int st = pkl_read_coo(buf, len, &coo, err, sizeof err);
    free(buf);                            /* before dying, too: LeakSanitizer would see it lost */
    if (st < 0) cli_die("%s: %s: %s", s->name, s->path, err);
    /* pkl.c caps the sides no array backs; a csc pickle's columns are backed
     * there, but as a csr record's columns nothing backs them: the cap again */
    if (coo.cols > TS_DIM_MAX)
        cli_die("%s: %s: %lld items, more than the %lld a matrix may have", s->name, s->path, (long long)coo.cols,
                (long long)TS_DIM_MAX);
    ts_csr m;
    if (sp_binary_from_coo(coo.rows, coo.cols, coo.n, coo.row, coo.col, coo.val, &m) < 0)
        cli_die("%s: out of memory", s->path);
    pkl_coo_free(&coo);
    cli_note("%s: %s %lld x %lld, %lld interactions", s->name, s->path, (long long)m.rows, (long long)m.cols,
             (long long)m.nnz);
    ts_record *r = ts_csr_new(s->name, &m);
    if (!r) cli_die("out of memory");
    return r;
}

/* Every matrix has the same shape; every feature table one row per item. */
static void check_consistent(ts_record **recs, int n)
{
    const ts_record *ref = NULL;
    for (int i = 0; i < n; i++) {
        if (recs[i]->kind != TS_CSR) continue;
        if (!ref) { ref = recs[i]; continue; }
        if (recs[i]->csr.rows != ref->csr.rows || recs[i]->csr.cols != ref->csr.cols)
            cli_die("'%s' is %lld x %lld but '%s' is %lld x %lld: not the same users and items", recs[i]->name,
                    (long long)recs[i]->csr.rows, (long long)recs[i]->csr.cols, ref->name,
                    (long long)ref->csr.rows, (long long)ref->csr.cols);
    }
    for (int i = 0; ref && i < n; i++)
        if (recs[i]->kind == TS_DENSE && recs[i]->shape[0] != ref->csr.cols)
            cli_die("'%s' has %lld rows but there are %lld items", recs[i]->name, (long long)recs[i]->shape[0],
                    (long long)ref->csr.cols);
}

/* meta/dataset: where each record came from, and the matrix sizes. */
static ts_record *provenance(ts_record **recs, int n)
{
    char *json = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&json, &len);
    if (!f) cli_die("out of memory");
    fprintf(f, "{\"writer\": \"convert-pkl\", \"sources\": {");
    for (int i = 0; i < n; i++) {
        fputs(i ? ", " : "", f);
        cli_json_string(f, sources[i].name);            /* paths may hold quotes or backslashes */
        fputs(": ", f);
        cli_json_string(f, sources[i].path);
    }
    fputc('}', f);
    for (int i = 0; i < n; i++)
        if (recs[i]->kind == TS_CSR) {
            fprintf(f, ", \"users\": %lld, \"items\": %lld", (long long)recs[i]->csr.rows, (long long)recs[i]->csr.cols);
            break;
        }
    fputc('}', f);
    if (fclose(f) != 0 || !json) cli_die("out of memory");
    ts_record *r = ts_meta_new("meta/dataset", json);
    free(json);
    if (!r) cli_die("out of memory");
    return r;
}

int main(int argc, char **argv)
{
    cli_stage c = {
        .stage = "convert-pkl",
        .args = "DIR|FILE|NAME=FILE...",
        .summary = "Convert the release's dataset files to a tensor stream: trnMat.pkl, valMat.pkl and\n"
                   "tstMat.pkl become the binary csr matrices `train`, `val` and `test` (users x items);\n"
                   "<modality>_feat.npy becomes `feat/<modality>` (items x D, float32; float16 widened\n"
                   "exactly).  A folder contributes every such file it holds.",
        .details = "Pickles are read by a small interpreter that never runs code from the file: only\n"
                   "numpy arrays and scipy coo/csr/csc matrices are accepted.  Duplicate coordinates\n"
                   "are summed, then every non-zero counts as 1.  Any other file can be named\n"
                   "explicitly, e.g. `convert-pkl train=mine.pkl feat/text=text.npy`.\n\n"
                   "example: convert-pkl ../shared/datasets/tiktok -o tiktok.ts",
        .writes_stream = 1,
    };
    cli_parse(&c, argc, argv);
    if (c.args_n == 0) cli_usage_error("give a dataset folder or files");
    for (int i = 0; i < c.args_n; i++) add_argument(c.args_v[i]);

    ts_record *recs[MAX_SOURCES];
    for (int i = 0; i < nsources; i++)
        recs[i] = is_npy(sources[i].path) ? cli_load_features(sources[i].name, sources[i].path) : load_matrix(&sources[i]);
    check_consistent(recs, nsources);

    ts_writer *w = cli_open(&c);
    for (int i = 0; i < nsources; i++) cli_write(w, recs[i]);
    ts_record *meta = provenance(recs, nsources);
    cli_write(w, meta);
    cli_close(&c, w, NULL);

    ts_record_free(meta);
    for (int i = 0; i < nsources; i++) ts_record_free(recs[i]);
    return 0;
}
