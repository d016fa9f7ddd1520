/*
 * Cancelling connections while their multishot receives run out of
 * provided buffers, thousands of times, on an owned port as an I/O thread
 * drives it: the teardown the server does (shutdown, one cancel_fd, wait
 * for every op, close through the port), with the buffer ring kept nearly
 * empty on purpose.
 *
 * The test holds every buffer it is handed and gives back one per round,
 * so the port keeps parking receives on -ENOBUFS and re-arming them when
 * that one buffer comes back. Each round then ends a few connections in
 * the same loop turn as the recycle: their re-armed receives reach the
 * kernel just ahead of the cancel, meet an empty ring, and end with
 * -ENOBUFS after the kernel has already looked for them. A backend that
 * re-armed or parked them then would leave them waiting for a recycle that
 * this test only makes after every cancelled receive is back: the round
 * would never end. The port must complete each with -ECANCELED instead.
 *
 * Asserted for every connection (counters and loop turns, never time):
 *   - its receive's last completion comes in the loop turn of the cancel's
 *     completion or the next one, with no buffer recycled meanwhile;
 *   - every op completes exactly once; every connection ended is released
 *     (its close completes) and the ring gets every buffer back.
 * RP_STRESS_SESSIONS sets how many connections end (default 4,000).
 * Runs on both backends; under TSan on epoll (make tsan).
 */
#include "helpers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <ringport/port.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LIVE 32 /* connections open at any time */
#define NBUF 2  /* the provided-buffer ring: nearly empty */
#define BUFSZ 64
#define MAX_END_PER_ROUND 4
#define WAIT_MS 10000 /* a hang guard, not a measurement */

enum { K_RX, K_CANCEL, K_CLOSE };

struct conn {
    int fd, peer;
    struct rp_op rx, cancel, close;
    bool ending;  /* shutdown and cancel_fd submitted */
    bool rx_done; /* the receive's last completion arrived */
    bool cancel_done;
    bool closing; /* rp_port_close submitted */
    long rx_turn, cancel_turn;
    int rx_final, cancel_final, close_final; /* completions seen */
};

static struct rp_port *port;
static struct rp_buffers *bufs;
static struct conn conns[LIVE];
static int listen_fd;
static struct sockaddr_in listen_addr;
static uint16_t held[NBUF]; /* buffers the test holds, oldest first */
static int nheld;
static long turn;
static long ended, released, cancelled_by_port, enobufs_rounds;
static enum rp_backend_kind backend = RP_BACKEND_AUTO;

static void hold(uint16_t id)
{
    assert_true(nheld < NBUF); /* the port never hands out more */
    held[nheld++] = id;
}

static void recycle_oldest(void)
{
    if (nheld == 0)
        return;
    rp_port_buffer_recycle(bufs, held[0]);
    memmove(held, held + 1, (size_t)(nheld - 1) * sizeof held[0]);
    nheld--;
}

static void conn_open(int i)
{
    struct conn *c = &conns[i];
    memset(c, 0, sizeof *c);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_true(fd >= 0);
    int r = connect(fd, (struct sockaddr *)&listen_addr, sizeof listen_addr);
    assert_true(r == 0 || errno == EINPROGRESS);
    int s = -1;
    for (int tries = 0; s < 0; tries++) {
        s = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (s < 0) {
            assert_true(errno == EAGAIN && tries < 10000);
            usleep(100);
        }
    }
    c->fd = s;    /* the "session" side, driven through the port */
    c->peer = fd; /* the client, writing */
    rp_op_init(&c->rx);
    rp_op_init(&c->cancel);
    rp_op_init(&c->close);
    c->rx.key = (uint64_t)i << 2 | K_RX;
    c->cancel.key = (uint64_t)i << 2 | K_CANCEL;
    c->close.key = (uint64_t)i << 2 | K_CLOSE;
    ssize_t w = write(c->peer, "hello, ring", 11);
    (void)w; /* a fresh socket takes it; if not, the next round writes */
    assert_int_equal(rp_port_recv_multishot(port, &c->rx, c->fd, bufs), 0);
}

static void conn_end(int i)
{
    struct conn *c = &conns[i];
    assert_false(c->ending);
    c->ending = true;
    shutdown(c->fd, SHUT_RDWR);
    assert_int_equal(rp_port_cancel_fd(port, &c->cancel, c->fd), 0);
    ended++;
}

static void on_completion(const struct rp_completion *cp)
{
    int i = (int)(cp->key >> 2);
    struct conn *c = &conns[i];
    switch (cp->key & 3) {
    case K_RX:
        if (cp->flags & RP_COMP_BUFFER)
            hold(rp_comp_buffer_id(cp->flags));
        if (cp->flags & RP_COMP_MORE)
            return;
        /* A receive ends only for a connection being ended: the port
           parks and re-arms on -ENOBUFS, the peer never closes first. */
        if (!c->ending)
            fail_msg("connection %d: receive ended (%d) while open", i,
                     cp->res);
        assert_true(cp->res == -ECANCELED || cp->res == 0);
        cancelled_by_port += cp->res == -ECANCELED;
        c->rx_final++;
        c->rx_done = true;
        c->rx_turn = turn;
        return;
    case K_CANCEL:
        assert_true(c->ending);
        assert_true(cp->res >= 0);
        c->cancel_final++;
        c->cancel_done = true;
        c->cancel_turn = turn;
        return;
    case K_CLOSE:
        assert_true(c->closing);
        assert_int_equal(cp->res, 0);
        c->close_final++;
        assert_int_equal(c->rx_final, 1);
        assert_int_equal(c->cancel_final, 1);
        assert_int_equal(c->close_final, 1);
        close(c->peer);
        released++;
        c->fd = c->peer = -1;
        c->ending = c->closing = false;
        return;
    }
    fail_msg("unknown key %llu", (unsigned long long)cp->key);
}

