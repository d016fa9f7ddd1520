/*
 * bench-epoll_room: the fan-out baseline, an epoll "room" server speaking
 * the room protocol of ringport-bench (framed: u16 payload length + u16
 * type, little-endian; type 1 JOIN with a u32 room id, answered with
 * nothing; type 2 broadcast unchanged to every member of the sender's room,
 * the sender included). It is the naive but common design: one write() per
 * message per member, straight from the sender's input buffer; a member
 * whose socket is full gets the unsent bytes appended to its own output
 * buffer and EPOLLOUT armed until it drains (more than OUT_LIMIT bytes
 * pending cuts it, as Redis's hard output limit does). Level-triggered,
 * non-blocking sockets, one read() per readable socket.
 *
 * Rooms span every connection, so the server runs one loop: --threads
 * accepts only 1.
 *
 *     bench-epoll_room --port 7004 &
 *     ringport-bench room --port 7004 --connections 200 --room-size 100
 */
#include "bench_common.h"

#include <stdbool.h>
#include <sys/epoll.h>

#define PROG "bench-epoll_room"
#define IN_SIZE 16384 /* grows to the largest frame seen */
#define OUT_LIMIT (4u << 20)
#define MAX_EVENTS 256
#define MAX_ROOM_ID (1u << 20)
#define T_JOIN 1
#define T_MSG 2

struct conn {
    int fd;
    bool dead;     /* closed in this batch; freed at its end */
    uint32_t room; /* UINT32_MAX: in none */
    uint32_t slot; /* index in the room's member array */
    uint8_t *in;   /* in[0, in_len) received, not yet parsed */
    uint32_t in_len, in_cap;
    uint8_t *out; /* out[out_off, out_len) waits for EPOLLOUT */
    uint32_t out_off, out_len, out_cap;
    struct conn *next_dead;
};

struct room {
    struct conn **m;
    uint32_t n, cap;
};

static struct room *rooms;
static uint32_t n_rooms;
static int ep, lfd;
static struct conn *dead;

static void room_leave(struct conn *c)
{
    if (c->room == UINT32_MAX)
        return;
    struct room *r = &rooms[c->room];
    r->m[c->slot] = r->m[--r->n];
    r->m[c->slot]->slot = c->slot;
    c->room = UINT32_MAX;
}

static int room_join(struct conn *c, uint32_t id)
{
    if (id >= MAX_ROOM_ID)
        return -EINVAL;
    if (id >= n_rooms) {
        uint32_t n = n_rooms ? n_rooms : 64;
        while (n <= id)
            n *= 2;
        struct room *nr = realloc(rooms, n * sizeof *nr);
        if (!nr)
            return -ENOMEM;
        memset(nr + n_rooms, 0, (n - n_rooms) * sizeof *nr);
        rooms = nr;
        n_rooms = n;
    }
    room_leave(c);
    struct room *r = &rooms[id];
    if (r->n == r->cap) {
        uint32_t cap = r->cap ? r->cap * 2 : 16;
        struct conn **m = realloc(r->m, cap * sizeof *m);
        if (!m)
            return -ENOMEM;
        r->m = m;
        r->cap = cap;
    }
    c->room = id;
    c->slot = r->n;
    r->m[r->n++] = c;
    return 0;
}

/* Closes now, frees at the end of the batch (events may still name it). */
static void conn_kill(struct conn *c)
{
    if (c->dead)
        return;
    c->dead = true;
    room_leave(c);
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->next_dead = dead;
    dead = c;
}

static void watch(struct conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        conn_kill(c);
}

/* Keeps 'len' bytes for EPOLLOUT; false if over the limit. */
static bool out_append(struct conn *c, const uint8_t *p, uint32_t len)
{
    uint32_t need = c->out_len - c->out_off + len;
    if (need > OUT_LIMIT)
        return false;
    if (c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (need > c->out_cap) {
        uint32_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < need)
            cap *= 2;
        uint8_t *o = realloc(c->out, cap);
        if (!o)
            return false;
        c->out = o;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, p, len);
    c->out_len += len;
    return true;
}

/* One write() of the frame to 'm'; what does not fit waits in its out. */
static void deliver(struct conn *m, const uint8_t *frame, uint32_t len)
{
    if (m->dead)
        return;
    uint32_t sent = 0;
    if (m->out_len == m->out_off) {
        ssize_t w = write(m->fd, frame, len);
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            conn_kill(m);
            return;
        }
        sent = w > 0 ? (uint32_t)w : 0;
        if (sent == len)
            return;
        if (!out_append(m, frame + sent, len - sent)) {
            conn_kill(m);
            return;
        }
        watch(m, EPOLLIN | EPOLLOUT);
        return;
    }
    if (!out_append(m, frame, len))
        conn_kill(m);
}

