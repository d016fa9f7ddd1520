/*
 * The three echo-model programs (examples/echo_models) and the load client
 * (tools/bench) as a user runs them: each server is started as a child
 * process on an ephemeral port with this run's backend, 50 clients send
 * messages of random sizes and check every echoed byte in order, then
 * SIGTERM must stop it with status 0 (under ASan that includes no leak).
 * The programs are found beside this test in the build tree:
 * BUILD/tests/test_echo_models -> BUILD/examples/echo_models/<name> and
 * BUILD/tools/bench/ringport-bench.
 */
#include "helpers.h"

#include <ringport/port.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CLIENTS 50
#define ROUNDS 8
#define MAX_MSG (40 * 1024)
#define WAIT_MS 15000 /* bound on any single wait for a child or a byte */

extern char **environ;

static char build_dir[PATH_MAX];
static const char *backend;
static uint64_t rng;

struct child {
    pid_t pid;
    int out; /* read end of the child's stdout */
};

/* Children started and not yet reaped: a failed test kills them in its
   teardown, so no server outlives the test that started it. */
static pid_t live[4];

static void live_track(pid_t pid, pid_t replace)
{
    for (size_t i = 0; i < sizeof live / sizeof live[0]; i++)
        if (live[i] == replace) {
            live[i] = pid;
            return;
        }
    fail_msg("too many children");
}

static int kill_leftover_children(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof live / sizeof live[0]; i++)
        if (live[i] > 0) {
            kill(live[i], SIGKILL);
            waitpid(live[i], NULL, 0);
            live[i] = 0;
        }
    return 0;
}

static void program_path(char *out, size_t len, const char *rel)
{
    snprintf(out, len, "%s/%s", build_dir, rel);
}

