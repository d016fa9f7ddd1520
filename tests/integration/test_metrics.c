/*
 * The metrics endpoint in-process: a server and rp_metrics on ephemeral
 * ports, known traffic and disconnects of known reasons, then real scrapes
 * (a plain-socket HTTP GET, and curl as a child when installed). The values
 * must match rp_server_get_stats and the traffic made, every line must pass
 * the strict format checker (metrics_util.h) and `promtool check metrics`
 * when promtool is installed. Also: only GET /metrics answers 200; scrapes
 * racing the I/O threads (TSan runs this on epoll) stay consistent; content
 * groups appear with their counters.
 */
#include "server_util.h"

#include "metrics_util.h"

#include <ringport/group.h>
#include <ringport/metrics.h>
#include <ringport/ringport.h>
#include <signal.h>

static struct su_events ev;

static int reset_events(void **state)
{
    (void)state;
    su_events_reset(&ev);
    return 0;
}

/* Scrapes GET /metrics, checks status, content type and the format. */
static char *scrape(uint16_t port)
{
    struct mu_reply r;
    struct mu_check c;
    assert_int_equal(mu_get(port, "/metrics", &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "Content-Type: text/plain; version=0.0.4"));
    if (!mu_check_text(r.body, &c))
        fail_msg("format: %s", c.err);
    char *text = strdup(r.body);
    mu_reply_free(&r);
    return text;
}

static void check_value(const char *text, const char *series, uint64_t want)
{
    double v = mu_value(text, series);
    if (isnan(v))
        fail_msg("no series %s", series);
    if (v != (double)want)
        fail_msg("%s = %.0f, want %llu", series, v, (unsigned long long)want);
}

/* The sid of the session joined most recently. */
static rp_sid last_joined(void)
{
    pthread_mutex_lock(&ev.lock);
    rp_sid sid = ev.n_joined ? ev.joined[ev.n_joined - 1] : RP_SID_NONE;
    pthread_mutex_unlock(&ev.lock);
    return sid;
}

static uint64_t leaves_total(struct rp_server *srv)
{
    struct rp_server_stats s;
    uint64_t n = 0;
    rp_server_get_stats(srv, &s);
    for (int r = 0; r < RP_LEAVE_REASON_COUNT; r++)
        n += s.leaves[r];
    return n;
}

/*
 * Five clients exchange known frames; then one closes (peer_closed), one
 * resets (reset), one sends an oversized header (protocol), one is kicked
 * (kicked), one stays. The scrape must say exactly that, agree with
 * rp_server_get_stats, pass the format checks, and curl must get the same.
 */
