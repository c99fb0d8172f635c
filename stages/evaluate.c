/* evaluate: Recall, NDCG and Precision at K of a pair of embeddings.
 *
 * Reads emb/user [U x d], emb/item [I x d], train [U x I] and the held-out
 * split (test or val, [U x I]) from its inputs and prints one JSON line on
 * stdout: the metrics of ALGORITHM.md section 9, training items excluded,
 * averaged over the users with at least one held-out item.  It writes no
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

int main(int argc, char **argv)
{
    const char *split = "test", *topk = "20", *label = NULL, *log = NULL;
    cli_opt opts[] = {
        {"split", 0, CLI_STR, &split, "NAME", "held-out split to score against: test or val"},
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
                   "the held-out split (test or val) as one JSON line on stdout.",
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
    if (strcmp(split, "test") != 0 && strcmp(split, "val") != 0)
        cli_usage_error("--split is test or val, not '%s'", split);
    int ks[METRICS_MAXK], nk;
    parse_topk(topk, ks, &nk);

    ts_bag bag = {0};
    cli_read_inputs(&c, &bag);
    metrics_scorer sc;      /* emb/user [U x d], emb/item [I x d], train [U x I] */
    const ts_csr *held;     /* the split [U x I] */
    char err[512];
    if (metrics_load(&bag, "emb/user", "emb/item", "train", &sc, err, sizeof err) < 0 ||
        metrics_held(&bag, split, &sc, &held, err, sizeof err) < 0)
        cli_die("%s", err);

    metrics_result res;
    double t0 = cli_seconds();
    if (metrics_evaluate(&sc, held, ks, nk, &res, err, sizeof err) < 0) cli_die("%s", err);
    double seconds = cli_seconds() - t0;
    cli_note("%s: %lld users x %lld items scored in %.3f s (sgemm %.3f s, masking and top-%d %.3f s)", split,
             (long long)res.users, (long long)sc.items, seconds, res.sgemm_seconds, res.k[res.nk - 1],
             res.select_seconds);
    if (log) {      /* the time goes to a side file: the result line stays the same run to run */
        char line[128];
        snprintf(line, sizeof line, "{\"stage\": \"evaluate\", \"split\": \"%s\", \"seconds\": %.3f}", split, seconds);
        cli_append_line(log, line);
    }
    if (res.users == 0) fprintf(stderr, "evaluate: note: no user has a %s item: metrics are null\n", split);

    print_result(split, label, &res);
    ts_bag_free(&bag);
    return 0;
}
