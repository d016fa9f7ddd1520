/*
 * Session resume (resume_grace_ms > 0) end to end, with a raw-socket client
 * that speaks the engine control messages of docs/protocol.md itself (the
 * rc_ helpers below), on every backend variant.
 *
 * The server program: every session gets a struct sess as its data at
 * on_join. Type T_SEQ frames carry a u32 sequence number that must be the
 * session's next (order, nothing lost or doubled, across connections and
 * group moves); T_PUSH asks for n T_OUT frames numbered 0, 1, ...;
 * T_REPORT is answered with T_REPORT {next_in, errors}. The client checks
 * the T_OUT numbers the same way, and resends its T_SEQ frames from the
 * count RESUME_OK gives it.
 *
 * Covered: drop and resume mid-stream with 10,000 frames queued each way;
 * a detached session holds no descriptor; expiry (RESUME_EXPIRED exactly
 * once, then RESUME_ERROR 1); forged, reused (rotated), malformed and
 * out-of-range RESUMEs; two concurrent RESUMEs (exactly one wins); a
 * RESUME for an attached session takes it over; a drop during group moves
 * (tickets come back once, order holds, the group hears on_detach /
 * on_resume); a storm of clients that drop and resume at once (also under
 * ASan and TSan, like every integration test), which prints the resume
 * latency it saw (no timed assertion).
 */
#include "server_util.h"

#include <dirent.h>
#include <ringport/group.h>
#include <stdlib.h>

/* ---- no memory on an I/O thread: io_calloc_fail.h ---------------------- */
#include "io_calloc_fail.h"

enum {
    T_SEQ = 3,
    T_PUSH = 2,
    T_OUT = 1,
    T_REPORT = 4,
    T_MOVE = 6,
};

/* ---- the server program -------------------------------------------------- */

struct sess {
    uint32_t next_in, next_out, errors;
};

static struct {
    _Atomic uint64_t joins, leaves, detaches, resumes;
    _Atomic uint64_t by_reason[RP_LEAVE_REASON_COUNT];
    _Atomic uint64_t g_detaches, g_resumes, enters, g_leaves;
    _Atomic uint64_t tickets_made, tickets_back;
    struct rp_group *groups[2];
} ev;

