/*
 * bench-cluster-races: the cluster's name promises under load, from
 * clients (scripts/run-cluster.sh; docs/cluster.md).
 *
 *   bench-cluster-races races N TAG PORT...
 *       N rounds: each asks for one new name on every shard at once (all
 *       LOGINs sent before any answer is read). Exactly one LOGIN_OK per
 *       round, the others NAME_TAKEN. TRY_LATER (NATS unreachable or
 *       slow) breaks no promise but decides nothing: such a round is
 *       counted as undecided. Prints "races N one-winner W undecided U
 *       violations V"; exit 1 if V > 0.
 *   bench-cluster-races victim N TAG LEASE_MS VICTIM_PORT VICTIM_PID PORT
 *       Logs N names in on the victim shard, SIGKILLs it (VICTIM_PID),
 *       then asks for each name on PORT until it gets it. Prints the time
 *       from the kill until the last name was taken; exit 1 if a name was
 *       not free within LEASE_MS + 2 s.
 *   bench-cluster-races listen SECONDS TAG PREFIX PORT [WINDOWS]
 *       Logs in as "lis<TAG>" (start it before the bots: it takes a place
 *       in chat channel 0) and reads every chat line for SECONDS. The bots'
 *       lines ("hi IDX.SEQ" from ringport-bench game) must come in order
 *       per sender, each once: a SEQ at or below the sender's last is a
 *       violation. Lines from senders whose name does not start with
 *       PREFIX came from other shards. Completeness: a sender's SEQ past
 *       the next one is a gap (lines lost); a gap is excused only if the
 *       time between the lines around it meets a fault window, a line
 *       "START_MS END_MS" (CLOCK_REALTIME, ms) of WINDOWS, read at the end
 *       (the run writes it: a shard killed, NATS down), widened by 0.5 s.
 *       Prints "listen: lines N remote R senders S violations V gaps G
 *       excused E lost L"; exit 1 if V > 0 or L > 0.
 * TAG (up to 3 of [A-Za-z0-9]) keeps the names of runs apart. Every read
 * is bounded (10 s). Exit status 2 for bad arguments.
 */
#include "gm_wire.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SHARDS 16

static int64_t now_ms(void)
{
    return gw_now_ns() / 1000000;
}

static void send_login(int fd, const char *name)
{
    struct gm_msg m = {.type = GM_LOGIN};
    m.u.login = gm_str_of(name, strlen(name));
    gw_send(fd, &m);
}

/* The answer to a LOGIN: 0 for LOGIN_OK, else its ERROR code. */
static uint16_t login_answer(int fd)
{
    uint8_t buf[GM_PAYLOAD_MAX];
    struct gm_msg m;
    gw_recv(fd, &m, buf);
    if (m.type == GM_LOGIN_OK)
        return 0;
    if (m.type != GM_ERROR || m.u.error.about != GM_LOGIN)
        gw_die("unexpected answer to LOGIN");
    return m.u.error.code;
}

static int races(int n, const char *tag, const uint16_t *ports, int nports)
{
    int one = 0, undecided = 0, bad = 0;
    for (int i = 0; i < n; i++) {
        char name[GM_NAME_MAX + 1];
        int fd[MAX_SHARDS], ok = 0, taken = 0, later = 0;
        snprintf(name, sizeof name, "race%s%d", tag, i);
        for (int s = 0; s < nports; s++)
            fd[s] = gw_connect(ports[s]);
        for (int s = 0; s < nports; s++)
            send_login(fd[s], name);
        for (int s = 0; s < nports; s++) {
            uint16_t code = login_answer(fd[s]);
            ok += code == 0;
            taken += code == GM_ERR_NAME_TAKEN;
            later += code == GM_ERR_TRY_LATER;
        }
        for (int s = 0; s < nports; s++)
            close(fd[s]);
        if (ok > 1 || (ok == 0 && later == 0) || ok + taken + later != nports) {
            fprintf(stderr,
                    "bench-cluster-races: %s: %d winners, %d taken, %d "
                    "try-later\n",
                    name, ok, taken, later);
            bad++;
        } else if (later) {
            undecided++;
        } else {
            one++;
        }
    }
    printf("races %d one-winner %d undecided %d violations %d\n", n, one,
           undecided, bad);
    return bad ? 1 : 0;
}

