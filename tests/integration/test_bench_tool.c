/*
 * ringport-bench (tools/bench) as a user runs it, against servers that
 * behave and servers that do not: it must pass a correct echo (raw and
 * framed) and room server, and fail with status 1 and the right error
 * counter against one that corrupts a byte, one that closes a connection
 * mid-run and a port nobody listens on. The ringport servers it loads run
 * as children with this run's backend; the misbehaving ones are threads of
 * this test. Programs are found beside this test in the build tree:
 * BUILD/tests/test_bench_tool -> BUILD/tools/bench/ringport-bench.
 */
#define CU_WAIT_MS 20000 /* bound on any wait for a child's output or exit */
#include "child_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define OUT_MAX 65536

static const char *backend;
static struct cu_child server; /* a ringport server child */
static uint64_t rng;

/* Starts a ringport server program; returns its port from its first line,
   "listening on ADDR:PORT". */
static uint16_t server_start(const char *rel, const char *mode)
{
    char path[PATH_MAX + 64];
    cu_program(path, sizeof path, rel);
    char *argv[] = {path,         "--port",        "0",
                    "--backend",  (char *)backend, "--mode",
                    (char *)mode, "--no-stats",    NULL};
    if (!mode)
        argv[5] = NULL; /* the room server has none of these flags */
    cu_start(&server, argv, false);
    uint16_t port = cu_read_port(&server);
    close(server.out); /* it prints nothing more we need */
    return port;
}

static void server_stop(void)
{
    cu_term(&server);
    assert_int_equal(cu_wait(&server), 0);
}

/*
 * Runs ringport-bench with 'args' (NULL-terminated) and --port 'port';
 * collects its stdout into 'out'. Returns its exit status.
 */
static int bench_run(uint16_t port, const char *const *args, char *out)
{
    char path[PATH_MAX + 64], port_s[16];
    char *argv[40];
    int n = 0;
    struct cu_child c;
    size_t len = 0;
    cu_program(path, sizeof path, "tools/bench/ringport-bench");
    snprintf(port_s, sizeof port_s, "%u", port);
    argv[n++] = path;
    argv[n++] = "--port";
    argv[n++] = port_s;
    while (*args && n < 38)
        argv[n++] = (char *)*args++;
    argv[n] = NULL;
    cu_start(&c, argv, false);
    for (;;) {
        struct pollfd p = {.fd = c.out, .events = POLLIN};
        int r = poll(&p, 1, CU_WAIT_MS);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            kill(c.pid, SIGKILL);
            waitpid(c.pid, NULL, 0);
            cu_track(0, c.pid);
            fail_msg("ringport-bench still running after %d ms", CU_WAIT_MS);
        }
        ssize_t got = read(c.out, out + len, OUT_MAX - 1 - len);
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    out[len] = '\0';
    cu_close(&c);
    return cu_wait(&c);
}

/* The last line of 'out', which must be one JSON object. */
static const char *json_line(const char *out)
{
    size_t len = strlen(out);
    assert_true(len > 2 && out[len - 1] == '\n');
    const char *p = out + len - 1;
    while (p > out && p[-1] != '\n')
        p--;
    assert_int_equal(*p, '{');
    assert_int_equal(out[len - 2], '}');
    return p;
}

/* The number after "KEY": in the JSON line; fails if the key is missing. */
static double json_number(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *at = strstr(json, pat);
    if (!at)
        fail_msg("JSON has no key %s: %s", key, json);
    char *end;
    double v = strtod(at + strlen(pat), &end);
    assert_true(end != at + strlen(pat));
    return v;
}

