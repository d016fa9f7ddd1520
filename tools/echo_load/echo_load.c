/*
 * ringport-echo-load: a small verifying load client for echo servers.
 *
 * One thread, non-blocking sockets, level-triggered epoll. Each of the
 * --connections keeps up to --depth messages in flight. Message 'seq' of
 * connection 'c' is deterministic: its size is --size, or drawn from
 * --size MIN..MAX by (c, seq); its first 8 bytes are seq (little-endian),
 * the rest a splitmix64 stream seeded by (c, seq). In --mode framed each
 * message is one packet of docs/protocol.md (u16 length, u16 type = seq,
 * then the message as payload), for servers that echo packets.
 * Every echoed byte is checked, in order, against what was sent; a
 * mismatch, an echo of bytes never sent, an unexpected close or a failed
 * connect ends the run with status 1. After --duration seconds no new
 * message starts; the run waits (bounded) for the outstanding echoes and
 * prints msgs/s, MB/s (echoed payload, one direction) and the p50/p99
 * round trip (from the first byte written to the last byte echoed), plus
 * one JSON line with --json.
 *
 *     ringport-echo-load --port 7000 --connections 50 --size 64 \
 *         --depth 1 --duration 5 --json
 *     ringport-echo-load --port 7000 --mode framed --size 64..1024 --depth 4
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_NS (5ull * 1000000000ull)
#define DRAIN_TIMEOUT_NS (5ull * 1000000000ull)

struct opts {
    const char *host;
    uint16_t port;
    uint32_t connections;
    uint32_t size;     /* smallest message (payload in framed mode) */
    uint32_t size_max; /* largest; == size for a fixed size */
    uint32_t depth;
    double duration;
    bool json;
    bool framed; /* each message goes as one length-prefixed packet */
};

/* Framed mode: the packet header in front of each message. */
#define FRAME_HEADER 4u
#define FRAME_MAX_PAYLOAD 65535u

/*
 * Messages [recv_seq, send_seq) are in flight; send_off bytes of message
 * send_seq are written (0: not started), recv_off bytes of message
 * recv_seq are echoed and checked. Invariant: the echoed byte count never
 * passes the written one.
 */
struct conn {
    int fd;
    uint32_t id;
    bool connected;
    bool want_out; /* EPOLLOUT armed: a write was cut short */
    uint64_t send_seq, recv_seq;
    uint32_t send_off, recv_off;
    uint32_t send_len, recv_len; /* wire bytes of those two messages */
    uint8_t *send_msg;           /* wire bytes of message send_seq */
    uint8_t *expect;             /* wire bytes of message recv_seq */
    uint64_t *sent_ns; /* [depth]: when message seq % depth was started */
};

/* Latency histogram: exact below 64 ns, then 64 sub-buckets per power of
   two (about 1.5 % wide). */
#define HIST_BUCKETS (59 * 64)
static uint64_t hist[HIST_BUCKETS];
static uint64_t hist_count;

static unsigned hist_index(uint64_t v)
{
    if (v < 64)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    return (msb - 5) * 64 + (unsigned)((v >> (msb - 6)) & 63);
}

/* The upper bound of bucket 'i', in ns. */
static uint64_t hist_value(unsigned i)
{
    if (i < 64)
        return i;
    unsigned msb = i / 64 + 5;
    return ((uint64_t)(64 + i % 64 + 1) << (msb - 6)) - 1;
}

static uint64_t hist_percentile(double p)
{
    uint64_t want = (uint64_t)(p * (double)hist_count + 0.5), seen = 0;
    if (want == 0)
        want = 1;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += hist[i];
        if (seen >= want)
            return hist_value(i);
    }
    return 0;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The message's size (payload), from --size or drawn from its range. */
static uint32_t message_size(const struct opts *op, uint32_t conn, uint64_t seq)
{
    uint32_t span = op->size_max - op->size + 1;
    if (span == 1)
        return op->size;
    uint64_t z = mix64(((uint64_t)conn << 40) ^ seq ^ 0x512Eull);
    return op->size + (uint32_t)(z % span);
}

static void payload_fill(uint8_t *buf, uint32_t size, uint32_t conn,
                         uint64_t seq)
{
    uint64_t state = ((uint64_t)conn << 40) ^ seq ^ 0x5EEDull;
    uint32_t i = 0;
    for (; i < size && i < 8; i++)
        buf[i] = (uint8_t)(seq >> (8 * i));
    while (i < size) {
        uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        for (int k = 0; k < 8 && i < size; k++, i++)
            buf[i] = (uint8_t)(z >> (8 * k));
    }
}