static int victim(int n, const char *tag, int lease_ms, uint16_t vport,
                  pid_t vpid, uint16_t port)
{
    char name[GM_NAME_MAX + 1];
    int *fd = calloc((size_t)n, sizeof *fd);
    if (!fd)
        gw_die("out of memory");
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "vic%s%d", tag, i);
        fd[i] = gw_connect(vport);
        send_login(fd[i], name);
        if (login_answer(fd[i]) != 0)
            gw_die("the victim shard refused a name");
    }
    /* Held past a refresh, then the shard dies without a logout. */
    usleep((useconds_t)lease_ms / 2 * 1000);
    if (kill(vpid, SIGKILL) < 0)
        gw_die("kill");
    int64_t t0 = now_ms(), last = t0;
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "vic%s%d", tag, i);
        for (;;) {
            int f = gw_connect(port);
            send_login(f, name);
            uint16_t code = login_answer(f);
            close(f);
            if (code == 0)
                break;
            if (now_ms() - t0 > lease_ms + 2000) {
                printf("victim: %s still held %lld ms after the kill "
                       "(lease %d ms)\n",
                       name, (long long)(now_ms() - t0), lease_ms);
                free(fd);
                return 1;
            }
            usleep(50 * 1000);
        }
        last = now_ms();
    }
    for (int i = 0; i < n; i++)
        close(fd[i]);
    free(fd);
    printf("victim: %d names free %lld ms after the kill (lease %d ms)\n", n,
           (long long)(last - t0), lease_ms);
    return 0;
}

#define SENDERS 8192 /* open addressing, a power of two */

struct sender {
    char name[GM_NAME_MAX + 1]; /* "" : free */
    uint32_t last;
    int64_t last_ms; /* when its last line came (CLOCK_REALTIME) */
};

#define GAPS 65536
#define WINDOW_SLACK_MS 500

