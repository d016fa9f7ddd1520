/*
 * libringport-client: connection, framing and reconnect of one game client
 * (include/ringport/client.h). libc only, no threads, no locks.
 *
 * Buffers, both flat and owned by the client:
 *   out: [0, out_len) holds whole game frames; [0, out_sent) of it has
 *        been written on the current connection, [0, whole_end) is the
 *        whole_cnt frames of it written whole. The frame at offset 0 is
 *        frame number out_base of the session. Without resume, frames
 *        written whole are dropped from the front at once, so on a drop
 *        out_sent goes back to 0 and the cut frame is sent again, whole, on
 *        the next connection. With resume, written frames stay (retained)
 *        until the server acknowledges them (ACK, RESUME_OK); on a drop
 *        everything from offset 0 is sent again after RESUME_OK has
 *        dropped what the server had.
 *   ctl: one engine control frame (HELLO, RESUME, ACK) being written. It
 *        goes out only between two game frames (out_sent == whole_end),
 *        and is never retained or resent.
 *   in:  [in_pos, scan) holds whole game frames not yet handed out,
 *        [scan, in_len) bytes not yet looked at (a partial frame after a
 *        poll). Control frames are taken out of the buffer when scanned,
 *        so rp_client_recv never sees them. Whole frames are handed out in
 *        place and the rest moves to the front before the next read, which
 *        is why a frame is valid only until the next poll or recv.
 *
 * Resume (docs/protocol.md, "Engine control messages"): both sides count
 * the game frames they received on the session, across connections. A
 * fresh connection starts with HELLO and the server answers RESUME_TOKEN
 * {sid, token}; a reconnect starts with RESUME {sid, token, in_count} and
 * writes no game frame until RESUME_OK {server's count, new token}.
 *
 * WebSocket (cfg.transport = RP_CLIENT_WS) sits under these buffers in
 * ws_transport.c: the connection is CONNECTING until the upgrade is done,
 * and each run of frames written from 'out' or 'ctl' goes out as one
 * masked message that counts as written only when all of it is.
 *
 * Why not a library: the framing is four bytes, and no libc-only client
 * library fits the caller-owned poll loop and the engine's own frame rules.
 */
#include "client_int.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t next_random(struct rp_client *c)
{
    uint64_t x = c->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c->rng = x;
    return x;
}

static uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_header(uint8_t *h, uint16_t type, uint16_t len)
{
    h[0] = (uint8_t)len;
    h[1] = (uint8_t)(len >> 8);
    h[2] = (uint8_t)type;
    h[3] = (uint8_t)(type >> 8);
}

void rp_client_config_init(struct rp_client_config *cfg, const char *host,
                           uint16_t port)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->host = host;
    cfg->port = port;
    cfg->max_payload = 8192;
    cfg->send_queue_max = 1u << 20;
    cfg->reconnect = 1;
    cfg->backoff_min_ms = 100;
    cfg->backoff_max_ms = 5000;
    cfg->ws_handshake_ms = 10000;
}

uint32_t rp_client_backoff_ms(uint32_t attempt, uint32_t min_ms,
                              uint32_t max_ms, uint64_t rnd)
{
    uint64_t d = min_ms;
    for (uint32_t i = 1; i < attempt && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    return (uint32_t)(d / 2 + rnd % (d - d / 2 + 1));
}

static int resolve(struct rp_client *c)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res;
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)c->cfg.port);
    if (getaddrinfo(c->host, port, &hints, &res) != 0 || !res)
        return -ENOENT;
    memcpy(&c->addr, res->ai_addr, res->ai_addrlen);
    c->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* A WebSocket request path: starts with '/', printable, no space (it goes
   into the request line as it is), at most 256 bytes. */
