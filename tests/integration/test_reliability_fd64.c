/*
 * Out of descriptors as an operator meets it (the reliability suite,
 * docs/reliability.md): ringport-echo runs as a child under `ulimit -n 64`
 * (setrlimit before exec), clients connect until the server has no
 * descriptor left, and more keep coming. The clients already served must
 * stay served, each newcomer must be closed (not left hanging), the server
 * must not spin (its CPU time over the shortage stays a small part of the
 * wall time), it must log the condition, and accepting must resume once
 * some clients leave. test_server_emfile does the same in-process with the
 * limit lowered at run time; this one is the real process limit.
 */
#include "server_util.h"

#include "child_util.h"

#include <sys/resource.h>

#define FD_LIMIT 64
#define MAX_CLIENTS 80
#define NEWCOMERS 3
#define FREED 8

/* Its stdout stays open until it exits: its final line must not SIGPIPE
   it. */
static struct cu_child child = {.pid = -1, .out = -1, .err = -1};

static int kill_child(void **state)
{
    cu_kill_leftovers(state);
    if (child.out >= 0)
        close(child.out);
    child.out = -1;
    return 0;
}

/* Starts ringport-echo under RLIMIT_NOFILE = FD_LIMIT; stderr goes to
   'log_path'. Returns its port. */
static uint16_t echo_start(const char *log_path)
{
    char path[PATH_MAX + 64];
    int out[2];
    cu_program(path, sizeof path, CU_ECHO);
    char *argv[] = {path,
                    "--port",
                    "0",
                    "--threads",
                    "1",
                    "--backend",
                    (char *)rp_backend_name(su_kind),
                    "--no-stats",
                    NULL};
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    int err = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(err >= 0);
    fflush(NULL);
    child.pid = fork();
    assert_true(child.pid >= 0);
    if (child.pid == 0) {
        struct rlimit lim = {FD_LIMIT, FD_LIMIT};
        if (dup2(out[1], STDOUT_FILENO) < 0 || dup2(err, STDERR_FILENO) < 0 ||
            setrlimit(RLIMIT_NOFILE, &lim) < 0)
            _exit(126);
        execv(path, argv);
        _exit(127);
    }
    close(out[1]);
    close(err);
    child.out = out[0];
    cu_track(child.pid, 0);
    return cu_read_port(&child);
}

/* The child's user + system CPU time in microseconds. */
static uint64_t child_cpu_us(void)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)child.pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the name may hold spaces */
    assert_non_null(p);
    unsigned long long ut = 0, st = 0;
    /* After ")": state, then fields 4..13, then utime (14), stime (15). */
    int got =
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
               &ut, &st);
    assert_int_equal(got, 2);
    return (ut + st) * 1000000ull / (uint64_t)sysconf(_SC_CLK_TCK);
}

/* Sends a frame and waits for its echo: 1 served, 0 closed by the
   server. A timeout fails the test: nobody may be left hanging. */
static int served(int fd, uint16_t type)
{
    uint8_t got[16];
    uint16_t t = 0;
    su_send_frame(fd, type, "ping", 4);
    int r = su_read_frame(fd, &t, got, sizeof got, SU_WAIT_MS);
    if (r == 4 && t == type && memcmp(got, "ping", 4) == 0)
        return 1;
    if (r == -ECONNABORTED || r == -ECONNRESET || r == -EPIPE)
        return 0;
    fail_msg("neither served nor closed: %s",
             r < 0 ? strerror(-r) : "wrong echo");
    return -1;
}

static void echo_under_ulimit_64_sheds_newcomers_and_recovers(void **state)
{
    (void)state;
    static int fd[MAX_CLIENTS];
    char log_path[] = "/tmp/ringport-fd64-XXXXXX";
    int lf = mkstemp(log_path);
    assert_true(lf >= 0);
    close(lf);
    uint16_t port = echo_start(log_path);

    /* Fill: connect until one is closed instead of served. */
    int old = 0, shed = -1;
    while (old < MAX_CLIENTS) {
        int c = su_connect(port);
        if (served(c, (uint16_t)old) == 0) {
            shed = c;
            break;
        }
        fd[old++] = c;
    }
    assert_true(shed >= 0); /* the limit was reached */
    assert_true(old > 8 && old < FD_LIMIT);
    close(shed);

    /* Newcomers arrive while it is short; the old clients are served. */
    uint64_t cpu0 = child_cpu_us(), wall0 = su_now_ms();
    int newcomer[NEWCOMERS];
    for (int i = 0; i < NEWCOMERS; i++)
        newcomer[i] = su_connect(port);
    for (int i = 0; i < NEWCOMERS; i++) {
        for (int k = 0; k < old; k++)
            assert_int_equal(served(fd[k], (uint16_t)(100 + k)), 1);
        assert_int_equal(su_wait_closed(newcomer[i], SU_WAIT_MS), 0);
        close(newcomer[i]);
    }
    su_sleep_ms(500); /* and some quiet time with nobody pending */
    uint64_t cpu_us = child_cpu_us() - cpu0, wall_ms = su_now_ms() - wall0;

    /* Descriptors back: some clients leave, a new one is served. */
    for (int k = old - FREED; k < old; k++)
        close(fd[k]);
    old -= FREED;
    int fresh = -1;
    uint64_t r0 = su_now_ms();
    for (int attempt = 0; attempt < 20 && fresh < 0; attempt++) {
        int c = su_connect(port);
        if (served(c, 500) == 1)
            fresh = c;
        else
            close(c);
    }
    uint64_t resume_ms = su_now_ms() - r0;
    assert_true(fresh >= 0);
    for (int k = 0; k < old; k++)
        assert_int_equal(served(fd[k], (uint16_t)(200 + k)), 1);

    printf("ulimit -n %d: %d clients served at the limit; %d newcomers shed "
           "with server CPU %llu us over %llu ms (%.1f %%); accepting again "
           "after %llu ms\n",
           FD_LIMIT, old + FREED, NEWCOMERS, (unsigned long long)cpu_us,
           (unsigned long long)wall_ms, (double)cpu_us / 10.0 / (double)wall_ms,
           (unsigned long long)resume_ms);
    /* Generous: a spinning accept loop burns a whole core (100 %). */
    assert_true(cpu_us < wall_ms * 1000 * 30 / 100);

    close(fresh);
    for (int k = 0; k < old; k++)
        close(fd[k]);
    cu_stop(&child);
    child.out = -1;

    /* The log names the condition. */
    char text[65536];
    FILE *f = fopen(log_path, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    unlink(log_path);
    if (!strstr(text, "out of descriptors"))
        fail_msg("no 'out of descriptors' line in the server log");
}

int main(int argc, char **argv)
{
    (void)t_seed();
    su_parse_backend(argc, argv);
    cu_find_build_dir();
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(
            echo_under_ulimit_64_sheds_newcomers_and_recovers, kill_child),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