/* Writes message 'seq' of 'conn' as it goes on the wire into 'buf' (room
   for FRAME_HEADER + size_max bytes); returns its length. */
static uint32_t message_fill(const struct opts *op, uint8_t *buf, uint32_t conn,
                             uint64_t seq)
{
    uint32_t size = message_size(op, conn, seq);
    if (!op->framed) {
        payload_fill(buf, size, conn, seq);
        return size;
    }
    buf[0] = (uint8_t)size;
    buf[1] = (uint8_t)(size >> 8);
    buf[2] = (uint8_t)seq;
    buf[3] = (uint8_t)(seq >> 8);
    payload_fill(buf + FRAME_HEADER, size, conn, seq);
    return FRAME_HEADER + size;
}

__attribute__((format(printf, 1, 2), noreturn)) static void
fail(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "echo-load: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

__attribute__((noreturn)) static void usage(FILE *f, int status)
{
    fprintf(f, "usage: ringport-echo-load [--host ADDR] [--port N] "
               "[--connections N] [--size BYTES|MIN..MAX]\n"
               "                          [--depth D] [--duration SECONDS] "
               "[--mode raw|framed] [--json] [--help]\n"
               "  --host ADDR        numeric address (default 127.0.0.1)\n"
               "  --port N           server port (default 7000)\n"
               "  --connections N    connections (default 50)\n"
               "  --size BYTES       message size (default 64), or MIN..MAX "
               "for sizes drawn\n"
               "                     per message (framed: payload bytes, at "
               "most 65535)\n"
               "  --mode M           raw: bytes (default); framed: each "
               "message one packet\n"
               "  --depth D          messages in flight per connection "
               "(default 1)\n"
               "  --duration S       seconds of load (default 5)\n"
               "  --json             also print one JSON line of results\n"
               "Exit status: 0 all echoes verified, 1 mismatch / close / "
               "connect failure, 2 bad flag.\n");
    exit(status);
}

static double parse_num(const char *flag, const char *s, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr,
                "ringport-echo-load: %s wants a number in [%g, %g], got "
                "'%s'\n",
                flag, lo, hi, s);
        exit(2);
    }
    return v;
}

/* "N" or "MIN..MAX". */
static void parse_size(const char *v, struct opts *o)
{
    char lo[32];
    const char *dots = strstr(v, "..");
    if (!dots) {
        o->size = o->size_max = (uint32_t)parse_num("--size", v, 1, 16 << 20);
        return;
    }
    snprintf(lo, sizeof lo, "%.*s", (int)(dots - v), v);
    o->size = (uint32_t)parse_num("--size", lo, 1, 16 << 20);
    o->size_max = (uint32_t)parse_num("--size", dots + 2, o->size, 16 << 20);
}

static void parse_args(int argc, char **argv, struct opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            usage(stdout, 0);
        if (strcmp(a, "--json") == 0) {
            o->json = true;
            continue;
        }
        if (i + 1 >= argc || strncmp(a, "--", 2) != 0) {
            fprintf(stderr,
                    "ringport-echo-load: bad flag '%s' (try "
                    "--help)\n",
                    a);
            exit(2);
        }
        const char *v = argv[++i];
        if (strcmp(a, "--host") == 0)
            o->host = v;
        else if (strcmp(a, "--port") == 0)
            o->port = (uint16_t)parse_num(a, v, 1, 65535);
        else if (strcmp(a, "--connections") == 0)
            o->connections = (uint32_t)parse_num(a, v, 1, 100000);
        else if (strcmp(a, "--size") == 0)
            parse_size(v, o);
        else if (strcmp(a, "--mode") == 0) {
            if (strcmp(v, "raw") != 0 && strcmp(v, "framed") != 0) {
                fprintf(stderr,
                        "ringport-echo-load: --mode wants raw or framed, "
                        "got '%s'\n",
                        v);
                exit(2);
            }
            o->framed = strcmp(v, "framed") == 0;
        } else if (strcmp(a, "--depth") == 0)
            o->depth = (uint32_t)parse_num(a, v, 1, 4096);
        else if (strcmp(a, "--duration") == 0)
            o->duration = parse_num(a, v, 0.001, 86400);
        else {
            fprintf(stderr,
                    "ringport-echo-load: unknown flag '%s' (try "
                    "--help)\n",
                    a);
            exit(2);
        }
    }
    if (o->framed && o->size_max > FRAME_MAX_PAYLOAD) {
        fprintf(stderr,
                "ringport-echo-load: --mode framed wants --size at most "
                "%u\n",
                FRAME_MAX_PAYLOAD);
        exit(2);
    }
}

