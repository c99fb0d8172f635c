/* inspect: list what a tensor stream holds.
 *
 * One line per record: name, kind, dtype, shape, nnz, min / max / mean of
 * the values, and the CRC-32C of the payload (equal payloads, equal
 * checksums, whatever the compression).  --json prints one JSON object per
 * record instead.  Records are read and dropped one at a time, so it works
 * at the end of a pipe on streams of any size. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

typedef struct {
    double min, max, mean;
    int64_t count, nan;
} stats;

static void stats_of(const ts_record *r, stats *s)
{
    memset(s, 0, sizeof *s);
    s->min = INFINITY;
    s->max = -INFINITY;
    const void *p = r->kind == TS_CSR ? (const void *)r->csr.values : r->data;
    dt_type t = r->kind == TS_CSR ? DT_F32 : r->dtype;
    int64_t n = r->kind == TS_CSR ? r->csr.nnz : ts_numel(r);
    double sum = 0;
    float buf[1024];
    for (int64_t i = 0; i < n; i += 1024) {      /* convert in chunks */
        int64_t k = n - i < 1024 ? n - i : 1024;
        dt_to_f32(buf, (const char *)p + (size_t)i * dt_size(t), t, (size_t)k);
        if (t == DT_F64 || t == DT_I64) {        /* keep full precision */
            for (int64_t j = 0; j < k; j++) {
                double v;
                if (t == DT_F64) memcpy(&v, (const char *)p + (size_t)(i + j) * 8, 8);
                else { int64_t x; memcpy(&x, (const char *)p + (size_t)(i + j) * 8, 8); v = (double)x; }
                if (isnan(v)) { s->nan++; continue; }
                if (v < s->min) s->min = v;
                if (v > s->max) s->max = v;
                sum += v;
            }
            continue;
        }
        for (int64_t j = 0; j < k; j++) {
            double v = buf[j];
            if (isnan(v)) { s->nan++; continue; }
            if (v < s->min) s->min = v;
            if (v > s->max) s->max = v;
            sum += v;
        }
    }
    s->count = n - s->nan;
    s->mean = s->count ? sum / (double)s->count : NAN;
    if (!s->count) s->min = s->max = NAN;
}

static void shape_str(const ts_record *r, char *dst, size_t cap)
{
    if (r->kind == TS_CSR) { snprintf(dst, cap, "%lldx%lld", (long long)r->csr.rows, (long long)r->csr.cols); return; }
    size_t k = 0;
    dst[0] = 0;
    for (int i = 0; i < r->ndim && k < cap; i++)
        k += (size_t)snprintf(dst + k, cap - k, "%s%lld", i ? "x" : "", (long long)r->shape[i]);
    if (r->ndim == 0) snprintf(dst, cap, "scalar");
}

static void json_num(double v)
{
    if (isfinite(v)) printf("%.9g", v);
    else printf("null");
}

static void show_json(const ts_record *r)
{
    printf("{\"name\": ");
    if (r->name) cli_json_string(stdout, r->name); else printf("null");
    if (r->kind == TS_OTHER) {
        printf(", \"kind\": \"other\", \"keys\": [");
        for (size_t i = 0; i < r->nfields; i++) { if (i) printf(", "); cli_json_string(stdout, r->fields[i].key); }
        printf("], \"crc32c\": \"%08x\"}\n", ts_record_crc(r));
        return;
    }
    stats s;
    stats_of(r, &s);
    printf(", \"kind\": \"%s\", \"dtype\": \"%s\", \"shape\": [", r->kind == TS_CSR ? "csr" : "dense",
           r->kind == TS_CSR ? "<f4" : dt_name(r->dtype));
    if (r->kind == TS_CSR) printf("%lld, %lld], \"nnz\": %lld", (long long)r->csr.rows, (long long)r->csr.cols,
                                  (long long)r->csr.nnz);
    else {
        for (int i = 0; i < r->ndim; i++) printf("%s%lld", i ? ", " : "", (long long)r->shape[i]);
        printf("], \"nnz\": null");
    }
    printf(", \"min\": "); json_num(s.min);
    printf(", \"max\": "); json_num(s.max);
    printf(", \"mean\": "); json_num(s.mean);
    printf(", \"nan\": %lld, \"crc32c\": \"%08x\"}\n", (long long)s.nan, ts_record_crc(r));
}

