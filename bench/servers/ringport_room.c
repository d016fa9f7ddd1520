/*
 * bench-ringport_room: ringport's room (fan-out) server for the broadcast
 * benchmark, driven by `ringport-bench room`. Framed protocol
 * (docs/protocol.md):
 *
 *   type 1 JOIN  payload u32 room id: the session leaves its old room, if
 *                any, and joins this one; no reply.
 *   type 2 DATA  any payload: sent unchanged to every member of the
 *                sender's room, the sender included (one packet, one copy,
 *                referenced once per member: rp_server_broadcast).
 *   anything else, or DATA before a JOIN: the session is disconnected.
 *
 * Rooms span I/O threads (members of one room are spread over all of
 * them), so the room table is shared. It is read-mostly: every DATA reads
 * a member list, only JOIN and leave change one. A read-write lock lets the
 * I/O threads broadcast in parallel; the member list is read and the
 * packet queued under the read lock, so a member whose JOIN was handled
 * before a DATA message always gets that message (the bench relies on it).
 * rp_server_broadcast only queues and takes references, so the lock is
 * held for a short, bounded time.
 *
 * Each session's room is its session data (rp_session_set_data): set on
 * JOIN, read on DATA and in on_leave, all on the session's own I/O thread,
 * so it needs neither the lock nor a table of its own.
 *
 *     bench-ringport_room --port 7001 --threads 2 &
 *     ringport-bench room --port 7001 --connections 1000 --room-size 100
 *
 * With --ws-port N the same rooms are also reachable over WebSocket
 * (docs/protocol.md, "WebSocket"): TCP and WebSocket members mix freely.
 *
 * Prints "listening on ADDR:PORT" first (then "ws listening on ADDR:PORT"
 * with --ws-port; flushed); exits 0 on SIGINT or SIGTERM after
 * rp_server_stop, 1 if it cannot start, 2 for a bad flag.
 */
#include <ringport/server.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define PROG "bench-ringport_room"
#define TYPE_JOIN 1
#define TYPE_DATA 2
#define MAX_ROOM_ID (16u << 20) /* bounds the table a peer can grow */

struct room {
    rp_sid *members; /* grown on JOIN only */
    uint32_t count, cap;
};

/* Rooms by id (allocated on first JOIN, kept until exit, so a session's
   data can point at one); 'lock' guards the table and every member list. */
struct rooms {
    pthread_rwlock_t lock;
    struct room **rooms;
    uint32_t nrooms;
};

static struct rooms g_rooms;

/* Takes 'sid' out of 'r'. Caller holds the write lock. */
static void room_remove(struct room *r, rp_sid sid)
{
    for (uint32_t i = 0; i < r->count; i++)
        if (r->members[i] == sid) {
            r->members[i] = r->members[--r->count];
            return;
        }
}

/* Adds 'sid' to room 'id' and returns the room, or NULL (out of memory).
   Caller holds the write lock. */
static struct room *room_add(struct rooms *t, rp_sid sid, uint32_t id)
{
    if (id >= t->nrooms) {
        uint32_t n = id + 1 > t->nrooms * 2 ? id + 1 : t->nrooms * 2;
        struct room **grown = realloc(t->rooms, n * sizeof *grown);
        if (!grown)
            return NULL;
        memset(grown + t->nrooms, 0, (n - t->nrooms) * sizeof *grown);
        t->rooms = grown;
        t->nrooms = n;
    }
    if (!t->rooms[id] && !(t->rooms[id] = calloc(1, sizeof *t->rooms[id])))
        return NULL;
    struct room *r = t->rooms[id];
    if (r->count == r->cap) {
        uint32_t cap = r->cap ? r->cap * 2 : 16;
        rp_sid *m = realloc(r->members, cap * sizeof *m);
        if (!m)
            return NULL;
        r->members = m;
        r->cap = cap;
    }
    r->members[r->count++] = sid;
    return r;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void on_message(struct rp_server *srv, rp_sid sid, void *data,
                       const struct rp_message *msg, void *user)
{
    struct room *room = data; /* NULL until the first JOIN */
    (void)user;
    if (msg->type == TYPE_JOIN && msg->len == 4 &&
        get_u32(msg->payload) < MAX_ROOM_ID) {
        pthread_rwlock_wrlock(&g_rooms.lock);
        if (room)
            room_remove(room, sid);
        room = room_add(&g_rooms, sid, get_u32(msg->payload));
        pthread_rwlock_unlock(&g_rooms.lock);
        rp_session_set_data(srv, sid, room);
        if (!room)
            rp_server_disconnect(srv, sid);
        return;
    }
    struct rp_packet *pkt;
    if (msg->type != TYPE_DATA || !room || rp_message_keep(msg, &pkt) < 0) {
        rp_server_disconnect(srv, sid);
        return;
    }
    /* rp_message_keep copied it (the one copy). Members that cannot take
       it (closing, queue full) are skipped: they are being disconnected,
       which their clients will see. */
    pthread_rwlock_rdlock(&g_rooms.lock);
    (void)rp_server_broadcast(srv, room->members, room->count, pkt);
    pthread_rwlock_unlock(&g_rooms.lock);
    rp_packet_unref(pkt);
}

static void on_leave(struct rp_server *srv, rp_sid sid, void *data,
                     enum rp_leave_reason reason, void *user)
{
    (void)srv, (void)reason, (void)user;
    if (!data)
        return;
    pthread_rwlock_wrlock(&g_rooms.lock);
    room_remove(data, sid);
    pthread_rwlock_unlock(&g_rooms.lock);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: " PROG " [--port N] [--threads N] "
               "[--backend auto|uring|epoll] [--spin-us US]\n"
               "       [--max-sessions N] [--ws-port N] [--help]\n"
               "  --port N          TCP port on 127.0.0.1 (default 7001; 0 "
               "picks a free one)\n"
               "  --threads N       I/O threads (default 1)\n"
               "  --backend B       auto, uring or epoll (default auto)\n"
               "  --spin-us US      I/O threads poll this long before "
               "sleeping (default 0)\n"
               "  --max-sessions N  sessions at once (default 10000)\n"
               "  --ws-port N       also a WebSocket listener (0 picks a free "
               "port)\n"
               "Prints \"listening on ADDR:PORT\" first (then \"ws listening "
               "on ADDR:PORT\");\nstops on SIGINT or SIGTERM.\n");
}

