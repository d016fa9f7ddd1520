/*
 * ringport-echo: the network server (rp_server) as an echo server.
 *
 * Raw mode echoes bytes as they arrive (on_data -> rp_server_send_raw);
 * framed mode sends every packet back unchanged, type and payload
 * (on_message -> rp_server_send_frame, a reply copied into the session's
 * outgoing batch). The main thread
 * only waits for SIGINT/SIGTERM on a signalfd and prints a stats line on
 * stderr once a second; the server's own threads do all the I/O.
 *
 * Run and poke it:
 *
 *     ringport-echo --mode raw --port 7000 &
 *     nc 127.0.0.1 7000                  # type a line, it comes back
 *     ringport-echo --port 0 --config examples/echo/echo.ini
 *     ringport-bench --port 7000 --mode framed --size 64-1024 --depth 4
 *
 * The first line on stdout is "listening on ADDR:PORT" (flushed); a final
 * line of totals follows on stdout at exit. With --metrics ADDR:PORT the
 * second line is "metrics on ADDR:PORT" (the bound port) and
 * `curl ADDR:PORT/metrics` shows the Prometheus text. Exit status: 0 after
 * a graceful stop, 1 if the server cannot start, 2 for a bad flag, value
 * or config file. Settings come from the built-in defaults, then --config
 * FILE (INI, keys named like the long flags: max_sessions = 5000; parsed
 * by rp_config_load), then the flags.
 */
#include <ringport/config.h>
#include <ringport/log.h>
#include <ringport/metrics.h>
#include <ringport/server.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define PROG "ringport-echo"

/* What the command line and the config file set: the server's keys
   (rp_config_server_keys) plus the program's own. */
struct echo_opts {
    struct rp_server_config cfg;
    char listen[64];
    char metrics[80]; /* ADDR:PORT of GET /metrics; "" = off */
    bool stats;
    char ws_port[8];      /* "" = no WebSocket listener */
    char ws_origins[512]; /* Origin allow-list; "" = any */
    struct rp_config_key keys[RP_CONFIG_SERVER_KEYS + 4];
    size_t nkeys;
};

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: " PROG " [--config FILE] [--listen ADDR] [--port N] "
        "[--mode raw|framed]\n"
        "              [--threads N] [--backend auto|uring|epoll] "
        "[--max-sessions N]\n"
        "              [--max-payload BYTES] [--send-queue-limit BYTES]\n"
        "              [--idle-timeout-ms MS] [--frame-deadline-ms MS]\n"
        "              [--first-packet-deadline-ms MS] [--max-iov N]\n"
        "              [--stop-drain-ms MS] [--spin-us US] "
        "[--recv-buffer-size BYTES]\n"
        "              [--ws-port N] [--ws-origins LIST]\n"
        "              [--metrics ADDR:PORT] [--no-stats] [--help]\n"
        "  --config FILE      INI file, keys as the long flags without dashes\n"
        "                     (max_sessions = 100); flags override it\n"
        "  --listen ADDR      numeric IPv4/IPv6 address (default 127.0.0.1)\n"
        "  --port N           TCP port (default 7000; 0 picks a free one)\n"
        "  --mode M           raw (bytes) or framed (packets; default)\n"
        "  --threads N        I/O threads (default 1)\n"
        "  --backend B        auto, uring or epoll (default auto)\n"
        "  --max-sessions N   sessions at once; more are refused\n"
        "  --max-payload B    largest packet payload accepted (framed)\n"
        "  --send-queue-limit B  bytes queued per session before it is cut\n"
        "  --idle-timeout-ms MS  cut a session silent this long (0 off)\n"
        "  --frame-deadline-ms MS  a started packet must complete in this\n"
        "  --first-packet-deadline-ms MS  first packet after connect (0 off)\n"
        "  --max-iov N        packets per gather send\n"
        "  --stop-drain-ms MS queued sends get this long at stop\n"
        "  --spin-us US       I/O threads poll this long before sleeping\n"
        "  --recv-buffer-size B  receive buffer per session / provided buffer\n"
        "  --ws-port N        also a WebSocket listener (RFC 6455) on this "
        "port\n"
        "                     (0 picks a free one; framed mode only)\n"
        "  --ws-origins LIST  comma-separated Origin allow-list (default "
        "any)\n"
        "  --metrics ADDR:PORT   serve Prometheus metrics at GET /metrics\n"
        "                     (off by default; port 0 picks a free one)\n"
        "  --no-stats         no once-a-second stats line on stderr\n"
        "Prints \"listening on ADDR:PORT\" first (then \"ws listening on "
        "ADDR:PORT\"\nwith --ws-port, and \"metrics on ADDR:PORT\"); stops "
        "gracefully on SIGINT\nor SIGTERM.\n");
}

