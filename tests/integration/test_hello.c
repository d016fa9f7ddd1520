/*
 * examples/hello (README, "Your first server") as a newcomer runs it: a
 * child on an ephemeral port (the backend from RINGPORT_BACKEND, which
 * CTest sets per run), two clients join the chat room, each frame one
 * sends reaches both, a client that leaves is forgotten, and SIGTERM stops
 * it with status 0 (under ASan that includes no leak).
 */
#include "server_util.h"

#include "child_util.h"

#define CU_HELLO "examples/hello/ringport-hello"

static void frames_reach_every_client_in_the_room(void **state)
{
    (void)state;
    char path[PATH_MAX + 64];
    cu_program(path, sizeof path, CU_HELLO);
    char *argv[] = {path, "0", NULL};
    struct cu_child c;
    cu_start(&c, argv, false);
    uint16_t port = cu_read_port(&c);

    /* Each client's own frame coming back says it has joined: from then
       on it gets everything anyone sends. */
    int a = su_connect(port);
    su_send_frame(a, 1, "hi from a", 9);
    su_expect_frame(a, 1, "hi from a", 9);
    int b = su_connect(port);
    su_send_frame(b, 2, "hi from b", 9);
    su_expect_frame(b, 2, "hi from b", 9);
    su_expect_frame(a, 2, "hi from b", 9);
    su_send_frame(a, 3, "x", 1);
    su_expect_frame(a, 3, "x", 1);
    su_expect_frame(b, 3, "x", 1);

    /* b leaves; the room goes on without it. */
    close(b);
    su_send_frame(a, 4, "y", 1);
    su_expect_frame(a, 4, "y", 1);

    cu_stop(&c);
    assert_int_equal(su_wait_closed(a, SU_WAIT_MS), 0);
    close(a);
}

int main(int argc, char **argv)
{
    su_parse_backend(argc, argv);
    cu_find_build_dir();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(frames_reach_every_client_in_the_room,
                                  cu_kill_leftovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
