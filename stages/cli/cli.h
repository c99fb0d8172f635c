/* cli.h: the frame every stage's main runs in.
 *
 * It gives the shared command-line habits of docs/DESIGN.md so a stage only
 * declares its own options and computes: inputs as one bag of named
 * records, -o FILE written atomically (or stdout, never a terminal),
 * --pass, --zstd, -q, -h/--help with a usage table, exit codes (0 done,
 * 1 runtime error via cli_die, 2 usage error), progress on stderr. */
#ifndef CLI_H
#define CLI_H

#include <stdarg.h>
#include <stdio.h>

#include "io/ts.h"

typedef enum { CLI_FLAG, CLI_INT, CLI_FLOAT, CLI_STR } cli_type;

typedef struct {
    const char *name;     /* long name without "--" */
    char shortc;          /* short letter, or 0 */
    cli_type type;
    void *dst;            /* int* (FLAG, INT), double* (FLOAT), const char ** (STR) */
    const char *metavar;  /* e.g. "X"; NULL for flags */
    const char *help;     /* one line; the default is appended from *dst */
} cli_opt;

typedef struct {
    /* set by the stage */
    const char *stage;    /* program name, prefix of every message */
    const char *args;     /* positional synopsis, e.g. "[INPUT...]" */
    const char *summary;  /* what it does, one or more lines */
    const char *details;  /* more help after the options, or NULL */
    const cli_opt *opts;  /* the stage's own options, ended by {0} */
    int writes_stream;    /* has -o, --pass and --zstd */
    const char *uses;     /* comma-separated globs of the records the stage reads;
                           * without --pass, others are skipped while reading
                           * (never held in memory).  NULL: keep everything. */
    /* filled by cli_parse */
    const char *out;      /* -o FILE, or NULL for stdout */
    int pass;             /* --pass */
    int zlevel;           /* --zstd level (0 raw) */
    const char *reuse;    /* --reuse FILE: overwritten in place as the output, or NULL */
    int quiet;            /* -q */
    char **args_v;        /* positional arguments */
    int args_n;
} cli_stage;

/* Parse argv; prints help and exits 0 on -h, exits 2 on a usage error. */
void cli_parse(cli_stage *c, int argc, char **argv);
/* Does name match one of the comma-separated globs in list, e.g. "train,feat/?*" */
int cli_match(const char *list, const char *name);
/* Read every positional (or stdin if none) into bag; exits 1 on error. */
void cli_read_inputs(cli_stage *c, ts_bag *bag);
/* A record that must be in the bag; exits 1 naming it when absent. */
ts_record *cli_need(ts_bag *bag, const char *name);

/* A csr record that must be in the bag; with rows >= 0 also of shape
 * rows x cols.  Exits 1 naming it when absent, of another kind or shape. */
const ts_csr *cli_need_csr(ts_bag *bag, const char *name, int64_t rows, int64_t cols);
/* Item features with NaN or infinity are refused where they enter (the
 * training's exp and softmax would turn them into garbage): exits 1 naming
 * the first such feat/<m> record, row and column. */
void cli_need_finite_features(const ts_bag *bag);
/* The value of a one-element <i8 record, or dflt when absent; exits 1
 * when the record has another kind, type or size. */
int64_t cli_i64(ts_bag *bag, const char *name, int64_t dflt);
/* Write s to f as a JSON string literal (quotes, escapes). */
void cli_json_string(FILE *f, const char *s);
/* Set the product engine (DIFFMM_GEMM, or the default of gemm.h) and
 * --precision (f32 or bf16) before any product; a usage error (exit 2)
 * for an unknown name. */
void cli_gemm_setup(const char *precision);
/* The settings in use as JSON members for a log line, e.g.
 * "\"gemm\": \"onednn\", \"precision\": \"bf16\", \"gemm_gflop\": ..." (a static
 * buffer): flops and seconds of the products so far, fallbacks to OpenBLAS. */
const char *cli_gemm_json(void);
/* Item features from the .npy file at path as a float32 record named name
 * (`feat/<m>`), refused when not finite; exits 1 naming the file. */
ts_record *cli_load_features(const char *name, const char *path);
/* The record a feature file's name stands for: "<m>_feat.npy" (any folder
 * before it) -> "feat/<m>" in name [cap].  Returns 1, or 0 for another name. */
int cli_feature_name(const char *file, char *name, size_t cap);
/* Append one line of text to a log file (--log); exits 1 on failure. */
void cli_append_line(const char *path, const char *line);

/* Open the output (-o or stdout; refuses a terminal with exit 2). */
ts_writer *cli_open(cli_stage *c);
/* Write a product; exits 1 on error. */
void cli_write(ts_writer *w, const ts_record *r);
void cli_write_dense(ts_writer *w, const char *name, dt_type dtype, int ndim,
                     const int64_t *shape, const void *data);
void cli_write_csr(ts_writer *w, const char *name, const ts_csr *m);
/* A ts_emit_fn for modules that save state: ctx is the ts_writer; exits 1
 * on error like cli_write_dense. */
int cli_emit_dense(void *w, const char *name, dt_type dtype, int ndim, const int64_t *shape, const void *data);
/* With --pass, write every bag record not already written; then close
 * (rename into place).  bag may be NULL.  Exits 1 on error. */
void cli_close(cli_stage *c, ts_writer *w, const ts_bag *bag);

/* "STAGE: message" on stderr, remove any partial output, exit 1. */
__attribute__((noreturn, format(printf, 1, 2))) void cli_die(const char *fmt, ...);
/* "STAGE: message (see --help)" on stderr, exit 2. */
__attribute__((noreturn, format(printf, 1, 2))) void cli_usage_error(const char *fmt, ...);
/* Note "STAGE: message" on stderr, a line of its own, unless -q. */
__attribute__((format(printf, 1, 2))) void cli_note(const char *fmt, ...);
/* Live progress "STAGE: message done/total" redrawn in place on stderr, at
 * most ten times a second (always at done == total); only when stderr is a
 * terminal and DIFFMM_PROGRESS is not 0, so logs and pipes stay plain lines.
 * -q does not silence it (it leaves no line behind).  cli_progress_end
 * erases it; cli_note and cli_die erase it first. */
__attribute__((format(printf, 3, 4))) void cli_progress(int64_t done, int64_t total, const char *fmt, ...);
void cli_progress_end(void);
/* Seconds on a monotonic clock. */
double cli_seconds(void);

#endif
