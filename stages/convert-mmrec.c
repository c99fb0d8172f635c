/* convert-mmrec: an MMRec dataset folder -> a tensor stream, the same
 * records convert-pkl writes (`train`, `val`, `test`, `feat/<m>`,
 * `meta/dataset`).
 *
 * MMRec's layout: <name>.inter, tab-separated with a header line, columns
 * userID, itemID and x_label (0 train, 1 validation, 2 test; other columns
 * ignored), 0-based ids; <m>_feat.npy, one row per item.  The item count is
 * the feature files' row count (without features: the largest item id plus
 * one), the user count the largest user id plus one.  A (user, item) pair in
 * two splits is a leak between them and an error; a line repeated within a
 * split counts once (interactions are binary in the release). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "kernels/sp.h"

#define MAX_FEATS 32

typedef struct {
    int64_t u, i, line;   /* ids, and the line of the .inter file (1 = header) */
    int split;            /* 0 train, 1 val, 2 test */
} inter;

typedef struct {
    const char *user, *item, *split;   /* column names */
} fields;

static const char *split_names[3] = {"train", "val", "test"};

/* The buffers read_inter fills, held here so that they stay reachable when
 * a later check dies (LeakSanitizer counts only what nothing points to). */
static inter *inters;
static char *line_buf, *header_buf;

/* The column index of name in the header's n names, or die naming the
 * option (opt) that renames it. */
static int column_of(char **names, int n, const char *name, const char *opt, const char *path)
{
    for (int c = 0; c < n; c++)
        if (strcmp(names[c], name) == 0) return c;
    cli_die("%s: line 1: no column '%s' in the header (another name: --%s-field)", path, name, opt);
}

/* Split line (modified in place) at tabs into at most cap fields; returns the count. */
static int split_tabs(char *line, char **f, int cap)
{
    int n = 0;
    for (char *p = line;; p++) {
        if (n < cap) f[n] = p;
        n++;
        p = strchr(p, '\t');
        if (!p) break;
        *p = 0;
    }
    return n;
}

/* A non-negative decimal integer field, or die naming the file and line. */
static int64_t parse_id(const char *s, const char *col, const char *path, int64_t line)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno || v < 0 || s[0] == '+' || s[0] == ' ')
        cli_die("%s: line %lld: %s '%s' is not a non-negative integer", path, (long long)line, col, s);
    if (v >= TS_DIM_MAX)
        cli_die("%s: line %lld: %s %lld is beyond the %lld ids a side may have", path, (long long)line, col, v,
                (long long)TS_DIM_MAX);
    return v;
}

/* Every line of the .inter file: *n interactions into a malloc'd array. */
static inter *read_inter(const char *path, const fields *fl, int64_t *n)
{
    FILE *f = fopen(path, "r");
    if (!f) cli_die("%s: cannot open: %s", path, strerror(errno));
    char *names[256], *v[256];
    size_t cap = 0;
    ssize_t len = getline(&line_buf, &cap, f);
    char *line = line_buf;
    if (len <= 0) cli_die("%s: empty file (expected a header line: %s, %s, %s)", path, fl->user, fl->item, fl->split);
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
    int ncol = split_tabs(line, names, 256);
    if (ncol > 256) cli_die("%s: line 1: more than 256 columns", path);
    header_buf = line_buf;
    line_buf = NULL, cap = 0;
    int cu = column_of(names, ncol, fl->user, "user", path), ci = column_of(names, ncol, fl->item, "item", path),
        cs = column_of(names, ncol, fl->split, "split", path);
    int need = (cu > ci ? cu : ci) > cs ? (cu > ci ? cu : ci) : cs;
    int64_t cnt = 0, room = 1 << 16;
    inter *x = inters = malloc((size_t)room * sizeof *x);
    if (!x) cli_die("out of memory");
    for (int64_t ln = 2; (len = getline(&line_buf, &cap, f)) >= 0; ln++) {
        line = line_buf;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (len == 0) continue;                                   /* blank lines: skipped, as pandas does */
        int nf = split_tabs(line, v, 256);
        if (nf <= need)
            cli_die("%s: line %lld: %d field%s, but column '%s' is field %d of the header", path, (long long)ln, nf,
                    nf == 1 ? "" : "s", names[need], need + 1);
        int64_t lab = parse_id(v[cs], fl->split, path, ln);
        if (lab > 2) cli_die("%s: line %lld: %s %lld is not 0 (train), 1 (validation) or 2 (test)", path,
                             (long long)ln, fl->split, (long long)lab);
        if (cnt == room) {
            room *= 2;
            inter *y = realloc(x, (size_t)room * sizeof *x);
            if (!y) cli_die("out of memory for %lld interactions", (long long)room);
            x = inters = y;
        }
        x[cnt++] = (inter){.u = parse_id(v[cu], fl->user, path, ln), .i = parse_id(v[ci], fl->item, path, ln),
                           .line = ln, .split = (int)lab};
    }
    if (ferror(f)) cli_die("%s: read failed", path);
    fclose(f);
    free(line_buf);
    free(header_buf);
    line_buf = header_buf = NULL;
    *n = cnt;
    return x;
}

