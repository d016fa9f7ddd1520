/*
 * ringport-echo: the network server (rp_server) as an echo server.
 *
 * Raw mode echoes bytes as they arrive (on_data -> rp_server_send_raw);
 * framed mode sends every packet back unchanged, type and payload
 * (on_message -> rp_message_to_packet -> rp_server_send). The main thread
 * only waits for SIGINT/SIGTERM on a signalfd and prints a stats line on
 * stderr once a second; the server's own threads do all the I/O.
 *
 * Run and poke it:
 *
 *     ringport-echo --mode raw --port 7000 &
 *     nc 127.0.0.1 7000                  # type a line, it comes back
 *     ringport-echo --port 0 --config examples/echo/echo.ini
 *     ringport-echo-load --port 7000 --mode framed --size 64..1024 --depth 4
 *
 * The first line on stdout is "listening on ADDR:PORT" (flushed); a final
 * line of totals follows on stdout at exit. Exit status: 0 after a graceful
 * stop, 1 if the server cannot start, 2 for a bad flag, value or config
 * file. Settings come from the built-in defaults, then --config FILE (INI,
 * keys named like the long flags: max_sessions = 5000), then the flags.
 */
#include <ringport/log.h>
#include <ringport/server.h>

#include <errno.h>
#include <ini.h>
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

/* What the command line and the config file set, applied to the server
   config in one place (echo_apply). */
struct echo_opts {
    struct rp_server_config cfg;
    char *listen; /* owned copy: the file's values do not outlive ini_parse */
    bool stats;
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
        "              [--first-packet-deadline-ms MS] [--spin-us US] "
        "[--no-stats]\n"
        "              [--help]\n"
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
        "  --spin-us US       I/O threads poll this long before sleeping\n"
        "  --no-stats         no once-a-second stats line on stderr\n"
        "Prints \"listening on ADDR:PORT\" first; stops gracefully on SIGINT "
        "or SIGTERM.\n");
}

/* ---- settings: one table for the flags and the config file ---------- */

enum key_kind { K_STR, K_PORT, K_U32, K_MODE, K_BACKEND, K_BOOL };

struct key {
    const char *name; /* config key; the flag is "--" + name with '-' */
    enum key_kind kind;
    size_t off; /* into struct rp_server_config (K_U32) */
};

#define CFG_U32(field)                                                         \
    {                                                                          \
#field, K_U32, offsetof(struct rp_server_config, field)                \
    }

static const struct key keys[] = {
    {"listen", K_STR, 0},
    {"port", K_PORT, 0},
    {"mode", K_MODE, 0},
    {"threads", K_U32, offsetof(struct rp_server_config, io_threads)},
    {"backend", K_BACKEND, 0},
    CFG_U32(max_sessions),
    CFG_U32(max_payload),
    CFG_U32(send_queue_limit),
    CFG_U32(idle_timeout_ms),
    CFG_U32(frame_deadline_ms),
    CFG_U32(first_packet_deadline_ms),
    CFG_U32(spin_us),
    {"stats", K_BOOL, 0},
};

static const struct key *key_find(const char *name)
{
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    if (*s < '0' || *s > '9') /* strtoull would take "-1" and " 1" */
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return false;
    *out = v;
    return true;
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *yes[] = {"1", "true", "yes", "on"};
    static const char *no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return (*out = true);
        if (strcasecmp(s, no[i]) == 0)
            return !(*out = false);
    }
    return false;
}

/*
 * Sets key 'k' from 'value'. Returns NULL, or what the value should have
 * been (for the caller's error line, which knows where it came from).
 * Ranges of the numbers are rp_server_config_validate's business.
 */
