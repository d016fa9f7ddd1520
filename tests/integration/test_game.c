/*
 * ringport-game (examples/game) as a user runs it, on the backend this run
 * is registered for: started as a child with --port 0 and --backend, it
 * must survive 200 verifying bots (ringport-bench game) for 10 s with no
 * verification error, answer bad input as docs/protocol.md says (error
 * packet and the session stays; or error packet and a disconnect), and,
 * after SIGTERM, exit 0 with a final line saying every session, player
 * record and nickname was released ("sessions 0 players 0 names 0"); with
 * --resume-grace-ms, bots whose sockets are reset at random resume their
 * sessions with no reply lost or doubled.
 *
 * Binaries: BUILD/tests/test_game -> BUILD/examples/game/ringport-game and
 * BUILD/tools/bench/ringport-bench. Bounded: every wait has a limit.
 */
#define CU_WAIT_MS 60000
#include "child_util.h"
#include "game_util.h"
#include "metrics_util.h"

#include <stdio.h>
#include <string.h>

#define BOTS "200"
#define SECONDS "10"

static void bad_input_gets_an_error_or_a_disconnect_never_a_crash(void **state)
{
    (void)state;
    struct gu_game srv;
    struct gm_msg m;
    uint8_t buf[GM_PAYLOAD_MAX];
    gu_start(&srv);
    uint16_t port = srv.port;

    int a = gu_connect(port), b = gu_connect(port);
    /* Before login: lobby actions are refused, the session stays. */
    gu_send_raw(a, GM_PVP_QUEUE, NULL, 0);
    gu_expect_error(a, GM_ERR_NOT_LOGGED_IN, GM_PVP_QUEUE);
    gu_send_login(a, "x y");
    gu_expect_error(a, GM_ERR_BAD_NAME, GM_LOGIN);
    gu_send_login(a, "alice");
    gu_recv(a, &m, buf);
    assert_int_equal(m.type, GM_LOGIN_OK);
    /* The name is taken; b stays usable and logs in with another. */
    gu_send_login(b, "alice");
    gu_expect_error(b, GM_ERR_NAME_TAKEN, GM_LOGIN);
    gu_send_login(b, "bob");
    gu_recv(b, &m, buf);
    assert_int_equal(m.type, GM_LOGIN_OK);
    gu_send_login(b, "bob2");
    gu_expect_error(b, GM_ERR_ALREADY_LOGGED_IN, GM_LOGIN);
    /* Out of range, wrong content, bad text: errors, session stays. */
    uint8_t six = 6, move[2] = {1, 0};
    gu_send_raw(a, GM_DUNGEON_ENTER, &six, 1);
    gu_expect_error(a, GM_ERR_BAD_FIELD, GM_DUNGEON_ENTER);
    gu_send_raw(a, GM_PVP_MOVE, move, 2);
    gu_expect_error(a, GM_ERR_WRONG_CONTENT, GM_PVP_MOVE);
    gu_send_raw(a, GM_CHAT, "\0\0", 2);
    gu_expect_error(a, GM_ERR_BAD_TEXT, GM_CHAT);
    /* The chat line reaches both (one channel). */
    struct gm_msg chat = {.type = GM_CHAT};
    chat.u.chat = gm_str_of("hello", 5);
    gu_send(a, &chat);
    for (int fd = a; fd; fd = fd == a ? b : 0) {
        gu_recv(fd, &m, buf);
        assert_int_equal(m.type, GM_CHAT_MSG);
        assert_int_equal(m.u.chat_msg.from.len, 5);
        assert_memory_equal(m.u.chat_msg.from.p, "alice", 5);
    }
    /* A wrong length, then an unknown type: error, then disconnect. */
    gu_send_raw(a, GM_PVP_MOVE, move, 1);
    gu_expect_error(a, GM_ERR_MALFORMED, GM_PVP_MOVE);
    gu_expect_closed(a);
    gu_send_raw(b, GM_LOGIN_OK, NULL, 0);
    gu_expect_error(b, GM_ERR_UNKNOWN_TYPE, GM_LOGIN_OK);
    gu_expect_closed(b);
    close(a);
    close(b);

    /* The name of a closed session is free again once the content that
       held it has seen it end, shortly after the socket closed but not at
       a moment the client can see: until then NAME_TAKEN, and a client
       retries (docs/protocol.md, "When a name is free again"). */
    int c = gu_connect(port);
    for (int tries = 0;; tries++) {
        gu_send_login(c, "alice");
        gu_recv(c, &m, buf);
        if (m.type != GM_ERROR || tries == 500)
            break;
        assert_int_equal(m.u.error.code, GM_ERR_NAME_TAKEN);
        gu_sleep_ms(10);
    }
    assert_int_equal(m.type, GM_LOGIN_OK);
    close(c);
    gu_stop(&srv);
}

static void two_hundred_bots_play_for_ten_seconds_without_an_error(void **state)
{
    (void)state;
    struct gu_game srv;
    struct cu_child bots;
    char path[PATH_MAX + 64], port[16], line[8192];
    gu_start(&srv);
    snprintf(port, sizeof port, "%u", srv.port);
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
    gu_stop(&srv);
}

/* Sessions resume across resets of the bots' sockets (--drop-rate, half of
   them in the middle of a frame the bot writes): no reply lost or doubled
   (the bots' checks), every reset resumed, no session lost. */
static void bots_resume_across_random_resets_without_an_error(void **state)
{
    (void)state;
    struct gu_game srv;
    struct cu_child bots;
    char path[PATH_MAX + 64], port[16], line[8192];
    gu_resume_grace_ms = "5000";
    gu_start(&srv);
    gu_resume_grace_ms = NULL;
    snprintf(port, sizeof port, "%u", srv.port);
    cu_program(path, sizeof path, "tools/bench/ringport-bench");
    char *argv[] = {path,        "game", "--port",      port,
                    "--bots",    "60",   "--duration",  "5",
                    "--threads", "2",    "--drop-rate", "1",
                    "--json",    NULL};
    cu_start(&bots, argv, false);
    char json[8192] = "";
    while (cu_read_line(bots.out, line, sizeof line) > 0) {
        fprintf(stderr, "%s\n", line);
        if (line[0] == '{')
            snprintf(json, sizeof json, "%s", line);
    }
    assert_int_equal(cu_wait(&bots), 0);
    cu_close(&bots);
    assert_non_null(strstr(json, "\"ok\":true"));
    assert_non_null(strstr(json, "\"sessions_lost\":0,"));
    assert_null(strstr(json, "\"drops\":0,"));
    assert_null(strstr(json, "\"resumes\":0,"));
    assert_null(strstr(json, "\"matches\":0,"));
    gu_stop(&srv);
}

int main(int argc, char **argv)
{
    (void)t_seed();
    gu_backend = t_backend(argc, argv);
    cu_find_build_dir();
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(
            bad_input_gets_an_error_or_a_disconnect_never_a_crash,
            cu_kill_leftovers),
        cmocka_unit_test_teardown(
            two_hundred_bots_play_for_ten_seconds_without_an_error,
            cu_kill_leftovers),
        cmocka_unit_test_teardown(
            bots_resume_across_random_resets_without_an_error,
            cu_kill_leftovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
