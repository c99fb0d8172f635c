/* ts-bench: tensor stream throughput.  Writes one float32 tensor of the
 * given size to a file in DIR through ts_writer (raw, zstd 1, zstd 3) and
 * reads it back through ts_reader, REPS times each, printing the median
 * rates in MB/s (1 MB = 1e6 bytes) and the compressed size.  Two contents:
 * Gaussian float32 (hard to compress) and Gaussian rounded through float16
 * (what widened features look like).
 * usage: ts-bench DIR MB REPS */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "io/crc.h"
#include "io/ts.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* xorshift + Box-Muller: fast, deterministic Gaussian noise */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double uniform(void)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return ((rng >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static uint16_t to_half(float f) /* round to nearest even, normal range only */
{
    uint32_t b; memcpy(&b, &f, 4);
    uint32_t sign = (b >> 16) & 0x8000, exp = (b >> 23) & 0xff, man = b & 0x7fffff;
    if (exp < 113) return (uint16_t)sign;            /* flush tiny values */
    uint32_t h = ((exp - 112) << 10) | (man >> 13);
    uint32_t rest = man & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

int main(int argc, char **argv)
{
    if (argc != 4) { fprintf(stderr, "usage: ts-bench DIR MB REPS\n"); return 2; }
    const char *dir = argv[1];
    size_t n = (size_t)atol(argv[2]) * 1000000 / 4;   /* floats */
    int reps = atoi(argv[3]);
    if (reps < 1 || reps > 50 || n == 0) { fprintf(stderr, "ts-bench: bad arguments\n"); return 2; }
    int64_t shape[1] = {(int64_t)n};
    float *x = ts_alloc(n * 4);                         /* [n] */
    if (!x) { fprintf(stderr, "ts-bench: out of memory\n"); return 1; }
    char path[4096];
    snprintf(path, sizeof path, "%s/bench.ts", dir);
    double *tw = malloc((size_t)reps * sizeof *tw), *tr = malloc((size_t)reps * sizeof *tr);
    const char *contents[] = {"gaussian f32", "f16-rounded"};
    int levels[] = {0, 1, 3};
    printf("%-13s %-7s %10s %10s %8s\n", "content", "codec", "write MB/s", "read MB/s", "ratio");
    for (int ci = 0; ci < 2; ci++) {
        for (size_t i = 0; i + 1 < n; i += 2) {
            double u1 = uniform(), u2 = uniform(), r = sqrt(-2 * log(u1));
            x[i] = (float)(r * cos(2 * M_PI * u2));
            x[i + 1] = (float)(r * sin(2 * M_PI * u2));
        }
        if (ci == 1)
            for (size_t i = 0; i < n; i++) x[i] = dt_half_to_float(to_half(x[i]));
        uint32_t want = crc_32c(0, x, n * 4);
        for (int li = 0; li < 3; li++) {
            struct stat st = {0};
            for (int k = 0; k < reps; k++) {
                double t0 = cli_seconds();
                ts_writer *w = ts_writer_open(path, levels[li], "ts-bench");
                char err[600];
                if (!w || ts_write_dense(w, "x", DT_F32, 1, shape, x) < 0 || ts_writer_close(w, err, sizeof err) < 0) {
                    fprintf(stderr, "ts-bench: write failed\n");
                    return 1;
                }
                tw[k] = cli_seconds() - t0;
                stat(path, &st);
                t0 = cli_seconds();
                ts_reader *r = ts_reader_open(path);
                ts_record *rec;
                if (ts_reader_next(r, &rec) != 1) { fprintf(stderr, "ts-bench: %s\n", ts_reader_error(r)); return 1; }
                ts_record *extra;
                if (ts_reader_next(r, &extra) != 0) { fprintf(stderr, "ts-bench: %s\n", ts_reader_error(r)); return 1; }
                tr[k] = cli_seconds() - t0;
                ts_reader_close(r);
                if (crc_32c(0, rec->data, rec->nbytes) != want) { fprintf(stderr, "ts-bench: data differs\n"); return 1; }
                ts_record_free(rec);
            }
            char codec[16];
            snprintf(codec, sizeof codec, levels[li] ? "zstd %d" : "raw", levels[li]);
            printf("%-13s %-7s %10.0f %10.0f %8.3f\n", contents[ci], codec, n * 4 / median(tw, reps) / 1e6,
                   n * 4 / median(tr, reps) / 1e6, (double)n * 4 / (double)st.st_size);
            fflush(stdout);
        }
    }
    remove(path);
    free(x); free(tw); free(tr);
    return 0;
}