static void on_frame(struct conn *c, const uint8_t *f, uint16_t len,
                     uint16_t type)
{
    if (type == T_JOIN) {
        uint32_t id;
        if (len < 4) {
            conn_kill(c);
            return;
        }
        memcpy(&id, f + 4, 4); /* little-endian host */
        if (room_join(c, id) < 0)
            conn_kill(c);
        return;
    }
    if (type != T_MSG || c->room == UINT32_MAX)
        return;
    struct room *r = &rooms[c->room];
    /* A member cut inside the loop leaves the array: walk it backwards so
       the swap-remove only moves members already served. */
    for (uint32_t i = r->n; i-- > 0;) {
        if (i >= r->n)
            continue;
        deliver(r->m[i], f, 4u + len);
    }
}

static void on_readable(struct conn *c)
{
    if (c->in_len == c->in_cap) {
        conn_kill(c); /* cannot happen: the buffer grows to a frame */
        return;
    }
    ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        conn_kill(c);
        return;
    }
    c->in_len += (uint32_t)n;
    uint32_t off = 0;
    while (!c->dead && c->in_len - off >= 4) {
        const uint8_t *h = c->in + off;
        uint16_t len = (uint16_t)(h[0] | h[1] << 8);
        uint16_t type = (uint16_t)(h[2] | h[3] << 8);
        if (c->in_len - off < 4u + len)
            break;
        on_frame(c, h, len, type);
        off += 4u + len;
    }
    if (c->dead)
        return;
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    if (c->in_len >= 4) { /* make room for the whole pending frame */
        uint32_t need = 4u + (uint32_t)(c->in[0] | c->in[1] << 8);
        if (need > c->in_cap) {
            uint8_t *in = realloc(c->in, need);
            if (!in) {
                conn_kill(c);
                return;
            }
            c->in = in;
            c->in_cap = need;
        }
    }
}

static void on_writable(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (w < 0) {
            if (errno == EAGAIN)
                return;
            if (errno == EINTR)
                continue;
            conn_kill(c);
            return;
        }
        c->out_off += (uint32_t)w;
    }
    c->out_off = c->out_len = 0;
    watch(c, EPOLLIN);
}

static void on_accept(void)
{
    for (int i = 0; i < 64; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct conn *c = calloc(1, sizeof *c);
        uint8_t *in = malloc(IN_SIZE);
        if (!c || !in) {
            free(c);
            free(in);
            close(fd);
            continue;
        }
        c->fd = fd;
        c->room = UINT32_MAX;
        c->in = in;
        c->in_cap = IN_SIZE;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd);
            free(in);
            free(c);
        }
    }
}

static int wait_events(struct epoll_event *evs, unsigned spin_us)
{
    int n = 0;
    if (spin_us) {
        uint64_t end = bs_now_ns() + (uint64_t)spin_us * 1000u;
        do
            n = epoll_wait(ep, evs, MAX_EVENTS, 0);
        while (n == 0 && bs_now_ns() < end);
        if (n != 0)
            return n;
    }
    return epoll_wait(ep, evs, MAX_EVENTS, -1);
}

static void *loop_run(void *arg)
{
    unsigned spin_us = *(unsigned *)arg;
    struct epoll_event evs[MAX_EVENTS];
    for (;;) {
        int n = wait_events(evs, spin_us);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, PROG ": epoll_wait: %s\n", strerror(errno));
            exit(1);
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c) {
                on_accept();
                continue;
            }
            if (!c->dead && (evs[i].events & EPOLLOUT))
                on_writable(c);
            if (!c->dead && (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                on_readable(c);
        }
        while (dead) {
            struct conn *c = dead;
            dead = c->next_dead;
            free(c->in);
            free(c->out);
            free(c);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct bs_opts o;
    sigset_t set;
    pthread_t t;

    bs_parse(argc, argv, "room fan-out (framed) on one epoll loop", &o);
    if (o.threads != 1) {
        fprintf(stderr, PROG ": rooms live in one loop: --threads 1 only\n");
        return 2;
    }
    uint16_t port = bs_listen_all(PROG, o.port, 1, 1, &lfd);
    bs_block_signals(&set);
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) {
        fprintf(stderr, PROG ": epoll: %s\n", strerror(errno));
        return 1;
    }
    if (pthread_create(&t, NULL, loop_run, &o.spin_us) != 0) {
        fprintf(stderr, PROG ": cannot start a thread\n");
        return 1;
    }
    bs_announce(port);
    bs_wait_and_exit(&set);
}
