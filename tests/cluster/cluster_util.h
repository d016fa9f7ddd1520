/*
 * Helpers of the cluster tests (header-only): the private nats-server of
 * the test program (nats_util.h; cl_nats_up / cl_nats_down as the cmocka
 * group setup and teardown, skipping with one line without nats-server),
 * ringport-game shards started with --cluster on it, their metrics, and
 * LOGIN from a fresh connection. Every wait is bounded.
 */
#ifndef RP_TESTS_CLUSTER_UTIL_H
#define RP_TESTS_CLUSTER_UTIL_H

#define CU_WAIT_MS 30000
#include "../integration/child_util.h"
#include "../integration/game_util.h"
#include "../integration/metrics_util.h"
#include "../integration/nats_util.h"

#include <stdio.h>
#include <string.h>

#define CL_RETRY_MS 10000 /* bound on waiting for an asynchronous effect */

static struct nu_server cl_nats;

/*
 * Starts shard 'shard' of ringport-game on cl_nats (epoll, a free port,
 * metrics on a free port) with 'extra' after the cluster flags (a
 * NULL-terminated list of at most CL_MAX_EXTRA flags and values; NULL:
 * none), and reads both ports from its first two lines.
 */
#define CL_MAX_EXTRA 16
static inline void cl_shard_start_with(struct gu_game *g, int shard,
                                       const char *const *extra)
{
    char path[PATH_MAX + 64], line[256], k[16];
    cu_program(path, sizeof path, "examples/game/ringport-game");
    snprintf(k, sizeof k, "%d", shard);
    char *argv[12 + CL_MAX_EXTRA + 1] = {
        path,        "--port",     "0",         "--backend",
        "epoll",     "--no-stats", "--metrics", "127.0.0.1:0",
        "--cluster", cl_nats.url,  "--shard",   k};
    size_t n = 12;
    for (size_t i = 0; extra && extra[i]; i++) {
        assert_true(i < CL_MAX_EXTRA);
        argv[n++] = (char *)extra[i];
    }
    argv[n] = NULL;
    cu_start(&g->child, argv, false);
    assert_true(cu_read_line(g->child.out, line, sizeof line) > 0);
    g->port = cu_listening_port(line);
    assert_true(cu_read_line(g->child.out, line, sizeof line) > 0);
    const char *colon = strrchr(line, ':');
    assert_non_null(colon);
    g->mport = (uint16_t)atoi(colon + 1);
}

/* A shard with a 3 s lease on its players' names. */
static inline void cl_shard_start(struct gu_game *g, int shard)
{
    static const char *const lease[] = {"--cluster-lease-ms", "3000", NULL};
    cl_shard_start_with(g, shard, lease);
}

static inline double cl_metric(const struct gu_game *g, const char *name)
{
    struct mu_reply r;
    struct mu_check ck;
    assert_int_equal(mu_get(g->mport, "/metrics", &r), 0);
    assert_int_equal(r.status, 200);
    /* Every scrape, ringport_cluster_* included, is valid exposition. */
    if (!mu_check_text(r.body, &ck))
        fail_msg("metrics format: %s", ck.err);
    double v = mu_value(r.body, name);
    mu_reply_free(&r);
    if (isnan(v))
        fail_msg("no series %s", name);
    return v;
}

/* Waits (bounded) until the shard's connected gauge is 'up'. */
static inline void cl_wait_connected(const struct gu_game *g, int up)
{
    for (int waited = 0; waited < CL_RETRY_MS; waited += 20) {
        if (cl_metric(g, "ringport_cluster_connected") == up)
            return;
        gu_sleep_ms(20);
    }
    fail_msg("shard on port %u: connected never became %d", g->port, up);
}

/* Waits (bounded) until the shard's series 'name' is at least 'min'
   (counters move when the cluster group gets to a post). */
static inline void cl_wait_metric(const struct gu_game *g, const char *name,
                                  double min)
{
    for (int waited = 0; waited < CL_RETRY_MS; waited += 20) {
        if (cl_metric(g, name) >= min)
            return;
        gu_sleep_ms(20);
    }
    fail_msg("shard on port %u: %s stayed below %g", g->port, name, min);
}

/* LOGIN 'name' on a fresh connection; returns the code (0: LOGIN_OK) and
   the connection in *fd. */
static inline uint16_t cl_try_login(uint16_t port, const char *name, int *fd)
{
    struct gm_msg m;
    uint8_t buf[GM_PAYLOAD_MAX];
    *fd = gu_connect(port);
    gu_send_login(*fd, name);
    gu_recv(*fd, &m, buf);
    if (m.type == GM_LOGIN_OK)
        return 0;
    assert_int_equal(m.type, GM_ERROR);
    assert_int_equal(m.u.error.about, GM_LOGIN);
    return m.u.error.code;
}

/* Retries LOGIN (new connection each time) until it is neither
   'while_code' nor TRY_LATER (a request that timed out on a loaded
   machine), or CL_RETRY_MS passed; returns the last code. */
static inline uint16_t cl_login_until(uint16_t port, const char *name,
                                      uint16_t while_code, int *fd)
{
    uint16_t code = 0;
    for (int waited = 0; waited < CL_RETRY_MS; waited += 20) {
        code = cl_try_login(port, name, fd);
        if (code != while_code && code != GM_ERR_TRY_LATER)
            return code;
        close(*fd);
        gu_sleep_ms(20);
    }
    return code;
}

/* SIGKILL, as a crash: no logout, no release. */
static inline void cl_shard_kill(struct gu_game *g)
{
    kill(g->child.pid, SIGKILL);
    waitpid(g->child.pid, NULL, 0);
    cu_track(0, g->child.pid);
    cu_close(&g->child);
}

static inline uint64_t cl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline int cl_nats_up(void **state)
{
    (void)state;
    int r = nu_start(&cl_nats, 0);
    if (r == -ENOENT) {
        printf("nats-server not installed (scripts/deps.sh cluster): "
               "skipped\n");
        exit(77);
    }
    if (r < 0) {
        printf("nats-server did not start: %s\n", strerror(-r));
        return -1;
    }
    return 0;
}

static inline int cl_nats_down(void **state)
{
    (void)state;
    nu_stop(&cl_nats);
    return 0;
}

#endif
