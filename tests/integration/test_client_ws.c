/*
 * libringport-client's WebSocket transport (cfg.transport = RP_CLIENT_WS)
 * against two kinds of server:
 * - a fake one in the test (raw sockets, RFC 6455 written by hand): the
 *   upgrade request, every client frame masked with a fresh key and
 *   carrying whole frames, a ping answered with a pong of the same payload,
 *   a fragmented message and a message of two frames decoded, a text frame
 *   or a masked server frame refused with close 1002 and -EPROTO, a wrong
 *   Sec-WebSocket-Accept or a refusal (426) failing the connect;
 * - Debian's python3-websockets (tests/tools/ws_echo.py), an independent
 *   implementation that refuses unmasked client frames: frames of every
 *   size echoed whole and in order, its ping, its fragments, its close
 *   (the client reconnects by itself and goes on); and ringport-bench's
 *   own framing (echo --transport ws) verified against it. Skipped with
 *   one line when python3-websockets is missing.
 * The server's backend does not matter here (the tests against ringport's
 * own WebSocket listener live with the programs' tests); the flag is
 * accepted for the per-backend registration.
 */
#include "child_util.h"

#include "ws_codec.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <ringport/client.h>
#include <sys/socket.h>

#ifndef RP_WS_ECHO_PY
#error "RP_WS_ECHO_PY: the path of tests/tools/ws_echo.py"
#endif
#define WAIT_MS 15000

static uint64_t rng;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct rp_client *ws_client(uint16_t port, int reconnect)
{
    struct rp_client_config cc;
    struct rp_client *c = NULL;
    rp_client_config_init(&cc, "127.0.0.1", port);
    cc.transport = RP_CLIENT_WS;
    cc.reconnect = reconnect;
    cc.backoff_min_ms = 5;
    cc.backoff_max_ms = 40;
    cc.seed = rng;
    assert_int_equal(rp_client_create(&cc, &c), 0);
    return c;
}

/* ---- a fake server --------------------------------------------------- */

static int listen_any(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Polls the client until 'fd' (the fake server's side) is readable. */
static void pump_until_readable(struct rp_client *c, int fd)
{
    uint64_t deadline = now_ms() + WAIT_MS;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 0) == 1)
            return;
        assert_true(now_ms() < deadline);
        rp_client_poll(c, 5);
    }
}

/* Reads exactly n bytes from the fake server's socket, polling the client
   meanwhile (it may have more to write). */
static void read_exact(struct rp_client *c, int fd, uint8_t *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        pump_until_readable(c, fd);
        ssize_t k = recv(fd, p + got, n - got, MSG_DONTWAIT);
        if (k < 0 && errno == EAGAIN)
            continue;
        assert_true(k > 0);
        got += (size_t)k;
    }
}

/* Accepts the client and reads its upgrade request; answers it with
   'answer' (NULL: the right 101). Returns the server's socket. */
static int fake_accept(struct rp_client *c, int lfd, const char *answer)
{
    uint64_t deadline = now_ms() + WAIT_MS;
    int fd = -1;
    while (fd < 0) {
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        if (poll(&p, 1, 0) == 1)
            fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        else
            rp_client_poll(c, 5);
        assert_true(now_ms() < deadline);
    }
    char req[2048];
    size_t n = 0;
    while (n < 4 || memcmp(req + n - 4, "\r\n\r\n", 4) != 0) {
        assert_true(n < sizeof req - 1);
        read_exact(c, fd, (uint8_t *)req + n, 1);
        n++;
    }
    req[n] = '\0';
    assert_non_null(strstr(req, "GET / HTTP/1.1\r\n"));
    assert_non_null(strstr(req, "\r\nUpgrade: websocket\r\n"));
    assert_non_null(strstr(req, "\r\nSec-WebSocket-Version: 13\r\n"));
    const char *k = strstr(req, "\r\nSec-WebSocket-Key: ");
    assert_non_null(k);
    char key[RP_CWS_KEY_LEN + 1], acc[RP_CWS_ACCEPT_LEN + 1], resp[256];
    memcpy(key, k + 21, RP_CWS_KEY_LEN);
    key[RP_CWS_KEY_LEN] = '\0';
    assert_int_equal(k[21 + RP_CWS_KEY_LEN], '\r');
    rp__cws_accept(key, acc);
    if (!answer) {
        snprintf(resp, sizeof resp,
                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                 acc);
        answer = resp;
    }
    assert_int_equal(send(fd, answer, strlen(answer), 0),
                     (ssize_t)strlen(answer));
    return fd;
}