static int path_ok(const char *p)
{
    if (p[0] != '/' || strlen(p) > 256)
        return 0;
    for (; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return 0;
    return 1;
}

int rp_client_create(const struct rp_client_config *cfg, struct rp_client **out)
{
    if (!cfg || !cfg->host || !cfg->port || cfg->max_payload > 65535 ||
        cfg->send_queue_max < HEADER || cfg->backoff_min_ms == 0 ||
        cfg->backoff_max_ms < cfg->backoff_min_ms ||
        (cfg->transport != RP_CLIENT_TCP && cfg->transport != RP_CLIENT_WS) ||
        (cfg->ws_path && !path_ok(cfg->ws_path)) ||
        (cfg->resume &&
         (!cfg->reconnect || (cfg->max_payload && cfg->max_payload < 64))))
        return -EINVAL;
    struct rp_client *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->cfg = *cfg;
    if (!c->cfg.max_payload)
        c->cfg.max_payload = 8192;
    if (!c->cfg.ws_handshake_ms)
        c->cfg.ws_handshake_ms = 10000;
    c->fd = -1;
    c->host = strdup(cfg->host);
    c->in_cap = READ_CHUNK + HEADER + c->cfg.max_payload;
    c->in = malloc(c->in_cap);
    if (!c->host || !c->in || rp__cws_init(c) < 0) {
        rp_client_destroy(c);
        return -ENOMEM;
    }
    int err = resolve(c);
    if (err) {
        rp_client_destroy(c);
        return err;
    }
    c->rng = cfg->seed;
    while (c->rng == 0 &&
           getrandom(&c->rng, sizeof(c->rng), 0) != sizeof(c->rng))
        ;
    *out = c;
    return 0;
}

static void close_socket(struct rp_client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

void rp_client_destroy(struct rp_client *c)
{
    if (!c)
        return;
    close_socket(c);
    free(c->out);
    free(c->in);
    free(c->host);
    rp__cws_free(c);
    free(c);
}

/* Drops the first n frames of 'out' (written whole, or with resume
   acknowledged by the server). */
static void drop_front(struct rp_client *c, uint64_t n)
{
    if (n == 0)
        return; /* also: 'out' may not exist yet */
    size_t bytes = 0;
    for (uint64_t i = 0; i < n; i++)
        bytes += HEADER + get_u16(c->out + bytes);
    memmove(c->out, c->out + bytes, c->out_len - bytes);
    c->out_len -= bytes;
    c->out_sent = c->out_sent > bytes ? c->out_sent - bytes : 0;
    c->whole_end = c->whole_end > bytes ? c->whole_end - bytes : 0;
    c->whole_cnt = c->whole_cnt > n ? c->whole_cnt - n : 0;
    c->out_base += n;
}

/* The session is gone (RESUME_ERROR, or a drop before its token came):
   what was retained or queued for it is dropped, and the next connection
   starts a new one with HELLO. Whole frames already received stay for
   rp_client_recv. */
static void lose_session(struct rp_client *c)
{
    c->stats.sessions_lost++;
    c->out_len = c->out_sent = c->whole_end = 0;
    c->whole_cnt = c->out_base = c->out_hi = 0;
    c->have_session = c->resuming = 0;
    c->in_count = c->in_acked = 0;
    c->in_ack_bytes = 0;
}

/* Closes the socket and leaves 'in' with the whole frames scanned; a
   partial frame goes with its connection. */
static void end_connection(struct rp_client *c)
{
    close_socket(c);
    c->in_len = c->scan;
    c->ctl_len = c->ctl_sent = 0;
    if (c->ws.on)
        rp__cws_reset(c);
}

/* The connection is gone (or never came): back off, or close for good.
   Bytes received and already whole stay for rp_client_recv; a partial
   frame is dropped with its connection. */
static void lose_connection(struct rp_client *c, int err)
{
    if (c->state == RP_CLIENT_CONNECTED)
        c->stats.drops++;
    else
        c->stats.failed_connects++;
    c->last_error = err;
    if (c->out_sent > c->whole_end ||
        (c->ws.wire_src == WIRE_OUT && c->ws.wire_sent > 0))
        c->stats.frames_resent++; /* the frame at whole_end was cut */
    if (c->cfg.resume && c->state == RP_CLIENT_CONNECTED && c->fresh &&
        !c->have_session &&
        (c->out_sent > 0 || c->out_hi > 0 || c->in_count > 0))
        lose_session(c); /* the server may hold a session we cannot name */
    if (!c->cfg.resume) {
        drop_front(c, c->whole_cnt);
    }
    c->out_sent = c->whole_end = 0;
    c->whole_cnt = 0;
    c->resuming = 0;
    end_connection(c);
    if (!c->cfg.reconnect) {
        c->state = RP_CLIENT_CLOSED;
        return;
    }
    c->attempt++;
    c->retry_at_ms =
        now_ms() + rp_client_backoff_ms(c->attempt, c->cfg.backoff_min_ms,
                                        c->cfg.backoff_max_ms, next_random(c));
    c->state = RP_CLIENT_BACKOFF;
}

/* Puts one control frame in 'ctl' (empty: at most one is pending). */
static void put_control(struct rp_client *c, uint16_t type, const void *p,
                        uint16_t len)
{
    put_header(c->ctl, type, len);
    if (len)
        memcpy(c->ctl + HEADER, p, len);
    c->ctl_len = HEADER + (size_t)len;
    c->ctl_sent = 0;
}

static void on_connected(struct rp_client *c)
{
    c->state = RP_CLIENT_CONNECTED;
    c->attempt = 0;
    c->last_error = 0;
    c->stats.connects++;
    c->ever_connected = 1;
    c->ctl_len = c->ctl_sent = 0;
    if (!c->cfg.resume)
        return;
    c->in_acked = c->in_count; /* RESUME tells the server the count */
    c->in_ack_bytes = 0;
    if (c->have_session) {
        uint8_t p[8 + TOKEN_LEN + 8];
        put_u64(p, c->sid);
        memcpy(p + 8, c->token, TOKEN_LEN);
        put_u64(p + 8 + TOKEN_LEN, c->in_count);
        put_control(c, CTL_RESUME, p, sizeof(p));
        c->resuming = 1;
        c->fresh = 0;
    } else {
        put_control(c, CTL_HELLO, NULL, 0);
        c->fresh = 1;
    }
}

/* TCP is up: connected, or (WS) the upgrade begins. */
static void tcp_up(struct rp_client *c)
{
    if (!c->ws.on) {
        on_connected(c);
        return;
    }
    int err = rp__cws_begin(c);
    if (!err)
        err = rp__cws_handshake(c);
    if (err < 0)
        lose_connection(c, err);
    else if (err == 1)
        on_connected(c);
}

/* Starts one connect attempt. 0: connected or under way; -errno: failed
   at once (the socket is closed again). */
static int begin_connect(struct rp_client *c)
{
    int fd = socket(c->addr.ss_family,
                    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->fd = fd;
    if (connect(fd, (struct sockaddr *)&c->addr, c->addrlen) == 0) {
        c->state = RP_CLIENT_CONNECTING;
        tcp_up(c);
        return 0;
    }
    if (errno == EINPROGRESS) {
        c->state = RP_CLIENT_CONNECTING;
        return 0;
    }
    int err = -errno;
    close_socket(c);
    return err;
}

/* CONNECTING and the socket turned writable: did the connect succeed? */
static void finish_connect(struct rp_client *c)
{
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        soerr = errno;
    if (soerr == 0)
        tcp_up(c);
    else
        lose_connection(c, -soerr);
}

/* Moves whole_end past every frame now written whole. */
static void count_written(struct rp_client *c)
{
    while (c->whole_end < c->out_len) {
        size_t end = c->whole_end + HEADER + get_u16(c->out + c->whole_end);
        if (end > c->out_sent)
            break;
        uint64_t idx = c->out_base + c->whole_cnt;
        if (idx < c->out_hi) {
            c->stats.frames_resent++;
        } else {
            c->out_hi = idx + 1;
            c->stats.frames_out++;
        }
        c->whole_end = end;
        c->whole_cnt++;
    }
}

/* An ACK of what we received is due (and may be written now). */
static int ack_due(const struct rp_client *c)
{
    return c->cfg.resume && c->have_session && !c->resuming &&
           (c->in_count - c->in_acked >= ACK_EVERY_FRAMES ||
            c->in_ack_bytes >= ACK_EVERY_BYTES);
}

/* One send(2). >= 0 bytes written (0: the socket is full), or -errno. */
static ssize_t send_some(struct rp_client *c, const uint8_t *p, size_t len)
{
    for (;;) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN)
            return 0;
        return -errno;
    }
}

/* n bytes of the pending control frame were written. */
static void ctl_wrote(struct rp_client *c, size_t n)
{
    c->ctl_sent += n;
    if (c->ctl_sent == c->ctl_len)
        c->ctl_len = c->ctl_sent = 0;
}

/* n bytes of 'out' were written. */
static void out_wrote(struct rp_client *c, size_t n)
{
    c->out_sent += n;
    count_written(c);
}

/* Writes p[0, len) (WS: whole frames from 'src'): bytes taken, 0 when the
   socket is full (WS: or the message waits in the wire), or -errno. */
static ssize_t transport_send(struct rp_client *c, int src, const uint8_t *p,
                              size_t len)
{
    if (c->ws.on)
        return rp__cws_send(c, src, p, len);
    return send_some(c, p, len);
}

/*
 * Writes what the socket takes: the pending control frame between two
 * game frames, game frames unless a RESUME is still unanswered. 0, or
 * -errno when the connection broke. Over WebSocket, a message begun is
 * finished first; frames count as written only when their message is.
 */
static int write_queued(struct rp_client *c)
{
    for (;;) {
        if (c->ws.on) {
            int src = WIRE_NONE;
            size_t pay;
            int r = rp__cws_flush(c, &src, &pay);
            if (r < 0)
                return r;
            if (pay && src == WIRE_CTL)
                ctl_wrote(c, pay);
            else if (pay)
                out_wrote(c, pay);
            if (r == 0)
                break;
        }
        int boundary = c->out_sent == c->whole_end;
        if (c->ctl_len == 0 && boundary && ack_due(c)) {
            uint8_t p[8];
            put_u64(p, c->in_count);
            put_control(c, CTL_ACK, p, sizeof(p));
            c->in_acked = c->in_count;
            c->in_ack_bytes = 0;
        }
        if (c->ctl_sent < c->ctl_len && boundary) {
            ssize_t n = transport_send(c, WIRE_CTL, c->ctl + c->ctl_sent,
                                       c->ctl_len - c->ctl_sent);
            if (n < 0)
                return (int)n;
            if (n == 0)
                break;
            ctl_wrote(c, (size_t)n);
            continue;
        }
        if (c->resuming || c->out_sent == c->out_len)
            break;
        /* With a control frame waiting, finish only the frame begun. */
        size_t lim = c->out_len;
        if (c->ctl_len > 0)
            lim = c->whole_end + HEADER + get_u16(c->out + c->whole_end);
        ssize_t n = transport_send(c, WIRE_OUT, c->out + c->out_sent,
                                   lim - c->out_sent);
        if (n < 0)
            return (int)n;
        if (n == 0)
            break;
        out_wrote(c, (size_t)n);
    }
    if (!c->cfg.resume)
        drop_front(c, c->whole_cnt);
    return 0;
}

/* A control frame from the server. 0, -EPROTO (the connection is
   dropped), or -ESTALE (the session is lost: start a new one). */
static int on_control(struct rp_client *c, uint16_t type, const uint8_t *p,
                      uint16_t len)
{
    switch (type) {
    case CTL_RESUME_TOKEN:
        if (len != 8 + TOKEN_LEN)
            return -EPROTO;
        c->sid = get_u64(p);
        memcpy(c->token, p + 8, TOKEN_LEN);
        c->have_session = 1;
        return 0;
    case CTL_RESUME_OK: {
        if (len != 8 + TOKEN_LEN || !c->resuming)
            return -EPROTO;
        uint64_t got = get_u64(p);
        if (got < c->out_base || got > c->out_hi)
            return -ESTALE; /* not our session's count: start again */
        memcpy(c->token, p + 8, TOKEN_LEN);
        c->resuming = 0;
        drop_front(c, got - c->out_base);
        c->stats.resumes++;
        return 0;
    }
    case CTL_RESUME_ERROR: return -ESTALE;
    case CTL_ACK: {
        if (len != 8)
            return -EPROTO;
        uint64_t got = get_u64(p);
        if (got > c->out_base + c->whole_cnt)
            return -EPROTO; /* more than we wrote whole */
        if (got > c->out_base)
            drop_front(c, got - c->out_base);
        return 0;
    }
    default: return 0; /* unknown control types are ignored */
    }
}

/*
 * Looks at the bytes after 'scan': game frames stay for rp_client_recv
 * (counted with resume), control frames are handled and taken out. 0, or
 * -errno to end the connection (-EMSGSIZE: a frame over max_payload).
 */
static int scan_input(struct rp_client *c)
{
    while (c->in_len - c->scan >= HEADER) {
        uint8_t *h = c->in + c->scan;
        uint16_t len = get_u16(h), type = get_u16(h + 2);
        if (len > c->cfg.max_payload)
            return -EMSGSIZE;
        size_t flen = HEADER + (size_t)len;
        if (c->in_len - c->scan < flen)
            break;
        if (c->cfg.resume && type >= CTL_FIRST) {
            int err = on_control(c, type, h + HEADER, len);
            memmove(h, h + flen, c->in_len - c->scan - flen);
            c->in_len -= flen;
            if (err)
                return err;
            continue;
        }
        if (c->cfg.resume) {
            if (c->resuming)
                return -EPROTO; /* nothing before RESUME_OK */
            c->in_count++;
            c->in_ack_bytes += len;
        }
        c->scan += flen;
        c->in_ready++;
    }
    return 0;
}

/* Reads what has arrived. 0, or -errno when the connection ended. */
static int read_available(struct rp_client *c)
{
    /* Frames handed out before this call are released now. */
    if (c->in_pos > 0) {
        memmove(c->in, c->in + c->in_pos, c->in_len - c->in_pos);
        c->in_len -= c->in_pos;
        c->scan -= c->in_pos;
        c->in_pos = 0;
    }
    if (c->ws.on)
        return rp__cws_read(c, scan_input);
    for (;;) {
        if (c->in_len == c->in_cap)
            return 0; /* full of whole frames: the caller takes some first */
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
            int err = scan_input(c);
            if (err)
                return err;
            continue;
        }
        if (n == 0)
            return -ECONNRESET;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN)
            return 0;
        return -errno;
    }
}