static const char *echo_apply(struct echo_opts *o, const struct key *k,
                              const char *value)
{
    uint64_t v;
    switch (k->kind) {
    case K_STR: {
        char *copy = strdup(value);
        if (!copy)
            return "memory for a copy (out of memory)";
        free(o->listen);
        o->listen = copy;
        o->cfg.listen_addr = copy;
        return NULL;
    }
    case K_PORT:
        if (!parse_u64(value, 65535, &v))
            return "a port number 0..65535";
        o->cfg.port = (uint16_t)v;
        return NULL;
    case K_U32:
        if (!parse_u64(value, UINT32_MAX, &v))
            return "a whole number";
        *(uint32_t *)((char *)&o->cfg + k->off) = (uint32_t)v;
        return NULL;
    case K_MODE:
        if (strcmp(value, "raw") == 0)
            o->cfg.mode = RP_SERVER_RAW;
        else if (strcmp(value, "framed") == 0)
            o->cfg.mode = RP_SERVER_FRAMED;
        else
            return "raw or framed";
        return NULL;
    case K_BACKEND: {
        int b = rp_backend_parse(value);
        if (b < 0)
            return "auto, uring or epoll";
        o->cfg.backend = (enum rp_backend_kind)b;
        return NULL;
    }
    case K_BOOL:
        if (!parse_bool(value, &o->stats))
            return "true or false";
        return NULL;
    }
    return "a known kind";
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

/* ---- the config file ---------------------------------------------------- */

/* The first entry the handler refused; inih reports only its line. */
struct ini_state {
    struct echo_opts *o;
    char error[256];
    char name[64]; /* its key: the line that holds it is the error line */
    bool failed;
};

static int ini_entry(void *user, const char *section, const char *name,
                     const char *value)
{
    struct ini_state *st = user;
    if (st->failed)
        return 1; /* keep the first error: its line is what ini_parse says */
    const struct key *k = key_find(name);
    const char *want = NULL;
    bool bad_section = *section && strcmp(section, "echo") != 0;
    if (bad_section)
        snprintf(st->error, sizeof st->error,
                 "section [%s]: unknown (keys go at the top or in [echo])",
                 section);
    else if (!k)
        snprintf(st->error, sizeof st->error, "key '%s': unknown", name);
    else if ((want = echo_apply(st->o, k, value)) != NULL)
        snprintf(st->error, sizeof st->error, "key '%s': wants %s, got '%s'",
                 name, want, value);
    else
        return 1;
    snprintf(st->name, sizeof st->name, "%s", name);
    st->failed = true;
    return 0;
}

/* Line 'line' of 'path' (1-based) into 'buf', or "" if it cannot be read. */
static void file_line(const char *path, int line, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    buf[0] = '\0';
    if (!f)
        return;
    for (int i = 1; i <= line && fgets(buf, (int)len, f); i++)
        if (i == line) {
            fclose(f);
            return;
        }
    buf[0] = '\0';
    fclose(f);
}

static void load_config(struct echo_opts *o, const char *path)
{
    struct ini_state st = {.o = o};
    int r = ini_parse(path, ini_entry, &st);
    if (r == 0)
        return;
    if (r == -1)
        bad_usage("%s: cannot open: %s", path, strerror(errno));
    if (r < 0)
        bad_usage("%s: cannot read (out of memory)", path);
    /*
     * inih gives the line of the first error, whether a syntax error or an
     * entry we refused. Ours was the first only if that line holds its
     * key; else a syntax error came first.
     */
    char text[512];
    file_line(path, r, text, sizeof text);
    if (st.failed && strstr(text, st.name) == NULL)
        st.failed = false;
    if (st.failed)
        bad_usage("%s:%d: %s", path, r, st.error);
    bad_usage("%s:%d: syntax error (want 'key = value')", path, r);
}

/* ---- the command line -------------------------------------------------- */

/* "--max-sessions" -> "max_sessions" in 'buf'; NULL if not a long flag. */
static const struct key *flag_key(const char *flag, char *buf, size_t len)
{
    if (strncmp(flag, "--", 2) != 0 || strlen(flag + 2) >= len)
        return NULL;
    size_t i = 0;
    for (const char *p = flag + 2; *p; p++)
        buf[i++] = *p == '-' ? '_' : *p;
    buf[i] = '\0';
    if (strchr(flag + 2, '_')) /* the flags spell words with '-' only */
        return NULL;
    return key_find(buf);
}

static void parse_args(int argc, char **argv, struct echo_opts *o)
{
    const char *config = NULL;
    char name[64];
    /* First the file, so that every flag overrides it. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(argv[i], "--no-stats") == 0)
            continue;
        if (strcmp(argv[i], "--config") != 0 &&
            !flag_key(argv[i], name, sizeof name))
            bad_usage("unknown flag '%s' (try --help)", argv[i]);
        if (i + 1 >= argc)
            bad_usage("%s needs a value (try --help)", argv[i]);
        if (strcmp(argv[i], "--config") == 0)
            config = argv[i + 1];
        i++;
    }
    if (config)
        load_config(o, config);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-stats") == 0) {
            o->stats = false;
            continue;
        }
        const char *flag = argv[i], *value = argv[++i];
        const struct key *k = flag_key(flag, name, sizeof name);
        if (!k || strcmp(k->name, "stats") == 0) {
            if (strcmp(flag, "--config") == 0)
                continue;
            bad_usage("unknown flag '%s' (try --help)", flag);
        }
        const char *want = echo_apply(o, k, value);
        if (want)
            bad_usage("%s wants %s, got '%s'", flag, want, value);
    }
}

/* ---- the echo ---------------------------------------------------------- */

static void on_join(struct rp_server *srv, rp_sid sid, void *user)
{
    (void)srv, (void)sid, (void)user;
}

static void on_message(struct rp_server *srv, rp_sid sid,
                       const struct rp_message *msg, void *user)
{
    struct rp_packet *pkt;
    (void)user;
    if (rp_message_to_packet(msg, &pkt) < 0) {
        /* Out of memory: an echo that skips a packet would be a lie. */
        rp_server_disconnect(srv, sid);
        return;
    }
    /* -ENOBUFS: the peer does not read and is being cut (SEND_OVERFLOW);
       -ENOTCONN: it is closing. Either way there is nothing left to do. */
    (void)rp_server_send(srv, sid, pkt);
    rp_packet_unref(pkt);
}

static void on_data(struct rp_server *srv, rp_sid sid, const void *data,
                    size_t len, void *user)
{
    (void)user;
    (void)rp_server_send_raw(srv, sid, data, len);
}

static void on_leave(struct rp_server *srv, rp_sid sid,
                     enum rp_leave_reason reason, void *user)
{
    (void)srv, (void)sid, (void)reason, (void)user;
}

/* ---- stats ------------------------------------------------------------- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t leaves_total(const struct rp_server_stats *s)
{
    uint64_t n = 0;
    for (int r = 0; r < RP_LEAVE_REASON_COUNT; r++)
        n += s->leaves[r];
    return n;
}

/* One line of rates over the last interval (stderr). */
static void stats_line(const struct rp_server_stats *a,
                       const struct rp_server_stats *b, double secs)
{
    double sends = (double)(b->sends - a->sends);
    double pkts = (double)(b->packets_out - a->packets_out);
    fprintf(stderr,
            "sessions %" PRIu64 " | accepts/s %.0f | msgs in/s %.0f out/s "
            "%.0f | MB/s in %.2f out %.2f | sends/s %.0f (%.1f pkts/send) | "
            "disconnects %" PRIu64 "\n",
            b->sessions, (double)(b->accepts - a->accepts) / secs,
            (double)(b->packets_in - a->packets_in) / secs, pkts / secs,
            (double)(b->bytes_in - a->bytes_in) / secs / 1e6,
            (double)(b->bytes_out - a->bytes_out) / secs / 1e6, sends / secs,
            sends > 0 ? pkts / sends : 0.0, leaves_total(b));
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
    fflush(stdout);
}

/*
 * Waits for SIGINT/SIGTERM on 'sfd', printing a stats line every second
 * unless 'stats' is off. Returns the signal.
 */
static int wait_for_stop(struct rp_server *srv, int sfd, bool stats)
{
    struct rp_server_stats prev, cur;
    uint64_t prev_ns = now_ns();
    rp_server_get_stats(srv, &prev);
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
        uint64_t t = now_ns();
        if (!stats || t - prev_ns < 900000000ull)
            continue;
        rp_server_get_stats(srv, &cur);
        stats_line(&prev, &cur, (double)(t - prev_ns) / 1e9);
        prev = cur;
        prev_ns = t;
    }
}

int main(int argc, char **argv)
{
    struct echo_opts o = {.stats = true};
    struct rp_server *srv;
    char err[256];
    int r;

    rp_server_config_init(&o.cfg);
    o.cfg.port = 7000;
    o.cfg.cb.on_join = on_join;
    o.cfg.cb.on_message = on_message;
    o.cfg.cb.on_data = on_data;
    o.cfg.cb.on_leave = on_leave;
    parse_args(argc, argv, &o);
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
    r = rp_server_start(srv);
    if (r < 0) {
        fprintf(stderr, PROG ": cannot start: %s\n", strerror(-r));
        rp_server_destroy(srv);
        return 1;
    }
    printf(strchr(o.cfg.listen_addr, ':') ? "listening on [%s]:%u\n"
                                          : "listening on %s:%u\n",
           o.cfg.listen_addr, rp_server_port(srv));
    fflush(stdout);
    RP_INFO("echo", "%s mode, %u I/O thread(s), backend %s",
            o.cfg.mode == RP_SERVER_RAW ? "raw" : "framed", o.cfg.io_threads,
            rp_backend_name(rp_server_backend(srv)));

    r = wait_for_stop(srv, sfd, o.stats);
    if (r < 0)
        fprintf(stderr, PROG ": waiting for a signal: %s\n", strerror(-r));
    rp_server_stop(srv);

    struct rp_server_stats s;
    rp_server_get_stats(srv, &s);
    stats_final(&s);
    rp_server_destroy(srv);
    close(sfd);
    free(o.listen);
    return r < 0 ? 1 : 0;
}
