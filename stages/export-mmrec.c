/* export-mmrec: a tensor stream's split and features -> an MMRec dataset
 * folder, so MMRec's baselines run on exactly our split.
 *
 * Writes DIR/<name>.inter (tab-separated: userID, itemID, x_label with 0
 * train, 1 validation, 2 test; one line per interaction, by split, user and
 * item) and DIR/<m>_feat.npy (float32) for every `feat/<m>`; convert-mmrec
 * reads them back to the same records.  Each file is written under a
 * temporary name and renamed when complete. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "io/npy.h"

/* Open DIR/NAME's temporary for writing (named as the stream writer names
 * its own, PATH.tmp.HOST.PID): into tmp, the final name into path. */
static FILE *open_tmp(const char *dir, const char *name, char *path, char *tmp, size_t cap)
{
    if ((size_t)snprintf(path, cap, "%s/%s", dir, name) >= cap || (size_t)snprintf(tmp, cap, "%s.tmp.%s.%ld", path, ts_tmp_host(), (long)getpid()) >= cap)
        cli_die("%s/%s: path too long", dir, name);
    FILE *f = fopen(tmp, "wb");
    if (!f) cli_die("%s: cannot create: %s", tmp, strerror(errno));
    return f;
}

/* mkdir -p dir */
static void make_folder(const char *dir)
{
    char p[4096];
    if ((size_t)snprintf(p, sizeof p, "%s", dir) >= sizeof p) cli_die("%s: path too long", dir);
    for (char *s = p + 1;; s++) {
        char c = *s;
        if (c != '/' && c != 0) continue;
        *s = 0;
        struct stat st;
        if (mkdir(p, 0777) != 0 && (errno != EEXIST || stat(p, &st) != 0 || !S_ISDIR(st.st_mode)))
            cli_die("%s: cannot make the folder: %s", p, strerror(errno));
        if (!c) break;
        *s = '/';
    }
}

static void close_rename(FILE *f, const char *tmp, const char *path)
{
    if (ferror(f) | (fclose(f) != 0) || rename(tmp, path) != 0) {
        unlink(tmp);
        cli_die("%s: write failed: %s", path, strerror(errno));
    }
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *name = NULL;
    cli_opt opts[] = {
        {"output", 'o', CLI_STR, &dir, "DIR", "the MMRec dataset folder to write (made if absent)"},
        {"name", 0, CLI_STR, &name, "NAME", "the dataset's name: DIR/NAME.inter (default: DIR's own name)"},
        {0},
    };
    cli_stage c = {
        .stage = "export-mmrec",
        .args = "[INPUT...]",
        .summary = "Write `train`, `val`, `test` and every `feat/<m>` as an MMRec dataset folder:\n"
                   "DIR/NAME.inter (userID, itemID, x_label: 0 train, 1 validation, 2 test) and\n"
                   "DIR/<m>_feat.npy.  convert-mmrec reads it back to the same records.",
        .details = "Users after the last one with an interaction are not in the .inter file, so they\n"
                   "do not come back (a note says how many).\n\n"
                   "example: convert-pkl ../shared/datasets/tiktok | export-mmrec -o mmrec/tiktok",
        .opts = opts,
        .uses = "train,val,test,feat/*",
    };
    cli_parse(&c, argc, argv);
    if (!dir) cli_usage_error("give the folder to write with -o DIR");
    static char dirbuf[4096];                    /* without trailing slashes */
    snprintf(dirbuf, sizeof dirbuf, "%s", dir);
    for (size_t n = strlen(dirbuf); n > 1 && dirbuf[n - 1] == '/';) dirbuf[--n] = 0;
    dir = dirbuf;
    if (!name) {                                 /* DIR's own name: "data/baby/" -> "baby" */
        const char *slash = strrchr(dir, '/');
        name = slash ? slash + 1 : dir;
    }
    if (!name[0] || strchr(name, '/')) cli_usage_error("--name '%s' is not a file name", name);

    ts_bag bag = {0};
    cli_read_inputs(&c, &bag);
    const ts_csr *split[3];
    const char *names[3] = {"train", "val", "test"};
    split[0] = cli_need_csr(&bag, "train", -1, -1);
    int64_t U = split[0]->rows, I = split[0]->cols, last_user = -1;
    for (int s = 1; s < 3; s++) split[s] = ts_bag_get(&bag, names[s]) ? cli_need_csr(&bag, names[s], U, I) : NULL;

    make_folder(dir);
    char path[4096], tmp[4096], file[300];
    snprintf(file, sizeof file, "%s.inter", name);
    FILE *f = open_tmp(dir, file, path, tmp, sizeof path);
    fprintf(f, "userID\titemID\tx_label\n");
    int64_t lines = 0;
    for (int s = 0; s < 3; s++) {
        const ts_csr *m = split[s];
        for (int64_t u = 0; m && u < m->rows; u++)
            for (int64_t k = m->indptr[u]; k < m->indptr[u + 1]; k++) {
                fprintf(f, "%lld\t%d\t%d\n", (long long)u, m->indices[k], s);
                if (u > last_user) last_user = u;
                lines++;
            }
    }
    close_rename(f, tmp, path);
    cli_note("%s: %lld interactions of %lld users and %lld items", path, (long long)lines, (long long)U, (long long)I);
    if (last_user + 1 < U)
        cli_note("users %lld..%lld have no interaction, so convert-mmrec will see %lld users, not %lld",
                 (long long)last_user + 1, (long long)U - 1, (long long)last_user + 1, (long long)U);

    for (size_t r = 0; r < bag.n; r++) {
        ts_record *t = bag.recs[r];
        if (!t->name || strncmp(t->name, "feat/", 5) != 0) continue;
        if (t->kind != TS_DENSE || t->ndim != 2 || t->shape[0] != I || ts_record_to_f32(t) < 0)
            cli_die("'%s' is not a float [%lld x D] feature table", t->name, (long long)I);
        if (strchr(t->name + 5, '/') || !t->name[5]) cli_die("'%s': the modality name is not a file name", t->name);
        snprintf(file, sizeof file, "%.250s_feat.npy", t->name + 5);
        f = open_tmp(dir, file, path, tmp, sizeof path);
        char err[256];
        if (npy_write_f32(f, t->data, t->shape[0], t->shape[1], err, sizeof err) < 0) {
            unlink(tmp);
            cli_die("%s: %s", path, err);
        }
        close_rename(f, tmp, path);
        cli_note("%s: %lld x %lld", path, (long long)t->shape[0], (long long)t->shape[1]);
    }
    ts_bag_free(&bag);
    return 0;
}
