/*
 * The guide's programs (docs/guide.md, docs/guide/) do what the guide
 * says, run as children (the backend from RINGPORT_BACKEND, which CTest
 * sets per run) with real clients:
 *   - guide-data: the first frame names the player, later frames reach
 *     everyone as "name: text";
 *   - guide-arena: two players queue in the lobby, are moved into the
 *     arena with tickets (same match, MATCHED), get the match's STATE on
 *     every tick, and come back with OVER carrying their own count of
 *     actions; a frame type outside the limits cuts its session; the
 *     metrics endpoint shows both groups;
 *   - both stop with status 0 on SIGTERM (under ASan: without a leak).
 */
#include "server_util.h"

#include "child_util.h"
#include "metrics_util.h"

static uint16_t start(struct cu_child *c, const char *rel, const char *arg2)
{
    char path[PATH_MAX + 64];
    cu_program(path, sizeof path, rel);
    char *argv[] = {path, "0", (char *)arg2, NULL};
    cu_start(c, argv, false);
    return cu_read_port(c);
}

static void data_names_each_line_with_its_sender(void **state)
{
    (void)state;
    struct cu_child c;
    uint16_t port = start(&c, "docs/guide/guide-data", NULL);
    /* A line coming back to its sender says the sender is in the room. */
    int a = su_connect(port);
    su_send_frame(a, 1, "ann", 3);
    su_send_frame(a, 2, "1", 1);
    su_expect_frame(a, 2, "ann: 1", 6);
    int b = su_connect(port);
    su_send_frame(b, 1, "bob", 3);
    su_send_frame(b, 2, "2", 1);
    su_expect_frame(b, 2, "bob: 2", 6);
    su_expect_frame(a, 2, "bob: 2", 6);
    su_send_frame(a, 2, "3", 1);
    su_expect_frame(a, 2, "ann: 3", 6);
    su_expect_frame(b, 2, "ann: 3", 6);
    close(b);
    cu_stop(&c);
    close(a);
}

static uint32_t u32_at(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* Reads frames until OVER: the STATEs name 'match' with ticks that only go
   up (*states: the last one); returns OVER's count of actions. */
static uint32_t play_until_over(int fd, uint32_t match, uint32_t *states)
{
    uint8_t p[64];
    uint16_t type;
    *states = 0;
    for (;;) {
        int n = su_read_frame(fd, &type, p, sizeof p, SU_WAIT_MS);
        assert_true(n >= 0);
        if (type == 12) {
            assert_int_equal(n, 4);
            return u32_at(p);
        }
        assert_int_equal(type, 11);
        assert_int_equal(n, 8);
        assert_int_equal(u32_at(p), match);
        assert_true(u32_at(p + 4) > *states);
        *states = u32_at(p + 4);
    }
}

static void arena_matches_two_players_and_sends_them_back(void **state)
{
    (void)state;
    struct cu_child c;
    uint16_t port = start(&c, "docs/guide/guide-arena", "127.0.0.1:0");
    char line[256];
    cu_read_line(c.out, line, sizeof line);
    unsigned mport = 0;
    assert_int_equal(sscanf(line, "metrics on port %u", &mport), 1);

    int a = su_connect(port), b = su_connect(port);
    uint8_t ma[4], mb[4];
    uint16_t type;
    /* A match lasts 20 ticks of 100 ms, and a's three ACTs count only if
       they reach the arena before its end. A round in which they came
       late (fewer counted, the match run to its last tick: on a loaded
       machine the test or the server can stall for 2 s) proves nothing:
       play another, a bounded number of times. More than 3, or a match
       cut short, fails at once; a program that does not count fails
       every round. */
    uint32_t acts = 0;
    for (int round = 0; round < 3; round++) {
        su_send_frame(a, 1, "", 0); /* QUEUE */
        su_send_frame(b, 1, "", 0);
        assert_int_equal(su_read_frame(a, &type, ma, sizeof ma, SU_WAIT_MS), 4);
        assert_int_equal(type, 10); /* MATCHED, in the arena */
        assert_int_equal(su_read_frame(b, &type, mb, sizeof mb, SU_WAIT_MS), 4);
        assert_int_equal(type, 10);
        assert_memory_equal(ma, mb, 4); /* one match: the tickets agreed */
        for (int i = 0; i < 3; i++)
            su_send_frame(a, 2, "x", 1); /* ACT */
        uint32_t sa, sb;
        acts = play_until_over(a, u32_at(ma), &sa);
        assert_int_equal(play_until_over(b, u32_at(mb), &sb), 0);
        assert_true(sa > 0 && sb > 0);
        assert_true(acts <= 3);
        if (acts == 3)
            break;
        assert_int_equal(sa, 20); /* ended by its ticks, not cut short */
        print_message("%u of 3 ACTs before the match ended: played again\n",
                      acts);
    }
    assert_int_equal(acts, 3);

    /* Back in the lobby: they can queue again. */
    su_send_frame(a, 1, "", 0);
    su_send_frame(b, 1, "", 0);
    assert_int_equal(su_read_frame(a, &type, ma, sizeof ma, SU_WAIT_MS), 4);
    assert_int_equal(type, 10);
    assert_int_equal(u32_at(ma), u32_at(mb) + 1);

    /* A type outside type_min..type_max: cut. */
    int bad = su_connect(port);
    su_send_frame(bad, 7, "?", 1);
    assert_int_equal(su_wait_closed(bad, SU_WAIT_MS), 0);
    close(bad);

    struct mu_reply r;
    assert_int_equal(mu_get((uint16_t)mport, "/metrics", &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "group=\"lobby\""));
    assert_non_null(strstr(r.body, "group=\"arena\""));
    mu_reply_free(&r);

    close(b); /* mid-match: a's match ends, a goes back */
    uint32_t states;
    assert_int_equal(play_until_over(a, u32_at(ma), &states), 0);
    cu_stop(&c);
    close(a);
}

int main(int argc, char **argv)
{
    su_parse_backend(argc, argv);
    cu_find_build_dir();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(data_names_each_line_with_its_sender,
                                  cu_kill_leftovers),
        cmocka_unit_test_teardown(arena_matches_two_players_and_sends_them_back,
                                  cu_kill_leftovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