static void ev_reset(void)
{
    memset(&ev, 0, sizeof ev);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void send_u32s(struct rp_server *srv, rp_sid sid, uint16_t type,
                      uint32_t a, uint32_t b)
{
    struct rp_packet *pkt;
    assert_int_equal(rp_packet_create(8, type, &pkt), 0);
    rp_packet_put_u32(pkt, a);
    rp_packet_put_u32(pkt, b);
    int r = rp_server_send(srv, sid, pkt);
    assert_true(r == 0 || r == -ENOTCONN);
    rp_packet_unref(pkt);
}

/* Shared by the server's and the groups' on_message. */
static void handle(struct rp_server *srv, rp_sid sid, struct sess *d,
                   const struct rp_message *msg)
{
    assert_non_null(d);
    switch (msg->type) {
    case T_SEQ:
        if (msg->len != 4 || get32(msg->payload) != d->next_in)
            d->errors++;
        d->next_in++;
        break;
    case T_PUSH: {
        uint32_t n = get32(msg->payload);
        for (uint32_t i = 0; i < n; i++) {
            /* rp_server_send_frame: with resume on, a packet per frame
               even from the session's own callback (frames are retained
               and resent one by one), never a batch. */
            uint8_t out[4];
            put32(out, d->next_out++);
            int r = rp_server_send_frame(srv, sid, T_OUT, out, sizeof out);
            if (r < 0) { /* cut: over send_queue_limit */
                assert_int_equal(r, -ENOBUFS);
                break;
            }
        }
        break;
    }
    case T_REPORT: send_u32s(srv, sid, T_REPORT, d->next_in, d->errors); break;
    default: d->errors++; break;
    }
}

static void on_join(struct rp_server *srv, rp_sid sid, void *user)
{
    (void)user;
    struct sess *d = calloc(1, sizeof *d);
    assert_non_null(d);
    assert_int_equal(rp_session_set_data(srv, sid, d), 0);
    atomic_fetch_add(&ev.joins, 1);
}

static void on_leave(struct rp_server *srv, rp_sid sid, void *data,
                     enum rp_leave_reason reason, void *user)
{
    (void)srv, (void)sid, (void)user;
    free(data);
    atomic_fetch_add(&ev.leaves, 1);
    atomic_fetch_add(&ev.by_reason[reason], 1);
}

static void on_message(struct rp_server *srv, rp_sid sid, void *data,
                       const struct rp_message *msg, void *user)
{
    (void)user;
    assert_true(msg->type < RP_CTL_FIRST); /* control frames never come */
    if (msg->type == T_MOVE && ev.groups[0]) {
        int *ticket = malloc(sizeof *ticket);
        assert_non_null(ticket);
        atomic_fetch_add(&ev.tickets_made, 1);
        assert_int_equal(rp_group_move(srv, sid, ev.groups[0], ticket), 0);
        return;
    }
    handle(srv, sid, data, msg);
}

static void on_detach(struct rp_server *srv, rp_sid sid, void *data, void *user)
{
    (void)srv, (void)sid, (void)user;
    assert_non_null(data);
    atomic_fetch_add(&ev.detaches, 1);
}

static void on_resume(struct rp_server *srv, rp_sid sid, void *data, void *user)
{
    (void)srv, (void)sid, (void)user;
    assert_non_null(data);
    atomic_fetch_add(&ev.resumes, 1);
}

static void on_ticket_drop(struct rp_server *srv, rp_sid sid, void *ticket,
                           void *user)
{
    (void)srv, (void)sid, (void)user;
    free(ticket);
    atomic_fetch_add(&ev.tickets_back, 1);
}

static uint32_t send_queue_limit; /* 0: the default */

static struct rp_server *start(uint32_t grace_ms, uint32_t threads)
{
    struct rp_server_config cfg;
    rp_server_config_init(&cfg);
    cfg.listen_addr = "127.0.0.1";
    cfg.backend = su_kind;
    cfg.io_threads = threads;
    cfg.resume_grace_ms = grace_ms;
    cfg.max_sessions = 2048;
    cfg.cb.on_join = on_join;
    cfg.cb.on_leave = on_leave;
    cfg.cb.on_message = on_message;
    cfg.cb.on_detach = on_detach;
    cfg.cb.on_resume = on_resume;
    cfg.cb.on_ticket_drop = on_ticket_drop;
    if (send_queue_limit)
        cfg.send_queue_limit = send_queue_limit;
    struct rp_server *srv;
    assert_int_equal(rp_server_create(&cfg, &srv), 0);
    assert_int_equal(rp_server_start(srv), 0);
    return srv;
}

static struct rp_server_stats stats(struct rp_server *srv)
{
    struct rp_server_stats s;
    rp_server_get_stats(srv, &s);
    return s;
}

/* Stops the server: every session left exactly once, as many as joined. */
static void finish(struct rp_server *srv)
{
    assert_int_equal(rp_server_stop(srv), 0);
    struct rp_server_stats s = stats(srv);
    assert_int_equal(s.sessions, 0);
    assert_int_equal(s.detached, 0);
    assert_int_equal(atomic_load(&ev.leaves), atomic_load(&ev.joins));
    assert_int_equal(atomic_load(&ev.tickets_made),
                     atomic_load(&ev.tickets_back));
    rp_server_destroy(srv);
}

/* ---- the client: control messages by hand ------------------------------ */

struct rc {
    int fd;
    rp_sid sid;
    uint8_t tok[RP_RESUME_TOKEN_SIZE];
    uint64_t received; /* game frames received on the session */
    uint32_t next_out; /* the T_OUT number expected next */
    uint64_t srv_ack;  /* the server's latest ACK */
};

/* The next game frame (ACKs and other control frames are skipped, never
   counted). Returns the payload length or a negative error. */
static int rc_next(struct rc *c, uint16_t *type, uint8_t *p, size_t cap)
{
    for (;;) {
        int r = su_read_frame(c->fd, type, p, cap, SU_WAIT_MS);
        if (r < 0)
            return r;
        if (*type < RP_CTL_FIRST) {
            c->received++;
            return r;
        }
        if (*type != RP_CTL_ACK)
            fail_msg("control frame 0x%x mid-stream", *type);
        assert_int_equal(r, 8);
        assert_true(get64(p) > c->srv_ack); /* counts only go up */
        c->srv_ack = get64(p);
    }
}

/* A fresh session: HELLO, then RESUME_TOKEN is the first frame back. */
static void rc_hello(struct rc *c, uint16_t port)
{
    memset(c, 0, sizeof *c);
    c->fd = su_connect(port);
    su_send_frame(c->fd, RP_CTL_HELLO, NULL, 0);
    uint8_t p[64];
    uint16_t type = 0;
    int r = su_read_frame(c->fd, &type, p, sizeof p, SU_WAIT_MS);
    assert_int_equal(r, 8 + RP_RESUME_TOKEN_SIZE);
    assert_int_equal(type, RP_CTL_RESUME_TOKEN);
    c->sid = get64(p);
    memcpy(c->tok, p + 8, RP_RESUME_TOKEN_SIZE);
}

static void rc_send_resume(int fd, rp_sid sid, const uint8_t *tok,
                           uint64_t received)
{
    uint8_t p[32];
    put64(p, sid);
    memcpy(p + 8, tok, RP_RESUME_TOKEN_SIZE);
    put64(p + 24, received);
    su_send_frame(fd, RP_CTL_RESUME, p, sizeof p);
}

/* Reads the answer to a RESUME on 'fd': 0 (RESUME_OK: the server's count
   in *srv_count, the new token in c) or the RESUME_ERROR code (the server
   then closes: checked). */
static int rc_answer(struct rc *c, int fd, uint64_t *srv_count)
{
    uint8_t p[64];
    uint16_t type = 0;
    int r = su_read_frame(fd, &type, p, sizeof p, SU_WAIT_MS);
    if (r < 0)
        fail_msg("no answer to RESUME: %s", strerror(-r));
    if (type == RP_CTL_RESUME_ERROR) {
        assert_int_equal(r, 2);
        assert_int_equal(su_wait_closed(fd, SU_WAIT_MS), 0);
        return p[0] | p[1] << 8;
    }
    assert_int_equal(type, RP_CTL_RESUME_OK);
    assert_int_equal(r, 8 + RP_RESUME_TOKEN_SIZE);
    if (srv_count)
        *srv_count = get64(p);
    memcpy(c->tok, p + 8, RP_RESUME_TOKEN_SIZE);
    return 0;
}

/* Resumes c on a new connection. Returns 0 (c->fd is the new one) or the
   error code (c->fd untouched; the refused connection is closed). */
static int rc_resume(struct rc *c, uint16_t port, uint64_t *srv_count)
{
    int fd = su_connect(port);
    rc_send_resume(fd, c->sid, c->tok, c->received);
    int r = rc_answer(c, fd, srv_count);
    if (r) {
        close(fd);
        return r;
    }
    c->fd = fd;
    return 0;
}

/* The session's report: how many T_SEQ it took in order, and errors. */
static void rc_report(struct rc *c, uint32_t *next_in, uint32_t *errors)
{
    su_send_frame(c->fd, T_REPORT, NULL, 0);
    uint8_t p[64];
    uint16_t type = 0;
    for (;;) {
        int r = rc_next(c, &type, p, sizeof p);
        assert_true(r >= 0);
        if (type == T_REPORT) {
            assert_int_equal(r, 8);
            break;
        }
        assert_int_equal(type, T_OUT); /* the rest of a push */
        assert_int_equal(get32(p), c->next_out);
        c->next_out++;
    }
    *next_in = get32(p);
    *errors = get32(p + 4);
}

/* T_SEQ frames [from, to) in one write. */
static void rc_send_seq(int fd, uint32_t from, uint32_t to)
{
    size_t n = to - from;
    uint8_t *buf = malloc(n * 8 + 1);
    assert_non_null(buf);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t p[4];
        put32(p, from + i);
        su_frame(buf + 8 * i, T_SEQ, p, 4);
    }
    su_send_all(fd, buf, n * 8);
    free(buf);
}

