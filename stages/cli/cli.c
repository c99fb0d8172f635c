/* cli.c: option parsing, usage tables, input bags, atomic output and
 * die()-style errors shared by every stage. */
#include "cli/cli.h"

#include <errno.h>
#include <fnmatch.h>
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *cli_name = "diffmm";
static int cli_quiet;
static ts_writer *cli_out;            /* open output, removed on failure */
static char cli_tmp[4096];            /* its temporary path, for signals */
static char **cli_written;            /* names written so far (for --pass) */
static size_t cli_nwritten, cli_capwritten;
static char **cli_args;               /* cli_parse's positionals, held until exit */

static void cli_free_args(void) { free(cli_args); }

/* "STAGE: message" and tail on stderr. */
static void cli_say(const char *fmt, va_list ap, const char *tail)
{
    fprintf(stderr, "%s: ", cli_name);
    vfprintf(stderr, fmt, ap);
    fputs(tail, stderr);
}

void cli_die(const char *fmt, ...)
{
    cli_progress_end();
    va_list ap;
    va_start(ap, fmt);
    cli_say(fmt, ap, "\n");
    va_end(ap);
    if (cli_out) ts_writer_abort(cli_out);
    exit(1);
}

void cli_usage_error(const char *fmt, ...)
{
    char tail[128];
    snprintf(tail, sizeof tail, " (see %s --help)\n", cli_name);
    va_list ap;
    va_start(ap, fmt);
    cli_say(fmt, ap, tail);
    va_end(ap);
    exit(2);
}

void cli_note(const char *fmt, ...)
{
    if (cli_quiet) return;
    cli_progress_end();
    va_list ap;
    va_start(ap, fmt);
    cli_say(fmt, ap, "\n");
    va_end(ap);
}

double cli_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- live progress on a terminal ---- */

static int cli_progress_on = -1;      /* -1: not decided yet */
static int cli_progress_shown;        /* a line is on the screen */
static double cli_progress_last;

void cli_progress(int64_t done, int64_t total, const char *fmt, ...)
{
    if (cli_progress_on < 0) {
        const char *e = getenv("DIFFMM_PROGRESS");
        cli_progress_on = isatty(2) && !(e && strcmp(e, "0") == 0);
    }
    if (!cli_progress_on) return;
    double now = cli_seconds();
    if (done < total && now - cli_progress_last < 0.1) return;
    cli_progress_last = now;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "\r\033[K%s: ", cli_name);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " %lld/%lld (%d%%)", (long long)done, (long long)total,
            total > 0 ? (int)(100 * done / total) : 100);
    fflush(stderr);
    cli_progress_shown = 1;
}

void cli_progress_end(void)
{
    if (!cli_progress_shown) return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    cli_progress_shown = 0;
}

/* A killed stage never leaves a file that looks finished: the temporary
 * is removed, then the signal is raised again with its default action.
 * A signal to the process may land on a worker thread (OpenMP's pool,
 * started by whatever ran in parallel first: even reading a large input),
 * where cli_open's hold does not reach: it is passed on to the main
 * thread, which takes it once its temporary's name is recorded. */
