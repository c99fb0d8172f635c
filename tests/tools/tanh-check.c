/* tanh-check: dn_tanh against tanh in double on every 37th float32 bit
 * pattern in [-12, 12] and on +-0, +-inf and NaN: prints the largest error
 * in units of the last place of the exact value's float32 (and libm's
 * tanhf's, for comparison); exits 1 above MAXULP (default 4).
 * usage: tanh-check [MAXULP] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/dn.h"

/* one ulp of float32 at the magnitude of y */
static double ulp(double y)
{
    float f = (float)fabs(y);
    if (f < 1.17549435e-38f) return 1.4e-45;
    return (double)nextafterf(f, INFINITY) - (double)f;
}

int main(int argc, char **argv)
{
    double maxulp = argc > 1 ? atof(argv[1]) : 4;
    size_t cap = 1 << 26, n = 0;
    float *x = malloc(cap * sizeof *x), *y = malloc(cap * sizeof *y);
    if (!x || !y) return 2;
    for (uint64_t b = 0; b < 0x41400000u; b += 37) {   /* 0 .. 12 */
        float f;
        uint32_t u = (uint32_t)b;
        memcpy(&f, &u, 4);
        if (n + 2 > cap) break;
        x[n++] = f;
        x[n++] = -f;
    }
    memcpy(y, x, n * sizeof *x);
    dn_tanh(y, (int64_t)n);
    double worst = 0, worst_libm = 0, at = 0;
    for (size_t i = 0; i < n; i++) {
        double want = tanh((double)x[i]), u = ulp(want);
        double e = fabs(y[i] - want) / u, el = fabs(tanhf(x[i]) - want) / u;
        if (!(e <= worst)) { worst = e; at = x[i]; }
        if (el > worst_libm) worst_libm = el;
    }
    float sp[5] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN};
    dn_tanh(sp, 5);
    int specials = sp[0] == 0 && !signbit(sp[0]) && sp[1] == 0 && signbit(sp[1]) && sp[2] == 1 && sp[3] == -1 &&
                   isnan(sp[4]);
    printf("dn_tanh on %zu values in [-12, 12]: worst %.2f ulp (at %.9g); libm tanhf %.2f ulp; "
           "+-0, +-inf, NaN %s\n", n, worst, at, worst_libm, specials ? "right" : "WRONG");
    return worst <= maxulp && specials ? 0 : 1;
}
