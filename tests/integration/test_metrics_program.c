/*
 * ringport-echo --metrics as a user runs it: a child on ephemeral ports
 * prints "metrics on ADDR:PORT" after its listening line, serves GET
 * /metrics with the counters of the traffic made (checked by the strict
 * parser and promtool when installed), takes the endpoint from its config
 * file too, refuses a bad one with file, line and key, prints the stats
 * line with pool usage when asked, and stops with status 0.
 */
#include "server_util.h"

#include "metrics_util.h"

#include <limits.h>
#include <poll.h>
#include <signal.h>

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

/* The "metrics on ADDR:PORT" line that follows the listening line. */
static uint16_t metrics_port(struct child *c)
{
    char line[256];
    read_line(c->out, line, sizeof line);
    const char *colon = strrchr(line, ':');
    if (strncmp(line, "metrics on 127.0.0.1:", 21) != 0 || !colon)
        fail_msg("unexpected second line '%s'", line);
    int port = atoi(colon + 1);
    assert_true(port > 0 && port < 65536);
    return (uint16_t)port;
}

/* Scrapes until 'series' reads 'want' (the child's threads get there on
   their own time); returns the last text, checked. */
static char *scrape_until(uint16_t port, const char *series, double want)
{
    for (int i = 0; i < 1000; i++) {
        struct mu_reply r;
        struct mu_check ck;
        assert_int_equal(mu_get(port, "/metrics", &r), 0);
        assert_int_equal(r.status, 200);
        if (!mu_check_text(r.body, &ck))
            fail_msg("format: %s", ck.err);
        if (mu_value(r.body, series) == want) {
            char *text = strdup(r.body);
            mu_reply_free(&r);
            return text;
        }
        mu_reply_free(&r);
        su_sleep_ms(10);
    }
    fail_msg("%s never reached %g", series, want);
    return NULL;
}

static void echo_serves_metrics_of_its_traffic(void **state)
{
    (void)state;
    struct child c;
    uint16_t port =
        echo_start(&c, (const char *const[]){"--metrics", "127.0.0.1:0", NULL});
    uint16_t mport = metrics_port(&c);
    int fd[3];
    for (int i = 0; i < 3; i++) {
        fd[i] = su_connect(port);
        su_ping(fd[i], (uint16_t)i);
    }
    close(fd[0]);
    /* The leave is counted before the session count drops: once sessions
       reads 2, the reason is there. */
    char *text = scrape_until(mport, "ringport_sessions", 2);
    assert_true(
        mu_value(text, "ringport_disconnects_total{reason=\"peer_closed\"}") ==
        1);
    assert_true(mu_value(text, "ringport_accepts_total") == 3);
    assert_true(mu_value(text, "ringport_received_packets_total") == 3);
    assert_true(mu_value(text, "ringport_received_bytes_total") == 3 * 20);
    /* The backend in use: the one forced, or whichever auto chose. */
    double uring = mu_value(text, "ringport_server_info{backend=\"uring\"}");
    double epoll = mu_value(text, "ringport_server_info{backend=\"epoll\"}");
    if (su_kind == RP_BACKEND_URING)
        assert_true(uring == 1 && isnan(epoll));
    else if (su_kind == RP_BACKEND_EPOLL)
        assert_true(epoll == 1 && isnan(uring));
    else
        assert_true((uring == 1) != (epoll == 1));
    mu_promtool(text);
    free(text);
    close(fd[1]);
    close(fd[2]);
    echo_stop(&c);
}

static void echo_takes_the_endpoint_from_its_config_file(void **state)
{
    (void)state;
    char ini[] = "/tmp/ringport-metrics-test-XXXXXX";
    int f = mkstemp(ini);
    assert_true(f >= 0);
    const char *text = "[echo]\nmetrics = 127.0.0.1:0\n";
    assert_int_equal(write(f, text, strlen(text)), (ssize_t)strlen(text));
    close(f);
    struct child c;
    echo_start(&c, (const char *const[]){"--config", ini, NULL});
    uint16_t mport = metrics_port(&c);
    free(scrape_until(mport, "ringport_sessions", 0));
    echo_stop(&c);

    /* A bad endpoint: status 2, one line naming file, line and key. */
    f = open(ini, O_WRONLY | O_TRUNC);
    text = "port = 0\n\nmetrics = everywhere\n";
    assert_int_equal(write(f, text, strlen(text)), (ssize_t)strlen(text));
    close(f);
    char path[PATH_MAX + 64], line[512], want[128];
    program(path, sizeof path, "examples/echo/ringport-echo");
    char *argv[] = {path, "--config", ini, NULL};
    child_start(&c, argv);
    read_line(c.err, line, sizeof line);
    assert_int_equal(child_wait(&c), 2);
    child_close(&c);
    unlink(ini);
    snprintf(want, sizeof want, "%s:3: key 'metrics': wants ADDR:PORT", ini);
    if (!strstr(line, want))
        fail_msg("stderr '%s' does not say '%s'", line, want);
}

static void echo_prints_the_stats_line_with_pool_usage(void **state)
{
    (void)state;
    struct child c;
    char line[1024];
    uint16_t port =
        echo_start(&c, (const char *const[]){"--stats", "true", NULL});
    int fd = su_connect(port);
    su_ping(fd, 1);
    bool seen = false;
    for (int i = 0; i < 20 && !seen; i++) {
        read_line(c.err, line, sizeof line);
        seen = strncmp(line, "sessions ", 9) == 0 && strstr(line, "| pool ");
    }
    if (!seen)
        fail_msg("no stats line; last stderr line '%s'", line);
    close(fd);
    echo_stop(&c);
}

/* BUILD from BUILD/tests/test_metrics_program. */
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
        cmocka_unit_test_teardown(echo_serves_metrics_of_its_traffic,
                                  kill_leftover_children),
        cmocka_unit_test_teardown(echo_takes_the_endpoint_from_its_config_file,
                                  kill_leftover_children),
        cmocka_unit_test_teardown(echo_prints_the_stats_line_with_pool_usage,
                                  kill_leftover_children),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
