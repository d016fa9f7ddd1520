/*
 * echo-event: the echo server of the lecture's event model (model 1 of
 * rp_port), the Linux form of WSARecv + WSACreateEvent +
 * WSAWaitForMultipleEvents + WSAResetEvent + WSAGetOverlappedResult.
 *
 * The accept thread hands each socket to one worker thread. The worker
 * keeps exactly one op in flight per client - a recv, or the send echoing
 * what that recv got (half-duplex echo, as in the lecture) - each op
 * carrying the client's own rp_event. It waits on all events at once with
 * rp_event_wait_any() (poll(2) underneath: no 64-event limit), resets each
 * set event, reads the op's result with rp_op_result() and issues the next
 * op. Event 0 is the lecture's "dummy event": the accept thread sets it to
 * make the worker look at its list of new sockets. The port is shared: its
 * dispatcher thread reaps the backend and sets the events.
 *
 * Run and poke it:
 *     ./echo-event --port 7000 &
 *     nc 127.0.0.1 7000          (type a line: it comes back)
 */
#include "echo_common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum session_state {
    S_RECV,    /* 'op' is a recv */
    S_SEND,    /* 'op' is a send of buf[0..len) */
    S_CLOSING, /* 'op' is the close of fd; on completion the session goes */
};

struct session {
    struct rp_op op;     /* the one op in flight; its event is 'ev' */
    struct rp_event *ev; /* set by the port when 'op' completes */
    int fd;
    enum session_state state;
    struct iovec iov;
    char buf[ECHO_BUF_SIZE];
};

/*
 * The worker's state. sessions[i] waits on events[i + 1]; events[0] is the
 * wake event. Both arrays are the worker's alone; only 'pending' (sockets
 * from the accept thread) and 'stop' are shared, under 'lock'.
 */
struct worker {
    struct rp_port *port;
    pthread_t thread;
    struct session **sessions;
    struct rp_event **events;
    size_t n, cap; /* sessions in use / allocated */

    struct rp_event *wake;
    pthread_mutex_t lock;
    int *pending;
    size_t npending, cappending;
    bool stop;
};

static int session_recv(struct worker *w, struct session *s)
{
    s->state = S_RECV;
    s->iov = (struct iovec){s->buf, sizeof s->buf};
    return rp_port_recv(w->port, &s->op, s->fd, &s->iov, 1);
}

static int session_send(struct worker *w, struct session *s, uint32_t len)
{
    s->state = S_SEND;
    s->iov = (struct iovec){s->buf, len};
    return rp_port_send(w->port, &s->op, s->fd, &s->iov, 1);
}

static void session_free(struct session *s)
{
    rp_event_destroy(s->ev);
    free(s);
}

/* Submits the close; false if the session is already gone (the close
   could not be submitted: the fd is closed directly, no op was pending). */
static bool session_close(struct worker *w, struct session *s)
{
    s->state = S_CLOSING;
    if (rp_port_close(w->port, &s->op, s->fd) == 0)
        return true;
    close(s->fd);
    session_free(s);
    return false;
}

/*
 * 'op' completed with 'res' (rp_op_result: 0 or -errno) and 'bytes'.
 * Issues the next op. Returns false when the session is gone.
 */
static bool session_on_complete(struct worker *w, struct session *s, int res,
                                uint32_t bytes)
{
    switch (s->state) {
    case S_RECV:
        /* 0 bytes: the peer closed; < 0: reset or cancelled. */
        if (res < 0 || bytes == 0 || session_send(w, s, bytes) < 0)
            return session_close(w, s);
        return true;
    case S_SEND:
        if (res < 0 || session_recv(w, s) < 0)
            return session_close(w, s);
        return true;
    case S_CLOSING: session_free(s); return false;
    }
    return false;
}

static int worker_grow(struct worker *w)
{
    size_t cap = w->cap ? w->cap * 2 : 64;
    struct session **ss = realloc(w->sessions, cap * sizeof *ss);
    if (!ss)
        return -ENOMEM;
    w->sessions = ss;
    struct rp_event **es = realloc(w->events, (cap + 1) * sizeof *es);
    if (!es)
        return -ENOMEM;
    w->events = es;
    w->cap = cap;
    return 0;
}

/* Arms the first recv of a socket from the accept thread. */
static void worker_adopt(struct worker *w, int fd)
{
    struct session *s = calloc(1, sizeof *s);
    if (!s || (w->n == w->cap && worker_grow(w) < 0))
        goto fail_alloc;
    if (rp_event_create(&s->ev) < 0)
        goto fail_alloc;
    s->fd = fd;
    rp_op_init(&s->op);
    s->op.event = s->ev;
    if (session_recv(w, s) < 0)
        goto fail_recv;
    w->sessions[w->n] = s;
    w->events[w->n + 1] = s->ev;
    w->n++;
    return;

fail_recv:
    rp_event_destroy(s->ev);
fail_alloc:
    free(s);
    close(fd);
}

/* Takes the sockets the accept thread queued; returns the stop flag. */
static bool worker_take_pending(struct worker *w)
{
    rp_event_reset(w->wake);
    pthread_mutex_lock(&w->lock);
    int *fds = w->pending;
    size_t n = w->npending;
    bool stop = w->stop;
    w->pending = NULL;
    w->npending = w->cappending = 0;
    pthread_mutex_unlock(&w->lock);
    for (size_t i = 0; i < n; i++) {
        if (stop)
            close(fds[i]);
        else
            worker_adopt(w, fds[i]);
    }
    free(fds);
    return stop;
}