short rp_client_events(const struct rp_client *c)
{
    switch (c->state) {
    case RP_CLIENT_CONNECTING:
        return c->ws.handshaking ? rp__cws_handshake_events(c) : POLLOUT;
    case RP_CLIENT_CONNECTED: {
        int out = c->ctl_sent < c->ctl_len ||
                  (!c->resuming && c->out_sent < c->out_len) ||
                  (c->ws.on && rp__cws_pending(c));
        /* No POLLIN while the buffer is full of frames nobody took: the
           caller's poll would only spin. */
        int room =
            c->ws.on ? rp__cws_can_read(c) : c->in_len - c->in_pos < c->in_cap;
        return (short)((room ? POLLIN : 0) | (out ? POLLOUT : 0));
    }
    default: return 0;
    }
}

int rp_client_timeout_ms(const struct rp_client *c)
{
    int64_t at;
    if (c->state == RP_CLIENT_BACKOFF)
        at = c->retry_at_ms;
    else if (c->state == RP_CLIENT_CONNECTING && c->ws.handshaking)
        at = c->ws.hs_deadline_ms; /* a server that never answers */
    else
        return -1;
    int64_t left = at - now_ms();
    return left > 0 ? (int)left : 0;
}

/* Waits for the socket or the back-off, at most timeout_ms. */
static short wait_for(struct rp_client *c, int timeout_ms)
{
    int backoff = rp_client_timeout_ms(c);
    if (backoff >= 0 && (timeout_ms < 0 || backoff < timeout_ms))
        timeout_ms = backoff;
    struct pollfd p = {.fd = c->fd, .events = rp_client_events(c)};
    if (c->fd < 0) {
        if (timeout_ms > 0)
            poll(NULL, 0, timeout_ms);
        return 0;
    }
    if (poll(&p, 1, timeout_ms) <= 0)
        return 0;
    return p.revents;
}

