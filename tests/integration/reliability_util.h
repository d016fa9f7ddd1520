/*
 * Helpers for the reliability suite (header-only, ru_ prefix), on top of
 * server_util.h: a log sink that counts the server's protocol-error lines
 * per session, an on_leave that remembers each session's reason, and a
 * thread of bystander clients that ping-pong verified frames the whole
 * time a test misbehaves next to them. docs/reliability.md maps each
 * criterion to its test.
 */
#ifndef RP_TESTS_RELIABILITY_UTIL_H
#define RP_TESTS_RELIABILITY_UTIL_H

#include "server_util.h"

#include <inttypes.h>
#include <ringport/log.h>
#include <stdarg.h>

/* ---- log capture -------------------------------------------------------- */

#define RU_MAX_LOGGED 4096

/*
 * What the server logged, by kind. 'proto_sid' holds the session id of
 * every "session N: protocol error" line in order; 'suppressed' sums the
 * N of every "N protocol error lines suppressed" line.
 */
struct ru_log {
    pthread_mutex_t lock;
    rp_sid proto_sid[RU_MAX_LOGGED];
    size_t n_proto;
    uint64_t suppressed;
    size_t n_end;      /* "session N: ended (...)" lines */
    size_t n_fallback; /* "io_uring refused (...)" lines */
    char fallback_line[256];
};

static struct ru_log ru_logged;

static inline void ru_sink(enum rp_log_level level, const char *line,
                           void *user)
{
    struct ru_log *l = user;
    const char *p;
    unsigned long long n;
    (void)level;
    pthread_mutex_lock(&l->lock);
    if ((p = strstr(line, "session ")) != NULL &&
        strstr(p, ": protocol error") != NULL &&
        sscanf(p, "session %llu:", &n) == 1) {
        if (l->n_proto < RU_MAX_LOGGED)
            l->proto_sid[l->n_proto++] = (rp_sid)n;
    } else if ((p = strstr(line, "] session: ")) != NULL &&
               strstr(p, " protocol error lines suppressed") != NULL &&
               sscanf(p, "] session: %llu protocol error lines suppressed",
                      &n) == 1) {
        l->suppressed += n;
    } else if (strstr(line, ": ended (") != NULL) {
        l->n_end++;
    } else if ((p = strstr(line, "io_uring refused (")) != NULL) {
        l->n_fallback++;
        snprintf(l->fallback_line, sizeof l->fallback_line, "%s", p);
    }
    pthread_mutex_unlock(&l->lock);
}

/* Starts capturing (before the server starts: the sink is not meant to
   change while other threads log). */
static inline void ru_log_begin(void)
{
    memset(&ru_logged, 0, sizeof ru_logged);
    pthread_mutex_init(&ru_logged.lock, NULL);
    rp_log_set_sink(ru_sink, &ru_logged);
}

/* After the server is destroyed. */
static inline void ru_log_end(void)
{
    rp_log_set_sink(NULL, NULL);
}

/* Protocol-error lines so far, and the lines reported suppressed. */
static inline size_t ru_proto_count(uint64_t *suppressed)
{
    pthread_mutex_lock(&ru_logged.lock);
    size_t n = ru_logged.n_proto;
    if (suppressed)
        *suppressed = ru_logged.suppressed;
    pthread_mutex_unlock(&ru_logged.lock);
    return n;
}

/* Protocol-error lines that named 'sid'. */
static inline size_t ru_proto_lines_for(rp_sid sid)
{
    size_t n = 0;
    pthread_mutex_lock(&ru_logged.lock);
    for (size_t i = 0; i < ru_logged.n_proto; i++)
        n += ru_logged.proto_sid[i] == sid;
    pthread_mutex_unlock(&ru_logged.lock);
    return n;
}

/* ---- leave reasons per session ----------------------------------------- */

struct ru_leave {
    rp_sid sid;
    enum rp_leave_reason reason;
};

static struct ru_leave ru_leaves_seen[SU_MAX_SIDS];
static size_t ru_n_leaves;
static pthread_mutex_t ru_leave_lock = PTHREAD_MUTEX_INITIALIZER;

static inline void ru_on_leave(struct rp_server *srv, rp_sid sid, void *data,
                               enum rp_leave_reason reason, void *user)
{
    pthread_mutex_lock(&ru_leave_lock);
    if (ru_n_leaves < SU_MAX_SIDS)
        ru_leaves_seen[ru_n_leaves++] = (struct ru_leave){sid, reason};
    pthread_mutex_unlock(&ru_leave_lock);
    su_on_leave(srv, sid, data, reason, user);
}