static void json_has_contract_keys(const char *json)
{
    static const char *keys[] = {
        "tool",       "mode",     "connections", "threads",    "size_min",
        "size_max",   "depth",    "rate_hz",     "duration_s", "messages",
        "msgs_per_s", "mb_per_s", "latency_us",  "p50",        "p90",
        "p99",        "p999",     "max",         "errors",     "verify",
        "closed",     "connect",  "ok"};
    char pat[64];
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        snprintf(pat, sizeof pat, "\"%s\":", keys[i]);
        if (!strstr(json, pat))
            fail_msg("JSON has no key %s: %s", keys[i], json);
    }
    assert_non_null(strstr(json, "\"tool\":\"ringport-bench\""));
}

static void echo_ok(const char *mode, const char *size)
{
    static char out[OUT_MAX];
    uint16_t port = server_start("examples/echo/ringport-echo", mode);
    const char *args[] = {"--mode",     mode, "--connections", "4",
                          "--size",     size, "--depth",       "8",
                          "--duration", "1",  "--warmup",      "0.2",
                          "--threads",  "2",  "--json",        NULL};
    assert_int_equal(bench_run(port, args, out), 0);
    const char *json = json_line(out);
    json_has_contract_keys(json);
    assert_non_null(strstr(json, mode));
    assert_true(json_number(json, "messages") > 0);
    assert_true(json_number(json, "msgs_per_s") > 0);
    assert_true(json_number(json, "connections") == 4);
    assert_true(json_number(json, "verify") == 0);
    assert_non_null(strstr(json, "\"ok\":true"));
    server_stop();
}

static void passes_a_raw_echo_server(void **state)
{
    (void)state;
    echo_ok("raw", "1-2000");
}

static void passes_a_framed_echo_server(void **state)
{
    (void)state;
    echo_ok("framed", "64-1024");
}

/* ---- misbehaving servers, as threads of this test ------------------------ */

enum fault { FAULT_FLIP, FAULT_CLOSE };

struct bad_server {
    int lfd;
    uint16_t port;
    enum fault fault;
    size_t after; /* bytes echoed faithfully first */
    pthread_t tid;
};

/* Accepts one connection and echoes it until the fault, then goes on
   (flip) or closes (close). Bounded by receive timeouts. */
static void *bad_server_main(void *arg)
{
    struct bad_server *s = arg;
    struct timeval tv = {10, 0};
    uint8_t buf[4096];
    size_t total = 0;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            break;
        if (total + (size_t)n > s->after && total <= s->after) {
            if (s->fault == FAULT_CLOSE)
                break;
            buf[s->after - total] ^= 0x20;
        }
        total += (size_t)n;
        if (send(fd, buf, (size_t)n, MSG_NOSIGNAL) != n)
            break;
    }
    close(fd);
    return NULL;
}

static void bad_server_start(struct bad_server *s, enum fault fault,
                             size_t after)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    s->fault = fault;
    s->after = after;
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->lfd >= 0);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->lfd, 8), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &len), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->tid, NULL, bad_server_main, s), 0);
}

static void bad_server_join(struct bad_server *s)
{
    pthread_join(s->tid, NULL);
    close(s->lfd);
}

static void fails_with_a_verify_error_when_one_byte_is_flipped(void **state)
{
    (void)state;
    static char out[OUT_MAX];
    struct bad_server s;
    bad_server_start(&s, FAULT_FLIP, (size_t)t_rand_range(&rng, 1000, 9000));
    const char *args[] = {"--connections", "1", "--size",     "100-300",
                          "--depth",       "4", "--duration", "2",
                          "--warmup",      "0", "--json",     NULL};
    assert_int_equal(bench_run(s.port, args, out), 1);
    bad_server_join(&s);
    const char *json = json_line(out);
    json_has_contract_keys(json);
    assert_true(json_number(json, "verify") > 0);
    assert_non_null(strstr(json, "\"ok\":false"));
}

static void fails_with_a_close_error_when_the_server_hangs_up(void **state)
{
    (void)state;
    static char out[OUT_MAX];
    struct bad_server s;
    bad_server_start(&s, FAULT_CLOSE, 20000);
    const char *args[] = {"--connections", "1", "--depth",  "2",
                          "--duration",    "2", "--warmup", "0",
                          "--json",        NULL};
    assert_int_equal(bench_run(s.port, args, out), 1);
    bad_server_join(&s);
    const char *json = json_line(out);
    assert_true(json_number(json, "closed") > 0);
    assert_true(json_number(json, "verify") == 0);
}

