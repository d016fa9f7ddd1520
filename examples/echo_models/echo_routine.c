/*
 * echo-routine: the echo server of the lecture's callback model (model 2 of
 * rp_port), the Linux form of WSARecv with a completion routine, queued as
 * an APC and run while the thread sleeps alertably in SleepEx(TRUE).
 *
 * One I/O thread owns every session. It submits each op with a completion
 * routine and sits in rp_port_alertable_wait(); the routine of a recv
 * issues the send of what came in, the routine of the send re-arms the
 * recv: exactly one op in flight per session (half-duplex echo, as in the
 * lecture). Routines run only on the thread that submitted the op, so the
 * I/O thread owns its port outright (RP_PORT_OWNED: it submits and reaps,
 * no dispatcher thread, no lock).
 *
 * Handing sockets from the accept thread to a thread that only ever sleeps
 * in the alertable wait: a routine the accept thread submitted (or posted)
 * would run on the accept thread, which never waits alertably; polling a
 * queue with a short wait timeout adds latency and wake-ups. Instead the
 * I/O thread keeps one more recv in flight, with a routine, on one end of
 * a SOCK_SEQPACKET socketpair (its "inbox"); the accept thread writes each
 * fd number to the other end as one record. The kernel is the queue, and a
 * new socket wakes the I/O thread like any other completion. Closing the
 * write end (after the accept thread has stopped) is the stop signal: the
 * inbox recv completes with 0.
 *
 * Run and poke it:
 *     ./echo-routine --port 7000 &
 *     nc 127.0.0.1 7000          (type a line: it comes back)
 */
#include "echo_common.h"

#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define container_of(p, type, member)                                          \
    ((type *)((char *)(p)-offsetof(type, member)))

struct session {
    struct rp_op op;  /* the one recv or send in flight, then the close */
    struct rp_op ctl; /* teardown: cancel_fd */
    int fd;
    int inflight; /* ops submitted and not yet completed */
    bool closing; /* no new recv/send; close at inflight == 0 */
    struct iovec iov;
    struct session *prev, *next; /* io.sessions */
    char buf[ECHO_BUF_SIZE];
};

/* Everything below is the I/O thread's alone, but 'inbox_w', written by
   the accept thread and closed by main. */
struct io {
    struct rp_port *port;
    int inbox_r, inbox_w; /* socketpair: accept thread -> I/O thread */
    struct rp_op inbox_op;
    struct iovec inbox_iov;
    int inbox_fd; /* the record being received */
    bool inbox_armed;
    struct session *sessions; /* every live session, for the teardown */
    sem_t started;
    int start_err;
};

static struct io io;

static void on_recv(struct rp_op *op, int32_t res, uint32_t flags);
static void on_send(struct rp_op *op, int32_t res, uint32_t flags);

static void session_free(struct session *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        io.sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    free(s);
}

static void on_closed(struct rp_op *op, int32_t res, uint32_t flags)
{
    (void)res;
    (void)flags;
    session_free(container_of(op, struct session, op));
}

/* Closes through the port once nothing else is in flight on the fd. */
static void session_close_when_idle(struct session *s)
{
    s->closing = true;
    if (s->inflight > 0)
        return;
    s->op.routine = on_closed;
    if (rp_port_close(io.port, &s->op, s->fd) == 0) {
        s->inflight++;
        return;
    }
    close(s->fd);
    session_free(s);
}

static void session_recv(struct session *s)
{
    s->iov = (struct iovec){s->buf, sizeof s->buf};
    s->op.routine = on_recv;
    if (s->closing || rp_port_recv(io.port, &s->op, s->fd, &s->iov, 1) < 0)
        session_close_when_idle(s);
    else
        s->inflight++;
}

static void on_recv(struct rp_op *op, int32_t res, uint32_t flags)
{
    (void)flags;
    struct session *s = container_of(op, struct session, op);
    s->inflight--;
    /* 0: the peer closed; < 0: reset, or cancelled by the teardown. */
    if (res <= 0 || s->closing) {
        session_close_when_idle(s);
        return;
    }
    s->iov = (struct iovec){s->buf, (size_t)res};
    s->op.routine = on_send;
    if (rp_port_send(io.port, &s->op, s->fd, &s->iov, 1) < 0)
        session_close_when_idle(s);
    else
        s->inflight++;
}

static void on_send(struct rp_op *op, int32_t res, uint32_t flags)
{
    (void)flags;
    struct session *s = container_of(op, struct session, op);
    s->inflight--;
    if (res < 0)
        session_close_when_idle(s);
    else
        session_recv(s);
}