static int cmp_pair(const void *a, const void *b)
{
    const inter *x = a, *y = b;
    if (x->u != y->u) return x->u < y->u ? -1 : 1;
    if (x->i != y->i) return x->i < y->i ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line;
}

/* Sorted by (user, item): a pair in two splits is an error naming both lines. */
static void check_leaks(inter *x, int64_t n, const char *path)
{
    qsort(x, (size_t)n, sizeof *x, cmp_pair);
    for (int64_t k = 1; k < n; k++)
        if (x[k].u == x[k - 1].u && x[k].i == x[k - 1].i && x[k].split != x[k - 1].split)
            cli_die("%s: line %lld: user %lld, item %lld is in %s here and in %s at line %lld: a leak between the "
                    "splits", path, (long long)x[k].line, (long long)x[k].u, (long long)x[k].i,
                    split_names[x[k].split], split_names[x[k - 1].split], (long long)x[k - 1].line);
}

/* The split's interactions as a binary U x I csr record. */
static ts_record *split_matrix(const inter *x, int64_t n, int split, int64_t U, int64_t I)
{
    int64_t m = 0;
    for (int64_t k = 0; k < n; k++) m += x[k].split == split;
    int64_t *row = malloc((size_t)(m + 1) * 8), *col = malloc((size_t)(m + 1) * 8);
    double *val = malloc((size_t)(m + 1) * 8);
    if (!row || !col || !val) cli_die("out of memory");
    for (int64_t k = 0, j = 0; k < n; k++)
        if (x[k].split == split) row[j] = x[k].u, col[j] = x[k].i, val[j] = 1, j++;
    ts_csr c;
    if (sp_binary_from_coo(U, I, m, row, col, val, &c) < 0) cli_die("out of memory");
    free(row); free(col); free(val);
    cli_note("%s: %lld x %lld, %lld interactions", split_names[split], (long long)U, (long long)I, (long long)c.nnz);
    ts_record *r = ts_csr_new(split_names[split], &c);
    if (!r) cli_die("out of memory");
    return r;
}

/* The feature files: those named (NAME=FILE or <m>_feat.npy), else every
 * <m>_feat.npy in dir, by name. */
static int find_features(cli_stage *c, const char *dir, int none, char names[][128], char paths[][4096])
{
    int n = 0;
    if (none && c->args_n > 1) cli_usage_error("--no-features, yet feature files named");
    if (none) return 0;
    for (int a = 1; a < c->args_n; a++) {
        const char *arg = c->args_v[a], *eq = strchr(arg, '=');
        if (n == MAX_FEATS) cli_usage_error("more than %d feature files", MAX_FEATS);
        if (eq && strncmp(arg, "feat/", 5) == 0) {                    /* feat/<m>=FILE */
            snprintf(names[n], 128, "%.*s", (int)(eq - arg), arg);
            snprintf(paths[n], 4096, "%s", eq + 1);
        } else if (cli_feature_name(arg, names[n], 128)) {            /* <m>_feat.npy */
            snprintf(paths[n], 4096, "%s", arg);
        } else {
            cli_usage_error("%s: not a feature file (<m>_feat.npy, or feat/<m>=FILE)", arg);
        }
        n++;
    }
    if (c->args_n > 1) return n;
    struct dirent **list;
    int k = scandir(dir, &list, NULL, alphasort);
    if (k < 0) cli_die("%s: cannot read the folder", dir);
    for (int j = 0; j < k; j++) {
        if (n < MAX_FEATS && cli_feature_name(list[j]->d_name, names[n], 128)) {
            snprintf(paths[n], 4096, "%s/%s", dir, list[j]->d_name);
            n++;
        }
        free(list[j]);
    }
    free(list);
    return n;
}

/* <name>.inter in dir: the one named by --name, else the folder's only one. */
static void find_inter(const char *dir, const char *name, char *path, size_t cap)
{
    if (name) { snprintf(path, cap, "%s/%s.inter", dir, name); return; }
    DIR *d = opendir(dir);
    if (!d) cli_die("%s: cannot read the folder: %s", dir, strerror(errno));
    int found = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n > 6 && strcmp(e->d_name + n - 6, ".inter") == 0) {
            if (found++) cli_die("%s: several .inter files; choose one with --name", dir);
            snprintf(path, cap, "%s/%s", dir, e->d_name);
        }
    }
    closedir(d);
    if (!found) cli_die("%s: no <name>.inter file here (MMRec's interactions)", dir);
}

