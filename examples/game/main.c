/*
 * ringport-game: the game demo server. Three contents, each a content
 * group (rp_group) with its own thread in the hetero layout: the lobby
 * (login, chat, queues), PVP (1v1 rooms at 20 Hz) and the dungeon (a party
 * against monsters at 10 Hz), plus the spectators' content (spectate.c).
 * `--layout homo` runs the same code on one logic thread, the single-Update
 * design, for comparison. The protocol is in docs/protocol.md ("Game
 * messages"); game.h says who owns what.
 *
 * Run and poke it:
 *
 *     ringport-game --port 7200 &
 *     ringport-bench game --port 7200 --bots 100 --duration 10
 *     ringport-game --config examples/game/game.ini --metrics 127.0.0.1:9200
 *     curl 127.0.0.1:9200/metrics | grep ringport_game
 *
 * The first line on stdout is "listening on ADDR:PORT" (flushed), then
 * "metrics on ADDR:PORT" with --metrics; a stats line goes to stderr each
 * second unless --no-stats; at exit a "final:" line of totals on stdout
 * ends with "sessions 0 players 0 names 0" when every session, player
 * record and nickname was released. Exit status: 0 after a graceful stop
 * (SIGINT/SIGTERM), 1 if the server cannot start, 2 for a bad flag, value
 * or config file. Settings: defaults, then --config FILE (INI, keys named
 * like the long flags, at the top or under [game]), then the flags.
 */
#include "game.h"
#include "page.h"

#include <ringport/config.h>
#include <ringport/log.h>
#include <ringport/metrics.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define PROG "ringport-game"

struct game_opts {
    struct rp_server_config cfg;
    char listen[64];
    char metrics[80];
    bool stats;
    int layout; /* enum rp_group_layout */
    struct game_config game;
    char ws_port[8];               /* "" = no WebSocket listener */
    char ws_origins[512];          /* Origin allow-list; "" = any */
    struct cluster_config cluster; /* url "": no cluster */
    int pvp_queue;                 /* enum cluster_pvp_queue */
    struct rp_config_key keys[RP_CONFIG_SERVER_KEYS + 16];
    size_t nkeys;
};

static const struct rp_config_choice pvp_queues[] = {
    {"local", CLUSTER_PVP_LOCAL},
    {"spill", CLUSTER_PVP_SPILL},
    {"global", CLUSTER_PVP_GLOBAL},
    {NULL, 0}};

static const struct rp_config_choice layouts[] = {
    {"hetero", RP_GROUP_HETERO}, {"homo", RP_GROUP_HOMO}, {NULL, 0}};

