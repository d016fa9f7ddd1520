/*
 * Our WebSocket clients against our WebSocket servers, as a user runs
 * them (this run's backend): ringport-echo and ringport-game with
 * --ws-port 0 beside their TCP port.
 * - libringport-client (RP_CLIENT_WS) gets frames of many sizes back whole
 *   and in order from ringport-echo's WebSocket listener, while a TCP
 *   client does the same on the TCP port;
 * - ringport-bench echo --transport ws verifies every byte of its echoes,
 *   and room --transport ws every delivery of bench-ringport_room's
 *   broadcasts;
 * - ringport-bench game --transport ws: bots play ringport-game with no
 *   verification error (the same bots over TCP: test_game.c; a WebSocket
 *   and a TCP player in one match: test_ws_game.c);
 * - the same with --drop-rate: sessions resume over WebSocket.
 * Each run is a few seconds.
 */
#define CU_WAIT_MS 20000
#include "child_util.h"

#include <ringport/client.h>
#include <signal.h>

static const char *backend;

/* The WebSocket port from the program's lines after "listening on":
   reads at most 'max' lines for "ws listening on ADDR:PORT". */
static uint16_t read_ws_port(struct cu_child *c, int max)
{
    char line[256];
    for (int i = 0; i < max; i++) {
        cu_read_line(c->out, line, sizeof line);
        if (strncmp(line, "ws listening on ", 16) == 0)
            return cu_listening_port(line + 3);
    }
    fail_msg("no 'ws listening on' line");
    return 0;
}