/* The session is refused or lost: close, and connect again at once with
   HELLO (not a drop: no back-off). */
static void restart_session(struct rp_client *c)
{
    lose_session(c);
    c->resuming = 0;
    c->out_sent = c->whole_end = 0;
    c->whole_cnt = 0;
    end_connection(c);
    c->last_error = -ESTALE;
    c->state = RP_CLIENT_BACKOFF;
    c->retry_at_ms = now_ms();
}

/* After I/O on a connected client: 0, or the error that ended it. */
static void handle_error(struct rp_client *c, int err)
{
    if (err == -ESTALE)
        restart_session(c);
    else if (err)
        lose_connection(c, err);
}

/* CONNECTING over WS with TCP up: the upgrade goes on. */
static void step_handshake(struct rp_client *c)
{
    int r = rp__cws_handshake(c);
    if (r < 0)
        lose_connection(c, r);
    else if (r == 1)
        on_connected(c);
}

int rp_client_poll(struct rp_client *c, int timeout_ms)
{
    if (c->state == RP_CLIENT_CLOSED || c->state == RP_CLIENT_IDLE)
        return c->state == RP_CLIENT_CLOSED && c->in_ready == 0
                   ? -ENOTCONN
                   : (int)c->in_ready;
    short rev = wait_for(c, timeout_ms);

    if (c->state == RP_CLIENT_BACKOFF && rp_client_timeout_ms(c) == 0) {
        int err = begin_connect(c);
        if (err)
            lose_connection(c, err);
    } else if (c->state == RP_CLIENT_CONNECTING && rev) {
        if (c->ws.handshaking)
            step_handshake(c);
        else
            finish_connect(c);
        rev |= POLLIN; /* bytes after the server's 101 */
    } else if (c->state == RP_CLIENT_CONNECTING && c->ws.handshaking &&
               rp_client_timeout_ms(c) == 0) {
        lose_connection(c, -ETIMEDOUT);
    }
    if (c->state == RP_CLIENT_CONNECTED) {
        int err = write_queued(c);
        if (!err && (rev & (POLLIN | POLLHUP | POLLERR)))
            err = read_available(c);
        if (!err) /* an ACK may be due after reading */
            err = write_queued(c);
        handle_error(c, err);
    }
    if (c->state == RP_CLIENT_CLOSED && c->in_ready == 0)
        return -ENOTCONN;
    return (int)c->in_ready;
}

