/* adam.c: Adam updates over flat float arrays (OpenMP). */
#include "kernels/adam.h"

#include <math.h>

adam_cfg adam_default(double lr) { return (adam_cfg){lr, 0.9, 0.999, 1e-8, 0}; }

void adam_update(const adam_cfg *c, int64_t step, float *p, const float *g, float *m, float *v, int64_t n)
{
    /* coefficients rounded from double, as torch passes them to its kernels */
    float omb1 = (float)(1 - c->beta1), b2 = (float)c->beta2, omb2 = (float)(1 - c->beta2);
    double bc1 = 1.0 - pow(c->beta1, (double)step), bc2 = 1.0 - pow(c->beta2, (double)step);
    float step_size = (float)(c->lr / bc1);
    float sqrt_bc2 = (float)sqrt(bc2);
    float eps = (float)c->eps;
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        m[i] += omb1 * (g[i] - m[i]);                /* torch: exp_avg.lerp_(g, 1-b1) */
        v[i] = b2 * v[i] + omb2 * g[i] * g[i];
        p[i] -= step_size * m[i] / (sqrtf(v[i]) / sqrt_bc2 + eps);
    }
}
