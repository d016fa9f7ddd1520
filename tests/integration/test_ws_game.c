/*
 * A WebSocket player and a TCP player meet in one PVP match on
 * ringport-game --ws-port 0: both log in (the WebSocket one sends its
 * frames as binary messages), queue for PVP, and each gets MATCH_START
 * naming the other, then the game stops with nothing left behind. The
 * game's code knows nothing of transports: the sessions are ordinary.
 */
#include "ws_util.h"

#include "game_util.h"

/* A game message over WebSocket: one frame, one binary message. */
static void ws_send_msg(int fd, const struct gm_msg *m)
{
    uint8_t buf[600];
    int n = gm_encode_frame(m, buf, sizeof buf);
    assert_true(n > 0);
    wu_send(fd, 0x82, buf, (size_t)n);
}

static void ws_recv_msg(int fd, struct gm_msg *m, uint8_t *buf)
{
    static uint8_t msg[4 + GM_PAYLOAD_MAX];
    uint8_t b0;
    int r = wu_read(fd, &b0, msg, sizeof msg);
    if (r < 0)
        fail_msg("no message: %s", strerror(-r));
    assert_int_equal(b0, 0x82);
    assert_true(r >= 4);
    uint16_t len = (uint16_t)(msg[0] | msg[1] << 8);
    assert_int_equal(r, 4 + len);
    memcpy(buf, msg + 4, len);
    assert_int_equal(gm_decode((uint16_t)(msg[2] | msg[3] << 8), buf, len, m),
                     0);
}

/* Reads until MATCH_START (bounded) and returns the opponent's name. */
static void expect_match(int fd, bool ws, const char *opponent)
{
    struct gm_msg m;
    uint8_t buf[GM_PAYLOAD_MAX];
    for (int i = 0; i < 64; i++) {
        if (ws)
            ws_recv_msg(fd, &m, buf);
        else
            gu_recv(fd, &m, buf);
        if (m.type == GM_ERROR)
            fail_msg("error %s", gm_error_name(m.u.error.code));
        if (m.type != GM_MATCH_START)
            continue;
        assert_int_equal(m.u.match_start.opponent.len, strlen(opponent));
        assert_memory_equal(m.u.match_start.opponent.p, opponent,
                            strlen(opponent));
        return;
    }
    fail_msg("no MATCH_START in 64 messages");
}

static void a_websocket_player_and_a_tcp_player_meet_in_pvp(void **state)
{
    (void)state;
    char path[PATH_MAX + 64], line[256];
    cu_program(path, sizeof path, "examples/game/ringport-game");
    char be[32];
    snprintf(be, sizeof be, "%s", gu_backend);
    char *argv[] = {path,         "--port",    "0", "--backend", be,
                    "--no-stats", "--ws-port", "0", NULL};
    struct cu_child c;
    cu_start(&c, argv, false);
    if (cu_read_line(c.out, line, sizeof line) == 0) {
        int status = cu_wait(&c);
        cu_close(&c);
        if (strcmp(gu_backend, "uring") == 0 && status == 1)
            skip(); /* this kernel refuses io_uring */
        fail_msg("ringport-game exited with %d before listening", status);
    }
    uint16_t port = cu_listening_port(line);
    cu_read_line(c.out, line, sizeof line);
    assert_memory_equal(line, "ws listening on ", 16);
    uint16_t wsport = (uint16_t)atoi(strrchr(line, ':') + 1);

    struct gm_msg m;
    uint8_t buf[GM_PAYLOAD_MAX];
    int tcp = gu_login(port, "tcpbot");
    int ws = wu_connect(wsport);
    struct gm_msg login = {.type = GM_LOGIN};
    login.u.login = gm_str_of("browser", 7);
    ws_send_msg(ws, &login);
    ws_recv_msg(ws, &m, buf);
    assert_int_equal(m.type, GM_LOGIN_OK);

    struct gm_msg queue = {.type = GM_PVP_QUEUE};
    gu_send(tcp, &queue);
    ws_send_msg(ws, &queue);
    expect_match(tcp, false, "browser");
    expect_match(ws, true, "tcpbot");

    close(ws);
    close(tcp);
    /* Both leave; the final line shows nothing left (players, names). */
    char final[1024];
    cu_term(&c);
    for (;;) {
        assert_true(cu_read_line(c.out, final, sizeof final) > 0);
        if (strncmp(final, "final:", 6) == 0)
            break;
    }
    assert_non_null(strstr(final, "sessions 0 players 0 names 0"));
    assert_int_equal(cu_wait(&c), 0);
    cu_close(&c);
}

int main(int argc, char **argv)
{
    /* Not cu_backend: its probe leaves this thread an io_uring whose
       teardown can interrupt the blocking TCP reads of gu_recv (EINTR
       under SO_RCVTIMEO); the game itself says if io_uring is refused. */
    gu_backend = t_backend(argc, argv);
    cu_find_build_dir();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(
            a_websocket_player_and_a_tcp_player_meet_in_pvp, cu_kill_leftovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