static struct opts o = {"127.0.0.1", 7000, 50, 64, 64, 1, 5.0, false, false};
static int epfd;
static bool sending = true; /* false once the duration is over */
static uint64_t msgs_done, msgs_in_window, bytes_in_window;

static void conn_watch(struct conn *c, bool want_out)
{
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0),
                             .data.ptr = c};
    if (c->want_out == want_out)
        return;
    c->want_out = want_out;
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        fail("epoll_ctl: %s", strerror(errno));
}

/* Writes while the window allows; arms EPOLLOUT if the socket is full. */
static void conn_send(struct conn *c)
{
    for (;;) {
        if (c->send_off == 0) {
            if (!sending || c->send_seq - c->recv_seq >= o.depth)
                break;
            c->send_len = message_fill(&o, c->send_msg, c->id, c->send_seq);
            c->sent_ns[c->send_seq % o.depth] = now_ns();
        }
        ssize_t n = send(c->fd, c->send_msg + c->send_off,
                         c->send_len - c->send_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                conn_watch(c, true);
                return;
            }
            fail("connection %u: send: %s", c->id, strerror(errno));
        }
        c->send_off += (uint32_t)n;
        if (c->send_off == c->send_len) {
            c->send_seq++;
            c->send_off = 0;
        }
    }
    conn_watch(c, false);
}

static void conn_check(struct conn *c, const uint8_t *p, size_t n)
{
    while (n > 0) {
        if (c->recv_off == 0)
            c->recv_len = message_fill(&o, c->expect, c->id, c->recv_seq);
        uint32_t avail = c->recv_len - c->recv_off;
        if (c->recv_seq == c->send_seq)
            avail = c->send_off - c->recv_off;
        if (avail == 0)
            fail("connection %u: %zu bytes echoed that were never sent", c->id,
                 n);
        uint32_t take = n < avail ? (uint32_t)n : avail;
        if (memcmp(p, c->expect + c->recv_off, take) != 0) {
            uint32_t k = 0;
            while (p[k] == c->expect[c->recv_off + k])
                k++;
            fail("connection %u: message %" PRIu64 " byte %u: got 0x%02x, "
                 "want 0x%02x",
                 c->id, c->recv_seq, c->recv_off + k, p[k],
                 c->expect[c->recv_off + k]);
        }
        c->recv_off += take;
        p += take;
        n -= take;
        if (c->recv_off == c->recv_len) {
            uint64_t rtt = now_ns() - c->sent_ns[c->recv_seq % o.depth];
            hist[hist_index(rtt)]++;
            hist_count++;
            msgs_done++;
            if (sending) {
                msgs_in_window++;
                bytes_in_window += c->recv_len;
            }
            c->recv_seq++;
            c->recv_off = 0;
        }
    }
}

static void conn_recv(struct conn *c)
{
    static uint8_t buf[64 * 1024];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n > 0) {
            conn_check(c, buf, (size_t)n);
            if ((size_t)n < sizeof buf)
                break;
            continue;
        }
        if (n == 0)
            fail("connection %u: closed by the server after %" PRIu64
                 " messages",
                 c->id, c->recv_seq);
        if (errno == EAGAIN || errno == EINTR)
            break;
        fail("connection %u: recv: %s", c->id, strerror(errno));
    }
    conn_send(c);
}

static bool conn_idle(const struct conn *c)
{
    return c->recv_seq == c->send_seq && c->send_off == 0;
}

static void resolve(struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    memset(ss, 0, sizeof *ss);
    if (inet_pton(AF_INET, o.host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(o.port);
        *len = sizeof *in4;
    } else if (inet_pton(AF_INET6, o.host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(o.port);
        *len = sizeof *in6;
    } else {
        fprintf(stderr,
                "ringport-echo-load: --host wants a numeric address, got "
                "'%s'\n",
                o.host);
        exit(2);
    }
}

/* Opens every connection; returns once all are established. */
static void connect_all(struct conn *conns)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int one = 1;
    resolve(&ss, &len);
    for (uint32_t i = 0; i < o.connections; i++) {
        struct conn *c = &conns[i];
        c->id = i;
        c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (c->fd < 0)
            fail("socket: %s", strerror(errno));
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(c->fd, (struct sockaddr *)&ss, len) < 0 &&
            errno != EINPROGRESS)
            fail("connection %u: connect: %s", i, strerror(errno));
        c->want_out = true;
        struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
            fail("epoll_ctl: %s", strerror(errno));
    }
    uint64_t deadline = now_ns() + CONNECT_TIMEOUT_NS;
    uint32_t connected = 0;
    struct epoll_event evs[256];
    while (connected < o.connections) {
        uint64_t now = now_ns();
        if (now >= deadline)
            fail("%u of %u connections not established after 5 s",
                 o.connections - connected, o.connections);
        int n =
            epoll_wait(epfd, evs, 256, (int)((deadline - now) / 1000000) + 1);
        for (int k = 0; k < n; k++) {
            struct conn *c = evs[k].data.ptr;
            int err = 0;
            socklen_t el = sizeof err;
            if (c->connected)
                continue;
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
            if (err)
                fail("connection %u: connect: %s", c->id, strerror(err));
            c->connected = true;
            connected++;
            conn_watch(c, false);
        }
    }
}

