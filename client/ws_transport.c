/*
 * libringport-client's WebSocket transport (cfg.transport = RP_CLIENT_WS):
 * the client's side of RFC 6455 under the frame queues of client.c. After
 * TCP connects, the upgrade request goes out and the server's 101 is
 * checked (status, Upgrade, Connection, Sec-WebSocket-Accept); then every
 * run of whole ringport frames client.c writes becomes one binary message,
 * masked with a fresh key (RFC 6455 5.3: every client frame is masked),
 * and the payload of the server's binary messages (unmasked, one or more
 * whole frames each, docs/protocol.md) streams into the client's receive
 * buffer as if it came over TCP. Pings get pongs with their payload, a
 * server's close is answered and ends the connection (a drop as far as
 * reconnect and resume go), and a frame against the RFC ends it with
 * close 1002.
 *
 * Why our own and not libwebsockets or wslay: the client library depends
 * on libc alone and runs in the caller's poll loop; the client's side of
 * the protocol is a few hundred lines.
 *
 * Thread: the client's (see client.h).
 */
#include "client_int.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

int rp__cws_init(struct rp_client *c)
{
    struct cws *w = &c->ws;
    w->on = c->cfg.transport == RP_CLIENT_WS;
    if (!w->on)
        return 0;
    w->path = strdup(c->cfg.ws_path ? c->cfg.ws_path : "/");
    w->wire = malloc(RP_CWS_MAX_HEADER + WS_MSG_MAX);
    w->raw = malloc(WS_RAW_CAP);
    w->rnd_pos = sizeof w->rnd; /* empty: filled on first use */
    return w->path && w->wire && w->raw ? 0 : -ENOMEM;
}

void rp__cws_free(struct rp_client *c)
{
    free(c->ws.path);
    free(c->ws.wire);
    free(c->ws.raw);
}

void rp__cws_reset(struct rp_client *c)
{
    struct cws *w = &c->ws;
    w->handshaking = 0;
    w->req_len = w->req_sent = 0;
    w->wire_len = w->wire_sent = w->wire_pay = 0;
    w->wire_src = WIRE_NONE;
    w->ping_len = 0;
    w->pong_due = 0;
    w->raw_len = 0;
    w->rx_left = 0;
}

/* Random bytes from the kernel (RFC 6455 10.3: mask keys must not be
   predictable), fetched 256 at a time: one getrandom per 64 messages. */
static void rand_bytes(struct rp_client *c, uint8_t *dst, size_t n)
{
    struct cws *w = &c->ws;
    for (size_t i = 0; i < n; i++) {
        if (w->rnd_pos == sizeof w->rnd) {
            size_t got = 0;
            while (got < sizeof w->rnd) {
                ssize_t r = getrandom(w->rnd + got, sizeof w->rnd - got, 0);
                if (r > 0)
                    got += (size_t)r;
                else if (r < 0 && errno != EINTR)
                    break;
            }
            w->rnd_pos = 0;
        }
        dst[i] = w->rnd[w->rnd_pos++];
    }
}

/* One send(2): bytes written (0: the socket is full) or -errno. */
static ssize_t send_raw(int fd, const uint8_t *p, size_t len)
{
    for (;;) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN)
            return 0;
        return -errno;
    }
}

/* A whole masked frame of 'opcode' carrying p[0, len) into dst
   (RP_CWS_MAX_HEADER + len bytes); returns its length. */
static size_t wrap(struct rp_client *c, uint8_t *dst, unsigned opcode,
                   const void *p, size_t len)
{
    uint8_t mask[4];
    rand_bytes(c, mask, 4);
    size_t h = rp__cws_header(dst, opcode, len, mask);
    rp__cws_mask(dst + h, p, len, mask);
    return h + len;
}

int rp__cws_begin(struct rp_client *c)
{
    struct cws *w = &c->ws;
    uint8_t r[16];
    rp__cws_reset(c);
    rand_bytes(c, r, sizeof r);
    rp__cws_key(r, w->key);
    int n = rp__cws_request(w->req, sizeof w->req, c->host, c->cfg.port,
                            w->path, w->key);
    if (n < 0)
        return n;
    w->req_len = (size_t)n;
    w->handshaking = 1;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    w->hs_deadline_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 +
                        c->cfg.ws_handshake_ms;
    return 0;
}

short rp__cws_handshake_events(const struct rp_client *c)
{
    return c->ws.req_sent < c->ws.req_len ? POLLOUT : POLLIN;
}