static int fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

#define WAIT_STAT(srv, field, want) SU_WAIT(stats(srv).field == (want))

/* ---- tests ----------------------------------------------------------------
 */

static void drop_and_resume_mid_stream(void **state)
{
    (void)state;
    enum { N = 10000, READ_FIRST = 3000 };
    ev_reset();
    struct rp_server *srv = start(30000, 2);
    uint16_t port = rp_server_port(srv);
    int fds_before = fd_count();
    struct rc c;
    rc_hello(&c, port);
    assert_int_equal(atomic_load(&ev.joins), 1);

    /* 10,000 frames each way are queued, then the connection is reset
       with most of them unread. */
    uint8_t p[8];
    put32(p, N);
    su_send_frame(c.fd, T_PUSH, p, 4);
    rc_send_seq(c.fd, 0, N);
    uint16_t type;
    uint8_t buf[64];
    while (c.received < READ_FIRST) {
        assert_int_equal(rc_next(&c, &type, buf, sizeof buf), 4);
        assert_int_equal(type, T_OUT);
        assert_int_equal(get32(buf), c.next_out++);
    }
    uint8_t ack[8];
    put64(ack, c.received); /* the server may free these */
    su_send_frame(c.fd, RP_CTL_ACK, ack, sizeof ack);
    su_close_rst(c.fd);
    WAIT_STAT(srv, detached, 1);
    assert_int_equal(stats(srv).detached, 1);
    assert_int_equal(atomic_load(&ev.detaches), 1);
    /* Detached: no descriptor on either side. */
    assert_int_equal(fd_count(), fds_before);

    uint64_t srv_count = 0;
    assert_int_equal(rc_resume(&c, port, &srv_count), 0);
    /* T_PUSH was the first game frame; T_SEQ follow. */
    assert_true(srv_count >= 1 && srv_count <= N + 1);
    assert_int_equal(atomic_load(&ev.resumes), 1);
    rc_send_seq(c.fd, (uint32_t)srv_count - 1, N); /* what it did not get */
    while (c.next_out < N) {
        assert_int_equal(rc_next(&c, &type, buf, sizeof buf), 4);
        assert_int_equal(type, T_OUT);
        assert_int_equal(get32(buf), c.next_out++);
    }
    uint32_t next_in, errors;
    rc_report(&c, &next_in, &errors);
    assert_int_equal(next_in, N);
    assert_int_equal(errors, 0);
    struct rp_server_stats s = stats(srv);
    assert_int_equal(s.resumes, 1);
    assert_int_equal(s.detached, 0);
    assert_int_equal(s.sessions, 1);
    assert_int_equal(atomic_load(&ev.joins), 1);
    assert_int_equal(atomic_load(&ev.leaves), 0);
    close(c.fd);
    finish(srv);
    assert_int_equal(atomic_load(&ev.by_reason[RP_LEAVE_SERVER_STOP]), 1);
}

static void expiry_ends_once_then_refuses(void **state)
{
    (void)state;
    ev_reset();
    struct rp_server *srv = start(100, 1);
    uint16_t port = rp_server_port(srv);
    struct rc c;
    rc_hello(&c, port);
    close(c.fd);
    SU_WAIT(atomic_load(&ev.leaves) == 1);
    assert_int_equal(atomic_load(&ev.by_reason[RP_LEAVE_RESUME_EXPIRED]), 1);
    assert_int_equal(atomic_load(&ev.detaches), 1);
    assert_int_equal(rc_resume(&c, port, NULL), RP_RESUME_ERR_UNKNOWN);
    struct rp_server_stats s = stats(srv);
    assert_int_equal(s.leaves[RP_LEAVE_RESUME_EXPIRED], 1);
    assert_int_equal(s.detached, 0);
    assert_int_equal(s.resume_refused, 1);
    su_sleep_ms(300); /* several grace periods: still one leave */
    assert_int_equal(atomic_load(&ev.leaves), 1);
    finish(srv);
    assert_int_equal(atomic_load(&ev.leaves), 1);
}