static pthread_t cli_main_thread;
static void cli_on_signal(int sig)
{
    if (!pthread_equal(pthread_self(), cli_main_thread)) {
        pthread_kill(cli_main_thread, sig);
        return;
    }
    if (cli_tmp[0]) unlink(cli_tmp);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* ---- options ---- */

static const cli_opt cli_common_stream[] = {
    {"output", 'o', CLI_STR, NULL, "FILE", "write to FILE (complete or not at all) instead of stdout"},
    {"pass", 0, CLI_FLAG, NULL, NULL, "also write every input record that is not replaced"},
    {"zstd", 0, CLI_INT, NULL, "LEVEL", "zstd level, 0 = raw msgpack (default: 1 for files, 0 for stdout)"},
    {"reuse", 0, CLI_STR, NULL, "FILE", "write over FILE, no longer needed and not an input (faster than new pages); gone after"},
    {0},
};

static void cli_help_line(const cli_opt *o, int show_default)
{
    char lhs[64];
    snprintf(lhs, sizeof lhs, "%c%c%s--%s%s%s", o->shortc ? '-' : ' ', o->shortc ? o->shortc : ' ',
             o->shortc ? ", " : "  ", o->name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
    if (strlen(lhs) >= 24) printf("  %s\n  %-24s %s", lhs, "", o->help);   /* a long name: help below it */
    else printf("  %-24s %s", lhs, o->help);
    if (show_default && o->dst) {
        if (o->type == CLI_INT) printf(" (default %d)", *(int *)o->dst);
        else if (o->type == CLI_FLOAT) printf(" (default %g)", *(double *)o->dst);
        else if (o->type == CLI_STR && *(const char **)o->dst) printf(" (default %s)", *(const char **)o->dst);
    }
    putchar('\n');
}

static void cli_help(const cli_stage *c)
{
    printf("usage: %s [OPTIONS] %s\n\n%s\n", c->stage, c->args ? c->args : "", c->summary);
    if (c->opts && c->opts[0].name) {
        printf("\noptions:\n");
        for (const cli_opt *o = c->opts; o->name; o++) cli_help_line(o, 1);
    }
    printf("\ncommon options:\n");
    if (c->writes_stream)
        for (const cli_opt *o = cli_common_stream; o->name; o++) cli_help_line(o, 0);
    printf("  -q, --quiet                no notes on stderr (a live progress line is drawn only on a\n"
           "                             terminal and erased when done; DIFFMM_PROGRESS=0 turns it off)\n");
    printf("  -h, --help                 show this help and exit\n");
    if (c->details) printf("\n%s\n", c->details);
}

static void cli_set(const cli_opt *o, const char *flag, const char *val)
{
    char *end;
    switch (o->type) {
    case CLI_FLAG: *(int *)o->dst = 1; return;
    case CLI_STR: *(const char **)o->dst = val; return;
    case CLI_INT: {
        errno = 0;
        long v = strtol(val, &end, 10);
        if (errno || end == val || *end || v < -2147483647L || v > 2147483647L)
            cli_usage_error("%s needs a whole number, not '%s'", flag, val);
        *(int *)o->dst = (int)v;
        return;
    }
    case CLI_FLOAT: {
        errno = 0;
        double v = strtod(val, &end);
        if (errno || end == val || *end || !isfinite(v)) cli_usage_error("%s needs a number, not '%s'", flag, val);
        *(double *)o->dst = v;
        return;
    }
    }
}

static const cli_opt *cli_find(const cli_opt *opts, const char *name, size_t len, char shortc)
{
    for (const cli_opt *o = opts; o && o->name; o++)
        if (shortc ? o->shortc == shortc : strlen(o->name) == len && strncmp(o->name, name, len) == 0) return o;
    return NULL;
}

/* --reuse: only with -o FILE, and never one of the inputs (a symbolic link
 * to one included): writing over it would destroy data the user still has
 * no other copy of, and a stage reading lazily would read its own output. */
static void cli_check_reuse(const cli_stage *c)
{
    if (!c->out || strcmp(c->out, "-") == 0) cli_usage_error("--reuse needs -o FILE (a file to write over)");
    struct stat r, in;
    if (stat(c->reuse, &r) != 0) return;       /* nothing to reuse: the output is made new */
    for (int i = 0; i < c->args_n; i++)
        if (strcmp(c->args_v[i], "-") != 0 && stat(c->args_v[i], &in) == 0 && in.st_dev == r.st_dev &&
            in.st_ino == r.st_ino)
            cli_usage_error("--reuse %s is an input: it would be overwritten", c->reuse);
}

void cli_parse(cli_stage *c, int argc, char **argv)
{
    cli_name = c->stage;
    c->zlevel = -1;
    cli_opt common[5];
    memcpy(common, cli_common_stream, sizeof common);
    common[0].dst = &c->out;
    common[1].dst = &c->pass;
    common[2].dst = &c->zlevel;
    common[3].dst = &c->reuse;
    c->args_v = cli_args = calloc((size_t)argc + 1, sizeof *c->args_v);
    if (!c->args_v) cli_die("out of memory");
    atexit(cli_free_args);                /* freed at exit: LeakSanitizer finds nothing */
    int only_args = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_args || a[0] != '-' || strcmp(a, "-") == 0) {
            c->args_v[c->args_n++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) { only_args = 1; continue; }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) { cli_help(c); exit(0); }
        if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) { c->quiet = cli_quiet = 1; continue; }
        const cli_opt *o;
        const char *val = NULL;
        if (a[1] == '-') {
            const char *eq = strchr(a + 2, '=');
            size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
            o = cli_find(c->opts, a + 2, len, 0);
            if (!o && c->writes_stream) o = cli_find(common, a + 2, len, 0);
            if (!o) cli_usage_error("unknown option '%.*s'", (int)(len + 2), a);
            if (eq) {
                if (o->type == CLI_FLAG) cli_usage_error("--%s takes no value", o->name);
                val = eq + 1;
            }
        } else {
            o = cli_find(c->opts, NULL, 0, a[1]);
            if (!o && c->writes_stream) o = cli_find(common, NULL, 0, a[1]);
            if (!o) cli_usage_error("unknown option '-%c'", a[1]);
            if (a[2]) {
                if (o->type == CLI_FLAG) cli_usage_error("-%c takes no value", a[1]);
                val = a + 2;
            }
        }
        if (o->type != CLI_FLAG && !val) {
            if (i + 1 >= argc) cli_usage_error("%s needs a value", a);
            val = argv[++i];
        }
        cli_set(o, a, val);
    }
    if (c->zlevel > 22) cli_usage_error("--zstd takes a level from 0 to 22, not %d", c->zlevel);
    if (c->zlevel < 0) c->zlevel = c->out && strcmp(c->out, "-") != 0 ? 1 : 0;
    if (c->reuse) cli_check_reuse(c);
    signal(SIGPIPE, SIG_IGN); /* a closed pipe becomes a write error we report */
}

