/* evaluate: Recall, NDCG and Precision at K of a pair of embeddings.
 *
 * Reads emb/user [U x d], emb/item [I x d], train [U x I] and the held-out
 * split (test or val, [U x I]; or both, --split test,val) from its inputs
 * and prints one JSON line per split on stdout: the metrics of ALGORITHM.md
 * section 9, training items excluded, averaged over the users with at
 * least one held-out item.  It writes no
 * stream, so it can end a pipe, and any model's embeddings will do. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "kernels/metrics.h"

/* "10,20,50" into ks [*nk]; a usage error for anything else. */
static void parse_topk(const char *text, int *ks, int *nk)
{
    const char *p = text;
    *nk = 0;
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 1 || v > 1000000000L || (*end && *end != ',') || *p == '+' || *p == ' ')
            cli_usage_error("--topk needs whole numbers of at least 1 separated by commas, not '%s'", text);
        if (*nk == METRICS_MAXK) cli_usage_error("--topk takes at most %d values", METRICS_MAXK);
        ks[(*nk)++] = (int)v;
        if (!*end) return;
        p = end + 1;
    }
}

/* One metric value: null when no user counted. */
static void print_value(const char *key, int k, double v, int64_t users)
{
    if (users > 0) printf(", \"%s@%d\": %.8g", key, k, v);
    else printf(", \"%s@%d\": null", key, k);
}

/* The one JSON line. */
static void print_result(const char *split, const char *label, const metrics_result *r)
{
    printf("{");
    if (label) {
        printf("\"label\": ");
        cli_json_string(stdout, label);
        printf(", ");
    }
    printf("\"split\": ");
    cli_json_string(stdout, split);
    printf(", \"users\": %lld", (long long)r->users);
    for (int i = 0; i < r->nk; i++) {
        print_value("recall", r->k[i], r->recall[i], r->users);
        print_value("ndcg", r->k[i], r->ndcg[i], r->users);
        print_value("precision", r->k[i], r->precision[i], r->users);
    }
    printf("}\n");
    if (fflush(stdout) != 0 || ferror(stdout)) cli_die("writing the result to stdout: %s", strerror(errno));
}

/* "test", "val", "test,val" or "val,test" into names [*n]; a usage error
 * for anything else. */
static void parse_splits(const char *text, const char **names, int *n)
{
    static const char *const known[2] = {"test", "val"};
    const char *p = text;
    *n = 0;
    for (;;) {
        size_t len = strcspn(p, ",");
        int k = 0;
        while (k < 2 && !(strlen(known[k]) == len && strncmp(p, known[k], len) == 0)) k++;
        if (k == 2 || *n == 2 || (*n == 1 && names[0] == known[k]))      /* unknown, a third, or twice */
            cli_usage_error("--split is test, val, or both comma-separated (test,val), not '%s'", text);
        names[(*n)++] = known[k];
        if (!p[len]) return;
        p += len + 1;
    }
}

int main(int argc, char **argv)
{
    const char *split = "test", *topk = "20", *label = NULL, *log = NULL;
    cli_opt opts[] = {
        {"split", 0, CLI_STR, &split, "NAME[,NAME]", "held-out split(s) to score against: test, val or test,val"},
        {"topk", 0, CLI_STR, &topk, "K[,K...]", "list lengths, e.g. 10,20,50"},
        {"label", 0, CLI_STR, &label, "TEXT", "add \"label\": TEXT to the JSON line"},
        {"log", 0, CLI_STR, &log, "FILE", "append {\"stage\": \"evaluate\", \"split\": ..., \"seconds\": ...} to FILE"},
        {0},
    };
    cli_stage c = {
        .stage = "evaluate",
        .args = "[INPUT...]",
        .summary = "Score every user against every item with the embeddings emb/user and emb/item, leave\n"
                   "out the user's items in train, and print Recall, NDCG and Precision at each K over\n"
                   "the held-out split (test or val) as one JSON line on stdout; --split test,val\n"
                   "prints one line per split, in that order, from one read of the inputs.",
        .details = "Only users with at least one held-out item count.  Equal scores rank the lower item\n"
                   "index first.  When no user has a held-out item, \"users\" is 0, every metric is\n"
                   "null, a note goes to stderr, and the exit status is still 0.\n"
                   "\n"
                   "example:\n"
                   "  evaluate run.ts --topk 10,20 --label epoch-7\n"
                   "  {\"label\": \"epoch-7\", \"split\": \"test\", \"users\": 6003, \"recall@10\": ..., ...}",
        .opts = opts,
        .uses = "emb/user,emb/item,train,test,val",
        .writes_stream = 0,
    };
    cli_parse(&c, argc, argv);
    const char *splits[2];
    int nsplit;
    parse_splits(split, splits, &nsplit);
    int ks[METRICS_MAXK], nk;
    parse_topk(topk, ks, &nk);

    ts_bag bag = {0};
    cli_read_inputs(&c, &bag);
    metrics_scorer sc;      /* emb/user [U x d], emb/item [I x d], train [U x I] */
    char err[512];
    if (metrics_load(&bag, "emb/user", "emb/item", "train", &sc, err, sizeof err) < 0) cli_die("%s", err);
    const ts_csr *held[2];  /* each split [U x I], all checked before any is scored */
    for (int i = 0; i < nsplit; i++)
        if (metrics_held(&bag, splits[i], &sc, &held[i], err, sizeof err) < 0) cli_die("%s", err);

    for (int i = 0; i < nsplit; i++) {
        metrics_result res;
        double t0 = cli_seconds();
        if (metrics_evaluate(&sc, held[i], ks, nk, &res, err, sizeof err) < 0) cli_die("%s", err);
        double seconds = cli_seconds() - t0;
        cli_note("%s: %lld users x %lld items scored in %.3f s (sgemm %.3f s, masking and top-%d %.3f s)", splits[i],
                 (long long)res.users, (long long)sc.items, seconds, res.sgemm_seconds, res.k[res.nk - 1],
                 res.select_seconds);
        if (log) {  /* the time goes to a side file: the result line stays the same run to run */
            char line[128];
            snprintf(line, sizeof line, "{\"stage\": \"evaluate\", \"split\": \"%s\", \"seconds\": %.3f}", splits[i],
                     seconds);
            cli_append_line(log, line);
        }
        if (res.users == 0) fprintf(stderr, "evaluate: note: no user has a %s item: metrics are null\n", splits[i]);
        print_result(splits[i], label, &res);
    }
    ts_bag_free(&bag);
    return 0;
}