static void bad_resumes_are_refused(void **state)
{
    (void)state;
    ev_reset();
    struct rp_server *srv = start(30000, 2);
    uint16_t port = rp_server_port(srv);
    struct rc c;
    rc_hello(&c, port);
    su_close_rst(c.fd);
    WAIT_STAT(srv, detached, 1);

    /* Forged token. */
    struct rc forged = c;
    forged.tok[5] ^= 0x40;
    assert_int_equal(rc_resume(&forged, port, NULL), RP_RESUME_ERR_TOKEN);
    /* Unknown session. */
    struct rc unknown = c;
    unknown.sid = rp_sid_make(rp_sid_slot(c.sid), rp_sid_gen(c.sid) + 7);
    assert_int_equal(rc_resume(&unknown, port, NULL), RP_RESUME_ERR_UNKNOWN);
    /* More received than ever sent. */
    struct rc count = c;
    count.received = 5;
    assert_int_equal(rc_resume(&count, port, NULL), RP_RESUME_ERR_COUNT);
    /* Malformed: a short RESUME. */
    int fd = su_connect(port);
    su_send_frame(fd, RP_CTL_RESUME, c.tok, 8);
    assert_int_equal(rc_answer(&c, fd, NULL), RP_RESUME_ERR_MALFORMED);
    close(fd);
    /* None of that touched the session: the real token still works. */
    uint8_t old_tok[RP_RESUME_TOKEN_SIZE];
    memcpy(old_tok, c.tok, sizeof old_tok);
    assert_int_equal(rc_resume(&c, port, NULL), 0);
    assert_memory_not_equal(old_tok, c.tok, sizeof old_tok); /* rotated */
    su_close_rst(c.fd);
    WAIT_STAT(srv, detached, 1);
    /* The used token is spent. */
    struct rc reused = c;
    memcpy(reused.tok, old_tok, sizeof old_tok);
    assert_int_equal(rc_resume(&reused, port, NULL), RP_RESUME_ERR_TOKEN);
    assert_int_equal(rc_resume(&c, port, NULL), 0);
    uint32_t next_in, errors;
    rc_report(&c, &next_in, &errors);
    assert_int_equal(errors, 0);
    struct rp_server_stats s = stats(srv);
    assert_int_equal(s.resume_refused, 5);
    assert_int_equal(s.resumes, 2);
    assert_int_equal(atomic_load(&ev.joins), 1);
    /* A RESUME after the join is refused and ends the connection. */
    int live = c.fd;
    rc_send_resume(live, c.sid, c.tok, c.received);
    assert_int_equal(rc_answer(&c, live, NULL), RP_RESUME_ERR_MALFORMED);
    close(live);
    /* Sending a control type is refused to the program. */
    struct rp_packet *pkt;
    assert_int_equal(rp_packet_create(0, RP_CTL_ACK, &pkt), 0);
    assert_int_equal(rp_server_send(srv, c.sid, pkt), -EINVAL);
    rp_packet_unref(pkt);
    assert_int_equal(rp_server_send_frame(srv, c.sid, RP_CTL_ACK, NULL, 0),
                     -EINVAL);
    finish(srv);
}

static void concurrent_resumes_one_wins(void **state)
{
    (void)state;
    enum { ROUNDS = 20 };
    ev_reset();
    struct rp_server *srv = start(30000, 2);
    uint16_t port = rp_server_port(srv);
    struct rc c;
    rc_hello(&c, port);
    for (int round = 0; round < ROUNDS; round++) {
        /* Every other round the session is still attached: the winner
           takes it over. */
        if (round % 2 == 0) {
            su_close_rst(c.fd);
            WAIT_STAT(srv, detached, 1);
        }
        int fd[2] = {su_connect(port), su_connect(port)};
        rc_send_resume(fd[0], c.sid, c.tok, c.received);
        rc_send_resume(fd[1], c.sid, c.tok, c.received);
        struct rc a = c, b = c;
        int ra = rc_answer(&a, fd[0], NULL), rb = rc_answer(&b, fd[1], NULL);
        assert_true((ra == 0) != (rb == 0));
        assert_int_equal(ra ? ra : rb, RP_RESUME_ERR_TOKEN);
        int old = c.fd;
        if (round % 2 == 1)
            assert_int_equal(su_wait_closed(old, SU_WAIT_MS), 0); /* cut */
        if (round % 2 == 1)
            close(old);
        c = ra == 0 ? a : b;
        c.fd = fd[ra == 0 ? 0 : 1];
        close(fd[ra == 0 ? 1 : 0]);
    }
    uint32_t next_in, errors;
    rc_report(&c, &next_in, &errors);
    assert_int_equal(errors, 0);
    assert_int_equal(atomic_load(&ev.resumes), ROUNDS);
    assert_int_equal(atomic_load(&ev.detaches), ROUNDS);
    assert_int_equal(stats(srv).resume_refused, ROUNDS);
    close(c.fd);
    finish(srv);
}

