/*
 * ringport-game under a reset storm (issue 14, item 9): 200 clients log
 * in and queue for PVP (100 matches), then every one of them resets its
 * connection (SO_LINGER 0) at once, the two players of each match back to
 * back. The reset of the first player ends its match and sends the second
 * back to the lobby, so the second's own reset lands while its player
 * record is in transit between the pvp and lobby contents; in other rounds
 * the resets land while the lobby is still moving the pairs into pvp.
 *
 * After every round the server must have released everything: the
 * ringport_game_players gauge comes back to ringport_sessions (both 0:
 * every client is gone), and every one of the 200 names logs in again in
 * the next round (a leaked record keeps its name: NAME_TAKEN). The final
 * line at stop is checked as well, though it cannot see this leak alone
 * (the game frees stray records at exit).
 *
 * Bounded: ROUNDS rounds, every read and wait has a limit; a record that
 * never comes back fails after RELEASE_POLLS scrapes (a leak is for good,
 * so this is not a timing assertion).
 */
#define CU_WAIT_MS 60000
#include "child_util.h"
#include "game_util.h"
#include "metrics_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLAYERS 200 /* even: 100 matches */
#define ROUNDS 40
#define RELEASE_POLLS 2000 /* 10 ms apart */

struct storm_player {
    int fd;
    uint32_t room;
    uint8_t side;
};

static int by_room_then_side(const void *a, const void *b)
{
    const struct storm_player *x = a, *y = b;
    if (x->room != y->room)
        return x->room < y->room ? -1 : 1;
    return (int)x->side - (int)y->side;
}

/* Polls the metrics until the records are back to the sessions, both 0. */
static void wait_released(const struct gu_game *g, int round)
{
    struct gu_gauges v = {0, 0};
    for (int i = 0; i < RELEASE_POLLS; i++) {
        v = gu_gauges(g);
        if (v.players == 0 && v.sessions == 0) {
            fprintf(stderr, "round %d: released after %d scrapes\n", round,
                    i + 1);
            return;
        }
        gu_sleep_ms(10);
    }
    fail_msg("round %d: %g player records stay for %g sessions", round,
             v.players, v.sessions);
}

/* Everyone logs in under the same 200 names as in every round. */
static void log_everyone_in(const struct gu_game *g, struct storm_player *p,
                            int round)
{
    char name[32];
    for (int i = 0; i < PLAYERS; i++) {
        p[i].fd = gu_connect(g->port);
        snprintf(name, sizeof name, "storm%03d", i);
        gu_send_login(p[i].fd, name);
    }
    for (int i = 0; i < PLAYERS; i++) {
        struct gm_msg m;
        uint8_t buf[GM_PAYLOAD_MAX];
        gu_recv(p[i].fd, &m, buf);
        if (m.type == GM_ERROR)
            fail_msg("round %d: storm%03d refused: %s (a record of the "
                     "round before kept it)",
                     round, i, gm_error_name(m.u.error.code));
        assert_int_equal(m.type, GM_LOGIN_OK);
    }
}

static void resets_never_leak_a_record_or_a_name(void **state)
{
    (void)state;
    struct gu_game g;
    static struct storm_player p[PLAYERS];
    gu_start(&g);
    for (int round = 0; round < ROUNDS; round++) {
        log_everyone_in(&g, p, round);
        for (int i = 0; i < PLAYERS; i++)
            gu_send_raw(p[i].fd, GM_PVP_QUEUE, NULL, 0);
        if (round % 2 == 1) {
            /* Mid-pairing: the lobby is moving them into pvp. */
            for (int i = 0; i < PLAYERS; i++)
                gu_reset(p[i].fd);
        } else {
            /* Every match started: reset each pair back to back, so the
               second's end meets its move back to the lobby. */
            for (int i = 0; i < PLAYERS; i++) {
                struct gm_msg m;
                uint8_t buf[GM_PAYLOAD_MAX];
                gu_expect(p[i].fd, GM_PVP_QUEUED, &m, buf);
                gu_expect(p[i].fd, GM_MATCH_START, &m, buf);
                p[i].room = m.u.match_start.room;
                p[i].side = m.u.match_start.side;
            }
            qsort(p, PLAYERS, sizeof *p, by_room_then_side);
            for (int i = 0; i < PLAYERS; i++)
                gu_reset(p[i].fd);
        }
        wait_released(&g, round);
    }
    log_everyone_in(&g, p, ROUNDS); /* the last round's names too */
    for (int i = 0; i < PLAYERS; i++)
        close(p[i].fd);
    gu_stop(&g);
}

int main(int argc, char **argv)
{
    (void)t_seed();
    gu_backend = t_backend(argc, argv);
    cu_find_build_dir();
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(resets_never_leak_a_record_or_a_name,
                                  cu_kill_leftovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
