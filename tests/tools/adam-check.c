/* adam-check: runs adam_update on one parameter (start 1.0, lr 0.1) with
 * the gradients given on the command line and prints the parameter after
 * each step, for comparison with a step worked out by hand.
 * usage: adam-check G1 [G2...] */
#include <stdio.h>
#include <stdlib.h>

#include "kernels/adam.h"

int main(int argc, char **argv)
{
    float p = 1.0f, m = 0, v = 0;
    adam_cfg c = adam_default(0.1);
    for (int i = 1; i < argc; i++) {
        float g = strtof(argv[i], NULL);
        adam_update(&c, i, &p, &g, &m, &v, 1);
        printf("%d %.7f\n", i, p);
    }
    return 0;
}