static uint32_t parse_flag(const char *flag, const char *v, uint32_t max)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (errno || end == v || *end || *v < '0' || *v > '9' || n > max) {
        fprintf(stderr, PROG ": %s wants a number 0..%u, got '%s'\n", flag, max,
                v);
        exit(2);
    }
    return (uint32_t)n;
}

static void parse_args(int argc, char **argv, struct rp_server_config *cfg)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc) {
            fprintf(stderr,
                    PROG ": '%s': unknown or without a value (try "
                         "--help)\n",
                    a);
            exit(2);
        }
        const char *v = argv[++i];
        if (strcmp(a, "--port") == 0)
            cfg->port = (uint16_t)parse_flag(a, v, 65535);
        else if (strcmp(a, "--threads") == 0)
            cfg->io_threads = parse_flag(a, v, 64);
        else if (strcmp(a, "--spin-us") == 0)
            cfg->spin_us = parse_flag(a, v, 1000000);
        else if (strcmp(a, "--max-sessions") == 0)
            cfg->max_sessions = parse_flag(a, v, 1000000);
        else if (strcmp(a, "--ws-port") == 0) {
            cfg->ws_enabled = true;
            cfg->ws_port = (uint16_t)parse_flag(a, v, 65535);
        } else if (strcmp(a, "--backend") == 0) {
            int b = rp_backend_parse(v);
            if (b < 0) {
                fprintf(stderr,
                        PROG ": --backend wants auto, uring or epoll, got "
                             "'%s'\n",
                        v);
                exit(2);
            }
            cfg->backend = (enum rp_backend_kind)b;
        } else {
            fprintf(stderr, PROG ": unknown flag '%s' (try --help)\n", a);
            exit(2);
        }
    }
}

int main(int argc, char **argv)
{
    struct rp_server_config cfg;
    struct rp_server *srv;
    char err[256];

    rp_server_config_init(&cfg);
    cfg.port = 7001;
    cfg.cb.on_message = on_message;
    cfg.cb.on_leave = on_leave;
    parse_args(argc, argv, &cfg);
    if (rp_server_config_validate(&cfg, err, sizeof err) < 0) {
        fprintf(stderr, PROG ": %s\n", err);
        return 2;
    }

    if (pthread_rwlock_init(&g_rooms.lock, NULL)) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }

    /* Block the stop signals before any thread exists: only the signalfd
       sees them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    int r = sfd < 0 ? -errno : rp_server_create(&cfg, &srv);
    if (r < 0) {
        fprintf(stderr, PROG ": cannot listen on %s:%u: %s\n", cfg.listen_addr,
                cfg.port, strerror(-r));
        return 1;
    }
    r = rp_server_start(srv);
    if (r < 0) {
        fprintf(stderr, PROG ": cannot start: %s\n", strerror(-r));
        rp_server_destroy(srv);
        return 1;
    }
    printf("listening on %s:%u\n", cfg.listen_addr, rp_server_port(srv));
    if (cfg.ws_enabled)
        printf("ws listening on %s:%u\n", cfg.listen_addr,
               rp_server_ws_port(srv));
    fflush(stdout);

    for (;;) {
        struct signalfd_siginfo si;
        struct pollfd p = {.fd = sfd, .events = POLLIN};
        if (poll(&p, 1, -1) > 0 &&
            read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
            break;
    }
    rp_server_stop(srv);
    rp_server_destroy(srv);
    close(sfd);
    for (uint32_t i = 0; i < g_rooms.nrooms; i++)
        if (g_rooms.rooms[i]) {
            free(g_rooms.rooms[i]->members);
            free(g_rooms.rooms[i]);
        }
    free(g_rooms.rooms);
    pthread_rwlock_destroy(&g_rooms.lock);
    return 0;
}
