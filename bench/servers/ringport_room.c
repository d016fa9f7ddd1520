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
 *     bench-ringport_room --port 7001 --threads 2 &
 *     ringport-bench room --port 7001 --connections 1000 --room-size 100
 *
 * Prints "listening on ADDR:PORT" first (flushed); exits 0 on SIGINT or
 * SIGTERM after rp_server_stop, 1 if it cannot start, 2 for a bad flag.
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
#define NO_ROOM UINT32_MAX

struct room {
    rp_sid *members; /* grown on JOIN only */
    uint32_t count, cap;
};

/*
 * The room table: rooms by id (grown to the largest id joined) and each
 * session's room by its slot (sid slot < max_sessions). 'lock' guards all
 * of it: readers broadcast, writers join and leave.
 */
struct rooms {
    pthread_rwlock_t lock;
    struct room *rooms;
    uint32_t nrooms;
    uint32_t *room_of; /* [max_sessions]: NO_ROOM or the room id */
    uint32_t max_sessions;
};

static struct rooms g_rooms;

/* Takes 'sid' out of its room. Caller holds the write lock. */
static void room_remove(struct rooms *t, rp_sid sid)
{
    uint32_t slot = rp_sid_slot(sid);
    uint32_t id = t->room_of[slot];
    if (id == NO_ROOM)
        return;
    struct room *r = &t->rooms[id];
    for (uint32_t i = 0; i < r->count; i++)
        if (r->members[i] == sid) {
            r->members[i] = r->members[--r->count];
            break;
        }
    t->room_of[slot] = NO_ROOM;
}

/* Returns 0 or -ENOMEM. Caller holds the write lock. */
static int room_add(struct rooms *t, rp_sid sid, uint32_t id)
{
    if (id >= t->nrooms) {
        uint32_t n = id + 1 > t->nrooms * 2 ? id + 1 : t->nrooms * 2;
        struct room *grown = realloc(t->rooms, n * sizeof *grown);
        if (!grown)
            return -ENOMEM;
        memset(grown + t->nrooms, 0, (n - t->nrooms) * sizeof *grown);
        t->rooms = grown;
        t->nrooms = n;
    }
    struct room *r = &t->rooms[id];
    if (r->count == r->cap) {
        uint32_t cap = r->cap ? r->cap * 2 : 16;
        rp_sid *m = realloc(r->members, cap * sizeof *m);
        if (!m)
            return -ENOMEM;
        r->members = m;
        r->cap = cap;
    }
    r->members[r->count++] = sid;
    t->room_of[rp_sid_slot(sid)] = id;
    return 0;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void on_join_msg(struct rp_server *srv, rp_sid sid,
                        const struct rp_message *msg)
{
    struct rooms *t = &g_rooms;
    if (msg->len != 4 || rp_sid_slot(sid) >= t->max_sessions) {
        rp_server_disconnect(srv, sid);
        return;
    }
    uint32_t id = get_u32(msg->payload);
    if (id >= 16u << 20) { /* bounds the table a peer can make us grow */
        rp_server_disconnect(srv, sid);
        return;
    }
    pthread_rwlock_wrlock(&t->lock);
    room_remove(t, sid);
    int r = room_add(t, sid, id);
    pthread_rwlock_unlock(&t->lock);
    if (r < 0)
        rp_server_disconnect(srv, sid);
}

static void on_data_msg(struct rp_server *srv, rp_sid sid,
                        const struct rp_message *msg)
{
    struct rooms *t = &g_rooms;
    struct rp_packet *pkt;
    if (rp_message_to_packet(msg, &pkt) < 0) { /* the one copy */
        rp_server_disconnect(srv, sid);
        return;
    }
    bool member = false;
    pthread_rwlock_rdlock(&t->lock);
    uint32_t id = t->room_of[rp_sid_slot(sid)];
    if (id != NO_ROOM) {
        struct room *r = &t->rooms[id];
        /* Members that cannot take it (closing, queue full) are skipped:
           they are being disconnected, which their clients will see. */
        (void)rp_server_broadcast(srv, r->members, r->count, pkt);
        member = true;
    }
    pthread_rwlock_unlock(&t->lock);
    rp_packet_unref(pkt);
    if (!member)
        rp_server_disconnect(srv, sid);
}

static void on_message(struct rp_server *srv, rp_sid sid,
                       const struct rp_message *msg, void *user)
{
    (void)user;
    if (msg->type == TYPE_DATA)
        on_data_msg(srv, sid, msg);
    else if (msg->type == TYPE_JOIN)
        on_join_msg(srv, sid, msg);
    else
        rp_server_disconnect(srv, sid);
}

static void on_leave(struct rp_server *srv, rp_sid sid,
                     enum rp_leave_reason reason, void *user)
{
    (void)srv, (void)reason, (void)user;
    if (rp_sid_slot(sid) >= g_rooms.max_sessions)
        return;
    pthread_rwlock_wrlock(&g_rooms.lock);
    room_remove(&g_rooms, sid);
    pthread_rwlock_unlock(&g_rooms.lock);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: " PROG " [--port N] [--threads N] "
               "[--backend auto|uring|epoll] [--spin-us US]\n"
               "       [--max-sessions N] [--help]\n"
               "  --port N          TCP port on 127.0.0.1 (default 7001; 0 "
               "picks a free one)\n"
               "  --threads N       I/O threads (default 1)\n"
               "  --backend B       auto, uring or epoll (default auto)\n"
               "  --spin-us US      I/O threads poll this long before "
               "sleeping (default 0)\n"
               "  --max-sessions N  sessions at once (default 10000)\n"
               "Prints \"listening on ADDR:PORT\" first; stops on SIGINT or "
               "SIGTERM.\n");
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
        else if (strcmp(a, "--backend") == 0) {
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

    g_rooms.max_sessions = cfg.max_sessions;
    /* The session table has max_sessions slots; a slot outside (never
       expected) is refused in on_join_msg and skipped in on_leave. */
    g_rooms.room_of = malloc(cfg.max_sessions * sizeof *g_rooms.room_of);
    if (!g_rooms.room_of || pthread_rwlock_init(&g_rooms.lock, NULL)) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    for (uint32_t i = 0; i < cfg.max_sessions; i++)
        g_rooms.room_of[i] = NO_ROOM;

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
        free(g_rooms.rooms[i].members);
    free(g_rooms.rooms);
    free(g_rooms.room_of);
    pthread_rwlock_destroy(&g_rooms.lock);
    return 0;
}