/* ---- inputs ---- */

/* Does name match one of the comma-separated globs in list? */
int cli_match(const char *list, const char *name)
{
    if (!name) return 0;
    for (const char *p = list; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char pat[512];
        if (len < sizeof pat) {
            memcpy(pat, p, len);
            pat[len] = 0;
            if (fnmatch(pat, name, 0) == 0) return 1;
        }
        p += len + (comma != NULL);
    }
    return 0;
}

static int cli_keep(const char *name, void *ctx) { return cli_match(ctx, name); }

void cli_read_inputs(cli_stage *c, ts_bag *bag)
{
    static char *stdin_only[] = {"-"};
    char **v = c->args_n ? c->args_v : stdin_only;
    int n = c->args_n ? c->args_n : 1;
    int used_stdin = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(v[i], "-") == 0) {
            if (used_stdin++) cli_usage_error("stdin ('-') given twice");
            if (isatty(0)) cli_usage_error("no input: give stream files, or pipe a stream into stdin");
        }
        char err[600];
        int filter = c->uses && !c->pass;
        if (ts_bag_read_filtered(bag, v[i], filter ? cli_keep : NULL, (void *)c->uses, err, sizeof err) < 0)
            cli_die("reading %s", err);
    }
}

ts_record *cli_need(ts_bag *bag, const char *name)
{
    ts_record *r = ts_bag_get(bag, name);
    if (!r) cli_die("missing input: no record '%s' in the inputs", name);
    return r;
}

const ts_csr *cli_need_csr(ts_bag *bag, const char *name, int64_t rows, int64_t cols)
{
    ts_record *r = cli_need(bag, name);
    if (r->kind != TS_CSR) cli_die("'%s' must be a csr matrix", name);
    if (rows >= 0 && (r->csr.rows != rows || r->csr.cols != cols))
        cli_die("'%s' is %lld x %lld, expected %lld x %lld", name, (long long)r->csr.rows, (long long)r->csr.cols,
                (long long)rows, (long long)cols);
    return &r->csr;
}

int64_t cli_i64(ts_bag *bag, const char *name, int64_t dflt)
{
    ts_record *r = ts_bag_get(bag, name);
    if (!r) return dflt;
    if (r->kind != TS_DENSE || r->dtype != DT_I64 || ts_numel(r) != 1) cli_die("'%s' must be one <i8", name);
    return *(int64_t *)r->data;
}

void cli_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

void cli_need_finite_features(const ts_bag *bag)
{
    for (size_t i = 0; i < bag->n; i++) {
        const ts_record *r = bag->recs[i];
        char why[128];
        if (r->name && strncmp(r->name, "feat/", 5) == 0 && r->kind == TS_DENSE && ts_check_finite(r, why, sizeof why) < 0)
            cli_die("%s: %s: item features must be finite", r->name, why);
    }
}

void cli_append_line(const char *path, const char *line)
{
    FILE *f = fopen(path, "a");
    if (!f || fprintf(f, "%s\n", line) < 0 || fclose(f) != 0) cli_die("cannot append to %s", path);
}

/* ---- output ---- */

/* Remove the temporaries "PATH.tmp.HOST.PID" that a stage killed by SIGKILL
 * (no handler runs) left beside PATH on this host, when process PID no
 * longer exists (and the older "PATH.tmp.PID").  A live writer's file is
 * left alone, and so is another host's: its PIDs cannot be judged here (a
 * pre-empted job's leftover on a shared folder; docs/CLUSTER.md). */
