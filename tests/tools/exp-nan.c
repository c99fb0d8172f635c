/* exp-nan: dn_exp on NaN, infinities and the ends of its range.  Prints
 * "ok" when every NaN comes out NaN and finite inputs in [-87, 88] agree
 * with exp() within 2e-7; tests/hostile.bats also builds it with
 * -fsanitize=undefined,float-cast-overflow, which stops at the first
 * undefined operation (a NaN converted to int, a negative value shifted).
 * usage: exp-nan */
#include <math.h>
#include <stdio.h>

#include "kernels/dn.h"

int main(void)
{
    enum { N = 96 };
    float x[N], y[N];
    for (int i = 0; i < N; i++) {       /* NaN of both signs among ordinary values */
        switch (i % 6) {
        case 0: x[i] = NAN; break;
        case 1: x[i] = -NAN; break;
        case 2: x[i] = i % 12 == 2 ? INFINITY : -INFINITY; break;
        default: x[i] = -87.0f + 175.0f * (float)i / N; break;
        }
    }
    dn_exp(x, y, N);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        if (isnan(x[i]) != isnan(y[i])) {
            printf("exp(%g) gave %g\n", (double)x[i], (double)y[i]);
            bad = 1;
        } else if (isfinite(x[i])) {
            double want = exp((double)x[i]), rel = fabs((double)y[i] - want) / want;
            if (rel > 2e-7) { printf("exp(%g) gave %g, not %g\n", (double)x[i], (double)y[i], want); bad = 1; }
        }
    }
    if (!bad) printf("ok\n");
    return bad;
}