static void scrape_reports_the_traffic_and_disconnects_made(void **state)
{
    (void)state;
    enum { CLIENTS = 5, ROUNDS = 7, PAY = 100 };
    struct rp_server_config cfg;
    struct rp_metrics *m;
    uint64_t before = su_packets_alive();
    su_config(&cfg, &ev);
    cfg.max_payload = 1024;
    struct rp_server *srv = su_start(&cfg);
    assert_int_equal(rp_metrics_create("127.0.0.1:0", &m), 0);
    assert_int_equal(rp_metrics_add_server(m, srv, NULL), 0);
    uint16_t mport = rp_metrics_port(m);
    assert_true(mport > 0);

    int fd[CLIENTS];
    rp_sid sid[CLIENTS];
    uint8_t payload[PAY];
    for (size_t i = 0; i < PAY; i++)
        payload[i] = (uint8_t)(i * 13);
    for (int i = 0; i < CLIENTS; i++) {
        uint64_t joins = atomic_load(&ev.joins);
        fd[i] = su_connect(rp_server_port(srv));
        SU_WAIT(atomic_load(&ev.joins) > joins);
        assert_true(atomic_load(&ev.joins) > joins);
        sid[i] = last_joined();
    }
    for (int round = 0; round < ROUNDS; round++)
        for (int i = 0; i < CLIENTS; i++) {
            su_send_frame(fd[i], (uint16_t)(round + 1), payload, PAY);
            su_expect_frame(fd[i], (uint16_t)(round + 1), payload, PAY);
        }
    const uint64_t echoed = (uint64_t)CLIENTS * ROUNDS * (4 + PAY);

    close(fd[0]);
    su_close_rst(fd[1]);
    const uint8_t oversized[4] = {0xff, 0xff, 0x01, 0x00}; /* 65535 > 1024 */
    su_send_all(fd[2], oversized, sizeof oversized);
    assert_int_equal(rp_server_disconnect(srv, sid[3]), 0);
    /* A leave is counted just before the session count drops: wait for
       both. */
    SU_WAIT(leaves_total(srv) == 4 && su_sessions(srv) == 1);
    assert_int_equal(su_wait_closed(fd[2], SU_WAIT_MS), 0);
    assert_int_equal(su_wait_closed(fd[3], SU_WAIT_MS), 0);
    (void)sid;

    struct rp_server_stats s;
    rp_server_get_stats(srv, &s);
    char *text = scrape(mport);
    /* What the clients did... */
    assert_int_equal(s.accepts, CLIENTS);
    assert_int_equal(s.sessions, 1);
    assert_int_equal(s.bytes_in, echoed + sizeof oversized);
    assert_int_equal(s.bytes_out, echoed);
    assert_int_equal(s.packets_in, (uint64_t)CLIENTS * ROUNDS);
    assert_int_equal(s.packets_out, (uint64_t)CLIENTS * ROUNDS);
    /* ...is what the scrape says. */
    check_value(text, "ringport_sessions", 1);
    check_value(text, "ringport_sessions_max", CLIENTS);
    check_value(text, "ringport_accepts_total", CLIENTS);
    check_value(text, "ringport_refused_total", 0);
    check_value(text, "ringport_received_bytes_total", s.bytes_in);
    check_value(text, "ringport_sent_bytes_total", s.bytes_out);
    check_value(text, "ringport_received_packets_total", s.packets_in);
    check_value(text, "ringport_sent_packets_total", s.packets_out);
    check_value(text, "ringport_sends_total", s.sends);
    check_value(text, "ringport_disconnects_total{reason=\"peer_closed\"}", 1);
    check_value(text, "ringport_disconnects_total{reason=\"reset\"}", 1);
    check_value(text, "ringport_disconnects_total{reason=\"protocol\"}", 1);
    check_value(text, "ringport_disconnects_total{reason=\"kicked\"}", 1);
    check_value(text, "ringport_disconnects_total{reason=\"idle_timeout\"}", 0);
    /* Resume is off here: its series are there, at 0. */
    check_value(text, "ringport_sessions_detached", 0);
    check_value(text, "ringport_resumes_total", 0);
    check_value(text, "ringport_resume_refused_total", 0);
    check_value(text, "ringport_disconnects_total{reason=\"resume_expired\"}",
                0);
    char series[128];
    snprintf(series, sizeof series, "ringport_server_info{backend=\"%s\"}",
             rp_backend_name(rp_server_backend(srv)));
    check_value(text, series, 1);
    snprintf(series, sizeof series, "ringport_build_info{version=\"%s\"}",
             rp_version_string());
    check_value(text, series, 1);
    assert_false(isnan(mu_value(text, "ringport_packet_heap_in_use")));
    mu_promtool(text);
    free(text);

    /* curl, as a scraper would run it, sees the same counters. */
    if (mu_have(MU_CURL)) {
        char url[64], out[] = "/tmp/ringport-curl-XXXXXX";
        int f = mkstemp(out);
        assert_true(f >= 0);
        close(f);
        snprintf(url, sizeof url, "http://127.0.0.1:%u/metrics", mport);
        char *argv[] = {MU_CURL, "-sS", "--fail", "--max-time",
                        "10",    url,   NULL};
        assert_int_equal(mu_run(argv, NULL, out), 0);
        char *body = mu_slurp(out);
        unlink(out);
        struct mu_check c;
        assert_non_null(body);
        if (!mu_check_text(body, &c))
            fail_msg("format (curl): %s", c.err);
        check_value(body, "ringport_accepts_total", CLIENTS);
        check_value(body, "ringport_received_bytes_total", s.bytes_in);
        check_value(body, "ringport_disconnects_total{reason=\"kicked\"}", 1);
        free(body);
    } else {
        printf("curl not installed: curl scrape skipped\n");
    }

    close(fd[2]);
    close(fd[3]);
    close(fd[4]);
    SU_WAIT(su_sessions(srv) == 0);
    rp_metrics_destroy(m);
    su_finish(srv, &ev, before);
}