int rp_client_start(struct rp_client *c)
{
    if (c->state == RP_CLIENT_CONNECTED || c->state == RP_CLIENT_CONNECTING)
        return -EISCONN;
    close_socket(c);
    int err = begin_connect(c);
    if (err) {
        c->last_error = err;
        c->state = RP_CLIENT_IDLE;
    }
    return err;
}

/* A blocking connect failed: back to IDLE, no back-off. */
static int connect_failed(struct rp_client *c, int err)
{
    close_socket(c);
    if (c->ws.on)
        rp__cws_reset(c);
    c->state = RP_CLIENT_IDLE;
    c->last_error = err;
    if (err != -ETIMEDOUT)
        c->stats.failed_connects++;
    return err;
}

int rp_client_connect(struct rp_client *c, int timeout_ms)
{
    int err = rp_client_start(c);
    if (err || c->state != RP_CLIENT_CONNECTING)
        return err;
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    /* TCP, then (WS) the upgrade, within the one timeout. */
    while (c->state == RP_CLIENT_CONNECTING) {
        struct pollfd p = {.fd = c->fd, .events = rp_client_events(c)};
        int left = -1, n;
        if (deadline >= 0) {
            int64_t l = deadline - now_ms();
            left = l > 0 ? (int)l : 0;
        }
        do {
            n = poll(&p, 1, left);
        } while (n < 0 && errno == EINTR);
        if (n <= 0)
            return connect_failed(c, -ETIMEDOUT);
        if (!c->ws.handshaking) {
            int soerr = 0;
            socklen_t len = sizeof(soerr);
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
            if (soerr)
                return connect_failed(c, -soerr);
            if (!c->ws.on) {
                on_connected(c);
                break;
            }
            err = rp__cws_begin(c);
            if (err)
                return connect_failed(c, err);
        }
        int r = rp__cws_handshake(c);
        if (r < 0)
            return connect_failed(c, r);
        if (r == 1)
            on_connected(c);
    }
    if (c->state != RP_CLIENT_CONNECTED)
        return c->last_error ? c->last_error : -ECONNRESET;
    err = write_queued(c);
    if (!err && c->ws.on && c->ws.raw_len > 0)
        err = read_available(c); /* frames right after the 101 */
    handle_error(c, err);
    return 0;
}

