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
#include "child_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CLIENTS 50
#define ROUNDS 8
#define MAX_MSG (40 * 1024)

static const char *backend;
static uint64_t rng;

/* Starts an echo server and returns the port from its first line. */
static uint16_t server_start(struct cu_child *c, const char *name)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/examples/echo_models/%s", cu_build_dir,
             name);
    char *argv[] = {path, "--port", "0", "--backend", (char *)backend, NULL};
    cu_start(c, argv, false);
    return cu_read_port(c);
}

static int client_connect(uint16_t port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {CU_WAIT_MS / 1000, 0};
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
    struct cu_child srv;
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
    cu_stop(&srv);
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
    struct cu_child srv;
    uint16_t port = server_start(&srv, "echo-port");
    cu_bench_verifies(
        port, (const char *const[]){"--connections", "8", "--size", "700",
                                    "--depth", "3", "--duration", "2",
                                    "--warmup", "0", "--json", NULL});
    cu_stop(&srv);
}

static void programs_refuse_a_bad_flag_with_status_2(void **state)
{
    (void)state;
    const char *rel[] = {
        "examples/echo_models/echo-event", "examples/echo_models/echo-routine",
        "examples/echo_models/echo-port", "tools/bench/ringport-bench"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++)
        cu_expect_refusal(
            rel[i], (const char *const[]){"--no-such-flag", "1", NULL}, NULL);
}

int main(int argc, char **argv)
{
    rng = t_seed();
    backend = cu_backend(argc, argv);
    cu_find_build_dir();

    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(echo_event_echoes_every_byte_to_50_clients,
                                  cu_kill_leftovers),
        cmocka_unit_test_teardown(echo_routine_echoes_every_byte_to_50_clients,
                                  cu_kill_leftovers),
        cmocka_unit_test_teardown(echo_port_echoes_every_byte_to_50_clients,
                                  cu_kill_leftovers),
        cmocka_unit_test_teardown(load_client_verifies_two_seconds_of_echoes,
                                  cu_kill_leftovers),
        cmocka_unit_test_teardown(programs_refuse_a_bad_flag_with_status_2,
                                  cu_kill_leftovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
