/* cli_gemm.c: the stages' side of the product engines: --precision and
 * DIFFMM_GEMM into gemm_setup, and the settings for a log line.  Apart from
 * cli.c so that a stage without products (inspect, pick) links without
 * oneDNN and OpenBLAS. */
#include "cli/cli.h"
#include "kernels/gemm.h"

#include <stdio.h>

void cli_gemm_setup(const char *precision)
{
    char err[256];
    if (gemm_setup(NULL, precision, err, sizeof err) < 0) cli_usage_error("%s", err);
}

const char *cli_gemm_json(void)
{
    static char buf[192];
    gemm_stats g = gemm_stats_get();
    snprintf(buf, sizeof buf,
             "\"gemm\": \"%s\", \"precision\": \"%s\", \"gemm_gflop\": %.1f, \"gemm_seconds\": %.3f, "
             "\"gemm_fallbacks\": %lld",
             gemm_engine_name(g.engine), gemm_precision_name(g.precision), g.flops / 1e9, g.seconds,
             (long long)g.fallbacks);
    return buf;
}