int rp_client_send(struct rp_client *c, uint16_t type, const void *payload,
                   uint16_t len)
{
    if (c->state == RP_CLIENT_CLOSED ||
        (c->state == RP_CLIENT_IDLE && !c->ever_connected))
        return -ENOTCONN;
    if (c->cfg.resume && type >= CTL_FIRST)
        return -EINVAL; /* the engine's range */
    /* rp_client_drop_next: write what is queued first, so that the cut
       falls inside this frame when the socket takes the rest. */
    int cut = c->cut_next && c->state == RP_CLIENT_CONNECTED;
    if (cut) {
        c->cut_next = 0;
        handle_error(c, write_queued(c));
        cut = c->state == RP_CLIENT_CONNECTED;
    }
    size_t need = c->out_len + HEADER + len;
    if (need > c->cfg.send_queue_max)
        return -ENOBUFS;
    if (need > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < need)
            cap *= 2;
        uint8_t *p = realloc(c->out, cap);
        if (!p)
            return -ENOMEM;
        c->out = p;
        c->out_cap = cap;
    }
    uint8_t *h = c->out + c->out_len;
    put_header(h, type, len);
    if (len)
        memcpy(h + HEADER, payload, len);
    size_t start = c->out_len;
    c->out_len = need;
    if (cut) {
        /* At a frame boundary with nothing pending, a random prefix of
           this frame (at least one byte, never all of it) goes out first;
           otherwise the drop cuts wherever the queue stands. */
        if (c->out_sent == start && c->ctl_len == 0 && !c->resuming &&
            c->ws.on && !rp__cws_pending(c)) {
            /* WS: a prefix of its message; the frame stays unwritten. */
            rp__cws_cut(c, c->out + start, HEADER + (size_t)len);
            c->stats.frames_resent++;
        } else if (c->out_sent == start && c->ctl_len == 0 && !c->resuming &&
                   !c->ws.on) {
            size_t n = 1 + next_random(c) % (HEADER + (size_t)len - 1);
            ssize_t w = send_some(c, c->out + start, n);
            if (w > 0)
                c->out_sent += (size_t)w;
        }
        rp_client_drop(c);
    } else if (c->state == RP_CLIENT_CONNECTED) {
        handle_error(c, write_queued(c));
    }
    return 0;
}

