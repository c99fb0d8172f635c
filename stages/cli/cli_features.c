/* cli_features.c: item features from a .npy file as a `feat/<m>` record,
 * and the file-name convention <m>_feat.npy, shared by the data doors
 * (convert-pkl, convert-mmrec). */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "io/npy.h"

ts_record *cli_load_features(const char *name, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) cli_die("%s: cannot open", path);
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) cli_die("%s: not a regular file", path);
    npy_matrix m;
    char err[512];
    if (npy_read_f32(f, st.st_size, &m, err, sizeof err) < 0) cli_die("%s: %s: %s", name, path, err);
    fclose(f);
    int64_t shape[2] = {m.rows, m.cols};
    ts_record *r = ts_dense_new(name, DT_F32, 2, shape);
    if (!r) cli_die("out of memory");
    memcpy(r->data, m.data, r->nbytes);
    /* NaN or infinity in item features would reach the training's exp and
     * softmax: refuse them here, where they enter */
    if (ts_check_finite(r, err, sizeof err) < 0) cli_die("%s: %s: %s: item features must be finite", name, path, err);
    cli_note("%s: %s %lld x %lld %s -> float32", name, path, (long long)m.rows, (long long)m.cols, m.dtype);
    npy_matrix_free(&m);
    return r;
}

int cli_feature_name(const char *file, char *name, size_t cap)
{
    const char *base = strrchr(file, '/'), *suffix = "_feat.npy";
    base = base ? base + 1 : file;
    size_t n = strlen(base), sn = strlen(suffix);
    if (n <= sn || strcmp(base + n - sn, suffix) != 0) return 0;
    snprintf(name, cap, "feat/%.*s", (int)(n - sn), base);
    return 1;
}