int main(int argc, char **argv)
{
    parse_args(argc, argv, &o);
    signal(SIGPIPE, SIG_IGN);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct conn *conns = calloc(o.connections, sizeof *conns);
    if (epfd < 0 || !conns)
        fail("setup: %s", strerror(errno));
    for (uint32_t i = 0; i < o.connections; i++) {
        conns[i].send_msg = malloc(FRAME_HEADER + o.size_max);
        conns[i].expect = malloc(FRAME_HEADER + o.size_max);
        conns[i].sent_ns = calloc(o.depth, sizeof(uint64_t));
        if (!conns[i].send_msg || !conns[i].expect || !conns[i].sent_ns)
            fail("out of memory");
    }
    connect_all(conns);

    uint64_t start = now_ns();
    uint64_t stop = start + (uint64_t)(o.duration * 1e9);
    uint64_t deadline = stop + DRAIN_TIMEOUT_NS;
    for (uint32_t i = 0; i < o.connections; i++)
        conn_send(&conns[i]);

    struct epoll_event evs[256];
    for (;;) {
        uint64_t now = now_ns();
        if (sending && now >= stop)
            sending = false;
        if (!sending) {
            uint32_t busy = 0;
            for (uint32_t i = 0; i < o.connections; i++)
                busy += !conn_idle(&conns[i]);
            if (busy == 0)
                break;
            if (now >= deadline)
                fail("%u connections still wait for echoes 5 s after the "
                     "end",
                     busy);
        }
        uint64_t until = sending ? stop : deadline;
        int timeout = now < until ? (int)((until - now) / 1000000) + 1 : 0;
        int n = epoll_wait(epfd, evs, 256, timeout);
        if (n < 0 && errno != EINTR)
            fail("epoll_wait: %s", strerror(errno));
        for (int k = 0; k < n; k++) {
            struct conn *c = evs[k].data.ptr;
            if (evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                conn_recv(c);
            else
                conn_send(c);
        }
    }

    double secs = (double)(stop - start) / 1e9;
    double rate = (double)msgs_in_window / secs;
    double mbs = (double)bytes_in_window / secs / 1e6;
    char size[48];
    if (o.size == o.size_max)
        snprintf(size, sizeof size, "%u B", o.size);
    else
        snprintf(size, sizeof size, "%u..%u B", o.size, o.size_max);
    double p50 = (double)hist_percentile(0.50) / 1000.0;
    double p99 = (double)hist_percentile(0.99) / 1000.0;
    printf("echo-load: %u connections, %s %s, depth %u, %.1f s: %" PRIu64
           " msgs verified, %.0f msgs/s, %.2f MB/s, p50 %.1f us, p99 %.1f "
           "us\n",
           o.connections, size, o.framed ? "framed" : "raw", o.depth, secs,
           msgs_done, rate, mbs, p50, p99);
    if (o.json)
        printf("{\"connections\":%u,\"size\":%u,\"size_max\":%u,"
               "\"mode\":\"%s\",\"depth\":%u,"
               "\"duration_s\":%.3f,\"msgs\":%" PRIu64 ",\"msgs_per_s\":%.1f,"
               "\"mb_per_s\":%.3f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
               "\"errors\":0}\n",
               o.connections, o.size, o.size_max, o.framed ? "framed" : "raw",
               o.depth, secs, msgs_done, rate, mbs, p50, p99);
    for (uint32_t i = 0; i < o.connections; i++) {
        close(conns[i].fd);
        free(conns[i].send_msg);
        free(conns[i].expect);
        free(conns[i].sent_ns);
    }
    free(conns);
    close(epfd);
    return 0;
}