int rp_client_recv(struct rp_client *c, struct rp_client_frame *out)
{
    if (c->in_ready == 0)
        return 0;
    uint16_t len = get_u16(c->in + c->in_pos);
    out->len = len;
    out->type = get_u16(c->in + c->in_pos + 2);
    out->payload = c->in + c->in_pos + HEADER;
    c->in_pos += HEADER + len;
    c->in_ready--;
    c->stats.frames_in++;
    return 1;
}

/* Every queued frame written (retained ones wait for the server's ACK,
   not for us). */
static int all_written(const struct rp_client *c)
{
    if (c->out_len == 0)
        return 1;
    return c->cfg.resume && c->state == RP_CLIENT_CONNECTED && !c->resuming &&
           c->out_sent == c->out_len;
}

int rp_client_flush(struct rp_client *c, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    while (!all_written(c)) {
        if (c->state == RP_CLIENT_CLOSED)
            return -ENOTCONN;
        int left = -1;
        if (deadline >= 0) {
            int64_t l = deadline - now_ms();
            if (l <= 0)
                return -ETIMEDOUT;
            left = (int)l;
        }
        /* Reads too, so a peer that answers while we write cannot fill
           both directions' buffers and stall us. */
        int err = rp_client_poll(c, left);
        if (err < 0)
            return err;
    }
    return 0;
}