/* Starts 'argv' with stdout on a pipe; stderr stays ours (diagnostics). */
static void child_start(struct child *c, char *const argv[])
{
    int pipefd[2];
    posix_spawn_file_actions_t fa;
    assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
    int err = posix_spawn(&c->pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    if (err)
        fail_msg("cannot start %s: %s", argv[0], strerror(err));
    c->out = pipefd[0];
    live_track(c->pid, 0);
}

/* Reads one line of the child's stdout (bounded); returns its length. */
static size_t child_read_line(struct child *c, char *line, size_t len)
{
    size_t n = 0;
    while (n + 1 < len) {
        struct pollfd p = {.fd = c->out, .events = POLLIN};
        int r = poll(&p, 1, WAIT_MS);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            fail_msg("child %d printed no line within %d ms", (int)c->pid,
                     WAIT_MS);
        ssize_t got = read(c->out, line + n, 1);
        if (got <= 0 || line[n] == '\n')
            break;
        n++;
    }
    line[n] = '\0';
    return n;
}

/* Waits (bounded) for the child to exit; returns its wait status. A child
   still running after WAIT_MS is killed and the test fails. */
static int child_wait(struct child *c)
{
    int status = 0;
    for (int waited = 0;; waited += 10) {
        pid_t r = waitpid(c->pid, &status, WNOHANG);
        if (r == c->pid)
            break;
        assert_int_equal(r, 0);
        if (waited >= WAIT_MS) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &status, 0);
            live_track(0, c->pid);
            close(c->out);
            fail_msg("child %d did not exit within %d ms", (int)c->pid,
                     WAIT_MS);
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    live_track(0, c->pid);
    close(c->out);
    return status;
}

static void assert_exited_with(int status, int code)
{
    if (!WIFEXITED(status))
        fail_msg("child died of signal %d", WTERMSIG(status));
    assert_int_equal(WEXITSTATUS(status), code);
}

/* Starts an echo server and returns the port from its first line. */
static uint16_t server_start(struct child *c, const char *name)
{
    char path[PATH_MAX + 64], line[256];
    snprintf(path, sizeof path, "%s/examples/echo_models/%s", build_dir, name);
    char *argv[] = {path, "--port", "0", "--backend", (char *)backend, NULL};
    child_start(c, argv);
    child_read_line(c, line, sizeof line);
    const char *colon = strrchr(line, ':');
    if (strncmp(line, "listening on ", 13) != 0 || !colon)
        fail_msg("%s: unexpected first line '%s'", name, line);
    int port = atoi(colon + 1);
    assert_true(port > 0 && port < 65536);
    return (uint16_t)port;
}

static void server_stop(struct child *c)
{
    assert_int_equal(kill(c->pid, SIGTERM), 0);
    assert_exited_with(child_wait(c), 0);
}

static int client_connect(uint16_t port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {WAIT_MS / 1000, 0};
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* Loopback connects at once; no timeout, so an EINTR is restarted. */
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    /* Blocking, but every later call bounded. */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

static void send_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = send(fd, p, n, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            fail_msg("send: %s", r < 0 ? strerror(errno) : "0");
        p += r;
        n -= (size_t)r;
    }
}

static void recv_expect(int fd, const uint8_t *want, size_t n)
{
    static uint8_t got[MAX_MSG];
    size_t off = 0;
    while (off < n) {
        ssize_t r = recv(fd, got + off, n - off, 0);
        /* EINTR without a signal: io_uring's task work (the backend probe
           in main) makes one blocking call with a timeout return early. */
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            fail_msg("echo ended after %zu of %zu bytes: %s", off, n,
                     r < 0 ? strerror(errno) : "closed");
        off += (size_t)r;
    }
    assert_memory_equal(got, want, n);
}

/* Mostly small messages, as a game sends, some past the server's 16 KiB
   receive buffer so one message is echoed in several pieces. */
static size_t random_size(void)
{
    uint64_t r = t_rand(&rng) % 8;
    if (r < 5)
        return (size_t)t_rand_range(&rng, 1, 256);
    if (r < 7)
        return (size_t)t_rand_range(&rng, 257, 4096);
    return (size_t)t_rand_range(&rng, 4097, MAX_MSG);
}

/*
 * 50 clients, ROUNDS rounds: every client sends one message, then every
 * client reads its echo back and compares it byte for byte, so all 50
 * sessions have data in flight at once. Mid-way one client resets its
 * connection (RST) and a new one takes its place: the others must not
 * notice.
 */
static void echo_many_clients(const char *name)
{
    struct child srv;
    uint16_t port = server_start(&srv, name);
    int fds[CLIENTS];
    static uint8_t msgs[CLIENTS][MAX_MSG];
    size_t lens[CLIENTS];

    for (int i = 0; i < CLIENTS; i++)
        fds[i] = client_connect(port);
    for (int round = 0; round < ROUNDS; round++) {
        if (round == ROUNDS / 2) {
            struct linger lg = {1, 0};
            setsockopt(fds[7], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            close(fds[7]);
            fds[7] = client_connect(port);
        }
        for (int i = 0; i < CLIENTS; i++) {
            lens[i] = random_size();
            for (size_t k = 0; k < lens[i]; k++)
                msgs[i][k] = (uint8_t)t_rand(&rng);
            send_all(fds[i], msgs[i], lens[i]);
        }
        for (int i = 0; i < CLIENTS; i++)
            recv_expect(fds[i], msgs[i], lens[i]);
    }
    for (int i = 0; i < CLIENTS; i += 2) /* half close first, half stay */
        close(fds[i]);
    server_stop(&srv);
    for (int i = 1; i < CLIENTS; i += 2)
        close(fds[i]);
}

static void echo_event_echoes_every_byte_to_50_clients(void **state)
{
    (void)state;
    echo_many_clients("echo-event");
}

static void echo_routine_echoes_every_byte_to_50_clients(void **state)
{
    (void)state;
    echo_many_clients("echo-routine");
}

static void echo_port_echoes_every_byte_to_50_clients(void **state)
{
    (void)state;
    echo_many_clients("echo-port");
}

static void load_client_verifies_two_seconds_of_echoes(void **state)
{
    (void)state;
    struct child srv, load;
    char path[PATH_MAX + 64], port_s[16], line[512];
    uint16_t port = server_start(&srv, "echo-port");
    program_path(path, sizeof path, "tools/bench/ringport-bench");
    snprintf(port_s, sizeof port_s, "%u", port);
    char *argv[] = {path,  "--port",  port_s, "--connections", "8", "--size",
                    "700", "--depth", "3",    "--duration",    "2", "--warmup",
                    "0",   "--json",  NULL};
    child_start(&load, argv);
    child_read_line(&load, line, sizeof line);
    assert_non_null(strstr(line, "msgs verified"));
    child_read_line(&load, line, sizeof line);
    assert_non_null(strstr(line, "\"ok\":true"));
    assert_exited_with(child_wait(&load), 0);
    server_stop(&srv);
}

static void programs_refuse_a_bad_flag_with_status_2(void **state)
{
    (void)state;
    const char *rel[] = {
        "examples/echo_models/echo-event", "examples/echo_models/echo-routine",
        "examples/echo_models/echo-port", "tools/bench/ringport-bench"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        char path[PATH_MAX + 64];
        struct child c;
        program_path(path, sizeof path, rel[i]);
        char *argv[] = {path, "--no-such-flag", "1", NULL};
        child_start(&c, argv);
        assert_exited_with(child_wait(&c), 2);
    }
}

/* BUILD from BUILD/tests/test_echo_models. */
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
    rng = t_seed();
    backend = t_backend(argc, argv);
    find_build_dir();

    /* The servers would only fail to start; say "skipped" instead. */
    int kind = rp_backend_parse(backend);
    struct rp_port_config cfg = {
        .backend = kind < 0 ? RP_BACKEND_AUTO : (enum rp_backend_kind)kind};
    struct rp_port *port;
    if (kind < 0 || rp_port_create(&cfg, &port) < 0) {
        printf("backend %s unavailable: skipped\n", backend);
        return 77;
    }
    rp_port_destroy(port);

    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(echo_event_echoes_every_byte_to_50_clients,
                                  kill_leftover_children),
        cmocka_unit_test_teardown(echo_routine_echoes_every_byte_to_50_clients,
                                  kill_leftover_children),
        cmocka_unit_test_teardown(echo_port_echoes_every_byte_to_50_clients,
                                  kill_leftover_children),
        cmocka_unit_test_teardown(load_client_verifies_two_seconds_of_echoes,
                                  kill_leftover_children),
        cmocka_unit_test_teardown(programs_refuse_a_bad_flag_with_status_2,
                                  kill_leftover_children),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