static void usage(FILE *f)
{
    fprintf(f, "usage: " PROG " [--config FILE] [--listen ADDR] [--port N]\n"
               "              [--threads N] [--backend auto|uring|epoll]\n"
               "              [--layout hetero|homo] [--max-sessions N]\n"
               "              [--chat-channel-size N] [--max-spectators N]\n"
               "              [--ws-port N] [--metrics ADDR:PORT]\n"
               "              [--no-stats] [--help] [server flags]\n"
               "  --config FILE      INI file, keys as the long flags without "
               "dashes\n"
               "                     (max_sessions = 100); flags override it\n"
               "  --listen ADDR      numeric IPv4/IPv6 address (default "
               "127.0.0.1)\n"
               "  --port N           TCP port (default 7200; 0 picks a free "
               "one)\n"
               "  --threads N        I/O threads (default 1)\n"
               "  --backend B        auto, uring or epoll (default auto)\n"
               "  --layout L         hetero: a thread per content (default);\n"
               "                     homo: every content on one logic thread\n"
               "  --max-sessions N   sessions at once (default 10000)\n"
               "  --chat-channel-size N  lobby chat reaches at most N players "
               "(100)\n"
               "  --max-spectators N     SPECTATE sessions at once (64)\n"
               "  --ws-port N        also a WebSocket listener (RFC 6455; 0 "
               "picks a free one)\n"
               "  --ws-origins LIST  comma-separated Origin allow-list "
               "(default any)\n"
               "  --metrics ADDR:PORT    Prometheus metrics at GET /metrics\n"
               "  --no-stats         no once-a-second stats line on stderr\n"
               "  --cluster nats://HOST:PORT  join the shards on this NATS "
               "server\n"
               "                     (docs/cluster.md; needs a build with "
               "libnats)\n"
               "  --shard K          this shard's number (default 0)\n"
               "  --advertise HOST:PORT  where other shards' clients reach "
               "us\n"
               "                     (default: the listen address and port)\n"
               "  --cluster-lease-ms N   global name lease (default 15000)\n"
               "  --pvp-queue local|spill|global  the PVP queue across shards "
               "(default local)\n"
               "  --pvp-spill-ms N   spill: go global after N ms waiting "
               "(default 3000)\n"
               "  server flags: --max-payload --send-queue-limit "
               "--idle-timeout-ms\n"
               "    --frame-deadline-ms --first-packet-deadline-ms --max-iov\n"
               "    --stop-drain-ms --spin-us --recv-buffer-size (see "
               "ringport-echo)\n"
               "Prints \"listening on ADDR:PORT\" first (then \"ws listening "
               "on ADDR:PORT\"\nwith --ws-port); stops gracefully on SIGINT "
               "or SIGTERM.\n");
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

static void opts_init(struct game_opts *o)
{
    rp_server_config_init(&o->cfg);
    o->cfg.port = 7200;
    /* A player whose link drops comes back to the same session for 5 s
       (a client that opens with HELLO; others get ordinary sessions). */
    o->cfg.resume_grace_ms = 5000;
    o->stats = true;
    o->layout = RP_GROUP_HETERO;
    o->game.chat_channel_size = 100;
    o->game.max_spectators = SPECT_DEFAULT_MAX;
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
    o->keys[o->nkeys++] = (struct rp_config_key){"layout", RP_CONFIG_ENUM,
                                                 &o->layout, 0, layouts};
    o->keys[o->nkeys++] =
        (struct rp_config_key){"chat_channel_size", RP_CONFIG_U32,
                               &o->game.chat_channel_size, 0, NULL};
    o->keys[o->nkeys++] = (struct rp_config_key){
        "max_spectators", RP_CONFIG_U32, &o->game.max_spectators, 0, NULL};
    o->keys[o->nkeys++] = (struct rp_config_key){
        "cluster", RP_CONFIG_STR, o->cluster.url, sizeof o->cluster.url, NULL};
    o->keys[o->nkeys++] = (struct rp_config_key){"shard", RP_CONFIG_U32,
                                                 &o->cluster.shard, 0, NULL};
    o->keys[o->nkeys++] =
        (struct rp_config_key){"advertise", RP_CONFIG_STR, o->cluster.advertise,
                               sizeof o->cluster.advertise, NULL};
    o->keys[o->nkeys++] = (struct rp_config_key){
        "cluster_lease_ms", RP_CONFIG_U32, &o->cluster.lease_ms, 0, NULL};
    o->cluster.lease_ms = CLUSTER_LEASE_MS_DEFAULT;
    o->keys[o->nkeys++] = (struct rp_config_key){"pvp_queue", RP_CONFIG_ENUM,
                                                 &o->pvp_queue, 0, pvp_queues};
    o->keys[o->nkeys++] = (struct rp_config_key){
        "pvp_spill_ms", RP_CONFIG_U32, &o->cluster.pvp_spill_ms, 0, NULL};
    o->cluster.pvp_spill_ms = 3000;
}

static void parse_args(int argc, char **argv, struct game_opts *o)
{
    static const struct rp_config_flag flags[] = {
        {"--no-stats", "stats", "false"},
        /* "mode" is the server's (raw|framed): the game is framed only. */
        {"--mode", NULL, NULL},
        {NULL, NULL, NULL},
    };
    char err[256];
    int r = rp_config_apply_args(o->keys, o->nkeys, flags, "game", argc, argv,
                                 err, sizeof err);
    if (r == RP_CONFIG_HELP) {
        usage(stdout);
        exit(0);
    }
    if (r < 0)
        bad_usage("%s", err);
    o->cfg.mode = RP_SERVER_FRAMED;
    if (o->game.chat_channel_size < 1)
        bad_usage("chat_channel_size = 0: must be at least 1");
    if (o->game.chat_channel_size > o->cfg.max_sessions)
        o->game.chat_channel_size = o->cfg.max_sessions;
#ifndef RP_GAME_CLUSTER
    if (o->cluster.url[0])
        bad_usage("cluster = %s: this build has no NATS client (install "
                  "libnats-dev: scripts/deps.sh cluster, then rebuild)",
                  o->cluster.url);
#endif
    /* In homo every content shares one logic thread: the cluster group's
       NATS requests (up to 0.5 s each) would stall the fights. */
    if (o->cluster.url[0] && o->layout == RP_GROUP_HOMO)
        bad_usage("cluster needs layout = hetero (in homo the cluster "
                  "group's NATS requests would stall every content)");
    /* Without a cluster the PVP queue is this shard's whatever is set. */
    o->cluster.pvp_queue =
        o->cluster.url[0] ? (uint8_t)o->pvp_queue : CLUSTER_PVP_LOCAL;
    o->game.pvp_queue = o->cluster.pvp_queue;
    if (o->cluster.url[0] && o->cluster.lease_ms < 1000)
        bad_usage("cluster_lease_ms = %u: must be at least 1000",
                  o->cluster.lease_ms);
}

/* ---- the server's own callbacks: every session starts in the lobby ---- */

/* The player record is the session's data from here to on_leave. */
static void on_join(struct rp_server *srv, rp_sid sid, void *user)
{
    struct game *g = user;
    struct player *p = player_new(g, sid);
    if (!p || rp_session_set_data(srv, sid, p) < 0) {
        if (p)
            player_free(g, p);
        rp_server_disconnect(srv, sid);
        return;
    }
    /* Refused only if the session is closing (or out of memory): the
       record stays its data and on_leave frees it. */
    if (rp_group_move(srv, sid, g->lobby_g, NULL) < 0)
        rp_server_disconnect(srv, sid);
}

/* Only while a session is in no group: before the lobby took it (frames
   that arrive during that move go to the lobby) or at shutdown. */
static void on_message(struct rp_server *srv, rp_sid sid, void *data,
                       const struct rp_message *msg, void *user)
{
    (void)srv, (void)data;
    game_send_error(user, sid, GM_ERR_WRONG_CONTENT, msg->type);
}

/* The session's last callback, wherever it ended (after that content's
   on_leave): the one place a record is freed. */
static void on_leave(struct rp_server *srv, rp_sid sid, void *data,
                     enum rp_leave_reason reason, void *user)
{
    (void)srv, (void)sid, (void)reason;
    if (data)
        player_free(user, data);
}

/* A seat the lobby gave to a move that never arrived (the session ended
   on the way, or the server is stopping). */
static void on_ticket_drop(struct rp_server *srv, rp_sid sid, void *ticket,
                           void *user)
{
    (void)srv, (void)sid, (void)user;
    free(ticket);
}

/* After rp_server_stop: the NATS connection (libnats's threads post to
   the cluster group, freed by rp_server_destroy), then the contents. */
static void game_shutdown(struct game *g)
{
#ifdef RP_GAME_CLUSTER
    cluster_destroy(g);
#endif
    game_destroy(g);
}

/* ---- metrics and stats ------------------------------------------------- */

static uint64_t ld(_Atomic uint64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

/* ringport_cluster_*: only with --cluster (docs/cluster.md). */
static void collect_cluster(struct rp_metrics_writer *w, struct game *g)
{
    static const struct {
        const char *name, *help;
        enum rp_metric_type type;
        size_t off;
    } c[] = {
        {"ringport_cluster_connected", "1 while connected to NATS",
         RP_METRIC_GAUGE, offsetof(struct cluster_counters, connected)},
        {"ringport_cluster_names", "Global names this shard holds",
         RP_METRIC_GAUGE, offsetof(struct cluster_counters, names)},
        {"ringport_cluster_reconnects_total", "Reconnections to NATS",
         RP_METRIC_COUNTER, offsetof(struct cluster_counters, reconnects)},
        {"ringport_cluster_disconnects_total", "Connections to NATS lost",
         RP_METRIC_COUNTER, offsetof(struct cluster_counters, disconnects)},
        {"ringport_cluster_posts_dropped_total",
         "Posts to or from the cluster group refused (full or stopping)",
         RP_METRIC_COUNTER, offsetof(struct cluster_counters, posts_dropped)},
        {"ringport_cluster_name_conflicts_total",
         "Held names found taken by another shard (lease lost)",
         RP_METRIC_COUNTER, offsetof(struct cluster_counters, name_conflicts)},
        {"ringport_cluster_names_recreated_total",
         "Held names found gone (expired, or the store lost) and created again",
         RP_METRIC_COUNTER, offsetof(struct cluster_counters, names_recreated)},
        {"ringport_cluster_claims_total", "Global name claims",
         RP_METRIC_COUNTER, offsetof(struct cluster_counters, claims)},
        {"ringport_cluster_claims_taken_total",
         "Claims refused: the name is held (on any shard)", RP_METRIC_COUNTER,
         offsetof(struct cluster_counters, claims_taken)},
        {"ringport_cluster_claims_try_later_total",
         "Claims answered TRY_LATER (NATS unreachable or slow)",
         RP_METRIC_COUNTER,
         offsetof(struct cluster_counters, claims_try_later)},
        {"ringport_cluster_claims_timed_out_total",
         "Claims whose request to NATS timed out (the next second's claims "
         "are answered TRY_LATER without asking)",
         RP_METRIC_COUNTER,
         offsetof(struct cluster_counters, claims_timed_out)},
        {"ringport_cluster_chat_out_total",
         "Chat lines published to the other shards", RP_METRIC_COUNTER,
         offsetof(struct cluster_counters, chat_out)},
        {"ringport_cluster_chat_out_failed_total",
         "Chat lines kept local: NATS unreachable", RP_METRIC_COUNTER,
         offsetof(struct cluster_counters, chat_out_failed)},
        {"ringport_cluster_chat_in_total",
         "Chat lines from other shards given to the lobby", RP_METRIC_COUNTER,
         offsetof(struct cluster_counters, chat_in)},
        {"ringport_cluster_chat_duplicates_total",
         "Remote chat lines dropped as duplicates", RP_METRIC_COUNTER,
         offsetof(struct cluster_counters, chat_duplicates)},
        {"ringport_cluster_chat_gaps_total",
         "Remote chat lines missing in an origin's sequence", RP_METRIC_COUNTER,
         offsetof(struct cluster_counters, chat_gaps)},
        {"ringport_cluster_chat_bad_total",
         "Messages on the chat subjects that did not decode", RP_METRIC_COUNTER,
         offsetof(struct cluster_counters, chat_bad)},
        {"ringport_cluster_matches_total",
         "Cross-shard PVP matches this shard took part in (hosted or moved)",
         RP_METRIC_COUNTER, offsetof(struct cluster_counters, mm_cross)},
        {"ringport_cluster_matches_hosted_total",
         "Cross-shard matches fought here", RP_METRIC_COUNTER,
         offsetof(struct cluster_counters, mm_hosted)},
        {"ringport_cluster_matches_moved_total",
         "Players sent to another shard's match (SHARD_MOVE)",
         RP_METRIC_COUNTER, offsetof(struct cluster_counters, mm_moved)},
        {"ringport_cluster_matches_local_total",
         "PVP matches the cluster queue made on this shard", RP_METRIC_COUNTER,
         offsetof(struct cluster_counters, mm_local)},
        {"ringport_cluster_seats_claimed_total",
         "Seats claimed by an arriving player (SEAT)", RP_METRIC_COUNTER,
         offsetof(struct cluster_counters, seats_claimed)},
        {"ringport_cluster_seats_refused_total",
         "SEATs refused: token unknown, used or late", RP_METRIC_COUNTER,
         offsetof(struct cluster_counters, seats_refused)},
        {"ringport_cluster_seats_expired_total",
         "Seats whose player never came (forfeit)", RP_METRIC_COUNTER,
         offsetof(struct cluster_counters, seats_expired)},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        rp_metrics_family(w, c[i].name, c[i].type, c[i].help);
        rp_metrics_sample_u64(
            w, NULL, 0, ld((_Atomic uint64_t *)((char *)&g->ncl + c[i].off)));
    }
}

static void collect(struct rp_metrics_writer *w, void *user)
{
    struct game *g = user;
    rp_metrics_family(w, "ringport_game_players", RP_METRIC_GAUGE,
                      "Player records alive (one per session in a content)");
    rp_metrics_sample_u64(w, NULL, 0, ld(&g->n.players_live));
    rp_metrics_family(w, "ringport_game_spectators", RP_METRIC_GAUGE,
                      "Spectator places taken (SPECTATE sessions)");
    rp_metrics_sample_u64(w, NULL, 0, ld(&g->n.spectators));
    static const struct {
        const char *name, *help;
        size_t off;
    } c[] = {
        {"ringport_game_logins_total", "Successful logins",
         offsetof(struct game_counters, logins)},
        {"ringport_game_chats_total", "Chat lines broadcast",
         offsetof(struct game_counters, chats)},
        {"ringport_game_matches_total", "PVP matches formed",
         offsetof(struct game_counters, matches)},
        {"ringport_game_dungeons_total", "Dungeon parties formed",
         offsetof(struct game_counters, dungeons)},
        {"ringport_game_errors_sent_total", "ERROR packets sent",
         offsetof(struct game_counters, errors_sent)},
        {"ringport_game_kicks_total", "Sessions closed for a bad message",
         offsetof(struct game_counters, kicks)},
        {"ringport_game_spectator_states_total",
         "SPECTATOR_STATE broadcasts (one shared packet each)",
         offsetof(struct game_counters, spectator_states)},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        rp_metrics_family(w, c[i].name, RP_METRIC_COUNTER, c[i].help);
        rp_metrics_sample_u64(
            w, NULL, 0, ld((_Atomic uint64_t *)((char *)&g->n + c[i].off)));
    }
    if (g->cluster_g)
        collect_cluster(w, g);
}

static void overruns(struct game *g, uint64_t out[3])
{
    struct rp_group *gs[3] = {g->lobby_g, g->pvp_g, g->dungeon_g};
    for (int i = 0; i < 3; i++) {
        struct rp_group_stats st;
        rp_group_get_stats(gs[i], &st);
        out[i] = st.tick_overruns;
    }
}

static int wait_for_stop(struct game *g, struct rp_metrics *m, int sfd,
                         bool stats)
{
    struct rp_statline_sample prev, cur;
    char line[640];
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
        uint64_t o[3];
        overruns(g, o);
        int n = rp_statline_format(&prev, &cur, line, sizeof line);
        if (n < 0 || (size_t)n >= sizeof line)
            n = (int)strlen(line);
        snprintf(line + n, sizeof line - (size_t)n,
                 " | overruns lobby %" PRIu64 " pvp %" PRIu64
                 " dungeon %" PRIu64 " | players %" PRIu64,
                 o[0], o[1], o[2], ld(&g->n.players_live));
        if (g->cluster_g) {
            size_t len = strlen(line);
            snprintf(line + len, sizeof line - len,
                     " | cluster %s names %" PRIu64 " reconnects %" PRIu64,
                     ld(&g->ncl.connected) ? "up" : "down", ld(&g->ncl.names),
                     ld(&g->ncl.reconnects));
        }
        fprintf(stderr, "%s\n", line);
        prev = cur;
    }
}

static void print_final(struct game *g, const struct rp_server_stats *s)
{
    uint64_t o[3];
    overruns(g, o);
    struct rp_group *gs[3] = {g->lobby_g, g->pvp_g, g->dungeon_g};
    printf("final: accepts %" PRIu64 ", max sessions %" PRIu64
           ", msgs in %" PRIu64 " out %" PRIu64 ", logins %" PRIu64
           ", chats %" PRIu64 ", matches %" PRIu64 ", dungeons %" PRIu64
           ", errors sent %" PRIu64 ", kicks %" PRIu64,
           s->accepts, s->sessions_max, s->packets_in, s->packets_out,
           ld(&g->n.logins), ld(&g->n.chats), ld(&g->n.matches),
           ld(&g->n.dungeons), ld(&g->n.errors_sent), ld(&g->n.kicks));
    for (int i = 0; i < 3; i++) {
        struct rp_group_stats st;
        rp_group_get_stats(gs[i], &st);
        printf(", %s msgs %" PRIu64 " overruns %" PRIu64, rp_group_name(gs[i]),
               st.messages, o[i]);
    }
    if (g->cluster_g)
        printf(", cluster chat out %" PRIu64 " in %" PRIu64 " gaps %" PRIu64
               " duplicates %" PRIu64 " name conflicts %" PRIu64
               " reconnects %" PRIu64,
               ld(&g->ncl.chat_out), ld(&g->ncl.chat_in), ld(&g->ncl.chat_gaps),
               ld(&g->ncl.chat_duplicates), ld(&g->ncl.name_conflicts),
               ld(&g->ncl.reconnects));
    printf(", sessions %" PRIu64 " players %" PRIu64 " names %" PRIu32 "\n",
           s->sessions, ld(&g->n.players_live), names_count(&g->names));
    fflush(stdout);
}

int main(int argc, char **argv)
{
    static struct game_opts o;
    static struct game g;
    struct rp_server *srv;
    struct rp_metrics *m;
    char err[256];
    int r;

    opts_init(&o);
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
    /* The engine logs every session's end at INFO: with thousands of bots
       that buries the stats line. RINGPORT_LOG=info brings it back. */
    if (!getenv("RINGPORT_LOG"))
        rp_log_set_level(RP_LOG_WARN);
    o.cfg.cb.on_join = on_join;
    o.cfg.cb.on_message = on_message;
    o.cfg.cb.on_leave = on_leave;
    o.cfg.cb.on_ticket_drop = on_ticket_drop;
    o.cfg.user = &g;
    if (rp_server_config_validate(&o.cfg, err, sizeof err) < 0)
        bad_usage("%s", err);

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
    r = game_init(&g, srv, o.cfg.max_sessions, &o.game);
    if (r == 0)
        r = rp_group_set_layout(srv, (enum rp_group_layout)o.layout);
    if (r == 0)
        r = lobby_create(&g);
    if (r == 0)
        r = pvp_create(&g);
    if (r == 0)
        r = dungeon_create(&g);
    if (r == 0)
        r = spect_create(&g);
#ifdef RP_GAME_CLUSTER
    if (r == 0 && o.cluster.url[0]) {
        if (!o.cluster.advertise[0])
            snprintf(o.cluster.advertise, sizeof o.cluster.advertise, "%s:%u",
                     o.cfg.listen_addr, rp_server_port(srv));
        r = cluster_create(&g, &o.cluster);
    }
#endif
    if (r < 0) {
        fprintf(stderr, PROG ": cannot create the contents: %s\n",
                strerror(-r));
        rp_server_stop(srv);
        game_shutdown(&g);
        names_fini(&g.names);
        rp_server_destroy(srv);
        return 1;
    }
    r = rp_metrics_create(o.metrics, &m);
    if (r < 0) {
        fprintf(stderr, PROG ": cannot serve metrics on %s: %s\n", o.metrics,
                strerror(-r));
        rp_server_stop(srv);
        game_shutdown(&g);
        names_fini(&g.names);
        rp_server_destroy(srv);
        return 1;
    }
    rp_metrics_add_server(m, srv, NULL);
    rp_metrics_add_group(m, g.lobby_g);
    rp_metrics_add_group(m, g.pvp_g);
    rp_metrics_add_group(m, g.dungeon_g);
    rp_metrics_add_group(m, g.spect_g);
    if (g.cluster_g)
        rp_metrics_add_group(m, g.cluster_g);
    rp_metrics_add_collector(m, collect, &g);
    if (o.metrics[0] && spect_page_serve(m, rp_server_ws_port(srv)) < 0)
        RP_WARN("game", "cannot serve the spectator page");
    r = rp_server_start(srv);
    if (r < 0) {
        fprintf(stderr, PROG ": cannot start: %s\n", strerror(-r));
        rp_metrics_destroy(m);
        rp_server_stop(srv);
        game_shutdown(&g);
        names_fini(&g.names);
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
    if (o.metrics[0]) {
        const char *colon = strrchr(o.metrics, ':');
        int hostlen = (int)(colon - o.metrics);
        printf("metrics on %.*s:%u\n", hostlen ? hostlen : 7,
               hostlen ? o.metrics : "0.0.0.0", rp_metrics_port(m));
    }
    fflush(stdout);
    RP_INFO("game", "%s layout, %u I/O thread(s), backend %s",
            o.layout == RP_GROUP_HOMO ? "homo" : "hetero", o.cfg.io_threads,
            rp_backend_name(rp_server_backend(srv)));

    r = wait_for_stop(&g, m, sfd, o.stats);
    if (r < 0)
        fprintf(stderr, PROG ": waiting for a signal: %s\n", strerror(-r));
    /* Every session leaves (its record freed in on_leave), then the
       groups stop; only then is the game state freed. */
    rp_server_stop(srv);
    struct rp_server_stats s;
    rp_server_get_stats(srv, &s);
    rp_metrics_destroy(m);
    game_shutdown(&g);
    print_final(&g, &s);
    names_fini(&g.names);
    rp_server_destroy(srv);
    close(sfd);
    return r < 0 ? 1 : 0;
}