/* Reads one client frame: it must be masked; returns its opcode, the
   unmasked payload in p (*len bytes) and its key in key. */
static unsigned read_client_frame(struct rp_client *c, int fd, uint8_t *p,
                                  size_t *len, uint8_t key[4])
{
    uint8_t h[RP_CWS_MAX_HEADER];
    struct rp__cws_frame f;
    size_t n = 2;
    read_exact(c, fd, h, 2);
    int r;
    while ((r = rp__cws_parse(h, n, &f)) == 0) {
        read_exact(c, fd, h + n, 1);
        n++;
    }
    assert_int_equal(r, (int)n);
    assert_true(f.masked);
    assert_true(f.fin);
    read_exact(c, fd, p, (size_t)f.len);
    rp__cws_mask(p, p, (size_t)f.len, f.mask);
    memcpy(key, f.mask, 4);
    *len = (size_t)f.len;
    return f.opcode;
}

/* An unmasked server frame. */
static void server_frame(int fd, unsigned fin_op, const void *p, size_t len)
{
    uint8_t h[10];
    size_t n = 2;
    h[0] = (uint8_t)fin_op;
    if (len < 126) {
        h[1] = (uint8_t)len;
    } else {
        h[1] = 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        n = 4;
    }
    assert_int_equal(send(fd, h, n, 0), (ssize_t)n);
    if (len)
        assert_int_equal(send(fd, p, len, 0), (ssize_t)len);
}

static size_t put_frame(uint8_t *out, uint16_t type, const void *p,
                        uint16_t len)
{
    out[0] = (uint8_t)len, out[1] = (uint8_t)(len >> 8);
    out[2] = (uint8_t)type, out[3] = (uint8_t)(type >> 8);
    memcpy(out + 4, p, len);
    return 4 + (size_t)len;
}

/* Polls until the client holds a frame, which must be (type, p, len). */
static void expect_frame(struct rp_client *c, uint16_t type, const void *p,
                         uint16_t len)
{
    struct rp_client_frame f;
    uint64_t deadline = now_ms() + WAIT_MS;
    while (rp_client_recv(c, &f) != 1) {
        assert_true(now_ms() < deadline);
        assert_true(rp_client_poll(c, 5) >= 0);
    }
    assert_int_equal(f.type, type);
    assert_int_equal(f.len, len);
    assert_memory_equal(f.payload, p, len);
}

