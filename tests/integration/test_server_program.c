/*
 * ringport-echo (examples/echo) as a user runs it: started as a child on an
 * ephemeral port with this run's backend, it echoes packets (framed) or
 * bytes (raw), takes settings from a config file that flags override,
 * refuses bad flags, values and config entries with one line and status 2,
 * and stops with status 0 on SIGTERM (under ASan that includes no leak).
 * The load client (ringport-bench --mode framed) verifies it as well.
 * Programs are found beside this test in the build tree.
 */
#include "server_util.h"

#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

static char build_dir[PATH_MAX];
static const char *backend;

struct child {
    pid_t pid;
    int out, err; /* read ends of its stdout and stderr */
};

static pid_t live[2];

static int kill_leftover_children(void **state)
{
    (void)state;
    for (size_t i = 0; i < 2; i++)
        if (live[i] > 0) {
            kill(live[i], SIGKILL);
            waitpid(live[i], NULL, 0);
            live[i] = 0;
        }
    return 0;
}

static void child_start(struct child *c, char *const argv[])
{
    int o[2], e[2];
    posix_spawn_file_actions_t fa;
    assert_int_equal(pipe2(o, O_CLOEXEC), 0);
    assert_int_equal(pipe2(e, O_CLOEXEC), 0);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, o[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, e[1], STDERR_FILENO);
    int err = posix_spawn(&c->pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(o[1]);
    close(e[1]);
    if (err)
        fail_msg("cannot start %s: %s", argv[0], strerror(err));
    c->out = o[0];
    c->err = e[0];
    for (size_t i = 0; i < 2; i++)
        if (live[i] == 0) {
            live[i] = c->pid;
            break;
        }
}

/* One line of 'fd' (bounded); returns its length, 0 at EOF. */
static size_t read_line(int fd, char *line, size_t len)
{
    size_t n = 0;
    while (n + 1 < len) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, SU_WAIT_MS);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            fail_msg("no line within %d ms", SU_WAIT_MS);
        if (read(fd, line + n, 1) != 1 || line[n] == '\n')
            break;
        n++;
    }
    line[n] = '\0';
    return n;
}

/* Waits (bounded) for the child; returns its exit status, or fails. */
static int child_wait(struct child *c)
{
    int status = 0;
    for (int waited = 0;; waited += 10) {
        pid_t r = waitpid(c->pid, &status, WNOHANG);
        if (r == c->pid)
            break;
        if (waited >= SU_WAIT_MS) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &status, 0);
            fail_msg("child %d did not exit", (int)c->pid);
        }
        su_sleep_ms(10);
    }
    for (size_t i = 0; i < 2; i++)
        if (live[i] == c->pid)
            live[i] = 0;
    if (!WIFEXITED(status))
        fail_msg("child died of signal %d", WTERMSIG(status));
    return WEXITSTATUS(status);
}

static void child_close(struct child *c)
{
    close(c->out);
    close(c->err);
}

static void program(char *out, size_t len, const char *rel)
{
    snprintf(out, len, "%s/%s", build_dir, rel);
}

/* Starts ringport-echo with 'extra' flags and returns its port. */
static uint16_t echo_start(struct child *c, const char *const *extra)
{
    char path[PATH_MAX + 64], line[256];
    char *argv[24] = {path,        "--port",        "0",
                      "--backend", (char *)backend, "--no-stats"};
    int n = 6;
    program(path, sizeof path, "examples/echo/ringport-echo");
    for (; extra && *extra && n < 22; extra++)
        argv[n++] = (char *)*extra;
    argv[n] = NULL;
    child_start(c, argv);
    read_line(c->out, line, sizeof line);
    const char *colon = strrchr(line, ':');
    if (strncmp(line, "listening on ", 13) != 0 || !colon)
        fail_msg("unexpected first line '%s'", line);
    int port = atoi(colon + 1);
    assert_true(port > 0 && port < 65536);
    return (uint16_t)port;
}

/* SIGTERM: status 0 and a final line of totals. */
static void echo_stop(struct child *c)
{
    char line[1024];
    assert_int_equal(kill(c->pid, SIGTERM), 0);
    read_line(c->out, line, sizeof line);
    assert_non_null(strstr(line, "final: accepts"));
    assert_int_equal(child_wait(c), 0);
    child_close(c);
}

/* Runs ringport-echo with 'args' that must be refused: status 2, and the
   first line of stderr contains 'says'. */
static void expect_refusal(const char *const *args, const char *says)
{
    char path[PATH_MAX + 64], line[512];
    char *argv[16] = {path};
    int n = 1;
    struct child c;
    program(path, sizeof path, "examples/echo/ringport-echo");
    for (; *args && n < 15; args++)
        argv[n++] = (char *)*args;
    argv[n] = NULL;
    child_start(&c, argv);
    read_line(c.err, line, sizeof line);
    assert_int_equal(child_wait(&c), 2);
    if (!strstr(line, says))
        fail_msg("stderr '%s' does not say '%s'", line, says);
    child_close(&c);
}