int rp_client_leave(struct rp_client *c, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    int err = 0;
    if (c->state == RP_CLIENT_CONNECTED)
        err = rp_client_flush(c, timeout_ms);
    /* A control frame (an ACK) cut half-way goes out whole first: BYE must
       start on a frame boundary. */
    while (!err && c->state == RP_CLIENT_CONNECTED &&
           (c->ctl_sent < c->ctl_len || (c->ws.on && rp__cws_pending(c)))) {
        int64_t left = deadline < 0 ? -1 : deadline - now_ms();
        if (deadline >= 0 && left <= 0)
            err = -ETIMEDOUT;
        else if (rp_client_poll(c, (int)left) < 0)
            err = -ENOTCONN;
    }
    if (!err && c->state == RP_CLIENT_CONNECTED && c->cfg.resume) {
        uint8_t bye[HEADER];
        put_header(bye, CTL_BYE, 0);
        struct pollfd p = {.fd = c->fd, .events = POLLOUT};
        int64_t left = deadline < 0 ? -1 : deadline - now_ms();
        if (c->ws.on)
            err = rp__cws_send_now(c, RP_CWS_OP_BINARY, bye, HEADER,
                                   left < 0 ? -1 : (int)left);
        else if (left == 0 || poll(&p, 1, (int)left) != 1 ||
                 send(c->fd, bye, HEADER, MSG_NOSIGNAL) != HEADER)
            err = -ETIMEDOUT;
    }
    if (!err && c->state == RP_CLIENT_CONNECTED && c->ws.on) {
        /* The close handshake: ours (1000), then the server's answer
           and its FIN are awaited below. */
        static const uint8_t normal[2] = {1000 >> 8, 1000 & 0xFF};
        int64_t left = deadline < 0 ? -1 : deadline - now_ms();
        err = rp__cws_send_now(c, RP_CWS_OP_CLOSE, normal, 2,
                               left < 0 ? -1 : (int)left);
    }
    if (!err && c->fd >= 0) {
        /* Close only after the server's FIN: a close with unread bytes in
           our receive buffer would send a reset, and a reset may reach the
           server before it has read our BYE (it would then keep the
           session for a resume). What still arrives is discarded. */
        shutdown(c->fd, SHUT_WR);
        for (;;) {
            uint8_t sink[4096];
            ssize_t n = recv(c->fd, sink, sizeof sink, 0);
            if (n > 0 || (n < 0 && errno == EINTR))
                continue;
            if (n == 0 || errno != EAGAIN)
                break;
            int64_t left = deadline < 0 ? -1 : deadline - now_ms();
            struct pollfd p = {.fd = c->fd, .events = POLLIN};
            if (left == 0 || poll(&p, 1, (int)left) != 1) {
                err = -ETIMEDOUT;
                break;
            }
        }
    }
    close_socket(c);
    c->state = RP_CLIENT_CLOSED;
    c->have_session = 0;
    return err;
}

void rp_client_drop_next(struct rp_client *c)
{
    c->cut_next = 1;
}

void rp_client_drop(struct rp_client *c)
{
    if (c->state == RP_CLIENT_CONNECTED || c->state == RP_CLIENT_CONNECTING) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        lose_connection(c, -ECONNRESET);
    }
}

enum rp_client_state rp_client_state(const struct rp_client *c)
{
    return c->state;
}

int rp_client_fd(const struct rp_client *c)
{
    return c->fd;
}

int rp_client_last_error(const struct rp_client *c)
{
    return c->last_error;
}

void rp_client_get_stats(const struct rp_client *c, struct rp_client_stats *out)
{
    *out = c->stats;
}