static void ws_client_masks_every_frame_and_decodes_the_servers(void **state)
{
    (void)state;
    uint16_t port;
    int lfd = listen_any(&port);
    struct rp_client *c = ws_client(port, 0);
    assert_int_equal(rp_client_start(c), 0);
    int fd = fake_accept(c, lfd, NULL);
    uint64_t deadline = now_ms() + WAIT_MS;
    while (rp_client_state(c) != RP_CLIENT_CONNECTED) {
        assert_true(now_ms() < deadline);
        assert_true(rp_client_poll(c, 5) >= 0);
    }

    /* Three sends: each a binary message of whole frames, masked, and no
       two with the same key (keys are random: a repeat among three is a
       one in two billion chance). */
    uint8_t keys[3][4], buf[70000], want[300];
    size_t len;
    for (int i = 0; i < 3; i++) {
        uint16_t n = (uint16_t)(i * 100 + 1);
        memset(want, 'a' + i, n);
        assert_int_equal(rp_client_send(c, (uint16_t)(10 + i), want, n), 0);
        assert_int_equal(read_client_frame(c, fd, buf, &len, keys[i]),
                         RP_CWS_OP_BINARY);
        assert_int_equal(len, 4 + n);
        assert_int_equal(buf[2], 10 + i);
        assert_memory_equal(buf + 4, want, n);
    }
    assert_memory_not_equal(keys[0], keys[1], 4);
    assert_memory_not_equal(keys[1], keys[2], 4);

    /* A frame of 60000 bytes: a 16-bit extended length. */
    static uint8_t big[60000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7);
    assert_int_equal(rp_client_send(c, 3, big, sizeof big), 0);
    assert_int_equal(read_client_frame(c, fd, buf, &len, keys[0]),
                     RP_CWS_OP_BINARY);
    assert_int_equal(len, 4 + sizeof big);
    assert_memory_equal(buf + 4, big, sizeof big);

    /* The server's ping gets a pong with its payload. */
    server_frame(fd, 0x89, "hello", 5);
    assert_int_equal(read_client_frame(c, fd, buf, &len, keys[0]),
                     RP_CWS_OP_PONG);
    assert_int_equal(len, 5);
    assert_memory_equal(buf, "hello", 5);

    /* Two frames in one message; then one frame in three fragments, a
       ping between them. */
    uint8_t m[64];
    size_t ml = put_frame(m, 7, "one", 3);
    ml += put_frame(m + ml, 8, "two!", 4);
    server_frame(fd, 0x82, m, ml);
    expect_frame(c, 7, "one", 3);
    expect_frame(c, 8, "two!", 4);
    ml = put_frame(m, 9, "fragmented", 10);
    server_frame(fd, 0x02, m, 3);
    server_frame(fd, 0x00, m + 3, 5);
    server_frame(fd, 0x89, "", 0);
    server_frame(fd, 0x80, m + 8, ml - 8);
    expect_frame(c, 9, "fragmented", 10);
    assert_int_equal(read_client_frame(c, fd, buf, &len, keys[0]),
                     RP_CWS_OP_PONG);
    assert_int_equal(len, 0);

    /* A text frame ends it: close 1002, -EPROTO. */
    server_frame(fd, 0x81, "hi", 2);
    deadline = now_ms() + WAIT_MS;
    while (rp_client_state(c) == RP_CLIENT_CONNECTED) {
        assert_true(now_ms() < deadline);
        rp_client_poll(c, 5);
    }
    assert_int_equal(rp_client_state(c), RP_CLIENT_CLOSED);
    assert_int_equal(rp_client_last_error(c), -EPROTO);
    assert_int_equal(recv(fd, buf, 2, MSG_WAITALL), 2);
    assert_int_equal(buf[0], 0x88); /* FIN + close */
    assert_int_equal(buf[1], 0x80 | 2);
    assert_int_equal(recv(fd, buf, 6, MSG_WAITALL), 6);
    rp__cws_mask(buf + 4, buf + 4, 2, buf);
    assert_int_equal(buf[4] << 8 | buf[5], 1002);
    close(fd);
    rp_client_destroy(c);

    /* A masked frame from the server: the same. */
    c = ws_client(port, 0);
    assert_int_equal(rp_client_start(c), 0);
    fd = fake_accept(c, lfd, NULL);
    static const uint8_t masked[] = {0x82, 0x80 | 4, 1,     2,     3,
                                     4,    0 ^ 1,    0 ^ 2, 5 ^ 3, 0 ^ 4};
    assert_int_equal(send(fd, masked, sizeof masked, 0), sizeof masked);
    deadline = now_ms() + WAIT_MS;
    while (rp_client_state(c) != RP_CLIENT_CLOSED) {
        assert_true(now_ms() < deadline);
        rp_client_poll(c, 5);
    }
    assert_int_equal(rp_client_last_error(c), -EPROTO);
    close(fd);
    rp_client_destroy(c);
    close(lfd);
}

/* A server that accepts and never answers the upgrade: the connect fails
   with -ETIMEDOUT after ws_handshake_ms, in the caller's poll loop. */