/* One recv into the free end of the raw buffer: 1 when bytes came (or a
   signal cut the call: try again), 0 when none are waiting, -ECONNRESET
   when the server closed, else -errno. */
static int read_raw(struct rp_client *c)
{
    struct cws *w = &c->ws;
    ssize_t n = recv(c->fd, w->raw + w->raw_len, WS_RAW_CAP - w->raw_len, 0);
    if (n > 0) {
        w->raw_len += (size_t)n;
        return 1;
    }
    if (n == 0)
        return -ECONNRESET;
    if (errno == EAGAIN)
        return 0;
    return errno == EINTR ? 1 : -errno;
}

int rp__cws_handshake(struct rp_client *c)
{
    struct cws *w = &c->ws;
    while (w->req_sent < w->req_len) {
        ssize_t n = send_raw(c->fd, (const uint8_t *)w->req + w->req_sent,
                             w->req_len - w->req_sent);
        if (n <= 0)
            return (int)n;
        w->req_sent += (size_t)n;
    }
    for (;;) {
        int r = rp__cws_response((const char *)w->raw, w->raw_len, w->key);
        if (r < 0)
            return r;
        if (r > 0) {
            /* Frames the server sent right after its 101 stay for the
               first read. */
            memmove(w->raw, w->raw + r, w->raw_len - (size_t)r);
            w->raw_len -= (size_t)r;
            w->handshaking = 0;
            return 1;
        }
        r = read_raw(c);
        if (r <= 0)
            return r;
    }
}

int rp__cws_pending(const struct rp_client *c)
{
    return c->ws.wire_sent < c->ws.wire_len || c->ws.pong_due;
}

int rp__cws_flush(struct rp_client *c, int *src, size_t *pay)
{
    struct cws *w = &c->ws;
    *pay = 0;
    for (;;) {
        if (w->wire_sent < w->wire_len) {
            ssize_t n = send_raw(c->fd, w->wire + w->wire_sent,
                                 w->wire_len - w->wire_sent);
            if (n < 0)
                return (int)n;
            w->wire_sent += (size_t)n;
            if (w->wire_sent < w->wire_len)
                return 0;
            if (w->wire_src != WIRE_PONG) {
                *src = w->wire_src;
                *pay = w->wire_pay;
            }
            w->wire_len = w->wire_sent = w->wire_pay = 0;
            w->wire_src = WIRE_NONE;
        }
        if (!w->pong_due)
            return 1;
        /* A pong between two messages, never inside one. */
        w->pong_due = 0;
        w->wire_len = wrap(c, w->wire, RP_CWS_OP_PONG, w->ping, w->ping_len);
        w->wire_src = WIRE_PONG;
    }
}

ssize_t rp__cws_send(struct rp_client *c, int src, const uint8_t *p, size_t len)
{
    struct cws *w = &c->ws;
    /* Whole frames only, as many as fit one message. */
    size_t take = 0;
    while (take + HEADER <= len) {
        size_t f = HEADER + (size_t)(p[take] | p[take + 1] << 8);
        if (take + f > len || (take > 0 && take + f > WS_MSG_MAX))
            break;
        take += f;
    }
    if (take == 0)
        return 0;
    w->wire_len = wrap(c, w->wire, RP_CWS_OP_BINARY, p, take);
    w->wire_sent = 0;
    w->wire_pay = take;
    w->wire_src = src;
    ssize_t n = send_raw(c->fd, w->wire, w->wire_len);
    if (n < 0)
        return n;
    w->wire_sent = (size_t)n;
    if (w->wire_sent < w->wire_len)
        return 0;
    w->wire_len = w->wire_sent = w->wire_pay = 0;
    w->wire_src = WIRE_NONE;
    return (ssize_t)take;
}

void rp__cws_cut(struct rp_client *c, const uint8_t *p, size_t len)
{
    struct cws *w = &c->ws;
    size_t n = wrap(c, w->wire, RP_CWS_OP_BINARY, p, len);
    uint8_t r[4];
    rand_bytes(c, r, 4);
    uint32_t x = (uint32_t)r[0] | (uint32_t)r[1] << 8 | (uint32_t)r[2] << 16 |
                 (uint32_t)r[3] << 24;
    (void)send_raw(c->fd, w->wire, 1 + x % (n - 1));
}