static void on_cancelled(struct rp_op *op, int32_t res, uint32_t flags)
{
    (void)res;
    (void)flags;
    struct session *s = container_of(op, struct session, ctl);
    s->inflight--;
    session_close_when_idle(s);
}

static void session_adopt(int fd)
{
    struct session *s = calloc(1, sizeof *s);
    if (!s) {
        close(fd);
        return;
    }
    s->fd = fd;
    rp_op_init(&s->op);
    rp_op_init(&s->ctl);
    s->next = io.sessions;
    if (s->next)
        s->next->prev = s;
    io.sessions = s;
    session_recv(s);
}

/* The documented teardown: shutdown(2), cancel everything on the fd, and
   close once every op has completed (session_close_when_idle). */
static void io_teardown(void)
{
    for (struct session *s = io.sessions, *next; s; s = next) {
        next = s->next;
        if (s->closing)
            continue; /* its close is already on its way */
        s->closing = true;
        shutdown(s->fd, SHUT_RDWR);
        s->ctl.routine = on_cancelled;
        if (rp_port_cancel_fd(io.port, &s->ctl, s->fd) == 0)
            s->inflight++;
        else
            session_close_when_idle(s);
    }
}

static void on_inbox(struct rp_op *op, int32_t res, uint32_t flags);

/* Arms the inbox recv; on failure the server stops taking sockets. */
static void inbox_arm(void)
{
    io.inbox_iov = (struct iovec){&io.inbox_fd, sizeof io.inbox_fd};
    io.inbox_op.routine = on_inbox;
    io.inbox_armed =
        rp_port_recv(io.port, &io.inbox_op, io.inbox_r, &io.inbox_iov, 1) == 0;
    if (!io.inbox_armed) {
        fprintf(stderr, "echo-routine: inbox recv failed; stopping\n");
        io_teardown();
    }
}

static void on_inbox(struct rp_op *op, int32_t res, uint32_t flags)
{
    (void)op;
    (void)flags;
    io.inbox_armed = false;
    if (res <= 0) { /* main closed the write end: stop */
        io_teardown();
        return;
    }
    if (res == (int32_t)sizeof io.inbox_fd)
        session_adopt(io.inbox_fd);
    inbox_arm();
}

static void *io_main(void *arg)
{
    const struct echo_opts *o = arg;
    /* An owned port belongs to the thread that creates it. */
    io.start_err = echo_port_create(o, RP_PORT_OWNED, &io.port);
    if (io.start_err == 0) {
        rp_op_init(&io.inbox_op);
        inbox_arm();
        if (!io.inbox_armed) {
            rp_port_destroy(io.port);
            io.start_err = -EIO;
        }
    }
    sem_post(&io.started);
    if (io.start_err < 0)
        return NULL;

    while (io.inbox_armed || io.sessions)
        rp_port_alertable_wait(-1);
    rp_port_destroy(io.port);
    return NULL;
}

/* Accept thread: one record per socket. The I/O thread closes it if it is
   already stopping (it never is: main stops this thread first). */
static void handoff(int fd, void *user)
{
    (void)user;
    if (send(io.inbox_w, &fd, sizeof fd, MSG_NOSIGNAL) != sizeof fd)
        close(fd);
}

int main(int argc, char **argv)
{
    struct echo_opts o = {.listen = "127.0.0.1", .port = 7000, .threads = 1};
    struct echo_acceptor acc;
    pthread_t io_thread;
    int err, pair[2];

    echo_parse_args(argc, argv, &o, false);
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
        echo_die("socketpair", -errno);
    io.inbox_r = pair[0];
    io.inbox_w = pair[1];
    /* The port wants non-blocking sockets; the accept thread's end may
       block (back-pressure from a busy I/O thread). */
    fcntl(io.inbox_r, F_SETFL, fcntl(io.inbox_r, F_GETFL) | O_NONBLOCK);
    sem_init(&io.started, 0, 0);
    echo_block_signals();
    if ((err = -pthread_create(&io_thread, NULL, io_main, &o)) < 0)
        echo_die("I/O thread", err);
    while (sem_wait(&io.started) < 0)
        ;
    if (io.start_err < 0) {
        pthread_join(io_thread, NULL);
        echo_die("port", io.start_err);
    }
    if ((err = echo_listen(&o, &acc)) < 0)
        echo_die("listen", err);
    if ((err = echo_accept_start(&acc, handoff, NULL)) < 0)
        echo_die("accept thread", err);

    echo_wait_for_stop();
    echo_accept_stop(&acc);
    close(io.inbox_w); /* the inbox recv completes with 0: stop */
    pthread_join(io_thread, NULL);
    close(io.inbox_r);
    sem_destroy(&io.started);
    return 0;
}
