/*
 * ringport-game (examples/game) as a user runs it, on the backend this run
 * is registered for: started as a child with --port 0 and --backend, it
 * must survive 200 verifying bots (ringport-bench game) for 10 s with no
 * verification error, answer bad input as docs/protocol.md says (error
 * packet and the session stays; or error packet and a disconnect), and,
 * after SIGTERM, exit 0 with a final line saying every session, player
 * record and nickname was released ("sessions 0 players 0 names 0").
 *
 * Binaries: BUILD/tests/test_game -> BUILD/examples/game/ringport-game and
 * BUILD/tools/bench/ringport-bench. Bounded: every wait has a limit.
 */
#define CU_WAIT_MS 60000
#include "child_util.h"

/* The game's message codec, compiled in: the tests/ glob links only the
   helpers, and protocol.c depends on nothing else. */
#include "../../examples/game/protocol.c"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BOTS "200"
#define SECONDS "10"

static const char *backend;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static uint16_t game_start(struct cu_child *srv)
{
    char path[PATH_MAX + 64], be[32], line[256];
    cu_program(path, sizeof path, "examples/game/ringport-game");
    snprintf(be, sizeof be, "%s", backend);
    char *argv[] = {path, "--port", "0", "--backend", be, "--no-stats", NULL};
    cu_start(srv, argv, false);
    if (cu_read_line(srv->out, line, sizeof line) == 0) {
        /* It could not start: io_uring refused here is a skip. */
        int status = cu_wait(srv);
        cu_close(srv);
        if (strcmp(backend, "uring") == 0 && status == 1)
            skip();
        fail_msg("ringport-game exited with %d before listening", status);
    }
    assert_non_null(strstr(line, "listening on 127.0.0.1:"));
    return cu_listening_port(line);
}

/* SIGTERM, exit 0, and the final line shows nothing left behind. */
static void game_stop(struct cu_child *srv)
{
    char line[1024];
    cu_term(srv);
    for (;;) {
        assert_true(cu_read_line(srv->out, line, sizeof line) > 0);
        if (strncmp(line, "final:", 6) == 0)
            break;
    }
    fprintf(stderr, "%s\n", line);
    assert_non_null(strstr(line, "sessions 0 players 0 names 0"));
    assert_int_equal(cu_wait(srv), 0);
    cu_close(srv);
}

/* ---- one raw client, for the error cases -------------------------------- */

static int client(uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void send_raw(int fd, uint16_t type, const void *payload, size_t len)
{
    uint8_t buf[600] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)type,
                        (uint8_t)(type >> 8)};
    if (len)
        memcpy(buf + 4, payload, len);
    assert_int_equal(write(fd, buf, 4 + len), (ssize_t)(4 + len));
}

static void send_msg(int fd, const struct gm_msg *m)
{
    uint8_t buf[600];
    int n = gm_encode_frame(m, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(write(fd, buf, (size_t)n), n);
}

static void read_full(int fd, uint8_t *p, size_t n)
{
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r <= 0)
            fail_msg("connection ended or timed out: %zd", r);
        p += r;
        n -= (size_t)r;
    }
}

/* The next message (chat lines of others skipped); payload kept in 'buf'. */
static void recv_msg(int fd, struct gm_msg *m, uint8_t *buf)
{
    uint8_t h[4];
    read_full(fd, h, 4);
    uint16_t len = (uint16_t)(h[0] | h[1] << 8);
    uint16_t type = (uint16_t)(h[2] | h[3] << 8);
    assert_true(len <= GM_PAYLOAD_MAX);
    read_full(fd, buf, len);
    assert_int_equal(gm_decode(type, buf, len, m), 0);
}

static void expect_error(int fd, uint16_t code, uint16_t about)
{
    struct gm_msg m;
    uint8_t buf[GM_PAYLOAD_MAX];
    recv_msg(fd, &m, buf);
    assert_int_equal(m.type, GM_ERROR);
    assert_int_equal(m.u.error.code, code);
    assert_int_equal(m.u.error.about, about);
}

static void login(int fd, const char *name)
{
    struct gm_msg m = {.type = GM_LOGIN};
    m.u.login = gm_str_of(name, strlen(name));
    send_msg(fd, &m);
}

static void expect_closed(int fd)
{
    uint8_t b;
    assert_int_equal(read(fd, &b, 1), 0);
}