static void takeover_cuts_the_old_connection(void **state)
{
    (void)state;
    ev_reset();
    struct rp_server *srv = start(30000, 2);
    uint16_t port = rp_server_port(srv);
    struct rc c;
    rc_hello(&c, port);
    rc_send_seq(c.fd, 0, 100);
    uint32_t next_in, errors;
    rc_report(&c, &next_in, &errors);
    assert_int_equal(next_in, 100);
    int old = c.fd;
    uint64_t srv_count = 0;
    assert_int_equal(rc_resume(&c, port, &srv_count), 0);
    assert_int_equal(srv_count, 101); /* 100 T_SEQ, one T_REPORT */
    assert_int_equal(su_wait_closed(old, SU_WAIT_MS), 0);
    close(old);
    assert_int_equal(atomic_load(&ev.detaches), 1);
    assert_int_equal(atomic_load(&ev.resumes), 1);
    rc_send_seq(c.fd, 100, 200);
    rc_report(&c, &next_in, &errors);
    assert_int_equal(next_in, 200);
    assert_int_equal(errors, 0);
    /* The server ACKs every 32 game frames it receives, across
       connections: 201 so far, the last ACK says 192. */
    assert_int_equal(c.srv_ack, 192);
    close(c.fd);
    finish(srv);
}

/* ---- groups ------------------------------------------------------------- */

static void g_on_enter(struct rp_group *g, rp_sid sid, void *data, void *ticket,
                       void *user)
{
    (void)g, (void)sid, (void)user;
    assert_non_null(data);
    free(ticket);
    atomic_fetch_add(&ev.tickets_back, 1);
    atomic_fetch_add(&ev.enters, 1);
}

static void g_on_leave(struct rp_group *g, rp_sid sid, void *data,
                       enum rp_leave_reason reason, void *user)
{
    (void)g, (void)sid, (void)data, (void)reason, (void)user;
    atomic_fetch_add(&ev.g_leaves, 1);
}

/* Every 50th T_SEQ moves the session on to the other group (a ticket each
   time), so the drop meets moves under way. */
static void g_on_message(struct rp_group *g, rp_sid sid, void *data,
                         const struct rp_message *msg, void *user)
{
    (void)user;
    struct rp_server *srv = rp_group_server(g);
    struct sess *d = data;
    handle(srv, sid, d, msg);
    if (msg->type == T_SEQ && d->next_in % 50 == 0) {
        struct rp_group *to = ev.groups[0] == g ? ev.groups[1] : ev.groups[0];
        int *ticket = malloc(sizeof *ticket);
        assert_non_null(ticket);
        atomic_fetch_add(&ev.tickets_made, 1);
        int r = rp_group_move(srv, sid, to, ticket);
        if (r != 0) {
            assert_int_equal(r, -ENOTCONN);
            free(ticket);
            atomic_fetch_add(&ev.tickets_back, 1);
        }
    }
}

static void g_on_detach(struct rp_group *g, rp_sid sid, void *data, void *user)
{
    (void)g, (void)sid, (void)user;
    assert_non_null(data);
    atomic_fetch_add(&ev.g_detaches, 1);
}

static void g_on_resume(struct rp_group *g, rp_sid sid, void *data, void *user)
{
    (void)g, (void)sid, (void)user;
    assert_non_null(data);
    atomic_fetch_add(&ev.g_resumes, 1);
}

static void drop_during_group_moves(void **state)
{
    (void)state;
    enum { N = 4000, DROPS = 4 };
    ev_reset();
    struct rp_server *srv = start(30000, 2);
    struct rp_group_config gc = {.name = "ga",
                                 .cb = {.on_enter = g_on_enter,
                                        .on_message = g_on_message,
                                        .on_leave = g_on_leave,
                                        .on_detach = g_on_detach,
                                        .on_resume = g_on_resume}};
    assert_int_equal(rp_group_create(srv, &gc, &ev.groups[0]), 0);
    gc.name = "gb";
    assert_int_equal(rp_group_create(srv, &gc, &ev.groups[1]), 0);
    uint16_t port = rp_server_port(srv);
    struct rc c;
    rc_hello(&c, port);
    su_send_frame(c.fd, T_MOVE, NULL, 0); /* into the first group */
    uint32_t sent = 0;
    for (int drop = 0; drop < DROPS; drop++) {
        uint32_t to = (uint32_t)(N / DROPS) * (uint32_t)(drop + 1);
        rc_send_seq(c.fd, sent, to);
        sent = to;
        su_close_rst(c.fd); /* mid-stream: some of it never arrives */
        WAIT_STAT(srv, detached, 1);
        uint64_t srv_count = 0;
        assert_int_equal(rc_resume(&c, port, &srv_count), 0);
        /* T_MOVE was the first game frame: the rest are T_SEQ. */
        assert_true(srv_count >= 1 && srv_count - 1 <= sent);
        sent = (uint32_t)(srv_count - 1);
    }
    rc_send_seq(c.fd, sent, N);
    uint32_t next_in, errors;
    rc_report(&c, &next_in, &errors);
    assert_int_equal(next_in, N);
    assert_int_equal(errors, 0);
    /* Every detach and resume was told once, to a group or (between
       groups, none) to the server. */
    SU_WAIT(atomic_load(&ev.g_resumes) + atomic_load(&ev.resumes) == DROPS);
    assert_int_equal(atomic_load(&ev.g_detaches) + atomic_load(&ev.detaches),
                     DROPS);
    assert_int_equal(atomic_load(&ev.g_resumes) + atomic_load(&ev.resumes),
                     DROPS);
    assert_true(atomic_load(&ev.g_detaches) > 0);
    close(c.fd);
    finish(srv);
    assert_int_equal(atomic_load(&ev.enters), atomic_load(&ev.g_leaves));
}

