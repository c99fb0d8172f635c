/* adam.h: the Adam optimiser as torch.optim.Adam computes it (no weight
 * decay, no amsgrad): m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps). */
#ifndef ADAM_H
#define ADAM_H

#include <stdint.h>

typedef struct {
    double lr, beta1, beta2, eps;
    int64_t step;     /* steps taken so far; the next update uses step+1 */
} adam_cfg;

/* The release's settings: lr as given, betas 0.9 / 0.999, eps 1e-8. */
adam_cfg adam_default(double lr);
/* One update of n parameters p with gradient g and moments m, v (all n). */
void adam_update(const adam_cfg *c, int64_t step, float *p, const float *g, float *m, float *v, int64_t n);

#endif