/* Only GET /metrics answers 200; the rest is refused, and nothing a
   client sends here takes the endpoint down. */
static void only_get_metrics_is_served(void **state)
{
    (void)state;
    struct rp_metrics *m;
    struct mu_reply r;
    assert_int_equal(rp_metrics_create("127.0.0.1:0", &m), 0);
    uint16_t port = rp_metrics_port(m);

    assert_int_equal(mu_get(port, "/", &r), 0);
    assert_int_equal(r.status, 404);
    mu_reply_free(&r);
    assert_int_equal(mu_get(port, "/metrics/x", &r), 0);
    assert_int_equal(r.status, 404);
    mu_reply_free(&r);

    const char *post = "POST /metrics HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc";
    assert_int_equal(mu_http(port, post, strlen(post), &r), 0);
    assert_int_equal(r.status, 405);
    assert_non_null(strstr(r.head, "Allow: GET"));
    mu_reply_free(&r);

    const char *body =
        "GET /metrics HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello";
    assert_int_equal(mu_http(port, body, strlen(body), &r), 0);
    assert_int_equal(r.status, 413);
    mu_reply_free(&r);

    /* A header far past the connection's memory limit. */
    size_t big = 64 * 1024;
    char *req = malloc(big + 128);
    int n = snprintf(req, 128, "GET /metrics HTTP/1.0\r\nX-Big: ");
    memset(req + n, 'a', big);
    memcpy(req + n + big, "\r\n\r\n", 5);
    int hr = mu_http(port, req, (size_t)n + big + 4, &r);
    free(req);
    /* Refused with a 4xx, or the connection closed before a reply. */
    if (hr == 0)
        assert_true(r.status >= 400 && r.status < 500);
    mu_reply_free(&r);

    /* Still serving, and the registry alone renders a valid text. */
    char *text = scrape(port);
    assert_false(isnan(mu_value(text, "ringport_metrics_scrapes_total")));
    assert_true(isnan(mu_value(text, "ringport_sessions")));
    free(text);
    rp_metrics_destroy(m);
}

static void bad_endpoints_are_refused(void **state)
{
    (void)state;
    struct rp_metrics *m = NULL;
    assert_int_equal(rp_metrics_create("127.0.0.1", &m), -EINVAL);
    assert_int_equal(rp_metrics_create("localhost:9100", &m), -EINVAL);
    assert_int_equal(rp_metrics_create("127.0.0.1:65536", &m), -EINVAL);
    assert_int_equal(rp_metrics_create("[::1:0", &m), -EINVAL);
    assert_null(m);
    /* The port in use: the second listener fails, the first still serves. */
    struct rp_metrics *a, *b = NULL;
    char ep[32];
    assert_int_equal(rp_metrics_create("127.0.0.1:0", &a), 0);
    snprintf(ep, sizeof ep, "127.0.0.1:%u", rp_metrics_port(a));
    assert_true(rp_metrics_create(ep, &b) < 0);
    assert_null(b);
    free(scrape(rp_metrics_port(a)));
    rp_metrics_destroy(a);
}

static void collect_zone(struct rp_metrics_writer *w, void *user)
{
    struct rp_metric_label l = {"zone", "north \"gate\"\\\n"};
    rp_metrics_family(w, "game_players", RP_METRIC_GAUGE, "Players.\nNow.");
    rp_metrics_sample_u64(w, &l, 1, *(uint64_t *)user);
}

static void collect_bad(struct rp_metrics_writer *w, void *user)
{
    (void)user;
    rp_metrics_family(w, "game-bad name", RP_METRIC_GAUGE, "Refused.");
    rp_metrics_sample(w, NULL, 0, 1.5);
}

/* A collector's families appear with escaped labels and help; a bad one
   fails the scrape with 500 rather than serve a broken text. */