static void cli_remove_stale(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t dl = slash ? (size_t)(slash - path) + 1 : 0, bl = strlen(base);
    char dir[4096];
    if (dl + 2 > sizeof dir) return;
    memcpy(dir, path, dl);
    strcpy(dir + dl, dl ? "." : "./");
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, base, bl) != 0 || strncmp(e->d_name + bl, ".tmp.", 5) != 0) continue;
        const char *s = e->d_name + bl + 5, *dot = strrchr(s, '.');
        if (dot) {                                   /* HOST.PID: only this host's */
            const char *host = ts_tmp_host();
            if ((size_t)(dot - s) != strlen(host) || strncmp(s, host, strlen(host)) != 0) continue;
            s = dot + 1;
        }
        char *end;
        long pid = strtol(s, &end, 10);
        if (*s < '0' || *s > '9' || *end || pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char full[4096];
        if ((size_t)snprintf(full, sizeof full, "%.*s%s", (int)dl, path, e->d_name) < sizeof full) unlink(full);
    }
    closedir(d);
}

ts_writer *cli_open(cli_stage *c)
{
    int to_stdout = !c->out || strcmp(c->out, "-") == 0;
    if (to_stdout && isatty(1))
        cli_usage_error("refusing to write a binary stream to a terminal: use -o FILE or a pipe");
    if (!to_stdout) cli_remove_stale(c->out);
    /* hold termination signals while the temporary file comes into being,
     * so a kill at any moment finds its name recorded for removal */
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGINT);
    sigaddset(&term, SIGTERM);
    sigaddset(&term, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &term, &old);   /* this thread: the others pass signals on to it */
    cli_main_thread = pthread_self();
    signal(SIGINT, cli_on_signal);
    signal(SIGTERM, cli_on_signal);
    signal(SIGHUP, cli_on_signal);
    ts_writer *w = ts_writer_open_reusing(to_stdout ? NULL : c->out, c->zlevel, c->stage, c->reuse);
    if (!w) cli_die("out of memory");
    cli_out = w;
    const char *tmp = ts_writer_tmppath(w);
    if (tmp && strlen(tmp) < sizeof cli_tmp) strcpy(cli_tmp, tmp);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (ts_writer_error(w)[0]) cli_die("writing %s", ts_writer_error(w));
    return w;
}

static void cli_remember(const char *name)
{
    if (!name) return;
    if (cli_nwritten == cli_capwritten) {          /* doubling: pick writes 80,000 records */
        size_t cap = cli_capwritten ? 2 * cli_capwritten : 64;
        char **p = realloc(cli_written, cap * sizeof *p);
        if (!p) cli_die("out of memory");
        cli_written = p;
        cli_capwritten = cap;
    }
    if (!(cli_written[cli_nwritten] = strdup(name))) cli_die("out of memory");
    cli_nwritten++;
}

static int cli_was_written(const char *name)
{
    for (size_t i = 0; name && i < cli_nwritten; i++)
        if (strcmp(cli_written[i], name) == 0) return 1;
    return 0;
}

void cli_write(ts_writer *w, const ts_record *r)
{
    if (ts_write(w, r) < 0) cli_die("writing %s", ts_writer_error(w));
    cli_remember(r->name);
}

void cli_write_dense(ts_writer *w, const char *name, dt_type dtype, int ndim,
                     const int64_t *shape, const void *data)
{
    if (ts_write_dense(w, name, dtype, ndim, shape, data) < 0) cli_die("writing %s", ts_writer_error(w));
    cli_remember(name);
}

int cli_emit_dense(void *w, const char *name, dt_type dtype, int ndim, const int64_t *shape, const void *data)
{
    cli_write_dense(w, name, dtype, ndim, shape, data);
    return 0;
}

void cli_write_csr(ts_writer *w, const char *name, const ts_csr *m)
{
    if (ts_write_csr(w, name, m) < 0) cli_die("writing %s", ts_writer_error(w));
    cli_remember(name);
}

void cli_close(cli_stage *c, ts_writer *w, const ts_bag *bag)
{
    if (c->pass && bag)
        for (size_t i = 0; i < bag->n; i++)
            if (!cli_was_written(bag->recs[i]->name) && ts_write(w, bag->recs[i]) < 0)
                cli_die("writing %s", ts_writer_error(w));
    char err[600];
    cli_out = NULL;
    int st = ts_writer_close(w, err, sizeof err);
    cli_tmp[0] = 0;
    for (size_t i = 0; i < cli_nwritten; i++) free(cli_written[i]);
    free(cli_written);
    cli_written = NULL;
    cli_nwritten = cli_capwritten = 0;
    if (st < 0) cli_die("writing %s", err);
}