__attribute__((format(printf, 1, 2), noreturn)) static void
bad_usage(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, PROG ": ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

/* ---- settings: one key table for the flags and the config file ------ */

static void opts_init(struct echo_opts *o)
{
    rp_server_config_init(&o->cfg);
    o->cfg.port = 7000;
    o->stats = true;
    o->nkeys = rp_config_server_keys(&o->cfg, o->listen, sizeof o->listen,
                                     o->keys, RP_CONFIG_SERVER_KEYS);
    o->keys[o->nkeys++] = (struct rp_config_key){
        "metrics", RP_CONFIG_ENDPOINT, o->metrics, sizeof o->metrics, NULL};
    o->keys[o->nkeys++] =
        (struct rp_config_key){"stats", RP_CONFIG_BOOL, &o->stats, 0, NULL};
    /* Text, not a number: an absent key means no WebSocket listener, and
       0 an ephemeral port. */
    o->keys[o->nkeys++] = (struct rp_config_key){
        "ws_port", RP_CONFIG_STR, o->ws_port, sizeof o->ws_port, NULL};
    o->keys[o->nkeys++] = (struct rp_config_key){
        "ws_origins", RP_CONFIG_STR, o->ws_origins, sizeof o->ws_origins, NULL};
}

static void parse_args(int argc, char **argv, struct echo_opts *o)
{
    static const struct rp_config_flag flags[] = {
        {"--no-stats", "stats", "false"},
        {NULL, NULL, NULL},
    };
    char err[256];
    int r = rp_config_apply_args(o->keys, o->nkeys, flags, "echo", argc, argv,
                                 err, sizeof err);
    if (r == RP_CONFIG_HELP) {
        usage(stdout);
        exit(0);
    }
    if (r < 0)
        bad_usage("%s", err);
}

/* ---- the echo ---------------------------------------------------------- */

static void on_join(struct rp_server *srv, rp_sid sid, void *user)
{
    (void)srv, (void)sid, (void)user;
}

static void on_message(struct rp_server *srv, rp_sid sid, void *data,
                       const struct rp_message *msg, void *user)
{
    (void)data, (void)user;
    /* A reply from the session's own callback: the frame is copied
       straight into the session's outgoing batch, no packet.
       -ENOBUFS: the peer does not read and is being cut (SEND_OVERFLOW);
       -ENOTCONN: it is closing. Either way there is nothing left to do. */
    int r = rp_server_send_frame(srv, sid, msg->type, msg->payload, msg->len);
    if (r == -ENOMEM)
        rp_server_disconnect(srv, sid); /* an echo that skips one would lie */
}

static void on_data(struct rp_server *srv, rp_sid sid, void *data,
                    const void *bytes, size_t len, void *user)
{
    (void)data, (void)user;
    (void)rp_server_send_raw(srv, sid, bytes, len);
}

static void on_leave(struct rp_server *srv, rp_sid sid, void *data,
                     enum rp_leave_reason reason, void *user)
{
    (void)srv, (void)sid, (void)data, (void)reason, (void)user;
}

/* ---- stats ------------------------------------------------------------- */

static uint64_t leaves_total(const struct rp_server_stats *s)
{
    uint64_t n = 0;
    for (int r = 0; r < RP_LEAVE_REASON_COUNT; r++)
        n += s->leaves[r];
    return n;
}

/* The totals at exit (stdout), then each disconnect reason that occurred. */
static void stats_final(const struct rp_server_stats *s)
{
    printf("final: accepts %" PRIu64 ", refused %" PRIu64
           ", accept errors %" PRIu64 ", max sessions %" PRIu64
           ", msgs in %" PRIu64 " out %" PRIu64 ", bytes in %" PRIu64
           " out %" PRIu64 ", sends %" PRIu64 " (%.1f pkts/send), "
           "disconnects %" PRIu64,
           s->accepts, s->refused, s->accept_errors, s->sessions_max,
           s->packets_in, s->packets_out, s->bytes_in, s->bytes_out, s->sends,
           s->sends ? (double)s->packets_out / (double)s->sends : 0.0,
           leaves_total(s));
    for (int r = 0; r < RP_LEAVE_REASON_COUNT; r++)
        if (s->leaves[r])
            printf(", %s %" PRIu64,
                   rp_leave_reason_name((enum rp_leave_reason)r), s->leaves[r]);
    printf("\n");
    /* Where the system calls went (docs/server.md "I/O counters"). */
    printf("final io: enters %" PRIu64 " (waits %" PRIu64 ", empty %" PRIu64
           ", short %" PRIu64 "), completions %" PRIu64 ", recv nobufs %" PRIu64
           " rearms %" PRIu64 ", sends late %" PRIu64 " short %" PRIu64
           ", buffers %" PRIu64 " out max %" PRIu64 ", lent %" PRIu64
           " max %" PRIu64 "\n",
           s->io_enters, s->io_waits, s->io_waits_empty, s->io_waits_short,
           s->io_completions, s->recv_nobufs, s->recv_rearms, s->sends_late,
           s->sends_short, s->buffers, s->buffers_out_max, s->buffers_lent,
           s->buffers_lent_max);
    fflush(stdout);
}

/*
 * Waits for SIGINT/SIGTERM on 'sfd', printing the stats line
 * (rp_statline_format) on stderr every second unless 'stats' is off.
 * Returns the signal.
 */
static int wait_for_stop(struct rp_metrics *m, int sfd, bool stats)
{
    struct rp_statline_sample prev, cur;
    char line[512];
    rp_metrics_sample_now(m, &prev);
    for (;;) {
        struct pollfd p = {.fd = sfd, .events = POLLIN};
        int r = poll(&p, 1, 1000);
        if (r > 0) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
                return (int)si.ssi_signo;
            continue;
        }
        if (r < 0 && errno != EINTR)
            return -errno;
        if (!stats)
            continue;
        rp_metrics_sample_now(m, &cur);
        if (cur.t_ns - prev.t_ns < 900000000ull)
            continue;
        rp_statline_format(&prev, &cur, line, sizeof line);
        fprintf(stderr, "%s\n", line);
        prev = cur;
    }
}

