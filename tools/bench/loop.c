/*
 * One worker: its connections and one level-triggered epoll loop.
 *
 * Phases: SETUP (connect; in room mode also JOIN and a probe, message 0,
 * that must come back through the room), READY (wait for every worker and
 * for main to set the start time), RUN (warmup, then the measured window),
 * DRAIN (no new messages; every one in flight must come back, bounded), in
 * room mode then FINAL (every member's last message must have reached every
 * receiver). The loop keeps reading in every phase, so a worker that waits
 * on the others never lets the server's queues towards it grow.
 *
 * Hot path: the clock is read once per loop turn (after epoll_wait); every
 * received chunk (up to RBUF_SIZE) is checked in place against the
 * deterministic message contents (msg.c), no allocation; messages are
 * built into the connection's out buffer and written with one send() per
 * connection per turn, however many the window (--depth) or the schedule
 * (--rate) allows.
 *
 * --transport ws (RFC 6455, with libringport-client's codec, ws_codec.h):
 * after TCP connects, the upgrade request goes out and the 101 is checked
 * (UPGRADING); then every frame is written in its own binary message, its
 * header and a fresh mask key in front and the frame masked in place in
 * the out buffer, so WebSocket adds no copy and no allocation per message.
 * The server's frame headers are stripped from each received chunk as it
 * is checked (the payload is verified in place, as over TCP); a ping is
 * answered with a pong, a close or a frame against the RFC fails the
 * connection. Mask keys come from a per-worker xorshift seeded by
 * getrandom: a load tester need not make them unpredictable, only fresh
 * for every frame as a browser's are.
 */
#include "bench.h"
#include "ws_codec.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define RBUF_SIZE (64u * 1024u)
#define RATE_BATCH 64u /* messages per fill in --rate mode */
#define DRAIN_NS (5ull * 1000000000ull)
#define EVENTS 256
#define ERROR_LINES 10 /* per worker: the rest are only counted */

struct run_state g_run;

enum conn_state { C_CONNECTING, C_UPGRADING, C_OPEN, C_DEAD };
#define WS_REQUEST_MAX 512 /* the upgrade request, in 'out' */
#define WS_PONG_MAX (RP_CWS_MAX_HEADER + RP_CWS_MAX_CONTROL)
enum phase { P_SETUP, P_READY, P_RUN, P_DRAIN, P_ACKED, P_FINAL, P_DONE };

/*
 * Echo: messages [recv_seq, send_seq) are in flight; 'exp' describes
 * message recv_seq and exp_off bytes of it have been checked. Invariant:
 * bytes_read <= bytes_written (more would be bytes never sent).
 * Room: recv_seq is the next own message to come back through the room
 * (the acknowledgement); expect[m] the next sequence from member m.
 */
struct conn {
    int fd;
    uint32_t id;
    enum conn_state state;
    uint32_t events; /* armed in epoll */
    uint32_t send_seq, recv_seq;
    uint64_t bytes_written, bytes_read;
    uint8_t *out; /* out_cap bytes; [out_off, out_len) not yet written */
    uint32_t out_off, out_len, out_cap;
    struct msg_layout exp;
    uint32_t exp_off;
    bool exp_valid;
    uint64_t *sent_ns; /* closed loop: [depth], by seq % depth */
    uint64_t start_ns; /* --rate: when message 'first data seq' is due */
    /* room */
    uint32_t base, members, self; /* self = id - base */
    uint32_t *expect;             /* [members] */
    uint8_t *part;                /* a frame cut by the end of a chunk */
    uint32_t part_len;
    /* --transport ws: 'hs' gathers the server's 101 (UPGRADING only);
       then a server frame header cut by a chunk's end waits in 'wsh', and
       rx_left bytes of the current frame's payload are to come (a control
       frame's gather in 'ctl'). */
    char key[RP_CWS_KEY_LEN + 1];
    char *hs;
    uint32_t hs_len;
    uint8_t wsh[RP_CWS_MAX_HEADER];
    uint8_t wsh_len;
    uint64_t rx_left;
    bool rx_ctl;
    uint8_t ctl_op;
    uint8_t ctl[RP_CWS_MAX_CONTROL];
    uint8_t ctl_len;
};

