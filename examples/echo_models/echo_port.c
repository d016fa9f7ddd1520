/*
 * echo-port: the echo server of the completion-port model (model 3 of
 * rp_port), the Linux form of CreateIoCompletionPort + a worker pool in
 * GetQueuedCompletionStatus + PostQueuedCompletionStatus to stop it.
 *
 * N worker threads (--threads, default 2) pull completions from one shared
 * port with rp_port_get(). The completion key is the session: a recv
 * completion issues the send of what came in, a send completion re-arms
 * the recv, so each session has exactly one recv or one send in flight
 * (half-duplex echo, as in the lecture). The accept thread registers each
 * new session and submits its first recv itself: any thread may submit to
 * a shared port.
 *
 * Completions of one session may reach two workers at once during a close
 * (the recv's and the cancel's), so a session carries the lineage's "I/O
 * count + release flag": one reference per op in flight plus one while
 * open; whoever drops the last one closes the fd through the port, and the
 * close's completion frees the session.
 *
 * Run and poke it:
 *     ./echo-port --port 7000 --threads 4 &
 *     nc 127.0.0.1 7000          (type a line: it comes back)
 */
#include "echo_common.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct session {
    struct rp_op io;  /* the one recv or send in flight */
    struct rp_op ctl; /* cancel_fd during a stop, then the close */
    atomic_uint refs; /* one while open, one per op in flight */
    atomic_bool open; /* cleared once, by whoever ends the session */
    bool sending;     /* io is a send; only the thread handling io's
                         completion (or submitting it) touches it */
    bool closing;     /* ctl is the close; set before it is submitted */
    int fd;
    struct iovec iov;
    struct session *prev, *next; /* registry, under reg.lock */
    char buf[ECHO_BUF_SIZE];
};

/* Every live session, so a stop can end them all. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t empty;
    struct session *head;
    size_t count;
} reg = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0};

static struct rp_port *port;

static void session_free(struct session *s)
{
    pthread_mutex_lock(&reg.lock);
    if (s->prev)
        s->prev->next = s->next;
    else
        reg.head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    if (--reg.count == 0)
        pthread_cond_broadcast(&reg.empty);
    pthread_mutex_unlock(&reg.lock);
    free(s);
}

/* Drops one reference; the last one closes the fd through the port (no op
   can be in flight on it any more). */