static void
a_collector_adds_families_and_a_bad_one_fails_the_scrape(void **state)
{
    (void)state;
    struct rp_metrics *m;
    struct mu_reply r;
    uint64_t players = 42;
    assert_int_equal(rp_metrics_create("127.0.0.1:0", &m), 0);
    assert_int_equal(rp_metrics_add_collector(m, collect_zone, &players), 0);
    char *text = scrape(rp_metrics_port(m));
    check_value(text, "game_players{zone=\"north \\\"gate\\\"\\\\\\n\"}", 42);
    assert_non_null(strstr(text, "# HELP game_players Players.\\nNow.\n"));
    mu_promtool(text);
    free(text);
    assert_int_equal(rp_metrics_add_collector(m, collect_bad, NULL), 0);
    assert_int_equal(mu_get(rp_metrics_port(m), "/metrics", &r), 0);
    assert_int_equal(r.status, 500);
    mu_reply_free(&r);
    rp_metrics_remove_collector(m, collect_bad, NULL);
    free(scrape(rp_metrics_port(m)));
    rp_metrics_destroy(m);
}

/* ---- scrapes racing the I/O threads --------------------------------- */

struct scraper {
    pthread_t tid;
    uint16_t port;
    _Atomic bool *stop;
    int scrapes;
    char err[256];
};

static void *scraper_main(void *arg)
{
    struct scraper *sc = arg;
    double last_in = 0;
    for (int i = 0; i < 400 && !atomic_load(sc->stop); i++) {
        struct mu_reply r;
        struct mu_check c;
        if (mu_get(sc->port, "/metrics", &r) < 0 || r.status != 200) {
            snprintf(sc->err, sizeof sc->err, "scrape %d failed", i);
            mu_reply_free(&r);
            break;
        }
        double in =
            mu_value(r.body, "ringport_received_bytes_total{server=\"edge\"}");
        if (!mu_check_text(r.body, &c))
            snprintf(sc->err, sizeof sc->err, "format: %.200s", c.err);
        else if (isnan(in) || in < last_in)
            snprintf(sc->err, sizeof sc->err, "bytes in went %g -> %g", last_in,
                     in);
        mu_reply_free(&r);
        if (sc->err[0])
            break;
        last_in = in;
        sc->scrapes++;
    }
    return NULL;
}

/* Two scrapers loop while clients echo: every scrape valid, counters never
   going back, the final figures exact. (TSan: scrapes race the I/O
   threads by design, through relaxed atomics only.) */