static void show_line(const ts_record *r)
{
    char shape[128];
    const char *name = r->name ? r->name : "(no name)";
    if (r->kind == TS_OTHER) {
        char keys[256] = "";
        size_t k = 0;
        for (size_t i = 0; i < r->nfields && k < sizeof keys; i++)
            k += (size_t)snprintf(keys + k, sizeof keys - k, "%s%s", i ? "," : "", r->fields[i].key);
        printf("%-28s %-6s %-5s %-16s %10s  {%s}\n", name, "other", "-", "-", "-", keys);
        return;
    }
    stats s;
    stats_of(r, &s);
    shape_str(r, shape, sizeof shape);
    char nnz[32] = "-";
    if (r->kind == TS_CSR) snprintf(nnz, sizeof nnz, "%lld", (long long)r->csr.nnz);
    printf("%-28s %-6s %-5s %-16s %10s %12.6g %12.6g %12.6g  %08x%s\n", name, r->kind == TS_CSR ? "csr" : "dense",
           r->kind == TS_CSR ? "<f4" : dt_name(r->dtype), shape, nnz, s.min, s.max, s.mean, ts_record_crc(r),
           s.nan ? "  (has NaN)" : "");
}

static int same_name(const char *name, void *want) { return strcmp(name, want) == 0; }

int main(int argc, char **argv)
{
    int json = 0;
    const char *print = NULL;
    cli_opt opts[] = {
        {"json", 0, CLI_FLAG, &json, NULL, "one JSON object per record, for scripts"},
        {"print", 0, CLI_STR, &print, "NAME", "print the text ('json' field) of metadata record NAME, e.g. log/train"},
        {0},
    };
    cli_stage c = {
        .stage = "inspect",
        .args = "[INPUT...]",
        .summary = "List the records of tensor streams (files, or stdin when none or '-'): name, kind,\n"
                   "dtype, shape, non-zeros, min / max / mean of the values, and the CRC-32C of the\n"
                   "payload.  Reads one record at a time.",
        .details = "example: convert-pkl ../shared/datasets/tiktok | inspect",
        .opts = opts,
    };
    cli_parse(&c, argc, argv);
    static char *stdin_only[] = {"-"};
    char **inputs = c.args_n ? c.args_v : stdin_only;
    int n = c.args_n ? c.args_n : 1;
    if (print) {                      /* one metadata record's text, for scripts */
        int found = 0;
        for (int i = 0; i < n; i++) {
            ts_reader *rd = ts_reader_open(inputs[i]);
            if (!rd) cli_die("out of memory");
            ts_reader_filter(rd, same_name, (void *)print);   /* tensors are read past, not kept */
            ts_record *r;
            int st;
            while ((st = ts_reader_next(rd, &r)) == 1) {
                if (r->kind == TS_OTHER && r->name && strcmp(r->name, print) == 0) {
                    char *text = ts_record_str(r, "json");
                    if (!text) cli_die("record '%s' has no 'json' text", print);
                    printf("%s\n", text);
                    free(text);
                    found = 1;
                }
                ts_record_free(r);
            }
            if (st < 0) cli_die("reading %s", ts_reader_error(rd));
            ts_reader_close(rd);
        }
        if (!found) cli_die("no metadata record '%s' in the inputs", print);
        return 0;
    }
    if (!json) printf("%-28s %-6s %-5s %-16s %10s %12s %12s %12s  %s\n", "name", "kind", "dtype", "shape", "nnz",
                      "min", "max", "mean", "crc32c");
    for (int i = 0; i < n; i++) {
        ts_reader *rd = ts_reader_open(inputs[i]);
        if (!rd) cli_die("out of memory");
        ts_record *r;
        int st;
        while ((st = ts_reader_next(rd, &r)) == 1) {
            if (json) show_json(r); else show_line(r);
            ts_record_free(r);
        }
        if (st < 0) { fflush(stdout); cli_die("reading %s", ts_reader_error(rd)); }
        ts_reader_close(rd);
    }
    return 0;
}