/* ---- the storm ---------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void resume_storm(void **state)
{
    (void)state;
    enum { WANT = 500, PUSH = 20, SEQ = 20 };
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    int n = WANT;
    if (rl.rlim_cur < (rlim_t)(2 * WANT + 64))
        n = (int)(rl.rlim_cur - 64) / 2;
    ev_reset();
    struct rp_server *srv = start(60000, 2);
    uint16_t port = rp_server_port(srv);
    struct rc *c = calloc((size_t)n, sizeof *c);
    uint64_t *lat = calloc((size_t)n, sizeof *lat);
    int *fd = calloc((size_t)n, sizeof *fd);
    assert_true(c && lat && fd);
    uint8_t p[8];
    put32(p, PUSH);
    for (int i = 0; i < n; i++) {
        rc_hello(&c[i], port);
        su_send_frame(c[i].fd, T_PUSH, p, 4);
        rc_send_seq(c[i].fd, 0, SEQ);
    }
    /* Everyone drops at once, with the pushes unread. */
    for (int i = 0; i < n; i++)
        su_close_rst(c[i].fd);
    WAIT_STAT(srv, detached, (uint64_t)n);
    assert_int_equal(stats(srv).detached, (uint64_t)n);
    /* Everyone resumes at once. */
    for (int i = 0; i < n; i++)
        fd[i] = su_connect(port);
    for (int i = 0; i < n; i++) {
        lat[i] = now_us();
        rc_send_resume(fd[i], c[i].sid, c[i].tok, 0);
    }
    /* Each answer is timed when it can be read (poll over all of them). */
    struct pollfd *pf = calloc((size_t)n, sizeof *pf);
    assert_non_null(pf);
    for (int i = 0; i < n; i++)
        pf[i] = (struct pollfd){.fd = fd[i], .events = POLLIN};
    int left = n;
    uint64_t end = su_now_ms() + SU_WAIT_MS;
    while (left > 0 && su_now_ms() < end) {
        if (poll(pf, (nfds_t)n, 100) <= 0)
            continue;
        uint64_t now = now_us();
        for (int i = 0; i < n; i++)
            if (pf[i].fd >= 0 && pf[i].revents) {
                lat[i] = now - lat[i];
                pf[i].fd = -1;
                left--;
            }
    }
    assert_int_equal(left, 0);
    free(pf);
    for (int i = 0; i < n; i++) {
        uint64_t srv_count = 0;
        assert_int_equal(rc_answer(&c[i], fd[i], &srv_count), 0);
        c[i].fd = fd[i];
        /* What the reset cut off is sent again. */
        assert_true(srv_count <= SEQ + 1);
        if (srv_count == 0)
            su_send_frame(fd[i], T_PUSH, p, 4);
        rc_send_seq(fd[i], srv_count ? (uint32_t)srv_count - 1 : 0, SEQ);
    }
    for (int i = 0; i < n; i++) {
        uint16_t type;
        uint8_t buf[16];
        while (c[i].next_out < PUSH) {
            assert_int_equal(rc_next(&c[i], &type, buf, sizeof buf), 4);
            assert_int_equal(type, T_OUT);
            assert_int_equal(get32(buf), c[i].next_out++);
        }
        uint32_t next_in, errors;
        rc_report(&c[i], &next_in, &errors);
        assert_int_equal(next_in, SEQ);
        assert_int_equal(errors, 0);
    }
    struct rp_server_stats s = stats(srv);
    assert_int_equal(s.resumes, (uint64_t)n);
    assert_int_equal(s.detached, 0);
    assert_int_equal(atomic_load(&ev.leaves), 0);
    qsort(lat, (size_t)n, sizeof *lat, cmp_u64);
    printf("resume storm: %d clients, RESUME to RESUME_OK p50 %llu us, p99 "
           "%llu us, max %llu us (not asserted)\n",
           n, (unsigned long long)lat[n / 2],
           (unsigned long long)lat[(n * 99) / 100],
           (unsigned long long)lat[n - 1]);
    for (int i = 0; i < n; i++)
        close(c[i].fd);
    finish(srv);
    assert_int_equal(atomic_load(&ev.joins), (uint64_t)n);
    free(c);
    free(lat);
    free(fd);
}

/* Frames kept for a resend count against send_queue_limit: a client that
   never ACKs, or a detached session that is sent too much, ends with
   SEND_OVERFLOW. */
