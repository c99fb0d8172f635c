/* pick: merge, select, convert and recompress tensor streams.
 *
 * Reads its inputs as one bag (a later record replaces an earlier one of the
 * same name) and writes the records that --only / --drop leave, optionally
 * widening every float tensor to float32 and at the compression --zstd
 * asks.  `pick run.ts --only emb/user,emb/item -o emb.ts` is how a user takes
 * one product out of a pipeline's stream. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int main(int argc, char **argv)
{
    const char *only = NULL, *drop = NULL;
    int f32 = 0;
    cli_opt opts[] = {
        {"only", 0, CLI_STR, &only, "NAMES", "keep only these records (comma-separated, globs: 'emb/*')"},
        {"drop", 0, CLI_STR, &drop, "NAMES", "leave out these records (comma-separated, globs)"},
        {"f32", 0, CLI_FLAG, &f32, NULL, "widen every dense f2/f8 tensor to float32 (f2 exactly)"},
        {0},
    };
    cli_stage c = {
        .stage = "pick",
        .args = "[INPUT...]",
        .summary = "Merge tensor streams into one bag of named records and write the ones selected,\n"
                   "converted and compressed as asked.",
        .details = "examples:\n"
                   "  pick run.ts --only 'emb/*' -o emb.ts     take the embeddings out of a stream\n"
                   "  pick --zstd 19 big.ts -o small.ts        recompress\n"
                   "  pick a.ts b.ts -o merged.ts              b's records replace a's of the same name",
        .opts = opts,
        .writes_stream = 1,
    };
    cli_parse(&c, argc, argv);
    if (c.pass) cli_usage_error("--pass makes no sense for pick: it writes its inputs already");

    ts_bag bag = {0};
    cli_read_inputs(&c, &bag);
    if (only) {
        size_t matched = 0;
        for (size_t i = 0; i < bag.n; i++) matched += (size_t)cli_match(only, bag.recs[i]->name);
        if (!matched) cli_die("no record matches --only %s", only);
    }
    ts_writer *w = cli_open(&c);
    for (size_t i = 0; i < bag.n; i++) {
        ts_record *r = bag.recs[i];
        if (only && !cli_match(only, r->name)) continue;
        if (drop && cli_match(drop, r->name)) continue;
        if (f32 && r->kind == TS_DENSE && (r->dtype == DT_F16 || r->dtype == DT_F64) && ts_record_to_f32(r) < 0)
            cli_die("out of memory widening '%s'", r->name);
        cli_write(w, r);
    }
    cli_close(&c, w, NULL);
    ts_bag_free(&bag);
    return 0;
}