static inline void ru_leaves_reset(void)
{
    pthread_mutex_lock(&ru_leave_lock);
    ru_n_leaves = 0;
    pthread_mutex_unlock(&ru_leave_lock);
}

/* The reason 'sid' left with, or -1 if it has not left. */
static inline int ru_reason_of(rp_sid sid)
{
    int r = -1;
    pthread_mutex_lock(&ru_leave_lock);
    for (size_t i = 0; i < ru_n_leaves; i++)
        if (ru_leaves_seen[i].sid == sid)
            r = (int)ru_leaves_seen[i].reason;
    pthread_mutex_unlock(&ru_leave_lock);
    return r;
}

/* ---- bystanders -----------------------------------------------------------
 */

#define RU_MAX_BYSTANDERS 256

/*
 * 'n' connected clients; one thread sends each of them a fresh frame in
 * turn and checks its echo byte for byte until 'stop'. Any error (a wrong
 * byte, a close, a timeout) is kept in 'error' (cmocka asserts only on
 * the main thread).
 */
struct ru_bystanders {
    int fd[RU_MAX_BYSTANDERS];
    size_t n;
    pthread_t thread;
    _Atomic bool stop;
    _Atomic uint64_t rounds; /* full rounds over every bystander */
    uint64_t seed;
    char error[256];
};

static inline void *ru_bystanders_main(void *arg)
{
    struct ru_bystanders *b = arg;
    static _Thread_local uint8_t want[512], got[512];
    uint64_t x = b->seed;
    while (!atomic_load(&b->stop) && !b->error[0]) {
        for (size_t i = 0; i < b->n && !b->error[0]; i++) {
            size_t len = (size_t)(t_rand(&x) % sizeof want);
            uint16_t type = (uint16_t)t_rand(&x), t = 0;
            for (size_t k = 0; k < len; k++)
                want[k] = (uint8_t)t_rand(&x);
            uint8_t wire[4 + sizeof want];
            size_t n = su_frame(wire, type, want, len);
            if (send(b->fd[i], wire, n, MSG_NOSIGNAL) != (ssize_t)n) {
                snprintf(b->error, sizeof b->error, "bystander %zu: send: %s",
                         i, strerror(errno));
                break;
            }
            int r = su_read_frame(b->fd[i], &t, got, sizeof got, SU_WAIT_MS);
            if (r < 0)
                snprintf(b->error, sizeof b->error, "bystander %zu: %s", i,
                         strerror(-r));
            else if ((size_t)r != len || t != type ||
                     memcmp(got, want, len) != 0)
                snprintf(b->error, sizeof b->error, "bystander %zu: wrong echo",
                         i);
        }
        atomic_fetch_add(&b->rounds, 1);
    }
    return NULL;
}

/* Connects 'n' bystanders (each pinged once) and starts their thread. */
static inline void ru_bystanders_start(struct ru_bystanders *b, size_t n,
                                       uint16_t port, uint64_t seed)
{
    assert_true(n <= RU_MAX_BYSTANDERS);
    memset(b, 0, sizeof *b);
    b->n = n;
    b->seed = seed;
    for (size_t i = 0; i < n; i++) {
        b->fd[i] = su_connect(port);
        su_ping(b->fd[i], (uint16_t)(1000 + i));
    }
    assert_int_equal(pthread_create(&b->thread, NULL, ru_bystanders_main, b),
                     0);
}

/* Waits for 'rounds' more full rounds (the bystanders kept working through
   what just happened), stops the thread, checks every one is still open
   and served, and closes them. */
static inline void ru_bystanders_finish(struct ru_bystanders *b,
                                        uint64_t rounds)
{
    uint64_t want = atomic_load(&b->rounds) + rounds;
    SU_WAIT(atomic_load(&b->rounds) >= want || b->error[0]);
    atomic_store(&b->stop, true);
    pthread_join(b->thread, NULL);
    if (b->error[0])
        fail_msg("%s", b->error);
    assert_true(atomic_load(&b->rounds) >= want);
    for (size_t i = 0; i < b->n; i++) {
        assert_false(su_is_closed_now(b->fd[i]));
        su_ping(b->fd[i], (uint16_t)(2000 + i));
        close(b->fd[i]);
    }
}

/* Sanitizers keep memory resident (ASan's quarantine, shadow memory): the
   memory bounds are asserted in the plain builds only. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RU_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define RU_SANITIZED 1
#endif
#endif

#endif
