/* Shared test helpers; see helpers.h. */
#include "helpers.h"

#include <dirent.h>
#include <errno.h>
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

/* Reads up to 'cap' - 1 bytes of 'path' into 'buf' as a string; returns 1,
   or 0 if the file cannot be read (the thread has exited). */
static int read_small(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return 1;
}

int t_thread_state(const char *name, char *state, long *syscall_nr)
{
    char path[64], buf[512];
    int r = -ENOENT;
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -errno;
    for (struct dirent *e; r < 0 && (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%.16s/stat", e->d_name);
        if (!read_small(path, buf, sizeof buf))
            continue;
        /* "tid (comm) S ...": comm may hold spaces and parentheses. */
        char *open = strchr(buf, '('), *close = strrchr(buf, ')');
        if (!open || !close || close[1] != ' ')
            continue;
        *close = '\0';
        if (strcmp(open + 1, name) != 0)
            continue;
        if (state)
            *state = close[2];
        if (syscall_nr) {
            /* "NR args... sp pc" while blocked in a call, "-1 sp pc" in
               none, "running" on a CPU. */
            snprintf(path, sizeof path, "/proc/self/task/%.16s/syscall",
                     e->d_name);
            *syscall_nr = -1;
            if (read_small(path, buf, sizeof buf) && buf[0] != 'r')
                *syscall_nr = strtol(buf, NULL, 10);
        }
        r = 0;
    }
    closedir(d);
    return r;
}
