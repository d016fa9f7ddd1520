/*
 * libringport-client: connection, framing and reconnect of one game client
 * (include/ringport/client.h). libc only, no threads, no locks.
 *
 * Buffers, both flat and owned by the client:
 *   out: [0, out_len) holds whole queued frames; [0, out_sent) of it has
 *        been written on the current connection. Frames wholly written are
 *        dropped from the front (out_sent >= their end), so the frame at
 *        offset 0 is the one being written: on a drop out_sent goes back
 *        to 0 and that frame is sent again, whole, on the next connection.
 *   in:  [in_pos, in_len) holds received bytes not yet handed out; whole
 *        frames are handed out in place and the rest moves to the front
 *        before the next read, which is why a frame is valid only until
 *        the next poll or recv.
 *
 * Why not a library: the framing is four bytes, and no libc-only client
 * library fits the caller-owned poll loop and the engine's own frame rules.
 */
#include <ringport/client.h>

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

#define HEADER 4
#define READ_CHUNK 65536

struct rp_client {
    struct rp_client_config cfg;
    char *host;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int fd;
    enum rp_client_state state;
    int last_error;
    uint32_t attempt;    /* failed connects since the last success */
    int64_t retry_at_ms; /* BACKOFF: when to connect again */
    uint64_t rng;        /* xorshift64 state, never 0 */
    int ever_connected;

    uint8_t *out;
    size_t out_len, out_sent, out_cap;
    uint8_t *in;
    size_t in_pos, in_len, in_cap;

    struct rp_client_stats stats;
};

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