/* "metrics on 127.0.0.1:9100": the endpoint as given, with the bound port
   (which differs when the given one was 0). */
static void print_metrics_line(const char *endpoint, uint16_t port)
{
    const char *colon = strrchr(endpoint, ':');
    int hostlen = (int)(colon - endpoint);
    printf("metrics on %.*s:%u\n", hostlen ? hostlen : 7,
           hostlen ? endpoint : "0.0.0.0", port);
}

int main(int argc, char **argv)
{
    static struct echo_opts o; /* big (key table): not on the stack */
    struct rp_server *srv;
    struct rp_metrics *m;
    char err[256];
    int r;

    opts_init(&o);
    o.cfg.cb.on_join = on_join;
    o.cfg.cb.on_message = on_message;
    o.cfg.cb.on_data = on_data;
    o.cfg.cb.on_leave = on_leave;
    parse_args(argc, argv, &o);
    if (o.ws_port[0]) {
        char *end;
        unsigned long port = strtoul(o.ws_port, &end, 10);
        if (*end || port > 65535 || o.ws_port[0] == '-')
            bad_usage("--ws-port wants a port (0..65535), got '%s'", o.ws_port);
        o.cfg.ws_enabled = true;
        o.cfg.ws_port = (uint16_t)port;
        o.cfg.ws_origins = o.ws_origins;
    }
    if (rp_server_config_validate(&o.cfg, err, sizeof err) < 0)
        bad_usage("%s", err);

    /* Block the stop signals before any thread exists, so every server
       thread inherits the mask and only the signalfd sees them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sfd < 0) {
        fprintf(stderr, PROG ": signalfd: %s\n", strerror(errno));
        return 1;
    }

    r = rp_server_create(&o.cfg, &srv);
    if (r < 0) {
        fprintf(stderr, PROG ": cannot listen on %s:%u: %s\n",
                o.cfg.listen_addr, o.cfg.port, strerror(-r));
        return 1;
    }
    /* The endpoint's thread starts here, also with the signals blocked. */
    r = rp_metrics_create(o.metrics, &m);
    if (r < 0) {
        fprintf(stderr, PROG ": cannot serve metrics on %s: %s\n", o.metrics,
                strerror(-r));
        rp_server_destroy(srv);
        return 1;
    }
    rp_metrics_add_server(m, srv, NULL);
    r = rp_server_start(srv);
    if (r < 0) {
        fprintf(stderr, PROG ": cannot start: %s\n", strerror(-r));
        rp_metrics_destroy(m);
        rp_server_destroy(srv);
        return 1;
    }
    printf(strchr(o.cfg.listen_addr, ':') ? "listening on [%s]:%u\n"
                                          : "listening on %s:%u\n",
           o.cfg.listen_addr, rp_server_port(srv));
    if (o.cfg.ws_enabled)
        printf(strchr(o.cfg.listen_addr, ':') ? "ws listening on [%s]:%u\n"
                                              : "ws listening on %s:%u\n",
               o.cfg.listen_addr, rp_server_ws_port(srv));
    if (o.metrics[0])
        print_metrics_line(o.metrics, rp_metrics_port(m));
    fflush(stdout);
    RP_INFO("echo", "%s mode, %u I/O thread(s), backend %s",
            o.cfg.mode == RP_SERVER_RAW ? "raw" : "framed", o.cfg.io_threads,
            rp_backend_name(rp_server_backend(srv)));

    r = wait_for_stop(m, sfd, o.stats);
    if (r < 0)
        fprintf(stderr, PROG ": waiting for a signal: %s\n", strerror(-r));
    rp_server_stop(srv);

    struct rp_server_stats s;
    rp_server_get_stats(srv, &s);
    stats_final(&s);
    rp_metrics_destroy(m);
    rp_server_destroy(srv);
    close(sfd);
    return r < 0 ? 1 : 0;
}
