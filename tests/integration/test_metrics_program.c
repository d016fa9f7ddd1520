/*
 * ringport-echo --metrics as a user runs it: a child on ephemeral ports
 * prints "metrics on ADDR:PORT" after its listening line, serves GET
 * /metrics with the counters of the traffic made (checked by the strict
 * parser and promtool when installed), takes the endpoint from its config
 * file too, refuses a bad one with file, line and key, prints the stats
 * line with pool usage when asked, and stops with status 0.
 */
#include "server_util.h"

#include "metrics_util.h"

#include "child_util.h"

static const char *backend;

static uint16_t echo_start(struct cu_child *c, const char *const *extra)
{
    return cu_echo_start(c, backend, extra);
}

/* The "metrics on ADDR:PORT" line that follows the listening line. */
static uint16_t metrics_port(struct cu_child *c)
{
    char line[256];
    cu_read_line(c->out, line, sizeof line);
    const char *colon = strrchr(line, ':');
    if (strncmp(line, "metrics on 127.0.0.1:", 21) != 0 || !colon)
        fail_msg("unexpected second line '%s'", line);
    int port = atoi(colon + 1);
    assert_true(port > 0 && port < 65536);
    return (uint16_t)port;
}

/* Scrapes until 'series' reads 'want' (the child's threads get there on
   their own time); returns the last text, checked. */
static char *scrape_until(uint16_t port, const char *series, double want)
{
    for (int i = 0; i < 1000; i++) {
        struct mu_reply r;
        struct mu_check ck;
        assert_int_equal(mu_get(port, "/metrics", &r), 0);
        assert_int_equal(r.status, 200);
        if (!mu_check_text(r.body, &ck))
            fail_msg("format: %s", ck.err);
        if (mu_value(r.body, series) == want) {
            char *text = strdup(r.body);
            mu_reply_free(&r);
            return text;
        }
        mu_reply_free(&r);
        su_sleep_ms(10);
    }
    fail_msg("%s never reached %g", series, want);
    return NULL;
}

static void echo_serves_metrics_of_its_traffic(void **state)
{
    (void)state;
    struct cu_child c;
    uint16_t port =
        echo_start(&c, (const char *const[]){"--metrics", "127.0.0.1:0", NULL});
    uint16_t mport = metrics_port(&c);
    int fd[3];
    for (int i = 0; i < 3; i++) {
        fd[i] = su_connect(port);
        su_ping(fd[i], (uint16_t)i);
    }
    close(fd[0]);
    /* The leave is counted before the session count drops: once sessions
       reads 2, the reason is there. */
    char *text = scrape_until(mport, "ringport_sessions", 2);
    assert_true(
        mu_value(text, "ringport_disconnects_total{reason=\"peer_closed\"}") ==
        1);
    assert_true(mu_value(text, "ringport_accepts_total") == 3);
    assert_true(mu_value(text, "ringport_received_packets_total") == 3);
    assert_true(mu_value(text, "ringport_received_bytes_total") == 3 * 20);
    /* The backend in use: the one forced, or whichever auto chose. */
    double uring = mu_value(text, "ringport_server_info{backend=\"uring\"}");
    double epoll = mu_value(text, "ringport_server_info{backend=\"epoll\"}");
    if (su_kind == RP_BACKEND_URING)
        assert_true(uring == 1 && isnan(epoll));
    else if (su_kind == RP_BACKEND_EPOLL)
        assert_true(epoll == 1 && isnan(uring));
    else
        assert_true((uring == 1) != (epoll == 1));
    mu_promtool(text);
    free(text);
    close(fd[1]);
    close(fd[2]);
    cu_echo_stop(&c);
}

static void echo_takes_the_endpoint_from_its_config_file(void **state)
{
    (void)state;
    char ini[] = "/tmp/ringport-metrics-test-XXXXXX";
    int f = mkstemp(ini);
    assert_true(f >= 0);
    const char *text = "[echo]\nmetrics = 127.0.0.1:0\n";
    assert_int_equal(write(f, text, strlen(text)), (ssize_t)strlen(text));
    close(f);
    struct cu_child c;
    echo_start(&c, (const char *const[]){"--config", ini, NULL});
    uint16_t mport = metrics_port(&c);
    free(scrape_until(mport, "ringport_sessions", 0));
    cu_echo_stop(&c);

    /* A bad endpoint: status 2, one line naming file, line and key. */
    f = open(ini, O_WRONLY | O_TRUNC);
    text = "port = 0\n\nmetrics = everywhere\n";
    assert_int_equal(write(f, text, strlen(text)), (ssize_t)strlen(text));
    close(f);
    char want[128];
    snprintf(want, sizeof want, "%s:3: key 'metrics': wants ADDR:PORT", ini);
    cu_expect_refusal(CU_ECHO, (const char *const[]){"--config", ini, NULL},
                      want);
    unlink(ini);
}

static void echo_prints_the_stats_line_with_pool_usage(void **state)
{
    (void)state;
    struct cu_child c;
    char line[1024];
    uint16_t port =
        echo_start(&c, (const char *const[]){"--stats", "true", NULL});
    int fd = su_connect(port);
    su_ping(fd, 1);
    bool seen = false;
    for (int i = 0; i < 20 && !seen; i++) {
        cu_read_line(c.err, line, sizeof line);
        seen = strncmp(line, "sessions ", 9) == 0 && strstr(line, "| pool ");
    }
    if (!seen)
        fail_msg("no stats line; last stderr line '%s'", line);
    close(fd);
    cu_echo_stop(&c);
}

int main(int argc, char **argv)
{
    (void)t_seed();
    su_parse_backend(argc, argv);
    backend = rp_backend_name(su_kind);
    cu_find_build_dir();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(echo_serves_metrics_of_its_traffic,
                                  cu_kill_leftovers),
        cmocka_unit_test_teardown(echo_takes_the_endpoint_from_its_config_file,
                                  cu_kill_leftovers),
        cmocka_unit_test_teardown(echo_prints_the_stats_line_with_pool_usage,
                                  cu_kill_leftovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
