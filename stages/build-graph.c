/* build-graph: the normalised user-item graph of the training interactions.
 *
 * Reads its inputs as one bag, takes the csr `train` (U x I) and writes
 * `graph/ui`, the (U+I) x (U+I) matrix D^-1/2 (A + I) D^-1/2 of
 * ALGORITHM.md section 2 (common/kernels/graph.c), optionally with the release's
 * edge dropout (--keep-rate < 1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "kernels/graph.h"


typedef struct {
    const char *from, *to;
    double keep;
    int seed;
} options;

/* The interactions record, which must be a csr matrix. */
static const ts_csr *load_interactions(cli_stage *c, ts_bag *bag, const char *name)
{
    cli_read_inputs(c, bag);
    const ts_record *r = cli_need(bag, name);
    if (r->kind != TS_CSR)
        cli_die("record '%s' is %s, not a csr matrix of interactions", name,
                r->kind == TS_DENSE ? "a dense tensor" : "a metadata record");
    if (r->csr.rows + r->csr.cols > INT32_MAX)
        cli_die("'%s' has %lld users and %lld items: more graph rows than int32 indices hold", name,
                (long long)r->csr.rows, (long long)r->csr.cols);
    return &r->csr;
}

/* The graph, with dropout when asked; a progress line says what was made. */
static void compute_graph(const options *o, const ts_csr *R, ts_csr *G)
{
    double t0 = cli_seconds();
    if (graph_from_interactions(R, G) < 0) cli_die("building the graph: out of memory");
    int64_t full = G->nnz;
    char drop[160] = "";
    if (o->keep < 1) {
        rng_t rng;
        rng_seed(&rng, (uint64_t)(int64_t)o->seed, rng_stream(RNG_UI_DROP, 0, 0, 0));
        graph_dropout(G, o->keep, &rng);
        snprintf(drop, sizeof drop, ", %lld kept of %lld (keep rate %g, seed %d)", (long long)G->nnz,
                 (long long)full, o->keep, o->seed);
    }
    cli_note("%s: %lld x %lld, %lld non-zeros from '%s' (%lld users x %lld items, %lld stored)%s, %.3f s", o->to,
             (long long)G->rows, (long long)G->cols, (long long)full, o->from, (long long)R->rows,
             (long long)R->cols, (long long)R->nnz, drop, cli_seconds() - t0);
}

static void write_graph(cli_stage *c, const options *o, const ts_csr *G, const ts_bag *bag)
{
    ts_writer *w = cli_open(c);
    cli_write_csr(w, o->to, G);
    cli_close(c, w, bag);
}

int main(int argc, char **argv)
{
    options o = {.from = "train", .to = "graph/ui", .keep = 1.0, .seed = 421};
    cli_opt opts[] = {
        {"from", 0, CLI_STR, &o.from, "NAME", "the interactions, a users x items csr record"},
        {"to", 0, CLI_STR, &o.to, "NAME", "name of the graph written"},
        {"keep-rate", 0, CLI_FLOAT, &o.keep, "X", "edge dropout: keep each stored entry with probability X, scaled by 1/X"},
        {"seed", 0, CLI_INT, &o.seed, "N", "random seed of the edge dropout"},
        {0},
    };
    cli_stage c = {
        .stage = "build-graph",
        .args = "[INPUT...]",
        .summary = "Build the normalised user-item graph D^-1/2 (A + I) D^-1/2, A = [[0, R], [R^T, 0]]\n"
                   "binarised, from the interactions R (users first, then items).",
        .details = "examples:\n"
                   "  convert-pkl DATA | build-graph --pass | ...    add graph/ui to a pipeline\n"
                   "  build-graph data.ts -o graph.ts                  only the graph",
        .opts = opts,
        .writes_stream = 1,
    };
    cli_parse(&c, argc, argv);
    if (!(o.keep > 0 && o.keep <= 1)) cli_usage_error("--keep-rate takes a probability in (0, 1], not %g", o.keep);

    ts_bag bag = {0};
    ts_csr G;
    const ts_csr *R = load_interactions(&c, &bag, o.from);
    compute_graph(&o, R, &G);
    write_graph(&c, &o, &G, &bag);
    ts_csr_free(&G);
    ts_bag_free(&bag);
    return 0;
}