static void retained_frames_count_against_the_limit(void **state)
{
    (void)state;
    ev_reset();
    send_queue_limit = 64 * 1024;
    struct rp_server *srv = start(30000, 1);
    send_queue_limit = 0;
    uint16_t port = rp_server_port(srv);
    /* Reads everything, never ACKs: two pushes of 4,000 frames (8 bytes
       each) are all read and still held for a resend, so the third one
       passes 64 KiB. */
    struct rc c;
    rc_hello(&c, port);
    uint8_t p[8];
    uint16_t type;
    uint8_t buf[16];
    put32(p, 4000);
    for (int push = 0; push < 2; push++) {
        su_send_frame(c.fd, T_PUSH, p, 4);
        while (c.next_out < 4000u * (uint32_t)(push + 1)) {
            assert_int_equal(rc_next(&c, &type, buf, sizeof buf), 4);
            assert_int_equal(get32(buf), c.next_out++);
        }
    }
    assert_int_equal(atomic_load(&ev.leaves), 0);
    su_send_frame(c.fd, T_PUSH, p, 4);
    SU_WAIT(atomic_load(&ev.leaves) == 1);
    assert_int_equal(atomic_load(&ev.by_reason[RP_LEAVE_SEND_OVERFLOW]), 1);
    close(c.fd);
    /* ACKs as it reads: the same three pushes go through. */
    rc_hello(&c, port);
    for (int push = 0; push < 3; push++) {
        su_send_frame(c.fd, T_PUSH, p, 4);
        while (c.next_out < 4000u * (uint32_t)(push + 1)) {
            assert_int_equal(rc_next(&c, &type, buf, sizeof buf), 4);
            assert_int_equal(get32(buf), c.next_out++);
            if (c.received % 32 == 0) {
                uint8_t ack[8];
                put64(ack, c.received);
                su_send_frame(c.fd, RP_CTL_ACK, ack, sizeof ack);
            }
        }
    }
    assert_int_equal(atomic_load(&ev.leaves), 1);
    su_close_rst(c.fd);
    WAIT_STAT(srv, detached, 1);
    /* Detached, it is sent more than the limit holds. */
    struct rp_packet *pkt;
    static const uint8_t kb[1000];
    assert_int_equal(rp_packet_create(1000, T_OUT, &pkt), 0);
    rp_packet_put_bytes(pkt, kb, sizeof kb);
    int r = 0;
    for (int i = 0; i < 200 && r == 0; i++)
        r = rp_server_send(srv, c.sid, pkt);
    rp_packet_unref(pkt);
    assert_true(r == -ENOBUFS || r == -ENOTCONN);
    SU_WAIT(atomic_load(&ev.leaves) == 2);
    assert_int_equal(atomic_load(&ev.by_reason[RP_LEAVE_SEND_OVERFLOW]), 2);
    assert_int_equal(stats(srv).detached, 0);
    finish(srv);
}

/* BYE is a clean leave: the session ends at once (PEER_CLOSED), it is not
   kept for a resume, even with a grace far past the test's wait. */
static void bye_ends_the_session_at_once(void **state)
{
    (void)state;
    ev_reset();
    struct rp_server *srv = start(600000, 1);
    struct rc c;
    rc_hello(&c, rp_server_port(srv));
    su_send_frame(c.fd, RP_CTL_BYE, NULL, 0);
    SU_WAIT(atomic_load(&ev.leaves) == 1);
    assert_int_equal(atomic_load(&ev.leaves), 1);
    assert_int_equal(atomic_load(&ev.by_reason[RP_LEAVE_PEER_CLOSED]), 1);
    assert_int_equal(atomic_load(&ev.detaches), 0);
    close(c.fd);
    /* Its token is no way back. */
    assert_int_equal(rc_resume(&c, rp_server_port(srv), NULL),
                     RP_RESUME_ERR_UNKNOWN);
    assert_int_equal(stats(srv).detached, 0);
    finish(srv);
}

/* A game frame first joins too, as an ordinary session: no RESUME_TOKEN,
   nothing retained, and a drop ends it (resume is the client's choice:
   only HELLO opts in). A RESUME or ACK on such a session is refused. */
static void first_game_frame_joins(void **state)
{
    (void)state;
    ev_reset();
    struct rp_server *srv = start(30000, 1);
    int fd = su_connect(rp_server_port(srv));
    su_sleep_ms(20);
    assert_int_equal(atomic_load(&ev.joins), 0); /* waits for a frame */
    su_send_frame(fd, T_REPORT, NULL, 0);
    uint8_t p[64];
    uint16_t type = 0;
    assert_int_equal(su_read_frame(fd, &type, p, sizeof p, SU_WAIT_MS), 8);
    assert_int_equal(type, T_REPORT); /* no token first */
    assert_int_equal(atomic_load(&ev.joins), 1);
    su_close_rst(fd);
    SU_WAIT(atomic_load(&ev.leaves) == 1);
    assert_int_equal(atomic_load(&ev.leaves), 1); /* ended, not detached */
    assert_int_equal(atomic_load(&ev.detaches), 0);
    assert_int_equal(stats(srv).detached, 0);
    /* An ACK from an ordinary session: RESUME_ERROR 4 and the end. */
    fd = su_connect(rp_server_port(srv));
    su_send_frame(fd, T_REPORT, NULL, 0);
    assert_int_equal(su_read_frame(fd, &type, p, sizeof p, SU_WAIT_MS), 8);
    uint8_t ack[8] = {0};
    su_send_frame(fd, RP_CTL_ACK, ack, sizeof ack);
    assert_int_equal(su_read_frame(fd, &type, p, sizeof p, SU_WAIT_MS), 2);
    assert_int_equal(type, RP_CTL_RESUME_ERROR);
    close(fd);
    SU_WAIT(atomic_load(&ev.leaves) == 2);
    /* A connection that closes before its first frame never joins. */
    fd = su_connect(rp_server_port(srv));
    close(fd);
    SU_WAIT(stats(srv).leaves[RP_LEAVE_PEER_CLOSED] == 1);
    assert_int_equal(atomic_load(&ev.joins), 2);
    /* Config: resume needs framed mode and room for RESUME. */
    struct rp_server_config cfg;
    rp_server_config_init(&cfg);
    cfg.cb.on_message = on_message;
    cfg.cb.on_data = NULL;
    cfg.resume_grace_ms = 1000;
    assert_int_equal(rp_server_config_validate(&cfg, NULL, 0), 0);
    cfg.max_payload = 16;
    assert_int_equal(rp_server_config_validate(&cfg, NULL, 0), -EINVAL);
    cfg.max_payload = 8192;
    cfg.type_max = 100;
    assert_int_equal(rp_server_config_validate(&cfg, NULL, 0), -EINVAL);
    finish(srv);
}