static void scrapes_race_with_traffic_and_stay_consistent(void **state)
{
    (void)state;
    enum { CLIENTS = 4, ROUNDS = 150, SCRAPERS = 2 };
    struct rp_server_config cfg;
    struct rp_metrics *m;
    uint64_t before = su_packets_alive();
    su_config(&cfg, &ev);
    cfg.io_threads = 2;
    struct rp_server *srv = su_start(&cfg);
    assert_int_equal(rp_metrics_create("127.0.0.1:0", &m), 0);
    assert_int_equal(rp_metrics_add_server(m, srv, "edge"), 0);
    assert_int_equal(rp_metrics_add_server(m, srv, "again"), -EEXIST);
    _Atomic bool stop = false;
    struct scraper sc[SCRAPERS];
    for (int i = 0; i < SCRAPERS; i++) {
        sc[i] = (struct scraper){.port = rp_metrics_port(m), .stop = &stop};
        assert_int_equal(pthread_create(&sc[i].tid, NULL, scraper_main, &sc[i]),
                         0);
    }
    int fd[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        fd[i] = su_connect(rp_server_port(srv));
    for (int round = 0; round < ROUNDS; round++)
        for (int i = 0; i < CLIENTS; i++)
            su_ping(fd[i], (uint16_t)round);
    atomic_store(&stop, true);
    for (int i = 0; i < SCRAPERS; i++) {
        pthread_join(sc[i].tid, NULL);
        if (sc[i].err[0])
            fail_msg("scraper %d: %s", i, sc[i].err);
        assert_true(sc[i].scrapes > 0);
    }
    char *text = scrape(rp_metrics_port(m));
    check_value(text, "ringport_received_packets_total{server=\"edge\"}",
                (uint64_t)CLIENTS * ROUNDS);
    check_value(text, "ringport_sessions{server=\"edge\"}", CLIENTS);
    free(text);
    for (int i = 0; i < CLIENTS; i++)
        close(fd[i]);
    SU_WAIT(su_sessions(srv) == 0);
    rp_metrics_destroy(m);
    su_finish(srv, &ev, before);
}

/* ---- content groups ------------------------------------------------- */

static void group_echo(struct rp_group *g, rp_sid sid, void *data,
                       const struct rp_message *msg, void *user)
{
    (void)user, (void)data;
    (void)rp_server_send(rp_group_server(g), sid, msg->packet);
}

static void group_tick(struct rp_group *g, int64_t elapsed_ns, void *user)
{
    (void)g, (void)elapsed_ns, (void)user;
}

/* A group's sessions, messages and ticks are scraped under group="lobby"
   and show in the stats line's sample. */
static void groups_appear_with_their_counters(void **state)
{
    (void)state;
    enum { MSGS = 9 };
    struct rp_server_config cfg;
    struct rp_metrics *m;
    struct rp_group *g;
    uint64_t before = su_packets_alive();
    su_config(&cfg, &ev);
    struct rp_server *srv = su_start(&cfg);
    struct rp_group_config gc = {.name = "lobby", .tick_ms = 5};
    gc.cb.on_message = group_echo;
    gc.cb.on_tick = group_tick;
    assert_int_equal(rp_group_create(srv, &gc, &g), 0);
    assert_int_equal(rp_metrics_create("127.0.0.1:0", &m), 0);
    assert_int_equal(rp_metrics_add_server(m, srv, NULL), 0);
    assert_int_equal(rp_metrics_add_group(m, g), 0);
    assert_int_equal(rp_metrics_add_group(m, g), -EEXIST);

    int fd = su_connect(rp_server_port(srv));
    su_ping(fd, 1); /* on the I/O thread: no group yet */
    assert_int_equal(rp_group_move(srv, last_joined(), g, NULL), 0);
    struct rp_group_stats gs;
    SU_WAIT((rp_group_get_stats(g, &gs), gs.sessions == 1));
    for (int i = 0; i < MSGS; i++)
        su_ping(fd, (uint16_t)(100 + i));
    SU_WAIT((rp_group_get_stats(g, &gs), gs.messages == MSGS && gs.ticks));

    char *text = scrape(rp_metrics_port(m));
    check_value(text, "ringport_group_sessions{group=\"lobby\"}", 1);
    check_value(text, "ringport_group_messages_total{group=\"lobby\"}", MSGS);
    double count = mu_value(
        text, "ringport_group_tick_duration_seconds_count{group=\"lobby\"}");
    assert_true(count >= 1);
    double inf = mu_value(
        text, "ringport_group_tick_duration_seconds_bucket{group=\"lobby\","
              "le=\"+Inf\"}");
    assert_true(inf == count);
    /* Real buckets, cumulative: 0.1 ms <= 1 s <= +Inf. */
    double fast = mu_value(
        text, "ringport_group_tick_duration_seconds_bucket{group=\"lobby\","
              "le=\"0.0001\"}");
    double second = mu_value(
        text, "ringport_group_tick_duration_seconds_bucket{group=\"lobby\","
              "le=\"1\"}");
    assert_false(isnan(fast));
    assert_true(fast <= second && second <= inf);
    mu_promtool(text);
    free(text);

    struct rp_statline_sample a, b;
    char line[512];
    rp_metrics_sample_now(m, &a);
    assert_int_equal(a.ngroups, 1);
    assert_string_equal(a.groups[0].name, "lobby");
    assert_int_equal(a.groups[0].messages, MSGS);
    b = a;
    b.t_ns += 1000000000ull;
    b.groups[0].messages += 50;
    rp_statline_format(&a, &b, line, sizeof line);
    assert_non_null(strstr(line, "lobby 50/s"));

    close(fd);
    SU_WAIT(su_sessions(srv) == 0);
    rp_metrics_destroy(m);
    su_finish(srv, &ev, before);
}

int main(int argc, char **argv)
{
    t_seed();
    su_parse_backend(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(scrape_reports_the_traffic_and_disconnects_made,
                               reset_events),
        cmocka_unit_test(only_get_metrics_is_served),
        cmocka_unit_test(bad_endpoints_are_refused),
        cmocka_unit_test(
            a_collector_adds_families_and_a_bad_one_fails_the_scrape),
        cmocka_unit_test_setup(scrapes_race_with_traffic_and_stay_consistent,
                               reset_events),
        cmocka_unit_test_setup(groups_appear_with_their_counters, reset_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