static void framed_mode_echoes_packets_and_stops_on_sigterm(void **state)
{
    (void)state;
    struct child c;
    uint16_t port = echo_start(
        &c, (const char *const[]){"--mode", "framed", "--threads", "2", NULL});
    int fd[8];
    for (int i = 0; i < 8; i++)
        fd[i] = su_connect(port);
    for (int round = 0; round < 20; round++)
        for (int i = 0; i < 8; i++)
            su_ping(fd[i], (uint16_t)(round * 8 + i));
    for (int i = 0; i < 8; i += 2)
        close(fd[i]);
    echo_stop(&c);
    for (int i = 1; i < 8; i += 2) {
        assert_int_equal(su_wait_closed(fd[i], SU_WAIT_MS), 0);
        close(fd[i]);
    }
}

static void raw_mode_echoes_bytes_from_a_config_file(void **state)
{
    (void)state;
    char ini[] = "/tmp/ringport-echo-test-XXXXXX";
    int f = mkstemp(ini);
    assert_true(f >= 0);
    /* port 1 would fail to bind: the --port 0 flag must override it. */
    const char *text = "; test\nmode = raw\n[echo]\nport = 1\nmax_sessions "
                       "= 16\nstats = false\n";
    assert_int_equal(write(f, text, strlen(text)), (ssize_t)strlen(text));
    close(f);
    struct child c;
    uint16_t port =
        echo_start(&c, (const char *const[]){"--config", ini, NULL});
    unlink(ini);
    uint8_t msg[5000], got[5000];
    int fd = su_connect(port);
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)(i * 7);
    su_send_all(fd, msg, sizeof msg);
    assert_int_equal(su_read_full(fd, got, sizeof got, SU_WAIT_MS), 0);
    assert_memory_equal(got, msg, sizeof msg);
    close(fd);
    echo_stop(&c);
}

static void bad_flags_values_and_config_entries_exit_with_status_2(void **state)
{
    (void)state;
    expect_refusal((const char *const[]){"--no-such-flag", "1", NULL},
                   "unknown flag '--no-such-flag'");
    expect_refusal((const char *const[]){"--mode", "chunky", NULL},
                   "--mode wants raw or framed");
    expect_refusal((const char *const[]){"--port", "70000", NULL}, "--port");
    expect_refusal((const char *const[]){"--threads", "0", NULL}, "io_threads");
    expect_refusal((const char *const[]){"--port", NULL}, "needs a value");
    expect_refusal(
        (const char *const[]){"--config", "/nonexistent/echo.ini", NULL},
        "/nonexistent/echo.ini");

    char ini[] = "/tmp/ringport-echo-test-XXXXXX";
    int f = mkstemp(ini);
    assert_true(f >= 0);
    const char *text = "mode = raw\n\nbogus_key = 3\n";
    assert_int_equal(write(f, text, strlen(text)), (ssize_t)strlen(text));
    close(f);
    char want[128];
    snprintf(want, sizeof want, "%s:3: key 'bogus_key'", ini);
    expect_refusal((const char *const[]){"--config", ini, NULL}, want);
    f = open(ini, O_WRONLY | O_TRUNC);
    text = "port = 0\nthreads = many\n";
    assert_int_equal(write(f, text, strlen(text)), (ssize_t)strlen(text));
    close(f);
    snprintf(want, sizeof want, "%s:2: key 'threads'", ini);
    expect_refusal((const char *const[]){"--config", ini, NULL}, want);
    unlink(ini);
}

static void load_client_verifies_framed_echoes(void **state)
{
    (void)state;
    struct child srv, load;
    char path[PATH_MAX + 64], port_s[16], line[512];
    uint16_t port = echo_start(&srv, NULL);
    program(path, sizeof path, "tools/bench/ringport-bench");
    snprintf(port_s, sizeof port_s, "%u", port);
    char *argv[] = {
        path,     "--port",  port_s,   "--connections", "8", "--size",
        "1-1024", "--depth", "4",      "--duration",    "1", "--warmup",
        "0",      "--mode",  "framed", "--json",        NULL};
    child_start(&load, argv);
    read_line(load.out, line, sizeof line);
    assert_non_null(strstr(line, "msgs verified"));
    read_line(load.out, line, sizeof line);
    assert_non_null(strstr(line, "\"ok\":true"));
    assert_int_equal(child_wait(&load), 0);
    child_close(&load);
    echo_stop(&srv);
}

/* BUILD from BUILD/tests/test_server_program. */
static void find_build_dir(void)
{
    ssize_t n = readlink("/proc/self/exe", build_dir, sizeof build_dir - 1);
    if (n <= 0) {
        perror("readlink /proc/self/exe");
        exit(1);
    }
    build_dir[n] = '\0';
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(build_dir, '/');
        if (slash)
            *slash = '\0';
    }
}

int main(int argc, char **argv)
{
    (void)t_seed();
    su_parse_backend(argc, argv);
    backend = rp_backend_name(su_kind);
    find_build_dir();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(
            framed_mode_echoes_packets_and_stops_on_sigterm,
            kill_leftover_children),
        cmocka_unit_test_teardown(raw_mode_echoes_bytes_from_a_config_file,
                                  kill_leftover_children),
        cmocka_unit_test_teardown(
            bad_flags_values_and_config_entries_exit_with_status_2,
            kill_leftover_children),
        cmocka_unit_test_teardown(load_client_verifies_framed_echoes,
                                  kill_leftover_children),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