static void ws_handshake_has_a_deadline(void **state)
{
    (void)state;
    uint16_t port;
    int lfd = listen_any(&port);
    struct rp_client_config cc;
    struct rp_client *c = NULL;
    rp_client_config_init(&cc, "127.0.0.1", port);
    cc.transport = RP_CLIENT_WS;
    cc.reconnect = 0;
    cc.ws_handshake_ms = 50;
    assert_int_equal(rp_client_create(&cc, &c), 0);
    assert_int_equal(rp_client_start(c), 0);
    uint64_t deadline = now_ms() + WAIT_MS;
    while (rp_client_state(c) == RP_CLIENT_CONNECTING) {
        assert_true(now_ms() < deadline);
        int t = rp_client_timeout_ms(c);
        if (t < 0)
            t = 5; /* TCP still connecting */
        struct pollfd p = {.fd = rp_client_fd(c),
                           .events = rp_client_events(c)};
        poll(&p, 1, t);
        rp_client_poll(c, 0);
    }
    assert_int_equal(rp_client_state(c), RP_CLIENT_CLOSED);
    assert_int_equal(rp_client_last_error(c), -ETIMEDOUT);
    rp_client_destroy(c);
    close(lfd); /* the connection in its backlog goes with it */
}

static void ws_config_is_checked(void **state)
{
    (void)state;
    struct rp_client_config cc;
    struct rp_client *c = NULL;
    static const char *bad[] = {"x", "/a b", "/a\r\nX: y", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rp_client_config_init(&cc, "127.0.0.1", 1);
        cc.transport = RP_CLIENT_WS;
        cc.ws_path = bad[i];
        assert_int_equal(rp_client_create(&cc, &c), -EINVAL);
    }
    rp_client_config_init(&cc, "127.0.0.1", 1);
    cc.transport = (enum rp_client_transport)7;
    assert_int_equal(rp_client_create(&cc, &c), -EINVAL);
    cc.transport = RP_CLIENT_WS;
    cc.ws_path = "/game?room=1";
    assert_int_equal(rp_client_create(&cc, &c), 0);
    rp_client_destroy(c);
}

static void ws_connect_fails_on_a_wrong_accept_or_a_refusal(void **state)
{
    (void)state;
    static const char *answers[] = {
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n"
        "Content-Length: 0\r\n\r\n",
    };
    uint16_t port;
    int lfd = listen_any(&port);
    for (size_t i = 0; i < 2; i++) {
        struct rp_client *c = ws_client(port, 0);
        assert_int_equal(rp_client_start(c), 0);
        int fd = fake_accept(c, lfd, answers[i]);
        uint64_t deadline = now_ms() + WAIT_MS;
        while (rp_client_state(c) == RP_CLIENT_CONNECTING) {
            assert_true(now_ms() < deadline);
            rp_client_poll(c, 5);
        }
        assert_int_equal(rp_client_state(c), RP_CLIENT_CLOSED);
        assert_int_equal(rp_client_last_error(c), -EPROTO);
        struct rp_client_stats st;
        rp_client_get_stats(c, &st);
        assert_int_equal(st.connects, 0);
        assert_int_equal(st.failed_connects, 1);
        close(fd);
        rp_client_destroy(c);
    }
    close(lfd);
}

/* ---- python3-websockets ------------------------------------------------ */

static struct cu_child py;

/* Starts tests/tools/ws_echo.py; 0 (and the test skipped) when Debian's
   python3-websockets is missing. */
static uint16_t python_start(void)
{
    char *argv[] = {"/usr/bin/python3", RP_WS_ECHO_PY, NULL};
    char line[256];
    if (access(argv[0], X_OK) != 0) {
        print_message("/usr/bin/python3 missing: skipped\n");
        return 0;
    }
    cu_start(&py, argv, false);
    cu_read_line(py.out, line, sizeof line);
    if (strncmp(line, "listening on ", 13) != 0) {
        print_message("%s: skipped (deps.sh installs it)\n", line);
        cu_wait(&py);
        cu_close(&py);
        return 0;
    }
    return cu_listening_port(line);
}

static void python_stop(void)
{
    cu_stop(&py); /* it exits 0 on SIGTERM */
}

static uint16_t fill(uint8_t *p, uint32_t k, uint16_t len)
{
    uint64_t x = 0x9E37 ^ k;
    for (uint16_t i = 0; i < len; i++)
        p[i] = (uint8_t)t_rand(&x);
    return len;
}