static void session_unref(struct session *s)
{
    if (atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    s->closing = true;
    if (rp_port_close(port, &s->ctl, s->fd) == 0)
        return;
    close(s->fd);
    session_free(s);
}

/* Ends the session once: drops the reference it holds while open. */
static void session_end(struct session *s)
{
    if (atomic_exchange(&s->open, false))
        session_unref(s);
}

/* Submits the next recv or send on 'io'; the io reference carries over. */
static void session_next(struct session *s, int32_t len)
{
    int err;
    if (!atomic_load(&s->open)) {
        session_unref(s);
        return;
    }
    s->sending = len > 0;
    s->iov = (struct iovec){s->buf, len > 0 ? (size_t)len : sizeof s->buf};
    if (s->sending)
        err = rp_port_send(port, &s->io, s->fd, &s->iov, 1);
    else
        err = rp_port_recv(port, &s->io, s->fd, &s->iov, 1);
    if (err < 0) {
        session_end(s);
        session_unref(s);
    }
}

static void on_completion(const struct rp_completion *c)
{
    struct session *s = (struct session *)(uintptr_t)c->key;
    if (c->op == &s->ctl) {
        if (s->closing)
            session_free(s); /* the close: nothing is left in flight */
        else
            session_unref(s); /* the cancel_fd of a stop */
        return;
    }
    /* recv: 0 = the peer closed; < 0: reset, or cancelled by a stop. */
    if (c->res < 0 || (!s->sending && c->res == 0)) {
        session_end(s);
        session_unref(s);
        return;
    }
    session_next(s, s->sending ? 0 : c->res);
}

static void *worker_main(void *arg)
{
    (void)arg;
    struct rp_completion c;
    for (;;) {
        int err = rp_port_get(port, &c, -1);
        if (err < 0) {
            fprintf(stderr, "echo-port: get: %s\n", strerror(-err));
            return NULL;
        }
        if (c.key == 0) /* posted by main: stop */
            return NULL;
        on_completion(&c);
    }
}

/* Accept thread: register the session and submit its first recv. */
static void handoff(int fd, void *user)
{
    (void)user;
    struct session *s = calloc(1, sizeof *s);
    if (!s) {
        close(fd);
        return;
    }
    s->fd = fd;
    rp_op_init(&s->io);
    rp_op_init(&s->ctl);
    s->io.key = s->ctl.key = (uint64_t)(uintptr_t)s;
    atomic_init(&s->refs, 2); /* open + the recv below */
    atomic_init(&s->open, true);
    pthread_mutex_lock(&reg.lock);
    s->next = reg.head;
    if (s->next)
        s->next->prev = s;
    reg.head = s;
    reg.count++;
    pthread_mutex_unlock(&reg.lock);
    session_next(s, 0);
}

/*
 * The documented teardown for every session still open: shutdown(2) so no
 * new op can start, cancel what is pending, and let the workers close each
 * fd once its last op has completed. Waits (bounded) until all are gone.
 */
static int stop_sessions(void)
{
    pthread_mutex_lock(&reg.lock);
    size_t n = 0, cap = reg.count;
    struct session **ending = calloc(cap ? cap : 1, sizeof *ending);
    for (struct session *s = reg.head; s && ending; s = s->next)
        /* Taking 'open' takes over its reference: 's' stays alive. */
        if (atomic_exchange(&s->open, false))
            ending[n++] = s;
    pthread_mutex_unlock(&reg.lock);
    if (!ending)
        return -ENOMEM;

    for (size_t i = 0; i < n; i++) {
        struct session *s = ending[i];
        shutdown(s->fd, SHUT_RDWR);
        atomic_fetch_add(&s->refs, 1); /* the cancel's */
        if (rp_port_cancel_fd(port, &s->ctl, s->fd) < 0)
            session_unref(s);
        session_unref(s); /* the open one taken above */
    }
    free(ending);

    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    int err = 0;
    pthread_mutex_lock(&reg.lock);
    while (reg.count > 0 && err == 0)
        err = pthread_cond_timedwait(&reg.empty, &reg.lock, &deadline);
    pthread_mutex_unlock(&reg.lock);
    return -err;
}

int main(int argc, char **argv)
{
    struct echo_opts o = {.listen = "127.0.0.1", .port = 7000, .threads = 2};
    struct echo_acceptor acc;
    int err;

    echo_parse_args(argc, argv, &o, true);
    if ((err = echo_port_create(&o, 0, &port)) < 0)
        echo_die("port", err);
    pthread_t *workers = calloc((size_t)o.threads, sizeof *workers);
    struct rp_op *quit = calloc((size_t)o.threads, sizeof *quit);
    if (!workers || !quit)
        echo_die("workers", -ENOMEM);
    if ((err = echo_listen(&o, &acc)) < 0)
        echo_die("listen", err);
    echo_block_signals();
    for (int i = 0; i < o.threads; i++)
        if ((err = -pthread_create(&workers[i], NULL, worker_main, NULL)) < 0)
            echo_die("worker thread", err);
    if ((err = echo_accept_start(&acc, handoff, NULL)) < 0)
        echo_die("accept thread", err);

    echo_wait_for_stop();
    echo_accept_stop(&acc);
    int stop_err = stop_sessions();
    if (stop_err < 0)
        fprintf(stderr, "echo-port: sessions did not drain: %s\n",
                strerror(-stop_err));
    /* PostQueuedCompletionStatus(key 0) once per worker: each takes one. */
    for (int i = 0; i < o.threads; i++) {
        rp_op_init(&quit[i]);
        rp_port_post(port, &quit[i], 0);
    }
    for (int i = 0; i < o.threads; i++)
        pthread_join(workers[i], NULL);
    if (stop_err == 0)
        rp_port_destroy(port);
    free(workers);
    free(quit);
    return stop_err < 0 ? 1 : 0;
}