/* One client, one resume at a time: prints RESUME -> RESUME_OK on an idle
   server (detached sessions and takeovers alike; not asserted). */
static void resume_latency_one_at_a_time(void **state)
{
    (void)state;
    enum { ROUNDS = 200 };
    ev_reset();
    struct rp_server *srv = start(30000, 2);
    uint16_t port = rp_server_port(srv);
    struct rc c;
    rc_hello(&c, port);
    uint64_t lat[2][ROUNDS / 2];
    for (int i = 0; i < ROUNDS; i++) {
        bool detached = i % 2 == 0;
        if (detached) {
            su_close_rst(c.fd);
            WAIT_STAT(srv, detached, 1);
        }
        int old = c.fd;
        int fd = su_connect(port);
        uint64_t t0 = now_us();
        rc_send_resume(fd, c.sid, c.tok, c.received);
        assert_int_equal(rc_answer(&c, fd, NULL), 0);
        lat[!detached][i / 2] = now_us() - t0;
        c.fd = fd;
        if (!detached)
            close(old);
    }
    for (int k = 0; k < 2; k++) {
        qsort(lat[k], ROUNDS / 2, sizeof lat[k][0], cmp_u64);
        printf("resume, one at a time (%s): RESUME to RESUME_OK p50 %llu "
               "us, p99 %llu us (not asserted)\n",
               k ? "takeover" : "detached",
               (unsigned long long)lat[k][ROUNDS / 4],
               (unsigned long long)lat[k][(ROUNDS / 2) * 99 / 100]);
    }
    close(c.fd);
    finish(srv);
}

/* A HELLO finds no memory for the session's resume state (the slot's
   extension, allocated at that join): the session ends with RESET before
   any callback (no on_join, no on_leave), the connection is closed, and
   the next HELLO joins as ever. */
static void hello_with_no_memory_ends_only_that_session(void **state)
{
    (void)state;
    ev_reset();
    struct rp_server *srv = start(30000, 1);
    uint16_t port = rp_server_port(srv);
    struct rc before;
    rc_hello(&before, port); /* a resumable session that stays */
    atomic_store(&calloc_failed, 0);
    atomic_store(&calloc_fail_left, 1);
    int fd = su_connect(port);
    su_send_frame(fd, RP_CTL_HELLO, NULL, 0);
    assert_int_equal(su_wait_closed(fd, SU_WAIT_MS), 0);
    close(fd);
    SU_WAIT(stats(srv).leaves[RP_LEAVE_RESET] == 1);
    assert_int_equal(stats(srv).leaves[RP_LEAVE_RESET], 1);
    assert_int_equal(atomic_load(&calloc_failed), 1);
    assert_int_equal(atomic_load(&calloc_fail_left), 0);
    assert_int_equal(atomic_load(&ev.joins), 1); /* 'before' alone */
    assert_int_equal(atomic_load(&ev.leaves), 0);
    /* Memory back: a HELLO joins, and the first session still resumes. */
    struct rc after;
    rc_hello(&after, port);
    assert_int_equal(atomic_load(&ev.joins), 2);
    su_close_rst(before.fd);
    WAIT_STAT(srv, detached, 1);
    assert_int_equal(rc_resume(&before, port, NULL), 0);
    assert_int_equal(atomic_load(&ev.resumes), 1);
    close(before.fd);
    close(after.fd);
    WAIT_STAT(srv, detached, 2);
    finish(srv);
}

/* With resume off nothing changes: no token, a drop ends the session. */
static void resume_off_is_as_before(void **state)
{
    (void)state;
    ev_reset();
    struct rp_server *srv = start(0, 1);
    int fd = su_connect(rp_server_port(srv));
    SU_WAIT(atomic_load(&ev.joins) == 1); /* joined at accept */
    assert_int_equal(atomic_load(&ev.joins), 1);
    close(fd);
    SU_WAIT(atomic_load(&ev.leaves) == 1);
    assert_int_equal(atomic_load(&ev.by_reason[RP_LEAVE_PEER_CLOSED]), 1);
    assert_int_equal(atomic_load(&ev.detaches), 0);
    finish(srv);
}

int main(int argc, char **argv)
{
    su_parse_backend(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(resume_off_is_as_before),
        cmocka_unit_test(drop_and_resume_mid_stream),
        cmocka_unit_test(expiry_ends_once_then_refuses),
        cmocka_unit_test(bad_resumes_are_refused),
        cmocka_unit_test(concurrent_resumes_one_wins),
        cmocka_unit_test(takeover_cuts_the_old_connection),
        cmocka_unit_test(drop_during_group_moves),
        cmocka_unit_test(retained_frames_count_against_the_limit),
        cmocka_unit_test(first_game_frame_joins),
        cmocka_unit_test(bye_ends_the_session_at_once),
        cmocka_unit_test(hello_with_no_memory_ends_only_that_session),
        cmocka_unit_test(resume_storm),
        cmocka_unit_test(resume_latency_one_at_a_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