static void fails_with_a_connect_error_when_nobody_listens(void **state)
{
    (void)state;
    static char out[OUT_MAX];
    /* A port that was just free: bound, then closed without listening. */
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    const char *args[] = {"--connections", "3", "--duration", "1",
                          "--json",        NULL};
    assert_int_equal(bench_run(ntohs(a.sin_port), args, out), 1);
    const char *json = json_line(out);
    assert_true(json_number(json, "connect") > 0);
    assert_true(json_number(json, "messages") == 0);
}

static void room_mode_delivers_every_message_to_every_member(void **state)
{
    (void)state;
    static char out[OUT_MAX];
    uint16_t port = server_start("bench/bench-ringport_room", NULL);
    const char *args[] = {
        "room",   "--connections", "10", "--room-size", "5", "--size",
        "12-400", "--depth",       "2",  "--duration",  "1", "--warmup",
        "0.2",    "--threads",     "2",  "--json",      NULL};
    assert_int_equal(bench_run(port, args, out), 0);
    const char *json = json_line(out);
    json_has_contract_keys(json);
    assert_non_null(strstr(json, "\"mode\":\"room\""));
    double sent = json_number(json, "sent");
    assert_true(sent > 0);
    /* "messages" counts what was verified inside the measured window, a
       wall-clock second: a loaded machine may keep every thread of the
       run off the CPU for all of it, so it may be 0. Every message sent
       (warm-up and drain included) reached every member, exactly. */
    assert_true(json_number(json, "messages") <=
                json_number(json, "delivered"));
    assert_true(json_number(json, "delivered") == sent * 5);
    server_stop();
}

static void open_loop_sends_at_the_rate_asked(void **state)
{
    (void)state;
    static char out[OUT_MAX];
    uint16_t port = server_start("examples/echo/ringport-echo", "raw");
    const char *args[] = {"--connections", "4", "--rate",   "50",
                          "--duration",    "2", "--warmup", "0",
                          "--json",        NULL};
    assert_int_equal(bench_run(port, args, out), 0);
    const char *json = json_line(out);
    double want = 50.0 * 4 * 2, got = json_number(json, "messages");
    /* A count check, not a timing check: a slow machine sends late, never
       more than the schedule. */
    assert_true(got >= want * 0.5 && got <= want * 1.1);
    assert_true(json_number(json, "rate_hz") == 50);
    server_stop();
}

static void refuses_a_bad_flag_with_status_2(void **state)
{
    (void)state;
    static char out[OUT_MAX];
    const char *bad[][3] = {{"--no-such-flag", "1", NULL},
                            {"--size", "0", NULL},
                            {"--mode", "sideways", NULL}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(bench_run(7, bad[i], out), 2);
}

int main(int argc, char **argv)
{
    rng = t_seed();
    backend = cu_backend(argc, argv);
    cu_find_build_dir();
    signal(SIGPIPE, SIG_IGN);

    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(passes_a_raw_echo_server, cu_kill_leftovers),
        cmocka_unit_test_teardown(passes_a_framed_echo_server,
                                  cu_kill_leftovers),
        cmocka_unit_test(fails_with_a_verify_error_when_one_byte_is_flipped),
        cmocka_unit_test(fails_with_a_close_error_when_the_server_hangs_up),
        cmocka_unit_test(fails_with_a_connect_error_when_nobody_listens),
        cmocka_unit_test_teardown(
            room_mode_delivers_every_message_to_every_member,
            cu_kill_leftovers),
        cmocka_unit_test_teardown(open_loop_sends_at_the_rate_asked,
                                  cu_kill_leftovers),
        cmocka_unit_test(refuses_a_bad_flag_with_status_2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