static void bad_input_gets_an_error_or_a_disconnect_never_a_crash(void **state)
{
    (void)state;
    struct cu_child srv;
    struct gm_msg m;
    uint8_t buf[GM_PAYLOAD_MAX];
    uint16_t port = game_start(&srv);

    int a = client(port), b = client(port);
    /* Before login: lobby actions are refused, the session stays. */
    send_raw(a, GM_PVP_QUEUE, NULL, 0);
    expect_error(a, GM_ERR_NOT_LOGGED_IN, GM_PVP_QUEUE);
    login(a, "x y");
    expect_error(a, GM_ERR_BAD_NAME, GM_LOGIN);
    login(a, "alice");
    recv_msg(a, &m, buf);
    assert_int_equal(m.type, GM_LOGIN_OK);
    /* The name is taken; b stays usable and logs in with another. */
    login(b, "alice");
    expect_error(b, GM_ERR_NAME_TAKEN, GM_LOGIN);
    login(b, "bob");
    recv_msg(b, &m, buf);
    assert_int_equal(m.type, GM_LOGIN_OK);
    login(b, "bob2");
    expect_error(b, GM_ERR_ALREADY_LOGGED_IN, GM_LOGIN);
    /* Out of range, wrong content, bad text: errors, session stays. */
    uint8_t six = 6, move[2] = {1, 0};
    send_raw(a, GM_DUNGEON_ENTER, &six, 1);
    expect_error(a, GM_ERR_BAD_FIELD, GM_DUNGEON_ENTER);
    send_raw(a, GM_PVP_MOVE, move, 2);
    expect_error(a, GM_ERR_WRONG_CONTENT, GM_PVP_MOVE);
    send_raw(a, GM_CHAT, "\0\0", 2);
    expect_error(a, GM_ERR_BAD_TEXT, GM_CHAT);
    /* The chat line reaches both (one channel). */
    struct gm_msg chat = {.type = GM_CHAT};
    chat.u.chat = gm_str_of("hello", 5);
    send_msg(a, &chat);
    for (int fd = a; fd; fd = fd == a ? b : 0) {
        recv_msg(fd, &m, buf);
        assert_int_equal(m.type, GM_CHAT_MSG);
        assert_int_equal(m.u.chat_msg.from.len, 5);
        assert_memory_equal(m.u.chat_msg.from.p, "alice", 5);
    }
    /* A wrong length, then an unknown type: error, then disconnect. */
    send_raw(a, GM_PVP_MOVE, move, 1);
    expect_error(a, GM_ERR_MALFORMED, GM_PVP_MOVE);
    expect_closed(a);
    send_raw(b, GM_LOGIN_OK, NULL, 0);
    expect_error(b, GM_ERR_UNKNOWN_TYPE, GM_LOGIN_OK);
    expect_closed(b);
    close(a);
    close(b);

    /* The name of a closed session is free again, once the lobby has
       seen it leave (after the socket closed): until then NAME_TAKEN. */
    int c = client(port);
    for (int tries = 0;; tries++) {
        login(c, "alice");
        recv_msg(c, &m, buf);
        if (m.type != GM_ERROR || tries == 500)
            break;
        assert_int_equal(m.u.error.code, GM_ERR_NAME_TAKEN);
        sleep_ms(10);
    }
    assert_int_equal(m.type, GM_LOGIN_OK);
    close(c);
    game_stop(&srv);
}

static void two_hundred_bots_play_for_ten_seconds_without_an_error(void **state)
{
    (void)state;
    struct cu_child srv, bots;
    char path[PATH_MAX + 64], port[16], line[8192];
    snprintf(port, sizeof port, "%u", game_start(&srv));
    cu_program(path, sizeof path, "tools/bench/ringport-bench");
    char *argv[] = {path,         "game",  "--port",    port, "--bots", BOTS,
                    "--duration", SECONDS, "--threads", "2",  "--json", NULL};
    cu_start(&bots, argv, false);
    char json[8192] = "";
    while (cu_read_line(bots.out, line, sizeof line) > 0) {
        fprintf(stderr, "%s\n", line);
        if (line[0] == '{')
            snprintf(json, sizeof json, "%s", line);
    }
    assert_int_equal(cu_wait(&bots), 0);
    cu_close(&bots);
    assert_non_null(strstr(json, "\"mode\":\"game\""));
    assert_non_null(strstr(json, "\"ok\":true"));
    assert_non_null(strstr(json, "\"errors\":{\"verify\":0,\"timeout\":0,"
                                 "\"closed\":0,\"connect\":0,"
                                 "\"error_packet\":0}"));
    /* They really played: matches and dungeons happened. */
    assert_null(strstr(json, "\"matches\":0,"));
    assert_null(strstr(json, "\"dungeons\":0,"));
    game_stop(&srv);
}

int main(int argc, char **argv)
{
    (void)t_seed();
    backend = t_backend(argc, argv);
    cu_find_build_dir();
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(
            bad_input_gets_an_error_or_a_disconnect_never_a_crash,
            cu_kill_leftovers),
        cmocka_unit_test_teardown(
            two_hundred_bots_play_for_ten_seconds_without_an_error,
            cu_kill_leftovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
