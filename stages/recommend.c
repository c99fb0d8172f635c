/* recommend: the top-K unseen items per user, with their scores.
 *
 * Reads emb/user [U x d], emb/item [I x d] and train [U x I]; ranks every
 * item a user has not interacted with in train by the score user . item
 * (ties: lower item index first) and writes the best K, for every user or
 * those asked for, as TSV on stdout or, with --stream, as the records
 * rec/users [U'], rec/items [U' x K] and rec/scores [U' x K]. */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "kernels/metrics.h"

/* A growing list of user ids. */
typedef struct {
    int32_t *id;   /* [n] */
    int64_t n, cap;
} user_list;

static void users_push(user_list *l, long v)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        int32_t *p = realloc(l->id, (size_t)l->cap * sizeof *p);
        if (!p) cli_die("out of memory");
        l->id = p;
    }
    l->id[l->n++] = (int32_t)v;
}

/* A user id in text [len]: 0 and *v, or -1. */
static int users_parse_id(const char *text, size_t len, long *v)
{
    char buf[32];
    if (len == 0 || len >= sizeof buf) return -1;
    memcpy(buf, text, len);
    buf[len] = 0;
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)buf[i])) return -1;
    errno = 0;
    *v = strtol(buf, NULL, 10);
    return errno || *v > INT32_MAX ? -1 : 0;
}

/* --users 1,5,7: a usage error for anything but ids. */
static void users_from_option(user_list *l, const char *text)
{
    for (const char *p = text;;) {
        size_t len = strcspn(p, ",");
        long v;
        if (users_parse_id(p, len, &v) < 0)
            cli_usage_error("--users needs user ids (whole numbers from 0) separated by commas, not '%s'", text);
        users_push(l, v);
        if (!p[len]) return;
        p += len + 1;
    }
}

/* --users-file FILE: one id per line; blank lines and # comments skipped. */
static void users_from_file(user_list *l, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) cli_die("reading --users-file %s: %s", path, strerror(errno));
    char line[256];
    for (long lineno = 1; fgets(line, sizeof line, f); lineno++) {
        char *p = line, *end = line + strcspn(line, "#\r\n");
        while (p < end && isspace((unsigned char)*p)) p++;
        while (end > p && isspace((unsigned char)end[-1])) end--;
        if (p == end) continue;
        long v;
        if (users_parse_id(p, (size_t)(end - p), &v) < 0)
            cli_die("reading --users-file %s: line %ld: '%.*s' is not a user id", path, lineno, (int)(end - p), p);
        users_push(l, v);
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) cli_die("reading --users-file %s: read error", path);
}

/* Every user, 0..U-1. */
static void users_all(user_list *l, int64_t users)
{
    for (int64_t u = 0; u < users; u++) users_push(l, (long)u);
}

/* The lists as TSV on stdout: user, rank (from 1), item, score. */
static void write_tsv(const user_list *l, int k, const int32_t *items, const float *scores)
{
    printf("user\trank\titem\tscore\n");
    for (int64_t b = 0; b < l->n; b++)
        for (int r = 0; r < k && items[b * k + r] >= 0; r++)
            printf("%d\t%d\t%d\t%.9g\n", l->id[b], r + 1, items[b * k + r], scores[b * k + r]);
    if (fflush(stdout) != 0 || ferror(stdout)) cli_die("writing the TSV to stdout: %s", strerror(errno));
}

/* The lists as records rec/users [n], rec/items and rec/scores [n x k]. */
static void write_stream(cli_stage *c, ts_bag *bag, const user_list *l, int k, const int32_t *items,
                         const float *scores)
{
    ts_writer *w = cli_open(c);
    int64_t shape[2] = {l->n, k};
    cli_write_dense(w, "rec/users", DT_I32, 1, shape, l->id);
    cli_write_dense(w, "rec/items", DT_I32, 2, shape, items);
    cli_write_dense(w, "rec/scores", DT_F32, 2, shape, scores);
    cli_close(c, w, bag);
}

int main(int argc, char **argv)
{
    int k = 20, stream = 0;
    const char *users = NULL, *users_file = NULL;
    cli_opt opts[] = {
        {"k", 0, CLI_INT, &k, "K", "items per user"},
        {"users", 0, CLI_STR, &users, "IDS", "only these users, e.g. 1,5,7 (default: every user)"},
        {"users-file", 0, CLI_STR, &users_file, "FILE", "only the users in FILE, one id per line ('#' comments)"},
        {"stream", 0, CLI_FLAG, &stream, NULL, "write a tensor stream (rec/users, rec/items, rec/scores), not TSV"},
        {0},
    };
    cli_stage c = {
        .stage = "recommend",
        .args = "[INPUT...]",
        .summary = "Recommend to each user the K items with the highest score (emb/user . emb/item)\n"
                   "among those the user has not interacted with in train.",
        .details = "Output: TSV on stdout with a header line, `user rank item score`, rank from 1, best\n"
                   "first; equal scores list the lower item index first.  A user with fewer than K\n"
                   "unseen items gets fewer lines.  With --stream: rec/users int32 [n], rec/items int32\n"
                   "[n x K] and rec/scores float32 [n x K], padded with item -1 and score -inf, written\n"
                   "to -o FILE or stdout.  K larger than the number of items is cut to it.  Users\n"
                   "from --users, then --users-file, in the order given (repeats are kept).  -o, --pass\n"
                   "and --zstd go with --stream only.\n"
                   "\n"
                   "examples:\n"
                   "  recommend run.ts --k 10 --users 0,42 | column -t\n"
                   "  recommend run.ts --stream -o rec.ts",
        .opts = opts,
        .uses = "emb/user,emb/item,train",
        .writes_stream = 1,
    };
    cli_parse(&c, argc, argv);
    if (k < 1) cli_usage_error("--k must be at least 1, not %d", k);
    if (!stream && (c.out || c.pass)) cli_usage_error("-o and --pass go with --stream; the TSV goes to stdout");
    if (!stream) signal(SIGPIPE, SIG_DFL);   /* `recommend | head` ends quietly */
    user_list list = {0};
    if (users) users_from_option(&list, users);
    if (users_file) users_from_file(&list, users_file);

    ts_bag bag = {0};
    cli_read_inputs(&c, &bag);
    metrics_scorer sc;   /* emb/user [U x d], emb/item [I x d], train [U x I] */
    char err[512];
    if (metrics_load(&bag, "emb/user", "emb/item", "train", &sc, err, sizeof err) < 0) cli_die("%s", err);
    if (!users && !users_file) users_all(&list, sc.users);
    if (k > sc.items) k = sc.items > 0 ? (int)sc.items : 1;

    int32_t *items = malloc((size_t)(list.n > 0 ? list.n : 1) * (size_t)k * sizeof *items);   /* [n x k] */
    float *scores = malloc((size_t)(list.n > 0 ? list.n : 1) * (size_t)k * sizeof *scores);   /* [n x k] */
    if (!items || !scores) cli_die("out of memory for %lld lists of %d", (long long)list.n, k);
    double t0 = cli_seconds();
    if (metrics_topk(&sc, list.id, list.n, k, items, scores, err, sizeof err) < 0) cli_die("%s", err);
    cli_note("top %d of %lld items for %lld users in %.3f s", k, (long long)sc.items, (long long)list.n,
             cli_seconds() - t0);

    if (stream) write_stream(&c, &bag, &list, k, items, scores);
    else write_tsv(&list, k, items, scores);
    free(items);
    free(scores);
    free(list.id);
    ts_bag_free(&bag);
    return 0;
}
