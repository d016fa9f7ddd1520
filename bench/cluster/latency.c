/*
 * bench-cluster-latency: what the cluster adds to a player's wait
 * (docs/cluster.md), measured from the client side with nothing but
 * docs/protocol.md and the game's codec.
 *
 *   bench-cluster-latency PORT_A PORT_B PORT_PLAIN [N] [TAG]
 *
 * PORT_A and PORT_B are two shards of one cluster, PORT_PLAIN a game
 * without --cluster. It times N logins (connect, LOGIN, LOGIN_OK; closed
 * after) alternately on shard A and on the plain game, then N chat lines
 * sent by a player on A: until a second player on A (local) and a player
 * on B (remote) have them. One line at a time, 1 ms apart. Prints p50 and
 * p99 of each, one line per measure. TAG (default "x", up to 3 of
 * [A-Za-z0-9]) keeps the names of repeated runs apart.
 * Exit status: 0, 1 on any unexpected reply or I/O error (10 s bound on
 * every read), 2 for bad arguments.
 */
#include "gm_wire.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_MAX 100000

/* LOGIN on a new connection; the time to LOGIN_OK in *ns. */
static int login(uint16_t port, const char *name, int64_t *ns)
{
    int fd = gw_connect(port);
    struct gm_msg m = {.type = GM_LOGIN};
    uint8_t buf[GM_PAYLOAD_MAX];
    m.u.login = gm_str_of(name, strlen(name));
    int64_t t = gw_now_ns();
    gw_send(fd, &m);
    gw_recv(fd, &m, buf);
    *ns = gw_now_ns() - t;
    if (m.type != GM_LOGIN_OK) {
        fprintf(stderr, "bench-cluster-latency: LOGIN %s: %s %s\n", name,
                gm_type_name(m.type),
                m.type == GM_ERROR ? gm_error_name(m.u.error.code) : "");
        exit(1);
    }
    return fd;
}

/* The next CHAT_MSG whose text is 'text' (earlier lines are skipped). */
static void await_line(int fd, const char *text)
{
    struct gm_msg m;
    uint8_t buf[GM_PAYLOAD_MAX];
    size_t n = strlen(text);
    do {
        gw_recv(fd, &m, buf);
        if (m.type != GM_CHAT_MSG)
            gw_die("unexpected message while waiting for a chat line");
    } while (m.u.chat_msg.text.len != n ||
             memcmp(m.u.chat_msg.text.p, text, n) != 0);
}

static int cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, int64_t *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    printf("%s: n %d p50 %.0f us p99 %.0f us\n", what, n, v[n / 2] / 1e3,
           v[(size_t)n * 99 / 100] / 1e3);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench-cluster-latency PORT_A PORT_B "
                        "PORT_PLAIN [N] [TAG]\n");
        return 2;
    }
    uint16_t pa = (uint16_t)atoi(argv[1]), pb = (uint16_t)atoi(argv[2]),
             pp = (uint16_t)atoi(argv[3]);
    int n = argc > 4 ? atoi(argv[4]) : 300;
    const char *tag = argc > 5 ? argv[5] : "x";
    if (!pa || !pb || !pp || n < 1 || n > N_MAX || strlen(tag) > 3)
        return 2;
    int64_t *lc = calloc((size_t)n, sizeof *lc);
    int64_t *lp = calloc((size_t)n, sizeof *lp);
    int64_t *loc = calloc((size_t)n, sizeof *loc);
    int64_t *rem = calloc((size_t)n, sizeof *rem);
    if (!lc || !lp || !loc || !rem)
        gw_die("out of memory");
    char name[GM_NAME_MAX + 1], text[32];
    for (int i = 0; i < n; i++) { /* interleaved: cluster, plain */
        snprintf(name, sizeof name, "lc%s%d", tag, i);
        close(login(pa, name, &lc[i]));
        snprintf(name, sizeof name, "lp%s%d", tag, i);
        close(login(pp, name, &lp[i]));
    }
    report("login, cluster shard", lc, n);
    report("login, no cluster", lp, n);

    int64_t d;
    snprintf(name, sizeof name, "ann%s", tag);
    int ann = login(pa, name, &d);
    snprintf(name, sizeof name, "cal%s", tag);
    int cal = login(pa, name, &d);
    snprintf(name, sizeof name, "ben%s", tag);
    int ben = login(pb, name, &d);
    /* Until a line crosses (B's subscription is in place), then measure. */
    struct gm_msg c = {.type = GM_CHAT};
    c.u.chat = gm_str_of("warm", 4);
    for (int k = 0;; k++) {
        if (k == 100)
            gw_die("no chat line reached the other shard in 100 tries");
        gw_send(ann, &c);
        await_line(ann, "warm");
        await_line(cal, "warm");
        struct pollfd p = {.fd = ben, .events = POLLIN};
        if (poll(&p, 1, 100) > 0) {
            await_line(ben, "warm");
            break;
        }
    }
    for (int i = 0; i < n; i++) {
        snprintf(text, sizeof text, "n%d", i);
        c.u.chat = gm_str_of(text, strlen(text));
        int64_t t0 = gw_now_ns();
        gw_send(ann, &c);
        await_line(cal, text);
        loc[i] = gw_now_ns() - t0;
        await_line(ben, text);
        rem[i] = gw_now_ns() - t0;
        await_line(ann, text);
        usleep(1000);
    }
    report("chat, member on the same shard", loc, n);
    report("chat, member on another shard", rem, n);
    close(ann);
    close(cal);
    close(ben);
    free(lc);
    free(lp);
    free(loc);
    free(rem);
    return 0;
}