static void worker_remove(struct worker *w, size_t i)
{
    w->n--;
    w->sessions[i] = w->sessions[w->n];
    w->events[i + 1] = w->events[w->n + 1];
}

/*
 * Waits for 'op' to complete the lecture's way: wait for its event, reset
 * it, read the result. Waiting for the event, not only for the result,
 * matters: the port stores the result before it sets the event, and an
 * event must not be reset, reused or freed before the port has set it.
 */
static int op_wait(struct rp_op *op, struct rp_event *ev)
{
    rp_event_wait_any(&ev, 1, -1);
    rp_event_reset(ev);
    return rp_op_result(op, NULL, false);
}

/*
 * The documented teardown, one session at a time: shutdown(2) so nothing
 * new can start, cancel what is pending, wait until the op completed, then
 * close through the port and wait for that too. The cancel op has an event
 * of its own: an event set by one op must never be taken for another's.
 */
static void worker_teardown(struct worker *w)
{
    struct rp_event *cancel_ev = NULL;
    struct rp_op cancel;
    rp_event_create(&cancel_ev);
    for (size_t i = 0; i < w->n; i++) {
        struct session *s = w->sessions[i];
        if (s->state != S_CLOSING) {
            shutdown(s->fd, SHUT_RDWR);
            rp_op_init(&cancel);
            cancel.event = cancel_ev;
            if (cancel_ev && rp_port_cancel_fd(w->port, &cancel, s->fd) == 0)
                op_wait(&cancel, cancel_ev);
            op_wait(&s->op, s->ev);
            if (!session_close(w, s))
                continue; /* closed directly and freed */
        }
        op_wait(&s->op, s->ev);
        session_free(s);
    }
    w->n = 0;
    if (cancel_ev)
        rp_event_destroy(cancel_ev);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (;;) {
        int first = rp_event_wait_any(w->events, w->n + 1, -1);
        if (first < 0) {
            fprintf(stderr, "echo-event: wait: %s\n", strerror(-first));
            break;
        }
        if (first == 0 && worker_take_pending(w))
            break;
        /* WSAWaitForMultipleEvents reports the lowest set event; look at
           every later session as well so low indexes cannot starve the
           rest. rp_op_result(!wait) is a load, no system call, so the scan
           asks it first and touches only the events of completed ops. */
        for (size_t i = first > 0 ? (size_t)first - 1 : 0; i < w->n;) {
            struct session *s = w->sessions[i];
            uint32_t bytes = 0;
            int res = rp_op_result(&s->op, &bytes, false);
            if (res == -EINPROGRESS) {
                i++;
                continue;
            }
            /* Completed: its event is set now or an instant later. */
            rp_event_wait_any(&s->ev, 1, -1);
            rp_event_reset(s->ev);
            if (session_on_complete(w, s, res, bytes))
                i++;
            else
                worker_remove(w, i);
        }
    }
    worker_teardown(w);
    return NULL;
}

/* Accept thread: queue the socket and set the worker's dummy event. */
static void handoff(int fd, void *user)
{
    struct worker *w = user;
    pthread_mutex_lock(&w->lock);
    if (w->npending == w->cappending) {
        size_t cap = w->cappending ? w->cappending * 2 : 16;
        int *p = realloc(w->pending, cap * sizeof *p);
        if (!p) {
            pthread_mutex_unlock(&w->lock);
            close(fd);
            return;
        }
        w->pending = p;
        w->cappending = cap;
    }
    w->pending[w->npending++] = fd;
    pthread_mutex_unlock(&w->lock);
    rp_event_set(w->wake);
}

int main(int argc, char **argv)
{
    struct echo_opts o = {.listen = "127.0.0.1", .port = 7000, .threads = 1};
    struct echo_acceptor acc;
    struct worker w = {.lock = PTHREAD_MUTEX_INITIALIZER};
    int err;

    echo_parse_args(argc, argv, &o, false);
    if ((err = echo_port_create(&o, 0, &w.port)) < 0)
        echo_die("port", err);
    if ((err = rp_event_create(&w.wake)) < 0 || (err = worker_grow(&w)) < 0)
        echo_die("worker", err);
    w.events[0] = w.wake;
    if ((err = echo_listen(&o, &acc)) < 0)
        echo_die("listen", err);
    echo_block_signals();
    if ((err = -pthread_create(&w.thread, NULL, worker_main, &w)) < 0)
        echo_die("worker thread", err);
    if ((err = echo_accept_start(&acc, handoff, &w)) < 0)
        echo_die("accept thread", err);

    echo_wait_for_stop();
    echo_accept_stop(&acc);
    pthread_mutex_lock(&w.lock);
    w.stop = true;
    pthread_mutex_unlock(&w.lock);
    rp_event_set(w.wake);
    pthread_join(w.thread, NULL);

    free(w.pending);
    free(w.sessions);
    free(w.events);
    rp_event_destroy(w.wake);
    rp_port_destroy(w.port);
    return 0;
}
