/* blas-check: proves which BLAS the project's binaries load and that its
 * sgemm computes correctly.  Prints the shared object that provides
 * cblas_sgemm, OpenBLAS's build configuration, core and thread count, and
 * the largest error of a 67x45x33 product against a plain loop. */
#include <cblas.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    enum { M = 67, K = 45, N = 33 };
    static float a[M * K], b[K * N], c[M * N];
    srand(1);
    for (int i = 0; i < M * K; i++) a[i] = (float)rand() / RAND_MAX - 0.5f;
    for (int i = 0; i < K * N; i++) b[i] = (float)rand() / RAND_MAX - 0.5f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, a, K, b, N, 0.0f, c, N);
    double err = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += (double)a[i * K + k] * b[k * N + j];
            err = fmax(err, fabs(s - c[i * N + j]));
        }
    Dl_info info;
    if (!dladdr((void *)cblas_sgemm, &info) || !info.dli_fname) { fprintf(stderr, "blas-check: dladdr failed\n"); return 1; }
    printf("library: %s\n", info.dli_fname);
    printf("config: %s\n", openblas_get_config());
    printf("core: %s\n", openblas_get_corename());
    printf("threads: %d\n", openblas_get_num_threads());
    printf("parallel: %d\n", openblas_get_parallel()); /* 2 = OpenMP */
    printf("max_error: %.3g\n", err);
    return err < 1e-5 ? 0 : 1;
}