int rp_client_create(const struct rp_client_config *cfg, struct rp_client **out)
{
    if (!cfg || !cfg->host || !cfg->port || cfg->max_payload > 65535 ||
        cfg->send_queue_max < HEADER || cfg->backoff_min_ms == 0 ||
        cfg->backoff_max_ms < cfg->backoff_min_ms)
        return -EINVAL;
    struct rp_client *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->cfg = *cfg;
    if (!c->cfg.max_payload)
        c->cfg.max_payload = 8192;
    c->fd = -1;
    c->host = strdup(cfg->host);
    c->in_cap = READ_CHUNK + HEADER + c->cfg.max_payload;
    c->in = malloc(c->in_cap);
    if (!c->host || !c->in) {
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
    free(c);
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
    close_socket(c);
    c->last_error = err;
    if (c->out_sent > 0)
        c->stats.frames_resent++; /* the frame at 0 was cut: again, whole */
    c->out_sent = 0;
    /* Keep the whole frames already received, drop a cut one. */
    size_t pos = c->in_pos;
    while (c->in_len - pos >= HEADER &&
           c->in_len - pos >= HEADER + (size_t)get_u16(c->in + pos))
        pos += HEADER + get_u16(c->in + pos);
    c->in_len = pos;
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

static void on_connected(struct rp_client *c)
{
    c->state = RP_CLIENT_CONNECTED;
    c->attempt = 0;
    c->last_error = 0;
    c->stats.connects++;
    c->ever_connected = 1;
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
        on_connected(c);
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
        on_connected(c);
    else
        lose_connection(c, -soerr);
}

/* Drops from the front of 'out' every frame wholly written. */
static void drop_written_frames(struct rp_client *c)
{
    size_t pos = 0;
    while (pos < c->out_len) {
        size_t end = pos + HEADER + get_u16(c->out + pos);
        if (end > c->out_sent)
            break;
        pos = end;
        c->stats.frames_out++;
    }
    if (pos == 0)
        return;
    memmove(c->out, c->out + pos, c->out_len - pos);
    c->out_len -= pos;
    c->out_sent -= pos;
}

/* Writes what the socket takes. 0, or -errno when the connection broke. */
static int write_queued(struct rp_client *c)
{
    while (c->out_sent < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent,
                         MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            return -errno;
        }
        c->out_sent += (size_t)n;
    }
    drop_written_frames(c);
    return 0;
}

/* Whole frames in [in_pos, in_len), or -EMSGSIZE on one over the limit. */
static int frames_ready(const struct rp_client *c)
{
    int n = 0;
    size_t pos = c->in_pos;
    while (c->in_len - pos >= HEADER) {
        uint16_t len = get_u16(c->in + pos);
        if (len > c->cfg.max_payload)
            return -EMSGSIZE;
        if (c->in_len - pos < HEADER + (size_t)len)
            break;
        pos += HEADER + len;
        n++;
    }
    return n;
}

/* Reads what has arrived. 0, or -errno when the connection ended. */
static int read_available(struct rp_client *c)
{
    /* Frames handed out before this call are released now. */
    if (c->in_pos > 0) {
        memmove(c->in, c->in + c->in_pos, c->in_len - c->in_pos);
        c->in_len -= c->in_pos;
        c->in_pos = 0;
    }
    for (;;) {
        if (c->in_len == c->in_cap)
            return 0; /* full of whole frames: the caller takes some first */
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
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
    case RP_CLIENT_CONNECTING: return POLLOUT;
    case RP_CLIENT_CONNECTED:
        /* No POLLIN while the buffer is full of frames nobody took: the
           caller's poll would only spin. */
        return (short)((c->in_len - c->in_pos < c->in_cap ? POLLIN : 0) |
                       (c->out_sent < c->out_len ? POLLOUT : 0));
    default: return 0;
    }
}

int rp_client_timeout_ms(const struct rp_client *c)
{
    if (c->state != RP_CLIENT_BACKOFF)
        return -1;
    int64_t left = c->retry_at_ms - now_ms();
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

int rp_client_poll(struct rp_client *c, int timeout_ms)
{
    if (c->state == RP_CLIENT_CLOSED || c->state == RP_CLIENT_IDLE)
        return c->state == RP_CLIENT_CLOSED ? -ENOTCONN : frames_ready(c);
    short rev = wait_for(c, timeout_ms);

    if (c->state == RP_CLIENT_BACKOFF && rp_client_timeout_ms(c) == 0) {
        int err = begin_connect(c);
        if (err)
            lose_connection(c, err);
    } else if (c->state == RP_CLIENT_CONNECTING && rev) {
        finish_connect(c);
    }
    if (c->state == RP_CLIENT_CONNECTED) {
        int err = write_queued(c);
        if (!err && (rev & (POLLIN | POLLHUP | POLLERR)))
            err = read_available(c);
        if (!err && frames_ready(c) < 0)
            err = -EMSGSIZE;
        if (err)
            lose_connection(c, err);
    }
    int ready = frames_ready(c);
    if (ready < 0)
        ready = 0; /* the bad frame went with its connection */
    if (c->state == RP_CLIENT_CLOSED && ready == 0)
        return -ENOTCONN;
    return ready;
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

int rp_client_connect(struct rp_client *c, int timeout_ms)
{
    int err = rp_client_start(c);
    if (err || c->state == RP_CLIENT_CONNECTED)
        return err;
    struct pollfd p = {.fd = c->fd, .events = POLLOUT};
    int n;
    do {
        n = poll(&p, 1, timeout_ms);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
        close_socket(c);
        c->state = RP_CLIENT_IDLE;
        c->last_error = -ETIMEDOUT;
        return -ETIMEDOUT;
    }
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
    if (soerr) {
        close_socket(c);
        c->state = RP_CLIENT_IDLE;
        c->last_error = -soerr;
        c->stats.failed_connects++;
        return -soerr;
    }
    on_connected(c);
    return write_queued(c);
}

int rp_client_send(struct rp_client *c, uint16_t type, const void *payload,
                   uint16_t len)
{
    if (c->state == RP_CLIENT_CLOSED ||
        (c->state == RP_CLIENT_IDLE && !c->ever_connected))
        return -ENOTCONN;
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
    h[0] = (uint8_t)len;
    h[1] = (uint8_t)(len >> 8);
    h[2] = (uint8_t)type;
    h[3] = (uint8_t)(type >> 8);
    if (len)
        memcpy(h + HEADER, payload, len);
    c->out_len = need;
    if (c->state == RP_CLIENT_CONNECTED) {
        int err = write_queued(c);
        if (err)
            lose_connection(c, err);
    }
    return 0;
}

int rp_client_recv(struct rp_client *c, struct rp_client_frame *out)
{
    if (c->in_len - c->in_pos < HEADER)
        return 0;
    uint16_t len = get_u16(c->in + c->in_pos);
    if (len > c->cfg.max_payload ||
        c->in_len - c->in_pos < HEADER + (size_t)len)
        return 0;
    out->len = len;
    out->type = get_u16(c->in + c->in_pos + 2);
    out->payload = c->in + c->in_pos + HEADER;
    c->in_pos += HEADER + len;
    c->stats.frames_in++;
    return 1;
}

int rp_client_flush(struct rp_client *c, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    while (c->out_len > 0) {
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
