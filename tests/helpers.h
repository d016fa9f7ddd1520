/*
 * Shared test helpers (t_ prefix). Tests use cmocka for assertions; these
 * give them a printed, reproducible seed, a fast PRNG and the backend flag.
 */
#ifndef RP_TESTS_HELPERS_H
#define RP_TESTS_HELPERS_H

/* cmocka needs these before its header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/*
 * The run's seed: RP_SEED from the environment if set, else taken from the
 * clock. Printed once ("seed: N; rerun with RP_SEED=N") so a failure can be
 * replayed exactly.
 */
uint64_t t_seed(void);

/* splitmix64: a fast, decent PRNG whose whole state is one word. */
static inline uint64_t t_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static inline uint64_t t_rand_range(uint64_t *state, uint64_t lo, uint64_t hi)
{
    return lo + t_rand(state) % (hi - lo + 1);
}

/*
 * The backend named by --backend=uring|epoll on the command line, else by
 * RINGPORT_BACKEND, else "auto". Integration tests are registered once per
 * backend with this flag.
 */
const char *t_backend(int argc, char **argv);

/*
 * What this process's thread named 'name' (the kernel's name, at most 15
 * characters: pthread_setname_np) is doing now, from /proc/self/task:
 * its scheduler state ('R' running, 'S' asleep, ...) into *state and the
 * number of the system call it is blocked in into *syscall_nr (-1 when it
 * is in none or running; SYS_accept4 for a thread waiting in accept4).
 * Either pointer may be NULL. Returns 0, or -ENOENT if no thread has that
 * name. Lets a test wait for a precondition ("the accept thread is
 * blocked in accept4") instead of hoping a loaded machine got there.
 */
int t_thread_state(const char *name, char *state, long *syscall_nr);

#endif