struct loop {
    struct worker *w;
    const struct bench_opts *o;
    enum phase phase;
    uint64_t now, warm_end, end, deadline;
    uint64_t period_ns; /* --rate */
    uint32_t error_lines;
    bool framed; /* frame headers on the wire (framed and room) */
    bool room;
    bool ws;           /* --transport ws */
    uint64_t mask_rng; /* xorshift64 for mask keys and the upgrade key */
};

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Single-writer counters: a relaxed load and store, no locked add. */
static void count(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static uint32_t u32_at(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* ---- errors ------------------------------------------------------------- */

__attribute__((format(printf, 4, 5))) static void
conn_fail(struct loop *l, struct conn *c, _Atomic uint64_t *counter,
          const char *fmt, ...)
{
    if (c->state == C_DEAD)
        return;
    count(counter, 1);
    if (l->error_lines++ < ERROR_LINES) {
        va_list ap;
        fprintf(stderr, BENCH_PROG ": connection %u: ", c->id);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
    if (c->state == C_OPEN)
        atomic_fetch_sub_explicit(&l->w->st.open, 1, memory_order_relaxed);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = C_DEAD;
    free(c->hs);
    c->hs = NULL;
    atomic_store(&g_run.failed, true);
}

/* ---- sending ------------------------------------------------------------ */

static void conn_watch(struct loop *l, struct conn *c, uint32_t events)
{
    if (c->events == events || c->state == C_DEAD)
        return;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    c->events = events;
    if (epoll_ctl(l->w->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        conn_fail(l, c, &l->w->st.err_closed, "epoll_ctl: %s", strerror(errno));
}

static void conn_flush(struct loop *l, struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (uint32_t)n;
            if (!l->ws) /* ws counts frame bytes as they are queued */
                c->bytes_written += (uint64_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            conn_watch(l, c, EPOLLIN | EPOLLOUT);
            return;
        }
        conn_fail(l, c, &l->w->st.err_closed, "send: %s",
                  n < 0 ? strerror(errno) : "wrote nothing");
        return;
    }
    c->out_off = c->out_len = 0;
    conn_watch(l, c, EPOLLIN);
}

/* The first sequence of the measured traffic (room: 0 is the probe). */
static uint32_t first_seq(const struct loop *l)
{
    return l->room ? 1 : 0;
}

/* When message 'seq' is due in --rate mode. */
static uint64_t rate_due(const struct loop *l, const struct conn *c,
                         uint32_t seq)
{
    return c->start_ns + (uint64_t)(seq - first_seq(l)) * l->period_ns;
}

static uint64_t mask_random(struct loop *l)
{
    uint64_t x = l->mask_rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    l->mask_rng = x;
    return x;
}

/* Where the next frame of 'len' wire bytes goes in 'out': with ws, after
   the header of its own binary message, written here. */
static uint8_t *frame_begin(struct loop *l, struct conn *c, uint32_t len,
                            uint8_t key[4])
{
    if (l->ws) {
        uint64_t r = mask_random(l);
        memcpy(key, &r, 4);
        c->out_len += (uint32_t)rp__cws_header(c->out + c->out_len,
                                               RP_CWS_OP_BINARY, len, key);
    }
    return c->out + c->out_len;
}

/* The frame of 'len' bytes at 'f' is written: masked in place with ws. */
static void frame_end(struct loop *l, struct conn *c, uint8_t *f, uint32_t len,
                      const uint8_t key[4])
{
    if (l->ws) {
        rp__cws_mask(f, f, len, key);
        c->bytes_written += len;
    }
    c->out_len += len;
}

static void conn_add(struct loop *l, struct conn *c)
{
    struct msg_layout m;
    uint8_t key[4];
    msg_layout(&m, c->id, c->send_seq, l->framed);
    if (!l->o->rate_hz)
        c->sent_ns[c->send_seq % l->o->depth] = l->now;
    uint32_t len = m.head_len + m.fill_len;
    uint8_t *f = frame_begin(l, c, len, key);
    frame_end(l, c, f, msg_write(&m, f), key);
    c->send_seq++;
    count(&l->w->st.sent, 1);
}

/* Builds as many messages as the window or the schedule allows into the
   empty out buffer, then writes them with one send. */
static void conn_pump(struct loop *l, struct conn *c)
{
    if (c->state == C_UPGRADING)
        conn_flush(l, c); /* the rest of the upgrade request */
    if (c->state != C_OPEN)
        return;
    if (c->out_off == c->out_len && l->phase == P_RUN && l->now < l->end) {
        uint32_t room = c->out_cap / (FRAME_HEADER + l->o->size_max +
                                      (l->ws ? RP_CWS_MAX_HEADER : 0));
        uint32_t k;
        c->out_off = c->out_len = 0;
        if (l->o->rate_hz) {
            k = 0;
            while (k < room && rate_due(l, c, c->send_seq + k) <= l->now)
                k++;
        } else {
            k = l->o->depth - (c->send_seq - c->recv_seq);
        }
        while (k-- > 0)
            conn_add(l, c);
    }
    conn_flush(l, c);
}

/* ---- receiving: echo ------------------------------------------------------
 */

static bool in_window(const struct loop *l)
{
    return l->phase == P_RUN && l->now >= l->warm_end && l->now < l->end;
}

/* Message 'seq' of 'c' came back (echo) or through the room (own). */
static void conn_latency(struct loop *l, struct conn *c, uint32_t seq)
{
    uint64_t start =
        l->o->rate_hz ? rate_due(l, c, seq) : c->sent_ns[seq % l->o->depth];
    if (in_window(l))
        hist_record(&l->w->hist, l->now > start ? l->now - start : 0);
}

/* Finds the first differing byte of a failed memcmp for the error line. */
static uint32_t first_diff(const uint8_t *a, const uint8_t *b, uint32_t n)
{
    uint32_t i = 0;
    while (i < n && a[i] == b[i])
        i++;
    return i;
}

static void echo_check(struct loop *l, struct conn *c, const uint8_t *p,
                       uint32_t n)
{
    c->bytes_read += n;
    if (c->bytes_read > c->bytes_written) {
        conn_fail(l, c, &l->w->st.err_verify,
                  "%" PRIu64 " bytes echoed that were never sent",
                  c->bytes_read - c->bytes_written);
        return;
    }
    while (n > 0) {
        struct msg_layout *m = &c->exp;
        if (!c->exp_valid) {
            msg_layout(m, c->id, c->recv_seq, l->framed);
            c->exp_off = 0;
            c->exp_valid = true;
        }
        uint32_t total = m->head_len + m->fill_len;
        uint32_t take = n < total - c->exp_off ? n : total - c->exp_off;
        uint32_t off = c->exp_off, done = 0;
        if (off < m->head_len) {
            uint32_t k = m->head_len - off < take ? m->head_len - off : take;
            if (memcmp(p, m->head + off, k) != 0) {
                uint32_t at = first_diff(p, m->head + off, k);
                conn_fail(l, c, &l->w->st.err_verify,
                          "message %u byte %u: got 0x%02x, want 0x%02x",
                          c->recv_seq, off + at, p[at], m->head[off + at]);
                return;
            }
            done = k;
        }
        if (done < take) {
            const uint8_t *want = m->fill + (off + done - m->head_len);
            if (memcmp(p + done, want, take - done) != 0) {
                uint32_t at = first_diff(p + done, want, take - done);
                conn_fail(l, c, &l->w->st.err_verify,
                          "message %u byte %u: got 0x%02x, want 0x%02x",
                          c->recv_seq, off + done + at, p[done + at], want[at]);
                return;
            }
        }
        c->exp_off += take;
        p += take;
        n -= take;
        if (c->exp_off == total) {
            conn_latency(l, c, c->recv_seq);
            count(&l->w->st.delivered, 1);
            if (in_window(l)) {
                count(&l->w->st.msgs, 1);
                count(&l->w->st.bytes, m->size);
            }
            c->recv_seq++;
            c->exp_valid = false;
        }
    }
}

/* ---- receiving: room ------------------------------------------------------
 */

/* One whole frame 'f' of 'len' bytes from the room. */
static void room_frame(struct loop *l, struct conn *c, const uint8_t *f,
                       uint32_t len)
{
    struct worker *w = l->w;
    uint32_t type = (uint32_t)f[2] | (uint32_t)f[3] << 8;
    if (type != MSG_TYPE_DATA || len < FRAME_HEADER + 8) {
        conn_fail(l, c, &w->st.err_verify,
                  "unexpected frame: type %u, %u payload bytes", type,
                  len - FRAME_HEADER);
        return;
    }
    uint32_t sender = u32_at(f + FRAME_HEADER);
    uint32_t seq = u32_at(f + FRAME_HEADER + 4);
    if (sender < c->base || sender - c->base >= c->members) {
        conn_fail(l, c, &w->st.err_verify,
                  "message from connection %u, not in its room (%u..%u)",
                  sender, c->base, c->base + c->members - 1);
        return;
    }
    uint32_t m = sender - c->base;
    /* Another member's probe may or may not reach us (it may have been
       broadcast before our JOIN); everything after it must. */
    bool probe = seq == 0 && c->expect[m] == 1 && m != c->self;
    if (seq != c->expect[m] && !probe) {
        conn_fail(l, c, &w->st.err_verify,
                  "from connection %u: message %u, want %u (lost, duplicated "
                  "or reordered)",
                  sender, seq, c->expect[m]);
        return;
    }
    struct msg_layout x;
    msg_layout(&x, sender, seq, true);
    if (len != x.head_len + x.fill_len || memcmp(f, x.head, x.head_len) ||
        memcmp(f + x.head_len, x.fill, x.fill_len)) {
        conn_fail(l, c, &w->st.err_verify,
                  "from connection %u: message %u corrupted", sender, seq);
        return;
    }
    if (probe)
        return;
    c->expect[m]++;
    if (seq >= 1) {
        count(&w->st.delivered, 1);
        if (in_window(l)) {
            count(&w->st.msgs, 1);
            count(&w->st.bytes, x.size);
        }
    }
    if (m == c->self) {
        if (seq >= 1)
            conn_latency(l, c, seq);
        c->recv_seq++;
    }
}

static void room_check(struct loop *l, struct conn *c, const uint8_t *p,
                       uint32_t n)
{
    uint32_t max = FRAME_HEADER + l->o->size_max;
    while (n > 0 && c->state != C_DEAD) {
        if (c->part_len == 0 && n >= FRAME_HEADER) {
            uint32_t len = FRAME_HEADER + ((uint32_t)p[0] | p[1] << 8);
            if (len <= n) { /* whole frame in the chunk: check in place */
                room_frame(l, c, p, len);
                p += len;
                n -= len;
                continue;
            }
        }
        /* Cut by the chunk's end: gather it in the connection's buffer. */
        uint32_t want = FRAME_HEADER;
        if (c->part_len >= FRAME_HEADER)
            want += (uint32_t)c->part[0] | (uint32_t)c->part[1] << 8;
        else if (c->part_len + n >= FRAME_HEADER) {
            uint8_t h[FRAME_HEADER];
            memcpy(h, c->part, c->part_len);
            memcpy(h + c->part_len, p, FRAME_HEADER - c->part_len);
            want += (uint32_t)h[0] | (uint32_t)h[1] << 8;
        }
        if (want > max) {
            conn_fail(l, c, &l->w->st.err_verify,
                      "frame of %u bytes, larger than any sent", want);
            return;
        }
        uint32_t take = want - c->part_len < n ? want - c->part_len : n;
        memcpy(c->part + c->part_len, p, take);
        c->part_len += take;
        p += take;
        n -= take;
        if (c->part_len >= FRAME_HEADER && c->part_len == want) {
            c->part_len = 0;
            room_frame(l, c, c->part, want);
        }
    }
}

/* ---- receiving: WebSocket ------------------------------------------------
 */

static void payload_check(struct loop *l, struct conn *c, const uint8_t *p,
                          uint32_t n)
{
    if (l->room)
        room_check(l, c, p, n);
    else
        echo_check(l, c, p, n);
}

/* A whole control frame from the server (in c->ctl). */
static void ws_control(struct loop *l, struct conn *c)
{
    if (c->ctl_op == RP_CWS_OP_CLOSE) {
        conn_fail(l, c, &l->w->st.err_closed,
                  "closed by the server after %u messages: WebSocket close "
                  "%d",
                  c->recv_seq,
                  c->ctl_len >= 2 ? c->ctl[0] << 8 | c->ctl[1] : 0);
        return;
    }
    if (c->ctl_op != RP_CWS_OP_PING || c->out_len + WS_PONG_MAX > c->out_cap)
        return; /* a pong; or a ping while out is full: the next gets one */
    uint8_t key[4];
    uint64_t r = mask_random(l);
    memcpy(key, &r, 4);
    c->out_len += (uint32_t)rp__cws_header(c->out + c->out_len, RP_CWS_OP_PONG,
                                           c->ctl_len, key);
    rp__cws_mask(c->out + c->out_len, c->ctl, c->ctl_len, key);
    c->out_len += c->ctl_len;
}

/* Strips the server's frame headers from a received chunk and checks the
   payload in place. */
static void ws_feed(struct loop *l, struct conn *c, const uint8_t *p,
                    uint32_t n)
{
    while (n > 0 && c->state != C_DEAD) {
        if (c->rx_left > 0) {
            uint32_t k = n < c->rx_left ? n : (uint32_t)c->rx_left;
            if (c->rx_ctl) {
                memcpy(c->ctl + c->ctl_len, p, k);
                c->ctl_len = (uint8_t)(c->ctl_len + k);
            } else {
                payload_check(l, c, p, k);
            }
            p += k;
            n -= k;
            c->rx_left -= k;
            if (c->rx_left == 0 && c->rx_ctl)
                ws_control(l, c);
            continue;
        }
        struct rp__cws_frame f;
        int h;
        if (c->wsh_len == 0) {
            h = rp__cws_parse(p, n, &f);
            if (h == 0) { /* cut by the chunk's end: under 14 bytes */
                memcpy(c->wsh, p, n);
                c->wsh_len = (uint8_t)n;
                return;
            }
            if (h > 0) {
                p += h;
                n -= (uint32_t)h;
            }
        } else {
            c->wsh[c->wsh_len++] = *p++;
            n--;
            h = rp__cws_parse(c->wsh, c->wsh_len, &f);
            if (h == 0)
                continue;
            c->wsh_len = 0;
        }
        if (h < 0 || f.masked || f.opcode == RP_CWS_OP_TEXT) {
            conn_fail(l, c, &l->w->st.err_verify,
                      "WebSocket frame against RFC 6455 (or a text or masked "
                      "frame) after %u messages",
                      c->recv_seq);
            return;
        }
        c->rx_ctl = f.opcode >= RP_CWS_OP_CLOSE;
        c->ctl_op = (uint8_t)f.opcode;
        c->ctl_len = 0;
        c->rx_left = f.len;
        if (c->rx_ctl && f.len == 0)
            ws_control(l, c);
    }
}

/* UPGRADING: gathers the server's answer; once it is a good 101, the
   connection is open and what followed it is WebSocket frames. */
static void conn_opened(struct loop *l, struct conn *c);

static void ws_upgrade_read(struct loop *l, struct conn *c)
{
    ssize_t n =
        recv(c->fd, c->hs + c->hs_len, RP_CWS_MAX_RESPONSE - c->hs_len, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        conn_fail(l, c, &l->w->st.err_connect,
                  "WebSocket upgrade: %s (is --port the server's ws port?)",
                  n == 0 ? "closed by the server" : strerror(errno));
        return;
    }
    c->hs_len += (uint32_t)n;
    int r = rp__cws_response(c->hs, c->hs_len, c->key);
    if (r == 0 && c->hs_len < RP_CWS_MAX_RESPONSE)
        return;
    if (r <= 0) {
        const char *eol = memchr(c->hs, '\r', c->hs_len);
        conn_fail(l, c, &l->w->st.err_connect,
                  "WebSocket upgrade refused: '%.*s'",
                  (int)(eol              ? eol - c->hs
                        : c->hs_len > 60 ? 60
                                         : c->hs_len),
                  c->hs);
        return;
    }
    char *hs = c->hs;
    uint32_t rest = c->hs_len - (uint32_t)r;
    c->hs = NULL;
    conn_opened(l, c);
    if (rest > 0 && c->state != C_DEAD)
        ws_feed(l, c, (const uint8_t *)hs + r, rest);
    free(hs);
}

static void conn_readable(struct loop *l, struct conn *c)
{
    if (c->state == C_UPGRADING) {
        ws_upgrade_read(l, c);
        return;
    }
    for (;;) {
        ssize_t n = recv(c->fd, l->w->rbuf, RBUF_SIZE, 0);
        if (n > 0) {
            if (l->ws)
                ws_feed(l, c, l->w->rbuf, (uint32_t)n);
            else
                payload_check(l, c, l->w->rbuf, (uint32_t)n);
            if (c->state == C_DEAD)
                return;
            if ((size_t)n < RBUF_SIZE)
                break;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        conn_fail(l, c, &l->w->st.err_closed,
                  "closed by the server after %u messages: %s", c->recv_seq,
                  n == 0 ? "end of stream" : strerror(errno));
        return;
    }
    conn_pump(l, c);
}

/* ---- connecting and joining ---------------------------------------------- */

static void conn_connected(struct loop *l, struct conn *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err) {
        conn_fail(l, c, &l->w->st.err_connect, "connect: %s", strerror(err));
        return;
    }
    if (!l->ws) {
        conn_opened(l, c);
        return;
    }
    /* The upgrade request; the 101 is read in UPGRADING. */
    uint8_t rnd[16];
    for (int i = 0; i < 16; i += 8) {
        uint64_t r = mask_random(l);
        memcpy(rnd + i, &r, 8);
    }
    rp__cws_key(rnd, c->key);
    char host[64];
    snprintf(host, sizeof host, "%s", l->o->host);
    int n = rp__cws_request((char *)c->out, WS_REQUEST_MAX, host, l->o->port,
                            "/", c->key);
    c->hs = malloc(RP_CWS_MAX_RESPONSE);
    if (n < 0 || !c->hs) {
        conn_fail(l, c, &l->w->st.err_connect, "WebSocket upgrade: %s",
                  n < 0 ? "request too long" : "out of memory");
        return;
    }
    c->hs_len = 0;
    c->out_off = 0;
    c->out_len = (uint32_t)n;
    c->state = C_UPGRADING;
    conn_flush(l, c);
}

/* Connected (and with ws upgraded): in room mode JOIN, then the probe,
   message 0. */
static void conn_opened(struct loop *l, struct conn *c)
{
    c->state = C_OPEN;
    atomic_fetch_add_explicit(&l->w->st.open, 1, memory_order_relaxed);
    if (l->room) {
        uint8_t key[4];
        uint8_t *p = frame_begin(l, c, 8, key);
        uint32_t room_id = c->id / l->o->room_size;
        p[0] = 4, p[1] = 0, p[2] = MSG_TYPE_JOIN, p[3] = 0;
        for (int i = 0; i < 4; i++)
            p[4 + i] = (uint8_t)(room_id >> (8 * i));
        frame_end(l, c, p, 8, key);
        struct msg_layout m;
        msg_layout(&m, c->id, 0, true);
        p = frame_begin(l, c, m.head_len + m.fill_len, key);
        frame_end(l, c, p, msg_write(&m, p), key);
        c->send_seq = 1;
    }
    conn_flush(l, c);
}

static bool conn_ready(const struct loop *l, const struct conn *c)
{
    return c->state == C_OPEN && (!l->room || c->recv_seq >= 1);
}

static void connect_all(struct loop *l)
{
    struct worker *w = l->w;
    for (uint32_t i = 0; i < w->nconns; i++) {
        struct conn *c = &w->conns[i];
        c->fd = net_connect(l->o);
        if (c->fd < 0) {
            int e = -c->fd;
            c->fd = -1;
            conn_fail(l, c, &w->st.err_connect, "connect: %s", strerror(e));
            return;
        }
        c->events = EPOLLOUT;
        struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
            conn_fail(l, c, &w->st.err_connect, "epoll_ctl: %s",
                      strerror(errno));
            return;
        }
    }
}

/* ---- phases ---------------------------------------------------------------
 */

static bool all(const struct loop *l,
                bool (*pred)(const struct loop *, const struct conn *))
{
    for (uint32_t i = 0; i < l->w->nconns; i++)
        if (!pred(l, &l->w->conns[i]))
            return false;
    return true;
}

static bool conn_idle(const struct loop *l, const struct conn *c)
{
    (void)l;
    return c->recv_seq == c->send_seq && c->out_off == c->out_len;
}

static bool conn_complete(const struct loop *l, const struct conn *c)
{
    (void)l;
    for (uint32_t m = 0; m < c->members; m++)
        if (c->expect[m] != atomic_load(&g_run.final_seq[c->base + m]))
            return false;
    return true;
}

static void start_run(struct loop *l, uint64_t t0)
{
    const struct bench_opts *o = l->o;
    l->warm_end = t0 + (uint64_t)(o->warmup * 1e9);
    l->end = l->warm_end + (uint64_t)(o->duration * 1e9);
    l->phase = P_RUN;
    if (o->rate_hz) {
        /* Connections spread their sends evenly over one period. */
        l->period_ns = (uint64_t)(1e9 / o->rate_hz);
        if (l->period_ns == 0)
            l->period_ns = 1;
        for (uint32_t i = 0; i < l->w->nconns; i++) {
            struct conn *c = &l->w->conns[i];
            c->start_ns = t0 + l->period_ns * c->id / o->connections;
        }
    }
    for (uint32_t i = 0; i < l->w->nconns; i++)
        conn_pump(l, &l->w->conns[i]);
}

/* Drain timed out: whatever did not arrive is lost. */
static void drain_expired(struct loop *l)
{
    for (uint32_t i = 0; i < l->w->nconns; i++) {
        struct conn *c = &l->w->conns[i];
        if (l->phase == P_DRAIN && !conn_idle(l, c))
            conn_fail(l, c, &l->w->st.err_verify,
                      "%u messages never came back (5 s after the end)",
                      c->send_seq - c->recv_seq);
        else if (l->phase == P_FINAL && !conn_complete(l, c))
            conn_fail(l, c, &l->w->st.err_verify,
                      "room messages missing 5 s after the end");
        else if (l->phase == P_ACKED)
            conn_fail(l, c, &l->w->st.err_verify,
                      "other workers' messages never came back");
    }
}

/* Advances the phase; returns the epoll timeout in ns (-1: none). */
static int64_t phase_step(struct loop *l)
{
    struct worker *w = l->w;
    uint32_t threads = l->o->threads;
    switch (l->phase) {
    case P_SETUP:
        if (all(l, conn_ready)) {
            atomic_fetch_add(&g_run.ready, 1);
            l->phase = P_READY;
        } else if (l->now >= l->deadline) {
            for (uint32_t i = 0; i < w->nconns; i++)
                if (!conn_ready(l, &w->conns[i]))
                    conn_fail(l, &w->conns[i], &w->st.err_connect,
                              l->room && w->conns[i].state == C_OPEN
                                  ? "JOIN not confirmed in time"
                                  : "connect timed out");
            return 0;
        }
        return 10000000;
    case P_READY: {
        uint64_t t0 = atomic_load(&g_run.t0);
        if (!t0)
            return 1000000;
        start_run(l, t0);
    }
    /* fallthrough */
    case P_RUN:
        if (l->now < l->end) {
            int64_t t = (int64_t)(l->end - l->now);
            if (l->o->rate_hz) {
                /* Until the next due message of any connection. */
                for (uint32_t i = 0; i < w->nconns; i++) {
                    struct conn *c = &w->conns[i];
                    if (c->out_off < c->out_len || c->state != C_OPEN)
                        continue; /* waits for EPOLLOUT, not the clock */
                    uint64_t due = rate_due(l, c, c->send_seq);
                    int64_t d = due > l->now ? (int64_t)(due - l->now) : 0;
                    if (d < t)
                        t = d;
                }
            }
            return t;
        }
        l->phase = P_DRAIN;
        l->deadline = l->now + DRAIN_NS;
    /* fallthrough */
    case P_DRAIN:
        if (!all(l, conn_idle))
            return 1000000;
        if (!l->room) {
            l->phase = P_DONE;
            return 0;
        }
        for (uint32_t i = 0; i < w->nconns; i++)
            atomic_store(&g_run.final_seq[w->conns[i].id],
                         w->conns[i].send_seq);
        atomic_fetch_add(&g_run.acked, 1);
        l->phase = P_ACKED;
    /* fallthrough */
    case P_ACKED:
        if (atomic_load(&g_run.acked) < threads)
            return 1000000;
        l->phase = P_FINAL;
    /* fallthrough */
    case P_FINAL:
        if (!all(l, conn_complete))
            return 1000000;
        l->phase = P_DONE;
        return 0;
    case P_DONE: return 0;
    }
    return 0;
}

static void run(struct loop *l)
{
    struct worker *w = l->w;
    struct epoll_event evs[EVENTS];
    l->now = bench_now_ns();
    l->deadline = l->now + (uint64_t)l->o->connect_timeout_ms * 1000000ull;
    connect_all(l);
    while (!atomic_load_explicit(&g_run.failed, memory_order_relaxed)) {
        int64_t t = phase_step(l);
        if (l->phase == P_DONE)
            break;
        if (l->phase >= P_DRAIN && l->now >= l->deadline) {
            drain_expired(l);
            break;
        }
        struct timespec ts = {(time_t)(t / 1000000000), (long)(t % 1000000000)};
        int n = epoll_pwait2(w->epfd, evs, EVENTS, &ts, NULL);
        if (n < 0 && errno != EINTR) {
            perror(BENCH_PROG ": epoll_pwait2");
            atomic_store(&g_run.failed, true);
            break;
        }
        l->now = bench_now_ns(); /* once per turn */
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            uint32_t e = evs[i].events;
            if (c->state == C_DEAD)
                continue; /* failed earlier in this turn */
            if (c->state == C_CONNECTING) {
                conn_connected(l, c);
                continue;
            }
            if (e & (EPOLLIN | EPOLLERR | EPOLLHUP))
                conn_readable(l, c);
            else if (e & EPOLLOUT)
                conn_pump(l, c);
        }
        if (l->o->rate_hz && l->phase == P_RUN)
            for (uint32_t i = 0; i < w->nconns; i++)
                conn_pump(l, &w->conns[i]);
    }
    /* The measured time this worker saw, cut short by a failure. */
    uint64_t stop = l->now < l->end ? l->now : l->end;
    w->window_ns = l->warm_end && stop > l->warm_end ? stop - l->warm_end : 0;
}

void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct loop l = {.w = w,
                     .o = w->o,
                     .phase = P_SETUP,
                     .framed = w->o->mode != MODE_RAW,
                     .room = w->o->mode == MODE_ROOM,
                     .ws = w->o->ws};
    while (l.mask_rng == 0 &&
           getrandom(&l.mask_rng, sizeof l.mask_rng, 0) != sizeof l.mask_rng)
        ;
    run(&l);
    return NULL;
}

/* ---- setup ------------------------------------------------------------------
 */

int worker_init(struct worker *w, const struct bench_opts *o, uint32_t index)
{
    uint32_t wire =
        FRAME_HEADER + o->size_max + (o->ws ? RP_CWS_MAX_HEADER : 0);
    uint32_t batch = o->rate_hz ? RATE_BATCH : o->depth;
    memset(w, 0, sizeof *w);
    w->index = index;
    w->o = o;
    w->nconns = (o->connections - index + o->threads - 1) / o->threads;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->conns = calloc(w->nconns, sizeof *w->conns);
    w->rbuf = malloc(RBUF_SIZE);
    if (w->epfd < 0 || !w->conns || !w->rbuf)
        return -ENOMEM;
    for (uint32_t i = 0; i < w->nconns; i++) {
        struct conn *c = &w->conns[i];
        c->fd = -1;
        c->id = index + i * o->threads;
        c->out_cap = batch * wire;
        if (o->mode == MODE_ROOM && c->out_cap < 8 + RP_CWS_MAX_HEADER + wire)
            c->out_cap = 8 + RP_CWS_MAX_HEADER + wire; /* JOIN + probe */
        if (o->ws) /* a pong's room; the upgrade request fits */
            c->out_cap += WS_PONG_MAX + WS_REQUEST_MAX;
        c->out = malloc(c->out_cap);
        c->sent_ns = calloc(o->depth, sizeof *c->sent_ns);
        if (!c->out || !c->sent_ns)
            return -ENOMEM;
        if (o->mode != MODE_ROOM)
            continue;
        c->base = c->id / o->room_size * o->room_size;
        c->members = o->connections - c->base < o->room_size
                         ? o->connections - c->base
                         : o->room_size;
        c->self = c->id - c->base;
        c->expect = malloc(c->members * sizeof *c->expect);
        c->part = malloc(wire);
        if (!c->expect || !c->part)
            return -ENOMEM;
        for (uint32_t m = 0; m < c->members; m++)
            c->expect[m] = m == c->self ? 0 : 1;
    }
    return 0;
}

void worker_fini(struct worker *w)
{
    for (uint32_t i = 0; w->conns && i < w->nconns; i++) {
        struct conn *c = &w->conns[i];
        if (c->fd >= 0)
            close(c->fd);
        free(c->out);
        free(c->sent_ns);
        free(c->expect);
        free(c->part);
        free(c->hs);
    }
    free(w->conns);
    free(w->rbuf);
    if (w->epfd >= 0)
        close(w->epfd);
}