static void ws_client_talks_to_python_websockets(void **state)
{
    (void)state;
    uint16_t port = python_start();
    if (!port)
        skip();
    static uint8_t buf[8192], want[8192];
    static uint16_t lens[400];
    struct rp_client *c = ws_client(port, 1);
    assert_int_equal(rp_client_connect(c, WAIT_MS), 0);

    /* Frames of many sizes, sent in batches (many per message), echoed one
       per message: whole, in order, byte for byte. */
    uint32_t sent = 0, got = 0;
    while (got < 400) {
        while (sent < 400 && sent < got + 40) {
            lens[sent] = (uint16_t)(sent < 10 ? sent : t_rand(&rng) % 8193);
            fill(buf, sent, lens[sent]);
            assert_int_equal(
                rp_client_send(c, (uint16_t)(sent + 1), buf, lens[sent]), 0);
            sent++;
        }
        uint16_t n = fill(want, got, lens[got]);
        expect_frame(c, (uint16_t)(got + 1), want, n);
        got++;
    }

    /* Its ping (answered by our pong), its fragments, a run of two. */
    assert_int_equal(rp_client_send(c, 0x7001, "p", 1), 0);
    expect_frame(c, 0x7001, "p", 1);
    assert_int_equal(rp_client_send(c, 0x7002, "frag", 4), 0);
    for (int i = 0; i < 3; i++)
        expect_frame(c, 0x7002, "frag", 4);

    /* Its close: a drop; the client reconnects by itself and goes on. */
    struct rp_client_stats st;
    assert_int_equal(rp_client_send(c, 0x7003, NULL, 0), 0);
    uint64_t deadline = now_ms() + WAIT_MS;
    do {
        assert_true(now_ms() < deadline);
        assert_true(rp_client_poll(c, 5) >= 0);
        rp_client_get_stats(c, &st);
    } while (st.drops < 1);
    assert_int_equal(rp_client_last_error(c), -ECONNRESET);
    assert_int_equal(rp_client_send(c, 5, "after", 5), 0);
    expect_frame(c, 5, "after", 5);
    rp_client_get_stats(c, &st);
    assert_int_equal(st.connects, 2);
    assert_int_equal(st.drops, 1);

    /* A text message: refused. */
    assert_int_equal(rp_client_send(c, 0x7004, NULL, 0), 0);
    deadline = now_ms() + WAIT_MS;
    do {
        assert_true(now_ms() < deadline);
        rp_client_poll(c, 5);
        rp_client_get_stats(c, &st);
    } while (st.drops < 2);
    assert_int_equal(rp_client_last_error(c), -EPROTO);

    /* Back by itself; a clean leave: the close handshake, then the
       server's FIN. */
    deadline = now_ms() + WAIT_MS;
    while (rp_client_state(c) != RP_CLIENT_CONNECTED) {
        assert_true(now_ms() < deadline);
        rp_client_poll(c, 5);
    }
    assert_int_equal(rp_client_leave(c, WAIT_MS), 0);
    rp_client_destroy(c);
    python_stop();
}

/* ringport-bench's own WebSocket framing (tools/bench/loop.c, not the
   client library) against python3-websockets, which refuses unmasked
   frames: every byte of every echo verified. */
static void bench_echo_over_ws_passes_python_websockets(void **state)
{
    (void)state;
    uint16_t port = python_start();
    if (!port)
        skip();
    static const char *const args[] = {
        "echo",   "--transport", "ws", "--connections", "4",   "--size",
        "1-3000", "--depth",     "4",  "--duration",    "0.5", "--warmup",
        "0.1",    "--json",      NULL};
    cu_bench_verifies(port, args);
    python_stop();
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cu_find_build_dir();
    rng = t_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ws_client_masks_every_frame_and_decodes_the_servers),
        cmocka_unit_test(ws_config_is_checked),
        cmocka_unit_test(ws_handshake_has_a_deadline),
        cmocka_unit_test(ws_connect_fails_on_a_wrong_accept_or_a_refusal),
        cmocka_unit_test_teardown(ws_client_talks_to_python_websockets,
                                  cu_kill_leftovers),
        cmocka_unit_test_teardown(bench_echo_over_ws_passes_python_websockets,
                                  cu_kill_leftovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
