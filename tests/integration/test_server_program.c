/*
 * ringport-echo (examples/echo) as a user runs it: started as a child on an
 * ephemeral port with this run's backend, it echoes packets (framed) or
 * bytes (raw), takes settings from a config file that flags override,
 * refuses bad flags, values and config entries with one line and status 2,
 * and stops with status 0 on SIGTERM (under ASan that includes no leak).
 * The load client (ringport-bench --mode framed) verifies it as well.
 * Programs are found beside this test in the build tree.
 */
#include "server_util.h"

#include "child_util.h"

static const char *backend;

static uint16_t echo_start(struct cu_child *c, const char *const *extra)
{
    return cu_echo_start(c, backend, extra);
}

/* Runs ringport-echo with 'args' that must be refused: status 2, and the
   first line of stderr contains 'says'. */
static void expect_refusal(const char *const *args, const char *says)
{
    cu_expect_refusal(CU_ECHO, args, says);
}

static void framed_mode_echoes_packets_and_stops_on_sigterm(void **state)
{
    (void)state;
    struct cu_child c;
    uint16_t port = echo_start(
        &c, (const char *const[]){"--mode", "framed", "--threads", "2", NULL});
    int fd[8];
    for (int i = 0; i < 8; i++)
        fd[i] = su_connect(port);
    for (int round = 0; round < 20; round++)
        for (int i = 0; i < 8; i++)
            su_ping(fd[i], (uint16_t)(round * 8 + i));
    for (int i = 0; i < 8; i += 2)
        close(fd[i]);
    cu_echo_stop(&c);
    for (int i = 1; i < 8; i += 2) {
        assert_int_equal(su_wait_closed(fd[i], SU_WAIT_MS), 0);
        close(fd[i]);
    }
}

static void raw_mode_echoes_bytes_from_a_config_file(void **state)
{
    (void)state;
    char ini[] = "/tmp/ringport-echo-test-XXXXXX";
    int f = mkstemp(ini);
    assert_true(f >= 0);
    /* port 1 would fail to bind: the --port 0 flag must override it. */
    const char *text = "; test\nmode = raw\n[echo]\nport = 1\nmax_sessions "
                       "= 16\nstats = false\n";
    assert_int_equal(write(f, text, strlen(text)), (ssize_t)strlen(text));
    close(f);
    struct cu_child c;
    uint16_t port =
        echo_start(&c, (const char *const[]){"--config", ini, NULL});
    unlink(ini);
    uint8_t msg[5000], got[5000];
    int fd = su_connect(port);
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)(i * 7);
    su_send_all(fd, msg, sizeof msg);
    assert_int_equal(su_read_full(fd, got, sizeof got, SU_WAIT_MS), 0);
    assert_memory_equal(got, msg, sizeof msg);
    close(fd);
    cu_echo_stop(&c);
}

static void bad_flags_values_and_config_entries_exit_with_status_2(void **state)
{
    (void)state;
    expect_refusal((const char *const[]){"--no-such-flag", "1", NULL},
                   "unknown flag '--no-such-flag'");
    expect_refusal((const char *const[]){"--mode", "chunky", NULL},
                   "--mode wants raw or framed");
    expect_refusal((const char *const[]){"--port", "70000", NULL}, "--port");
    expect_refusal((const char *const[]){"--threads", "0", NULL}, "io_threads");
    expect_refusal((const char *const[]){"--port", NULL}, "needs a value");
    expect_refusal(
        (const char *const[]){"--config", "/nonexistent/echo.ini", NULL},
        "/nonexistent/echo.ini");

    char ini[] = "/tmp/ringport-echo-test-XXXXXX";
    int f = mkstemp(ini);
    assert_true(f >= 0);
    const char *text = "mode = raw\n\nbogus_key = 3\n";
    assert_int_equal(write(f, text, strlen(text)), (ssize_t)strlen(text));
    close(f);
    char want[128];
    snprintf(want, sizeof want, "%s:3: key 'bogus_key'", ini);
    expect_refusal((const char *const[]){"--config", ini, NULL}, want);
    f = open(ini, O_WRONLY | O_TRUNC);
    text = "port = 0\nthreads = many\n";
    assert_int_equal(write(f, text, strlen(text)), (ssize_t)strlen(text));
    close(f);
    snprintf(want, sizeof want, "%s:2: key 'threads'", ini);
    expect_refusal((const char *const[]){"--config", ini, NULL}, want);
    unlink(ini);
}

static void load_client_verifies_framed_echoes(void **state)
{
    (void)state;
    struct cu_child srv;
    uint16_t port = echo_start(&srv, NULL);
    cu_bench_verifies(port, (const char *const[]){
                                "--connections", "8", "--size", "1-1024",
                                "--depth", "4", "--duration", "1", "--warmup",
                                "0", "--mode", "framed", "--json", NULL});
    cu_echo_stop(&srv);
}

int main(int argc, char **argv)
{
    (void)t_seed();
    su_parse_backend(argc, argv);
    backend = rp_backend_name(su_kind);
    cu_find_build_dir();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(
            framed_mode_echoes_packets_and_stops_on_sigterm, cu_kill_leftovers),
        cmocka_unit_test_teardown(raw_mode_echoes_bytes_from_a_config_file,
                                  cu_kill_leftovers),
        cmocka_unit_test_teardown(
            bad_flags_values_and_config_entries_exit_with_status_2,
            cu_kill_leftovers),
        cmocka_unit_test_teardown(load_client_verifies_framed_echoes,
                                  cu_kill_leftovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