int main(int argc, char **argv)
{
    const char *name = NULL;
    int no_features = 0;
    fields fl = {"userID", "itemID", "x_label"};
    cli_opt opts[] = {
        {"name", 0, CLI_STR, &name, "NAME", "read DIR/NAME.inter (default: the folder's only .inter)"},
        {"user-field", 0, CLI_STR, &fl.user, "COL", "the user id column (MMRec's USER_ID_FIELD)"},
        {"item-field", 0, CLI_STR, &fl.item, "COL", "the item id column (MMRec's ITEM_ID_FIELD)"},
        {"split-field", 0, CLI_STR, &fl.split, "COL", "the split column: 0 train, 1 validation, 2 test"},
        {"no-features", 0, CLI_FLAG, &no_features, NULL, "read no feature file (items: the largest id + 1)"},
        {0},
    };
    cli_stage c = {
        .stage = "convert-mmrec",
        .args = "DIR [FEATURES...]",
        .summary = "Convert an MMRec dataset folder to a tensor stream with convert-pkl's records:\n"
                   "<name>.inter (tab-separated, header, 0-based ids, x_label 0/1/2) becomes the binary\n"
                   "csr matrices `train`, `val`, `test`; <m>_feat.npy becomes `feat/<m>`.  Features: the\n"
                   "files named (<m>_feat.npy or feat/<m>=FILE), else every <m>_feat.npy in DIR.",
        .details = "Items: the feature files' row count (without features, the largest item id + 1);\n"
                   "users: the largest user id + 1.  A (user, item) pair in two splits is an error (a\n"
                   "leak); a line repeated within a split counts once.\n\n"
                   "example: convert-mmrec data/baby | build-graph --pass -o baby.ts",
        .opts = opts,
        .writes_stream = 1,
    };
    cli_parse(&c, argc, argv);
    if (c.args_n < 1) cli_usage_error("give an MMRec dataset folder");
    const char *dir = c.args_v[0];

    static char fnames[MAX_FEATS][128], fpaths[MAX_FEATS][4096];
    char ipath[4096];
    find_inter(dir, name, ipath, sizeof ipath);
    int nf = find_features(&c, dir, no_features, fnames, fpaths);
    ts_record *recs[3 + MAX_FEATS + 1];
    int64_t n, U = 0, I = -1, maxi = -1;
    for (int k = 0; k < nf; k++) {
        recs[3 + k] = cli_load_features(fnames[k], fpaths[k]);
        if (I >= 0 && recs[3 + k]->shape[0] != I)
            cli_die("%s has %lld rows but %s has %lld: the feature files disagree on the items", fpaths[k],
                    (long long)recs[3 + k]->shape[0], fpaths[0], (long long)I);
        I = recs[3 + k]->shape[0];
    }
    inter *x = read_inter(ipath, &fl, &n);
    for (int64_t k = 0; k < n; k++) {
        if (x[k].u >= U) U = x[k].u + 1;
        if (x[k].i > maxi) maxi = x[k].i;
        if (I >= 0 && x[k].i >= I)
            cli_die("%s: line %lld: item %lld, but the feature files have %lld rows (items 0..%lld)", ipath,
                    (long long)x[k].line, (long long)x[k].i, (long long)I, (long long)I - 1);
    }
    if (n == 0) cli_die("%s: no interactions", ipath);
    if (I < 0) I = maxi + 1;
    check_leaks(x, n, ipath);
    for (int s = 0; s < 3; s++) recs[s] = split_matrix(x, n, s, U, I);
    free(inters);                                     /* x */

    char *json = NULL;
    size_t jl = 0;
    FILE *mf = open_memstream(&json, &jl);
    if (!mf) cli_die("out of memory");
    fprintf(mf, "{\"writer\": \"convert-mmrec\", \"sources\": {\"inter\": ");
    cli_json_string(mf, ipath);
    for (int k = 0; k < nf; k++) fputs(", ", mf), cli_json_string(mf, fnames[k]), fputs(": ", mf), cli_json_string(mf, fpaths[k]);
    fprintf(mf, "}, \"users\": %lld, \"items\": %lld}", (long long)U, (long long)I);
    if (fclose(mf) != 0 || !(recs[3 + nf] = ts_meta_new("meta/dataset", json))) cli_die("out of memory");
    free(json);

    ts_writer *w = cli_open(&c);
    for (int k = 0; k < 4 + nf; k++) cli_write(w, recs[k]);
    cli_close(&c, w, NULL);
    for (int k = 0; k < 4 + nf; k++) ts_record_free(recs[k]);
    return 0;
}