static uint16_t echo_start(struct cu_child *c, uint16_t *ws_port)
{
    static const char *const extra[] = {"--mode", "framed", "--ws-port", "0",
                                        NULL};
    uint16_t port = cu_echo_start(c, backend, extra);
    *ws_port = read_ws_port(c, 1);
    return port;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct rp_client *client(uint16_t port, enum rp_client_transport t)
{
    struct rp_client_config cc;
    struct rp_client *c = NULL;
    rp_client_config_init(&cc, "127.0.0.1", port);
    cc.transport = t;
    cc.reconnect = 0;
    assert_int_equal(rp_client_create(&cc, &c), 0);
    assert_int_equal(rp_client_connect(c, CU_WAIT_MS), 0);
    return c;
}

static void ws_and_tcp_clients_get_their_echoes_from_one_server(void **state)
{
    (void)state;
    struct cu_child echo;
    uint16_t ws_port, port = echo_start(&echo, &ws_port);
    struct rp_client *cl[2] = {client(ws_port, RP_CLIENT_WS),
                               client(port, RP_CLIENT_TCP)};
    static uint8_t buf[4096];
    for (uint32_t round = 0; round < 10; round++) {
        uint16_t lens[20];
        for (int k = 0; k < 2; k++)
            for (uint32_t i = 0; i < 20; i++) {
                lens[i] = (uint16_t)((round * 20 + i) * 37 % 4097);
                memset(buf, (int)(i + round), lens[i]);
                assert_int_equal(
                    rp_client_send(cl[k], (uint16_t)(i + 1), buf, lens[i]), 0);
            }
        for (int k = 0; k < 2; k++) {
            uint32_t got = 0;
            uint64_t deadline = now_ms() + CU_WAIT_MS;
            struct rp_client_frame f;
            while (got < 20) {
                assert_true(now_ms() < deadline);
                assert_true(rp_client_poll(cl[k], 10) >= 0);
                while (got < 20 && rp_client_recv(cl[k], &f) == 1) {
                    assert_int_equal(f.type, got + 1);
                    assert_int_equal(f.len, lens[got]);
                    memset(buf, (int)(got + round), lens[got]);
                    assert_memory_equal(f.payload, buf, lens[got]);
                    got++;
                }
            }
        }
    }
    for (int k = 0; k < 2; k++) {
        assert_int_equal(rp_client_leave(cl[k], CU_WAIT_MS), 0);
        rp_client_destroy(cl[k]);
    }
    cu_echo_stop(&echo);
}

static void bench_echo_over_ws_verifies_every_byte(void **state)
{
    (void)state;
    struct cu_child echo;
    uint16_t ws_port;
    echo_start(&echo, &ws_port);
    static const char *const args[] = {
        "echo",   "--transport", "ws", "--connections", "20", "--size",
        "1-5000", "--depth",     "4",  "--duration",    "1",  "--warmup",
        "0.2",    "--threads",   "2",  "--json",        NULL};
    cu_bench_verifies(ws_port, args);
    cu_echo_stop(&echo);
}

/* Room broadcast over WebSocket (bench-ringport_room --ws-port): every
   member gets every member's messages, in order, none lost. */
static void bench_room_over_ws_verifies_every_delivery(void **state)
{
    (void)state;
    struct cu_child room;
    char path[PATH_MAX + 64];
    cu_program(path, sizeof path, "bench/bench-ringport_room");
    char *argv[] = {path,        "--port", "0", "--backend", (char *)backend,
                    "--ws-port", "0",      NULL};
    cu_start(&room, argv, false);
    cu_read_port(&room);
    uint16_t ws_port = read_ws_port(&room, 1);
    static const char *const args[] = {
        "room", "--transport", "ws",  "--connections", "20",     "--room-size",
        "5",    "--rate",      "50",  "--size",        "12-300", "--duration",
        "1",    "--warmup",    "0.2", "--json",        NULL};
    cu_bench_verifies(ws_port, args);
    cu_stop(&room);
}

/* ---- ringport-game ------------------------------------------------------ */

struct game {
    struct cu_child child;
    uint16_t port, ws_port;
};

static void game_start(struct game *g)
{
    char path[PATH_MAX + 64], line[256];
    cu_program(path, sizeof path, "examples/game/ringport-game");
    char *argv[] = {
        path,         "--port",    "0", "--backend", (char *)backend,
        "--no-stats", "--ws-port", "0", NULL};
    cu_start(&g->child, argv, false);
    cu_read_line(g->child.out, line, sizeof line);
    g->port = cu_listening_port(line);
    g->ws_port = read_ws_port(&g->child, 2);
}

static void game_stop(struct game *g)
{
    char line[1024];
    cu_term(&g->child);
    for (;;) {
        assert_true(cu_read_line(g->child.out, line, sizeof line) > 0);
        if (strncmp(line, "final:", 6) == 0)
            break;
    }
    assert_non_null(strstr(line, "sessions 0 players 0 names 0"));
    assert_int_equal(cu_wait(&g->child), 0);
    cu_close(&g->child);
}

/* Starts ringport-bench game against 'port' with 'extra' flags. */
static void bots_start(struct cu_child *c, uint16_t port,
                       const char *const *extra)
{
    static char path[PATH_MAX + 64];
    char port_s[16];
    char *argv[32] = {path, "game", "--port", port_s, "--json"};
    int n = 5;
    cu_program(path, sizeof path, "tools/bench/ringport-bench");
    snprintf(port_s, sizeof port_s, "%u", port);
    for (; *extra && n < 30; extra++)
        argv[n++] = (char *)*extra;
    argv[n] = NULL;
    cu_start(c, argv, false);
}

/* Reads the bots' output to its end; returns their JSON line (static). */
static const char *bots_finish(struct cu_child *c, const char *tag)
{
    static char json[2][8192];
    static int which;
    char line[8192], *out = json[which ^= 1];
    out[0] = '\0';
    while (cu_read_line(c->out, line, sizeof line) > 0) {
        fprintf(stderr, "%s: %s\n", tag, line);
        if (line[0] == '{')
            snprintf(out, sizeof json[0], "%s", line);
    }
    assert_int_equal(cu_wait(c), 0);
    cu_close(c);
    assert_non_null(strstr(out, "\"ok\":true"));
    assert_non_null(strstr(out, "\"errors\":{\"verify\":0,\"timeout\":0,"
                                "\"closed\":0,\"connect\":0,"
                                "\"error_packet\":0}"));
    assert_null(strstr(out, "\"logins\":0,"));
    return out;
}

static void ws_bots_play_the_game_without_an_error(void **state)
{
    (void)state;
    struct game g;
    struct cu_child ws;
    game_start(&g);
    static const char *const args[] = {"--transport", "ws", "--bots", "60",
                                       "--duration",  "2",  NULL};
    bots_start(&ws, g.ws_port, args);
    const char *j = bots_finish(&ws, "ws");
    assert_non_null(strstr(j, "\"transport\":\"ws\""));
    assert_null(strstr(j, "\"matches\":0,"));
    assert_null(strstr(j, "\"dungeons\":0,"));
    game_stop(&g);
}

static void ws_bots_resume_across_random_resets(void **state)
{
    (void)state;
    struct game g;
    struct cu_child ws;
    game_start(&g);
    static const char *const args[] = {"--transport", "ws",         "--bots",
                                       "40",          "--duration", "2",
                                       "--drop-rate", "1",          NULL};
    bots_start(&ws, g.ws_port, args);
    const char *j = bots_finish(&ws, "ws");
    assert_non_null(strstr(j, "\"sessions_lost\":0,"));
    assert_null(strstr(j, "\"drops\":0,"));
    assert_null(strstr(j, "\"resumes\":0,"));
    game_stop(&g);
}

static void bench_refuses_bad_transport_flags(void **state)
{
    (void)state;
    static const char *const bad_value[] = {"echo",        "--port", "1",
                                            "--transport", "wss",    NULL};
    cu_expect_refusal("tools/bench/ringport-bench", bad_value,
                      "--transport wants tcp or ws, got 'wss'");
    static const char *const raw[] = {"echo", "--port",      "1",  "--mode",
                                      "raw",  "--transport", "ws", NULL};
    cu_expect_refusal("tools/bench/ringport-bench", raw,
                      "--transport ws carries frames");
    static const char *const game[] = {"game",        "--port", "1",
                                       "--transport", "udp",    NULL};
    cu_expect_refusal("tools/bench/ringport-bench", game,
                      "--transport wants tcp or ws, got 'udp'");
}

int main(int argc, char **argv)
{
    cu_find_build_dir();
    backend = cu_backend(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(bench_refuses_bad_transport_flags,
                                  cu_kill_leftovers),
        cmocka_unit_test_teardown(
            ws_and_tcp_clients_get_their_echoes_from_one_server,
            cu_kill_leftovers),
        cmocka_unit_test_teardown(bench_echo_over_ws_verifies_every_byte,
                                  cu_kill_leftovers),
        cmocka_unit_test_teardown(bench_room_over_ws_verifies_every_delivery,
                                  cu_kill_leftovers),
        cmocka_unit_test_teardown(ws_bots_play_the_game_without_an_error,
                                  cu_kill_leftovers),
        cmocka_unit_test_teardown(ws_bots_resume_across_random_resets,
                                  cu_kill_leftovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