int rp__cws_send_now(struct rp_client *c, unsigned opcode, const void *p,
                     size_t len, int timeout_ms)
{
    uint8_t buf[RP_CWS_MAX_HEADER + RP_CWS_MAX_CONTROL];
    if (len > RP_CWS_MAX_CONTROL)
        return -EINVAL;
    size_t n = wrap(c, buf, opcode, p, len), sent = 0;
    while (sent < n) {
        struct pollfd pf = {.fd = c->fd, .events = POLLOUT};
        if (poll(&pf, 1, timeout_ms) != 1)
            return -ETIMEDOUT;
        ssize_t k = send_raw(c->fd, buf + sent, n - sent);
        if (k < 0)
            return (int)k;
        sent += (size_t)k;
    }
    return 0;
}

/* A close of ours with 'code', if no message of ours is half-written
   (it would land inside it); best effort: the connection ends anyway. */
static void close_now(struct rp_client *c, const uint8_t *payload, size_t len)
{
    uint8_t buf[RP_CWS_MAX_HEADER + RP_CWS_MAX_CONTROL];
    if (c->ws.wire_sent > 0 && c->ws.wire_sent < c->ws.wire_len)
        return;
    size_t n = wrap(c, buf, RP_CWS_OP_CLOSE, payload, len);
    (void)send_raw(c->fd, buf, n);
}

int rp__cws_can_read(const struct rp_client *c)
{
    return c->in_cap - (c->in_len - c->in_pos) >= WS_RAW_CAP;
}

/* Decodes 'raw' into 'in'. 0, -ECONNRESET (a close) or -EPROTO. */
static int decode(struct rp_client *c)
{
    struct cws *w = &c->ws;
    size_t pos = 0;
    int err = 0;
    while (pos < w->raw_len) {
        if (w->rx_left > 0) {
            size_t k = w->raw_len - pos;
            if (k > w->rx_left)
                k = (size_t)w->rx_left;
            if (k > c->in_cap - c->in_len)
                k = c->in_cap - c->in_len; /* never, by WS_RAW_CAP */
            if (k == 0)
                break;
            memcpy(c->in + c->in_len, w->raw + pos, k);
            c->in_len += k;
            pos += k;
            w->rx_left -= k;
            continue;
        }
        struct rp__cws_frame f;
        int h = rp__cws_parse(w->raw + pos, w->raw_len - pos, &f);
        if (h == 0)
            break;
        if (h < 0 || f.masked || f.opcode == RP_CWS_OP_TEXT) {
            /* A server never masks (RFC 6455 5.1); ringport frames travel
               in binary messages only. */
            static const uint8_t proto_error[2] = {1002 >> 8, 1002 & 0xFF};
            close_now(c, proto_error, 2);
            err = -EPROTO;
            break;
        }
        if (f.opcode == RP_CWS_OP_BINARY || f.opcode == RP_CWS_OP_CONT) {
            /* Fragments of a message are a stream of its bytes, as the
               frames inside need no message boundary. */
            pos += (size_t)h;
            w->rx_left = f.len;
            continue;
        }
        if (w->raw_len - pos < (size_t)h + f.len)
            break; /* a control frame is handled whole */
        const uint8_t *pl = w->raw + pos + h;
        if (f.opcode == RP_CWS_OP_PING) {
            /* Only the latest ping needs its pong (RFC 6455 5.5.3). */
            memcpy(w->ping, pl, (size_t)f.len);
            w->ping_len = (size_t)f.len;
            w->pong_due = 1;
        } else if (f.opcode == RP_CWS_OP_CLOSE) {
            close_now(c, pl, f.len >= 2 ? 2 : 0);
            err = -ECONNRESET;
            pos += (size_t)h + (size_t)f.len;
            break;
        }
        pos += (size_t)h + (size_t)f.len;
    }
    memmove(w->raw, w->raw + pos, w->raw_len - pos);
    w->raw_len -= pos;
    return err;
}

int rp__cws_read(struct rp_client *c, int (*scan)(struct rp_client *))
{
    struct cws *w = &c->ws;
    for (;;) {
        int err = decode(c);
        if (!err)
            err = scan(c);
        if (err)
            return err;
        if (c->in_cap - c->in_len < WS_RAW_CAP || w->raw_len == WS_RAW_CAP)
            return 0; /* the caller takes frames first */
        int r = read_raw(c);
        if (r <= 0)
            return r;
    }
}
