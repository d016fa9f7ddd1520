/* Shared test helpers; see helpers.h. */
#include "helpers.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t t_seed(void)
{
    static uint64_t seed;
    static int chosen;
    if (!chosen) {
        const char *env = getenv("RP_SEED");
        if (env && *env) {
            seed = strtoull(env, NULL, 0);
        } else {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            seed = (uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec;
        }
        chosen = 1;
        printf("seed: %" PRIu64 "; rerun with RP_SEED=%" PRIu64 "\n", seed,
               seed);
        fflush(stdout);
    }
    return seed;
}

const char *t_backend(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], "--backend=", 10) == 0)
            return argv[i] + 10;
    const char *env = getenv("RINGPORT_BACKEND");
    return env && *env ? env : "auto";
}
