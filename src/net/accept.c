/*
 * The accept thread: a blocking accept4() loop, as the IOCP lineage's
 * dedicated accept thread with plain accept(). Each connection is filtered,
 * given a slot in the session table and handed to an I/O thread (round
 * robin) through that thread's inbox; the I/O thread does everything else.
 *
 * Out of descriptors (EMFILE/ENFILE) never spins: a spare fd (/dev/null) is
 * kept; on EMFILE it is closed, the pending connection is accepted and
 * closed at once (the client is told, not left hanging), the spare is
 * reopened and the thread backs off 100 ms, doubling to 1 s while it recurs.
 * One log line per burst; every failure counted in accept_errors.
 *
 * Stop: rp__accept_stop() shuts the listening socket down, which wakes the
 * blocking accept4() with EINVAL on Linux, joins the thread, then closes it.
 *
 * The WebSocket listener (ws_enabled) has a thread of its own running the
 * same loop on its own socket and spare descriptor; its connections are
 * marked 'ws' and otherwise handed over the same way, into the same
 * session table and I/O threads.
 */
#include "net/net.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <ringport/log.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 1000

/* The server whose accept thread this is (NULL on every other thread). */
static _Thread_local const struct rp_server *tls_accept_srv;

bool rp__accept_is_current(const struct rp_server *srv)
{
    return tls_accept_srv == srv;
}

static void count(_Atomic uint64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* Sleeps 'ms' in short steps so a stop is not kept waiting. */
static void backoff_sleep(struct rp_server *srv, int ms)
{
    struct timespec step = {.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000};
    for (int i = 0; i < ms / 10; i++) {
        if (atomic_load_explicit(&srv->accept_stop, memory_order_acquire))
            return;
        nanosleep(&step, NULL);
    }
}

/* One listener: the TCP one or the WebSocket one. */
struct acceptor {
    int lfd;
    int *spare_fd;
    bool ws;
};

static struct acceptor acceptor_of(struct rp_server *srv, bool ws)
{
    return ws ? (struct acceptor){srv->ws_listen_fd, &srv->ws_spare_fd, true}
              : (struct acceptor){srv->listen_fd, &srv->spare_fd, false};
}

/* Frees the spare descriptor to accept and close one pending connection. */
static void shed_one(struct rp_server *srv, struct acceptor *a)
{
    if (*a->spare_fd >= 0) {
        close(*a->spare_fd);
        *a->spare_fd = -1;
    }
    /* EMFILE comes before the wait: there may be nobody pending, and the
       listener blocks. This thread alone accepts, so POLLIN stays true. */
    struct pollfd pfd = {.fd = a->lfd, .events = POLLIN};
    int fd = -1;
    if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN))
        fd = accept4(a->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0) {
        count(&srv->refused);
        close(fd);
    }
    *a->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void hand_over(struct rp_server *srv, int fd, bool ws,
                      const struct sockaddr_storage *ss, socklen_t len)
{
    const struct rp_server_callbacks *cb = &srv->cfg.cb;
    if (cb->accept_filter &&
        cb->accept_filter((const struct sockaddr *)ss, len, srv->cfg.user)) {
        count(&srv->refused); /* before the peer can see the close */
        close(fd);
        return;
    }
    rp_sid sid;
    struct rp_session *s = rp__table_alloc(&srv->table, &sid);
    if (!s) {
        count(&srv->refused); /* max_sessions */
        close(fd);
        return;
    }
    /* Two accept threads share the round robin: a relaxed counter (only
       the spread depends on it). */
    uint32_t k =
        atomic_fetch_add_explicit(&srv->next_thread, 1, memory_order_relaxed);
    struct net_thread *t = &srv->threads[k % srv->nthreads];
    s->owner = t;
    s->fd = fd;
    s->ws = ws;
    /* TCP over IPv4 or IPv6: the address fits; clamp all the same. */
    if (len > sizeof s->addr)
        len = sizeof s->addr;
    memcpy(&s->addr, ss, len);
    s->addrlen = len;
    s->open_req.kind = NET_REQ_OPEN;
    s->open_req.sid = sid;
    rp__table_publish(s, sid);
    count(&srv->accepts);
    if (ws)
        count(&srv->ws_accepts);
    rp__thread_push_sig(t, &s->open_req);
}

