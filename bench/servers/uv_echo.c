/*
 * bench-uv_echo: the libuv baseline. One uv_loop per thread, each with its
 * own SO_REUSEPORT listener (libuv 1.44 has no UV_TCP_REUSEPORT: the socket
 * is made here and handed over with uv_tcp_open). Reads land in the
 * connection's own buffer (alloc_cb hands it out); the echo first tries
 * uv_try_write (a plain write(), no request), and only a remainder goes
 * through uv_write, with reading stopped until that write completes
 * (backpressure, and the buffer stays valid for the request).
 *
 * --spin-us: libuv has no busy-poll; the loop runs UV_RUN_NOWAIT passes
 * while they keep finding work or until US microseconds pass without any,
 * then one blocking UV_RUN_ONCE.
 *
 *     bench-uv_echo --port 7003 &
 *     nc 127.0.0.1 7003
 */
#include "bench_common.h"

#include <uv.h>

#define PROG "bench-uv_echo"
#define BUF_SIZE 16384

struct conn {
    uv_tcp_t tcp; /* first: the handle's address is the connection's */
    uv_write_t wr;
    uint64_t *work; /* the loop's work counter */
    char buf[BUF_SIZE];
};

struct loop {
    uv_loop_t loop;
    uv_tcp_t server;
    uint64_t work; /* read callbacks run: tells the spin it found work */
    unsigned spin_us;
    pthread_t thread;
};

static void on_closed(uv_handle_t *h)
{
    free(h);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct conn *c = (struct conn *)h;
    (void)hint;
    *buf = uv_buf_init(c->buf, BUF_SIZE);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void on_written(uv_write_t *wr, int status)
{
    struct conn *c = wr->data;
    if (status < 0) {
        uv_close((uv_handle_t *)&c->tcp, on_closed);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = (struct conn *)s;
    (*c->work)++;
    if (n == 0)
        return; /* EAGAIN */
    if (n < 0) {
        uv_close((uv_handle_t *)s, on_closed);
        return;
    }
    uv_buf_t out = uv_buf_init(buf->base, (unsigned)n);
    int w = uv_try_write(s, &out, 1);
    if (w == UV_EAGAIN)
        w = 0;
    if (w < 0) {
        uv_close((uv_handle_t *)s, on_closed);
        return;
    }
    if (w == n)
        return;
    /* The socket is full: the rest by request, no reads meanwhile. */
    out = uv_buf_init(buf->base + w, (unsigned)(n - w));
    uv_read_stop(s);
    c->wr.data = c;
    if (uv_write(&c->wr, s, &out, 1, on_written) < 0)
        uv_close((uv_handle_t *)s, on_closed);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct loop *l = server->data;
    if (status < 0)
        return;
    struct conn *c = malloc(sizeof *c);
    if (!c)
        return;
    uv_tcp_init(&l->loop, &c->tcp);
    c->work = &l->work;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void *loop_run(void *arg)
{
    struct loop *l = arg;
    for (;;) {
        if (l->spin_us) {
            uint64_t last = bs_now_ns();
            while (bs_now_ns() - last < (uint64_t)l->spin_us * 1000u) {
                uint64_t before = l->work;
                uv_run(&l->loop, UV_RUN_NOWAIT);
                if (l->work != before)
                    last = bs_now_ns();
            }
        }
        uv_run(&l->loop, UV_RUN_ONCE);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct bs_opts o;
    static struct loop loops[BS_MAX_THREADS];
    int lfds[BS_MAX_THREADS];
    sigset_t set;

    bs_parse(argc, argv, "raw echo on a libuv loop per thread", &o);
    uint16_t port = bs_listen_all(PROG, o.port, o.threads, 1, lfds);
    bs_block_signals(&set);
    for (unsigned i = 0; i < o.threads; i++) {
        struct loop *l = &loops[i];
        l->spin_us = o.spin_us;
        int r = uv_loop_init(&l->loop);
        if (r == 0)
            r = uv_tcp_init(&l->loop, &l->server);
        if (r == 0)
            r = uv_tcp_open(&l->server, lfds[i]);
        l->server.data = l;
        if (r == 0)
            r = uv_listen((uv_stream_t *)&l->server, 4096, on_connection);
        if (r < 0) {
            fprintf(stderr, PROG ": libuv: %s\n", uv_strerror(r));
            return 1;
        }
        if (pthread_create(&l->thread, NULL, loop_run, l) != 0) {
            fprintf(stderr, PROG ": cannot start a thread\n");
            return 1;
        }
    }
    bs_announce(port);
    bs_wait_and_exit(&set);
}
