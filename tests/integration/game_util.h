/*
 * Helpers of the ringport-game tests (header-only, gu_ prefix): start the
 * game as a child on the backend of this run (with its metrics endpoint),
 * stop it and check its final line, and a blocking client that speaks the
 * game's messages with nothing but docs/protocol.md and the codec
 * (examples/game/gen/protocol_gen.c, generated from proto/game.schema,
 * compiled in: it depends on nothing else).
 *
 * Every read is bounded (SO_RCVTIMEO, 10 s) and every wait for the child
 * by CU_WAIT_MS: a hang fails the test, slowness does not. Include after
 * child_util.h and metrics_util.h; set gu_backend before gu_start.
 */
#ifndef RP_TESTS_GAME_UTIL_H
#define RP_TESTS_GAME_UTIL_H

#include "child_util.h"
#include "metrics_util.h"

#include "../../examples/game/gen/protocol_gen.c"
#include "../../examples/game/protocol.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *gu_backend; /* t_backend() of this run */
/* --resume-grace-ms for the next gu_start; NULL: not passed (off). */
static const char *gu_resume_grace_ms;

struct gu_game {
    struct cu_child child;
    uint16_t port;  /* the game */
    uint16_t mport; /* its metrics endpoint */
};

static inline void gu_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Starts ringport-game on an ephemeral port with metrics on another; a
   uring run on a kernel that refuses io_uring is a skip. */
static inline void gu_start(struct gu_game *g)
{
    char path[PATH_MAX + 64], be[32], line[256];
    cu_program(path, sizeof path, "examples/game/ringport-game");
    snprintf(be, sizeof be, "%s", gu_backend);
    char grace[32];
    snprintf(grace, sizeof grace, "%s",
             gu_resume_grace_ms ? gu_resume_grace_ms : "");
    char *argv[] = {path, "--port",     "0",         "--backend",
                    be,   "--no-stats", "--metrics", "127.0.0.1:0",
                    NULL, NULL,         NULL};
    if (gu_resume_grace_ms) {
        argv[8] = "--resume-grace-ms";
        argv[9] = grace;
    }
    cu_start(&g->child, argv, false);
    if (cu_read_line(g->child.out, line, sizeof line) == 0) {
        int status = cu_wait(&g->child);
        cu_close(&g->child);
        if (strcmp(gu_backend, "uring") == 0 && status == 1)
            skip();
        fail_msg("ringport-game exited with %d before listening", status);
    }
    assert_non_null(strstr(line, "listening on 127.0.0.1:"));
    g->port = cu_listening_port(line);
    assert_true(cu_read_line(g->child.out, line, sizeof line) > 0);
    const char *colon = strrchr(line, ':');
    if (strncmp(line, "metrics on 127.0.0.1:", 21) != 0 || !colon)
        fail_msg("unexpected second line '%s'", line);
    g->mport = (uint16_t)atoi(colon + 1);
    assert_true(g->mport > 0);
}

/* SIGTERM, exit 0, and the final line shows nothing left behind. */
static inline void gu_stop(struct gu_game *g)
{
    char line[1024];
    cu_term(&g->child);
    for (;;) {
        assert_true(cu_read_line(g->child.out, line, sizeof line) > 0);
        if (strncmp(line, "final:", 6) == 0)
            break;
    }
    fprintf(stderr, "%s\n", line);
    assert_non_null(strstr(line, "sessions 0 players 0 names 0"));
    assert_int_equal(cu_wait(&g->child), 0);
    cu_close(&g->child);
}

/* The gauges a leak shows in: live player records against sessions. */
struct gu_gauges {
    double players, sessions;
};

static inline struct gu_gauges gu_gauges(const struct gu_game *g)
{
    struct mu_reply r;
    assert_int_equal(mu_get(g->mport, "/metrics", &r), 0);
    assert_int_equal(r.status, 200);
    struct gu_gauges v = {mu_value(r.body, "ringport_game_players"),
                          mu_value(r.body, "ringport_sessions")};
    mu_reply_free(&r);
    assert_false(isnan(v.players) || isnan(v.sessions));
    return v;
}

/* ---- one blocking client ------------------------------------------------ */

static inline int gu_connect(uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* Closes with a reset (SO_LINGER 0): the server sees ECONNRESET at once. */
static inline void gu_reset(int fd)
{
    struct linger now = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &now, sizeof now);
    close(fd);
}

static inline void gu_send_raw(int fd, uint16_t type, const void *payload,
                               size_t len)
{
    uint8_t buf[600] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)type,
                        (uint8_t)(type >> 8)};
    assert_true(len <= sizeof buf - 4);
    if (len)
        memcpy(buf + 4, payload, len);
    assert_int_equal(write(fd, buf, 4 + len), (ssize_t)(4 + len));
}

static inline void gu_send(int fd, const struct gm_msg *m)
{
    uint8_t buf[600];
    int n = gm_encode_frame(m, buf, sizeof buf);
    assert_true(n > 0);
    /* assert_true does not return-guard for the compiler: clamp, so a
     * Release build (-O3) sees a bounded size */
    size_t len = n > 0 ? (size_t)n : 0;
    assert_int_equal(write(fd, buf, len), n);
}

static inline void gu_read_full(int fd, uint8_t *p, size_t n)
{
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r <= 0)
            fail_msg("connection ended or timed out: %zd", r);
        p += r;
        n -= (size_t)r;
    }
}

/* The next message, decoded ('buf' keeps its payload: strings point into
   it). */
static inline void gu_recv(int fd, struct gm_msg *m, uint8_t *buf)
{
    uint8_t h[4];
    gu_read_full(fd, h, 4);
    uint16_t len = (uint16_t)(h[0] | h[1] << 8);
    uint16_t type = (uint16_t)(h[2] | h[3] << 8);
    assert_true(len <= GM_PAYLOAD_MAX);
    gu_read_full(fd, buf, len);
    assert_int_equal(gm_decode(type, buf, len, m), 0);
}

/* The next message, which must be of 'type'. */
static inline void gu_expect(int fd, uint16_t type, struct gm_msg *m,
                             uint8_t *buf)
{
    gu_recv(fd, m, buf);
    if (m->type != type)
        fail_msg("expected %s, got %s (error %s)", gm_type_name(type),
                 gm_type_name(m->type),
                 m->type == GM_ERROR ? gm_error_name(m->u.error.code) : "-");
}

static inline void gu_expect_error(int fd, uint16_t code, uint16_t about)
{
    struct gm_msg m;
    uint8_t buf[GM_PAYLOAD_MAX];
    gu_expect(fd, GM_ERROR, &m, buf);
    assert_int_equal(m.u.error.code, code);
    assert_int_equal(m.u.error.about, about);
}

static inline void gu_send_login(int fd, const char *name)
{
    struct gm_msg m = {.type = GM_LOGIN};
    m.u.login = gm_str_of(name, strlen(name));
    gu_send(fd, &m);
}

/* LOGIN and its LOGIN_OK; returns the connection. */
static inline int gu_login(uint16_t port, const char *name)
{
    struct gm_msg m;
    uint8_t buf[GM_PAYLOAD_MAX];
    int fd = gu_connect(port);
    gu_send_login(fd, name);
    gu_expect(fd, GM_LOGIN_OK, &m, buf);
    return fd;
}

/* The server closed this connection (EOF, not a timeout). */
static inline void gu_expect_closed(int fd)
{
    uint8_t b;
    assert_int_equal(read(fd, &b, 1), 0);
}

#endif