static void accept_loop(struct rp_server *srv, bool ws)
{
    struct acceptor a = acceptor_of(srv, ws);
    int backoff = 0;
    rp_log_set_thread_name(ws ? "rp-accept-ws" : "rp-accept");
    tls_accept_srv = srv;
    while (!atomic_load_explicit(&srv->accept_stop, memory_order_acquire)) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd = accept4(a.lfd, (struct sockaddr *)&ss, &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            backoff = 0;
            hand_over(srv, fd, ws, &ss, len);
            continue;
        }
        int err = errno;
        if (atomic_load_explicit(&srv->accept_stop, memory_order_acquire))
            break;
        if (err == EINTR || err == ECONNABORTED)
            continue;
        count(&srv->accept_errors);
        if (err == EMFILE || err == ENFILE) {
            if (backoff == 0)
                RP_WARN("accept",
                        "out of descriptors (%s): shedding and "
                        "backing off",
                        strerror(err));
            shed_one(srv, &a);
            backoff = backoff ? backoff * 2 : BACKOFF_MIN_MS;
            if (backoff > BACKOFF_MAX_MS)
                backoff = BACKOFF_MAX_MS;
            backoff_sleep(srv, backoff);
            continue;
        }
        if (err == EINVAL)
            break; /* the listener was shut down */
        RP_WARN("accept", "accept4: %s", strerror(err));
        backoff_sleep(srv, BACKOFF_MIN_MS);
    }
}

static void *accept_main(void *arg)
{
    accept_loop(arg, false);
    return NULL;
}

static void *accept_main_ws(void *arg)
{
    accept_loop(arg, true);
    return NULL;
}

int rp__accept_start(struct rp_server *srv)
{
    srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int r = pthread_create(&srv->accept_tid, NULL, accept_main, srv);
    if (r != 0)
        goto fail_tcp;
    if (srv->ws_listen_fd >= 0) {
        srv->ws_spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        r = pthread_create(&srv->ws_accept_tid, NULL, accept_main_ws, srv);
        if (r != 0) {
            if (srv->ws_spare_fd >= 0)
                close(srv->ws_spare_fd);
            srv->ws_spare_fd = -1;
            /* The TCP thread is running: stop it as a stop would. */
            atomic_store_explicit(&srv->accept_stop, 1, memory_order_release);
            shutdown(srv->listen_fd, SHUT_RDWR);
            pthread_join(srv->accept_tid, NULL);
            atomic_store_explicit(&srv->accept_stop, 0, memory_order_release);
            goto fail_tcp;
        }
    }
    return 0;
fail_tcp:
    if (srv->spare_fd >= 0)
        close(srv->spare_fd);
    srv->spare_fd = -1;
    return -r;
}

static void acceptor_stop(int *lfd, pthread_t tid, int *spare_fd)
{
    shutdown(*lfd, SHUT_RDWR);
    pthread_join(tid, NULL);
    close(*lfd);
    *lfd = -1;
    if (*spare_fd >= 0)
        close(*spare_fd);
    *spare_fd = -1;
}

void rp__accept_stop(struct rp_server *srv)
{
    atomic_store_explicit(&srv->accept_stop, 1, memory_order_release);
    acceptor_stop(&srv->listen_fd, srv->accept_tid, &srv->spare_fd);
    if (srv->ws_listen_fd >= 0)
        acceptor_stop(&srv->ws_listen_fd, srv->ws_accept_tid,
                      &srv->ws_spare_fd);
}