/* Connections still in their teardown. */
static int tearing_down(void)
{
    int n = 0;
    for (int i = 0; i < LIVE; i++)
        n += conns[i].ending;
    return n;
}

/* Runs loop turns until every ending connection is released, recycling
   nothing: what the cancel did not bring back must come by itself. */
static void settle(void)
{
    struct rp_completion batch[64];
    while (tearing_down() > 0) {
        int n = rp_port_get_many(port, batch, 64, WAIT_MS);
        if (n == -ETIMEDOUT) {
            for (int i = 0; i < LIVE; i++)
                if (conns[i].ending && !conns[i].rx_done)
                    fail_msg("connection %d: its multishot receive outlived "
                             "the cancel (turn %ld, cancel %s)",
                             i, turn,
                             conns[i].cancel_done ? "back" : "pending");
            fail_msg("a teardown is stuck (turn %ld)", turn);
        }
        assert_true(n > 0);
        turn++;
        for (int k = 0; k < n; k++)
            on_completion(&batch[k]);
        for (int i = 0; i < LIVE; i++) {
            struct conn *c = &conns[i];
            if (!c->ending || c->closing || !c->rx_done || !c->cancel_done)
                continue;
            /* Released within one loop turn of the cancel's completion. */
            if (c->rx_turn > c->cancel_turn + 1)
                fail_msg("connection %d: receive back in turn %ld, cancel "
                         "in turn %ld",
                         i, c->rx_turn, c->cancel_turn);
            c->closing = true;
            assert_int_equal(rp_port_close(port, &c->close, c->fd), 0);
        }
    }
}

static void cancel_while_receives_hit_enobufs(void **state)
{
    (void)state;
    long total = 4000;
    const char *env = getenv("RP_STRESS_SESSIONS");
    if (env && atol(env) > 0)
        total = atol(env);

    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_true(listen_fd >= 0);
    listen_addr = (struct sockaddr_in){
        .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(
        bind(listen_fd, (struct sockaddr *)&listen_addr, sizeof listen_addr),
        0);
    assert_int_equal(listen(listen_fd, LIVE * 2), 0);
    socklen_t len = sizeof listen_addr;
    assert_int_equal(
        getsockname(listen_fd, (struct sockaddr *)&listen_addr, &len), 0);

    struct rp_port_config cfg = {.backend = backend, .flags = RP_PORT_OWNED};
    int r = rp_port_create(&cfg, &port);
    if (r == -EPERM || r == -ENOSYS || r == -ENOMEM) {
        printf("io_uring refused (%s): skipping\n", strerror(-r));
        exit(77);
    }
    assert_int_equal(r, 0);
    printf("backend %s, %ld connections to end\n",
           rp_backend_name(rp_port_backend(port)), total);
    assert_int_equal(rp_port_buffers_create(port, NBUF, BUFSZ, &bufs), 0);
    for (int i = 0; i < LIVE; i++)
        conn_open(i);

    uint64_t seed = t_seed();
    while (ended < total) {
        /* Keep data waiting on every connection. */
        for (int i = 0; i < LIVE; i++) {
            ssize_t w = write(conns[i].peer, "0123456789abcdef", 16);
            (void)w; /* a full socket already has data waiting */
        }
        /* One buffer back: the port re-arms every parked receive now... */
        if (nheld == NBUF)
            enobufs_rounds++;
        recycle_oldest();
        /* ...and, in the same turn, a few of them are ended. */
        int k = 1 + (int)(t_rand(&seed) % MAX_END_PER_ROUND);
        for (int j = 0; j < k && ended < total; j++) {
            int i = (int)(t_rand(&seed) % LIVE);
            if (!conns[i].ending)
                conn_end(i);
        }
        settle();
        for (int i = 0; i < LIVE; i++)
            if (conns[i].fd < 0)
                conn_open(i);
    }
    /* End the rest, then give every buffer back. */
    for (int i = 0; i < LIVE; i++)
        conn_end(i);
    settle();
    while (nheld > 0)
        recycle_oldest();

    printf("ended %ld, released %ld, receives ended by the cancel %ld, "
           "rounds that began with the ring empty %ld, loop turns %ld\n",
           ended, released, cancelled_by_port, enobufs_rounds, turn);
    assert_int_equal(released, ended);
    /* The scenario really happened: the ring ran dry again and again. */
    assert_true(enobufs_rounds > total / 8);
    /* Nothing else is pending: a nop is the next and only completion. */
    struct rp_op marker;
    rp_op_init(&marker);
    marker.key = UINT64_MAX;
    assert_int_equal(rp_port_nop(port, &marker), 0);
    struct rp_completion c;
    assert_int_equal(rp_port_get(port, &c, WAIT_MS), 0);
    assert_ptr_equal(c.op, &marker);
    assert_int_equal(rp_port_get(port, &c, 0), -ETIMEDOUT);
    rp_port_destroy(port);
    close(listen_fd);
}

int main(int argc, char **argv)
{
    int k = rp_backend_parse(t_backend(argc, argv));
    backend = k < 0 ? RP_BACKEND_AUTO : (enum rp_backend_kind)k;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cancel_while_receives_hit_enobufs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