struct gap {
    int64_t from_ms, to_ms; /* the lines around it came then */
    uint32_t after, next;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Gaps that meet no fault window of 'path' (none given: all count). */
static uint64_t unexcused(const struct gap *gaps, uint64_t n, const char *path,
                          const char *const *from)
{
    long long ws[64][2];
    int nw = 0;
    FILE *f = path ? fopen(path, "r") : NULL;
    while (f && nw < 64 && fscanf(f, "%lld %lld", &ws[nw][0], &ws[nw][1]) == 2)
        nw++;
    if (f)
        fclose(f);
    uint64_t lost = 0;
    for (uint64_t i = 0; i < n; i++) {
        bool excused = false;
        for (int k = 0; k < nw && !excused; k++)
            excused = gaps[i].to_ms >= ws[k][0] - WINDOW_SLACK_MS &&
                      gaps[i].from_ms <= ws[k][1] + WINDOW_SLACK_MS;
        if (excused)
            continue;
        if (lost++ < 10)
            fprintf(stderr,
                    "bench-cluster-races: %s: lines %u..%u lost (between "
                    "%lld and %lld ms, no fault then)\n",
                    from[i], gaps[i].after + 1, gaps[i].next - 1,
                    (long long)gaps[i].from_ms, (long long)gaps[i].to_ms);
    }
    return lost;
}

static int listen_chat(int secs, const char *tag, const char *prefix,
                       uint16_t port, const char *windows)
{
    static struct sender tab[SENDERS];
    static struct gap gaps[GAPS];
    static const char *gap_from[GAPS];
    uint64_t ngaps = 0;
    char me[GM_NAME_MAX + 1];
    snprintf(me, sizeof me, "lis%s", tag);
    int fd = gw_connect(port);
    send_login(fd, me);
    if (login_answer(fd) != 0)
        gw_die("the listener could not log in");
    struct timeval tv = {0, 200 * 1000}; /* poll the clock 5 times a second */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    uint64_t lines = 0, remote = 0, senders = 0, bad = 0;
    int64_t end = now_ms() + (int64_t)secs * 1000;
    uint8_t buf[GM_PAYLOAD_MAX + 4];
    size_t have = 0;
    while (now_ms() < end) {
        ssize_t r = read(fd, buf + have, sizeof buf - have);
        if (r == 0)
            gw_die("the shard closed the listener");
        if (r < 0)
            continue; /* the 200 ms timeout */
        have += (size_t)r;
        for (;;) { /* every whole frame in buf */
            if (have < 4)
                break;
            size_t len = (size_t)(buf[0] | buf[1] << 8);
            uint16_t type = (uint16_t)(buf[2] | buf[3] << 8);
            if (len > GM_PAYLOAD_MAX)
                gw_die("oversized frame");
            if (have < 4 + len)
                break;
            struct gm_msg m;
            unsigned idx, seq;
            char text[GM_TEXT_MAX + 1];
            if (gm_decode(type, buf + 4, len, &m) < 0)
                gw_die("undecodable frame");
            if (m.type == GM_CHAT_MSG) {
                snprintf(text, sizeof text, "%.*s", (int)m.u.chat_msg.text.len,
                         m.u.chat_msg.text.p);
                if (sscanf(text, "hi %u.%u", &idx, &seq) == 2) {
                    char from[GM_NAME_MAX + 1];
                    snprintf(from, sizeof from, "%.*s",
                             (int)m.u.chat_msg.from.len, m.u.chat_msg.from.p);
                    uint32_t h = 2166136261u;
                    for (const char *p = from; *p; p++)
                        h = (h ^ (uint8_t)*p) * 16777619u;
                    struct sender *e = &tab[h & (SENDERS - 1)];
                    while (e->name[0] && strcmp(e->name, from) != 0)
                        e = e == &tab[SENDERS - 1] ? tab : e + 1;
                    if (!e->name[0]) {
                        if (++senders == SENDERS)
                            gw_die("too many senders");
                        strcpy(e->name, from);
                    } else if (seq <= e->last) {
                        fprintf(stderr,
                                "bench-cluster-races: %s: line %u after %u\n",
                                from, seq, e->last);
                        bad++;
                    } else if (seq > e->last + 1) {
                        if (ngaps == GAPS)
                            gw_die("too many gaps");
                        gaps[ngaps] =
                            (struct gap){e->last_ms, wall_ms(), e->last, seq};
                        gap_from[ngaps++] = e->name;
                    }
                    e->last = seq;
                    e->last_ms = wall_ms();
                    lines++;
                    remote += strncmp(from, prefix, strlen(prefix)) != 0;
                }
            }
            memmove(buf, buf + 4 + len, have - 4 - len);
            have -= 4 + len;
        }
    }
    close(fd);
    uint64_t lost = unexcused(gaps, ngaps, windows, gap_from);
    printf("listen: lines %llu remote %llu senders %llu violations %llu gaps "
           "%llu excused %llu lost %llu\n",
           (unsigned long long)lines, (unsigned long long)remote,
           (unsigned long long)senders, (unsigned long long)bad,
           (unsigned long long)ngaps, (unsigned long long)(ngaps - lost),
           (unsigned long long)lost);
    return bad || lost ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc >= 5 && strcmp(argv[1], "races") == 0 && strlen(argv[3]) <= 3) {
        uint16_t ports[MAX_SHARDS];
        int nports = argc - 4;
        if (nports > MAX_SHARDS)
            return 2;
        for (int s = 0; s < nports; s++)
            ports[s] = (uint16_t)atoi(argv[4 + s]);
        return races(atoi(argv[2]), argv[3], ports, nports);
    }
    if (argc == 8 && strcmp(argv[1], "victim") == 0 && strlen(argv[3]) <= 3)
        return victim(atoi(argv[2]), argv[3], atoi(argv[4]),
                      (uint16_t)atoi(argv[5]), (pid_t)atoi(argv[6]),
                      (uint16_t)atoi(argv[7]));
    if ((argc == 6 || argc == 7) && strcmp(argv[1], "listen") == 0 &&
        strlen(argv[3]) <= 3)
        return listen_chat(atoi(argv[2]), argv[3], argv[4],
                           (uint16_t)atoi(argv[5]), argc == 7 ? argv[6] : NULL);
    fprintf(stderr, "usage: bench-cluster-races races N TAG PORT...\n"
                    "       bench-cluster-races victim N TAG LEASE_MS "
                    "VICTIM_PORT VICTIM_PID PORT\n"
                    "       bench-cluster-races listen SECONDS TAG PREFIX "
                    "PORT [WINDOWS]\n");
    return 2;
}
