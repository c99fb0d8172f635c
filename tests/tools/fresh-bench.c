/* fresh-bench: what the first touch of fresh memory costs here.  Each way
 * runs in a new process (fork), after a pause that lets the kernel give the
 * previous one's pages back, and times filling MB megabytes of new memory:
 *   4k      one thread, ordinary pages (what glibc's malloc gets)
 *   huge    one thread, MADV_HUGEPAGE (ts_alloc before session 7)
 *   ts      ts_alloc_uninit: huge pages, touched from every OpenMP thread
 * and then the same memory a second time (the rate of memory already
 * there).  On the project's VMs the first touch is the slow part: the host
 * backs each page then (docs/NOTES.md).
 * `fresh-bench --check` tests ts_alloc's placement instead: zeroed, 64-byte
 * aligned, and 2 MiB aligned (huge pages) from 1 MiB on; prints "ok".
 * usage: fresh-bench MB [PAUSE_SECONDS] | fresh-bench --check */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "io/ts.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* One way, in this (child) process: prints the two rates. */
static void run_one(const char *way, size_t mb)
{
    size_t n = mb << 20;
    char *p = NULL;
    double t0 = now();
    if (strcmp(way, "ts") == 0) {
        p = ts_alloc_uninit(n);                  /* touched inside */
    } else {
        if (posix_memalign((void **)&p, 2u << 20, n) != 0) p = NULL;
        if (p && strcmp(way, "huge") == 0) madvise(p, n, MADV_HUGEPAGE);
    }
    if (!p) { fprintf(stderr, "fresh-bench: out of memory\n"); exit(1); }
    memset(p, 1, n);
    double t1 = now();
    memset(p, 2, n);
    double t2 = now();
    printf("%-5s first touch %7.0f MB/s (%.3f s)   again %7.0f MB/s\n", way, (double)mb / (t1 - t0), t1 - t0,
           (double)mb / (t2 - t1));
    fflush(stdout);
    free(p);
}

/* ts_alloc's placement rule, on sizes either side of its thresholds. */
static int check(void)
{
    static const size_t sizes[] = {100, (1u << 20) - 64, 1u << 20, 1536u << 10, (2u << 20) + 4096, 4100000,
                                   (64u << 20) + 100};
    int bad = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t n = sizes[i];
        unsigned char *p = ts_alloc(n);
        if (!p) { fprintf(stderr, "fresh-bench: out of memory\n"); return 1; }
        size_t align = n >= (1u << 20) ? 2u << 20 : 64;
        int zero = 1;
        for (size_t k = 0; k < n; k += 997) zero &= p[k] == 0;
        zero &= p[n - 1] == 0;
        if ((uintptr_t)p % align != 0 || !zero) {
            printf("ts_alloc(%zu): at %p, %s (wanted %zu-byte alignment, zeroed)\n", n, (void *)p,
                   zero ? "zeroed" : "not zeroed", align);
            bad = 1;
        }
        memset(p, 0xab, n);                      /* all of it is ours */
        free(p);
    }
    if (!bad) printf("ok\n");
    return bad;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--check") == 0) return check();
    if (argc < 2) { fprintf(stderr, "usage: fresh-bench MB [PAUSE_SECONDS]\n"); return 2; }
    size_t mb = (size_t)atol(argv[1]);
    int pause = argc > 2 ? atoi(argv[2]) : 3;
    if (mb < 4 || mb > (1u << 20)) { fprintf(stderr, "fresh-bench: MB from 4 to 2^20\n"); return 2; }
    static const char *const ways[3] = {"4k", "huge", "ts"};
    for (int i = 0; i < 3; i++) {
        sleep((unsigned)pause);
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); return 1; }
        if (pid == 0) { run_one(ways[i], mb); _exit(0); }
        int st;
        if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return 1;
    }
    return 0;
}
