/*
 * Stress: session resume against everything that can race it, for TSan
 * and ASan (make tsan runs it; so does every build's ctest).
 *
 * Client threads drive sessions through random steps: traffic (numbered
 * frames both ways, ACKs every 32), a reset-and-resume at once (the RESUME
 * often meets the detach's teardown still under way), a reset and a
 * random wait around the short grace period (resume and expiry race on
 * the session's thread), and a takeover of the still-attached session
 * from a new connection. Meanwhile a kicker thread disconnects random
 * sessions and sends them stray frames from outside the I/O threads, and
 * two I/O threads take RESUMEs for each other's sessions.
 *
 * Checked: every frame is handled exactly once and in order on both sides
 * while a session lives (the server counts out-of-order frames as errors,
 * the client checks its numbered frames), a resume gets RESUME_OK or a
 * documented error (1 or 2: expired, kicked, or a token spent by the
 * other racer), every joined session has on_leave exactly once (its data
 * is freed there: a second call is a double free under ASan), on_resume
 * never outnumbers on_detach, and nothing is left detached after the stop.
 */
#include "../integration/server_util.h"

#include <ringport/log.h>

enum { T_OUT = 1, T_PUSH = 2, T_SEQ = 3, T_REPORT = 4, T_NOISE = 9 };

#define THREADS 4
#define CLIENTS 6 /* per thread */
#define STEPS 60  /* per client */
#define GRACE_MS 30
#define MAX_SENT 4096

struct sess {
    uint32_t next_in, next_out, errors;
};

static struct {
    _Atomic uint64_t joins, leaves, detaches, resumes, errors;
    _Atomic rp_sid sids[THREADS * CLIENTS];
    _Atomic int stop;
    struct rp_server *srv;
} g;

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- server ---- */

static void send2(struct rp_server *srv, rp_sid sid, uint16_t type, uint32_t a,
                  uint32_t b)
{
    struct rp_packet *pkt;
    if (rp_packet_create(8, type, &pkt) < 0)
        return;
    rp_packet_put_u32(pkt, a);
    rp_packet_put_u32(pkt, b);
    (void)rp_server_send(srv, sid, pkt);
    rp_packet_unref(pkt);
}

static void on_join(struct rp_server *srv, rp_sid sid, void *user)
{
    (void)user;
    rp_session_set_data(srv, sid, calloc(1, sizeof(struct sess)));
    atomic_fetch_add(&g.joins, 1);
}

static void on_leave(struct rp_server *srv, rp_sid sid, void *data,
                     enum rp_leave_reason reason, void *user)
{
    (void)srv, (void)sid, (void)reason, (void)user;
    struct sess *d = data;
    atomic_fetch_add(&g.errors, d->errors);
    free(d);
    atomic_fetch_add(&g.leaves, 1);
}

static void on_message(struct rp_server *srv, rp_sid sid, void *data,
                       const struct rp_message *msg, void *user)
{
    (void)user;
    struct sess *d = data;
    switch (msg->type) {
    case T_SEQ:
        if (get32(msg->payload) != d->next_in)
            d->errors++;
        d->next_in++;
        break;
    case T_PUSH:
        for (uint32_t i = 0; i < get32(msg->payload); i++)
            send2(srv, sid, T_OUT, d->next_out++, 0);
        break;
    case T_REPORT: send2(srv, sid, T_REPORT, d->next_in, d->errors); break;
    default: d->errors++;
    }
}

static void on_detach(struct rp_server *srv, rp_sid sid, void *data, void *u)
{
    (void)srv, (void)sid, (void)data, (void)u;
    atomic_fetch_add(&g.detaches, 1);
}

static void on_resume(struct rp_server *srv, rp_sid sid, void *data, void *u)
{
    (void)srv, (void)sid, (void)data, (void)u;
    atomic_fetch_add(&g.resumes, 1);
}

/* ---- client ---- */

struct cl {
    int fd;
    rp_sid sid;
    uint8_t tok[RP_RESUME_TOKEN_SIZE];
    uint64_t received; /* game frames received */
    uint32_t next_out; /* T_OUT expected next */
    uint32_t seq;      /* T_SEQ numbers sent */
    uint32_t nsent;    /* game frames sent */
    uint32_t reports, got_reports;
    uint8_t sent_type[MAX_SENT]; /* every game frame sent, to resend */
    uint32_t sent_val[MAX_SENT];
    int slot;
};

static void cl_send(struct cl *c, uint16_t type, uint32_t v)
{
    assert_true(c->nsent < MAX_SENT);
    c->sent_type[c->nsent] = (uint8_t)type;
    c->sent_val[c->nsent++] = v;
    uint8_t p[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
                    (uint8_t)(v >> 24)};
    if (type == T_REPORT)
        c->reports++;
    /* The peer may be gone: the resume resends it. */
    uint8_t f[8];
    size_t n = su_frame(f, type, p, type == T_REPORT ? 0 : 4);
    (void)send(c->fd, f, n, MSG_NOSIGNAL);
}

static void cl_hello(struct cl *c, uint16_t port)
{
    int slot = c->slot;
    memset(c, 0, sizeof *c);
    c->slot = slot;
    c->fd = su_connect(port);
    su_send_frame(c->fd, RP_CTL_HELLO, NULL, 0);
    uint8_t p[64];
    uint16_t type = 0;
    assert_int_equal(su_read_frame(c->fd, &type, p, sizeof p, SU_WAIT_MS), 24);
    assert_int_equal(type, RP_CTL_RESUME_TOKEN);
    c->sid = get64(p);
    memcpy(c->tok, p + 8, RP_RESUME_TOKEN_SIZE);
    atomic_store(&g.sids[slot], c->sid);
}

/* Resumes on a new connection (the old one, if open, stays as it is: a
   takeover). Returns 0 or the RESUME_ERROR code. */
static int cl_resume(struct cl *c, uint16_t port)
{
    int fd = su_connect(port);
    uint8_t p[32];
    put64(p, c->sid);
    memcpy(p + 8, c->tok, RP_RESUME_TOKEN_SIZE);
    put64(p + 24, c->received);
    su_send_frame(fd, RP_CTL_RESUME, p, sizeof p);
    uint16_t type = 0;
    int r = su_read_frame(fd, &type, p, sizeof p, SU_WAIT_MS);
    assert_true(r >= 0);
    if (type == RP_CTL_RESUME_ERROR) {
        close(fd);
        return p[0] | p[1] << 8;
    }
    assert_int_equal(type, RP_CTL_RESUME_OK);
    uint64_t srv_count = get64(p);
    memcpy(c->tok, p + 8, RP_RESUME_TOKEN_SIZE);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = fd;
    assert_true(srv_count <= c->nsent);
    /* Resend what the server did not get, in order. */
    uint32_t n = c->nsent;
    c->nsent = (uint32_t)srv_count;
    for (uint32_t i = (uint32_t)srv_count; i < n; i++) {
        if (c->sent_type[i] == T_REPORT)
            c->reports--; /* cl_send counts it again */
        cl_send(c, c->sent_type[i], c->sent_val[i]);
    }
    return 0;
}

/* Reads until every report asked for is answered. Returns false if the
   connection died first. */
static bool cl_sync(struct cl *c)
{
    uint8_t p[64];
    while (c->got_reports < c->reports) {
        uint16_t type = 0;
        int r = su_read_frame(c->fd, &type, p, sizeof p, SU_WAIT_MS);
        if (r == -ETIMEDOUT)
            fail_msg("session %llu: no answer", (unsigned long long)c->sid);
        if (r < 0)
            return false;
        if (type >= RP_CTL_FIRST) {
            assert_int_equal(type, RP_CTL_ACK);
            continue;
        }
        c->received++;
        if (c->received % 32 == 0) {
            uint8_t ack[8];
            put64(ack, c->received);
            uint8_t f[12];
            (void)send(c->fd, f, su_frame(f, RP_CTL_ACK, ack, 8), MSG_NOSIGNAL);
        }
        if (type == T_OUT) {
            assert_int_equal(get32(p), c->next_out);
            c->next_out++;
        } else if (type == T_REPORT) {
            c->got_reports++;
            assert_int_equal(get32(p + 4), 0); /* server saw no error */
        } else {
            assert_int_equal(type, T_NOISE);
        }
    }
    return true;
}

/* The connection is gone (or cut on purpose): back in, or a new session. */
static void cl_recover(struct cl *c, uint16_t port)
{
    int r = cl_resume(c, port);
    if (r == 0)
        return;
    assert_true(r == RP_RESUME_ERR_UNKNOWN || r == RP_RESUME_ERR_TOKEN);
    if (c->fd >= 0)
        close(c->fd);
    cl_hello(c, port);
}

struct worker {
    pthread_t tid;
    int index;
    uint16_t port;
};

static void *client_main(void *arg)
{
    struct worker *w = arg;
    uint64_t rng = 0x9e3779b97f4a7c15ull * (uint64_t)(w->index + 1);
    struct cl *cs = calloc(CLIENTS, sizeof *cs);
    assert_non_null(cs);
    for (int i = 0; i < CLIENTS; i++) {
        cs[i].slot = w->index * CLIENTS + i;
        cl_hello(&cs[i], w->port);
    }
    for (int step = 0; step < STEPS; step++) {
        for (int i = 0; i < CLIENTS; i++) {
            struct cl *c = &cs[i];
            if (c->nsent + 64 > MAX_SENT) {
                close(c->fd);
                cl_hello(c, w->port);
            }
            for (int k = 0; k < 8; k++)
                cl_send(c, T_SEQ, c->seq++);
            cl_send(c, T_PUSH, (uint32_t)t_rand_range(&rng, 0, 40));
            cl_send(c, T_REPORT, 0);
            switch (t_rand_range(&rng, 0, 5)) {
            case 0: /* reset, resume at once */
                su_close_rst(c->fd);
                c->fd = -1;
                cl_recover(c, w->port);
                break;
            case 1: /* reset, resume around the grace period */
                su_close_rst(c->fd);
                c->fd = -1;
                su_sleep_ms((unsigned)t_rand_range(&rng, 0, 2 * GRACE_MS));
                cl_recover(c, w->port);
                break;
            case 2: /* takeover of the live connection */
                cl_recover(c, w->port);
                break;
            default: break;
            }
            while (!cl_sync(c)) {
                close(c->fd);
                c->fd = -1;
                cl_recover(c, w->port);
            }
        }
    }
    for (int i = 0; i < CLIENTS; i++)
        if (cs[i].fd >= 0)
            close(cs[i].fd);
    free(cs);
    return NULL;
}

static void *kicker_main(void *arg)
{
    (void)arg;
    uint64_t rng = 12345;
    while (!atomic_load(&g.stop)) {
        rp_sid sid =
            atomic_load(&g.sids[t_rand_range(&rng, 0, THREADS * CLIENTS - 1)]);
        if (t_rand_range(&rng, 0, 9) == 0)
            (void)rp_server_disconnect(g.srv, sid);
        else
            send2(g.srv, sid, T_NOISE, 0, 0);
        su_sleep_ms(1);
    }
    return NULL;
}

static void resume_races(void **state)
{
    (void)state;
    memset(&g, 0, sizeof g);
    struct rp_server_config cfg;
    rp_server_config_init(&cfg);
    cfg.listen_addr = "127.0.0.1";
    cfg.backend = su_kind;
    cfg.io_threads = 2;
    cfg.resume_grace_ms = GRACE_MS;
    cfg.cb.on_join = on_join;
    cfg.cb.on_leave = on_leave;
    cfg.cb.on_message = on_message;
    cfg.cb.on_detach = on_detach;
    cfg.cb.on_resume = on_resume;
    assert_int_equal(rp_server_create(&cfg, &g.srv), 0);
    assert_int_equal(rp_server_start(g.srv), 0);
    struct worker w[THREADS];
    pthread_t kicker;
    assert_int_equal(pthread_create(&kicker, NULL, kicker_main, NULL), 0);
    for (int i = 0; i < THREADS; i++) {
        w[i].index = i;
        w[i].port = rp_server_port(g.srv);
        assert_int_equal(pthread_create(&w[i].tid, NULL, client_main, &w[i]),
                         0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(w[i].tid, NULL);
    atomic_store(&g.stop, 1);
    pthread_join(kicker, NULL);
    assert_int_equal(rp_server_stop(g.srv), 0);
    struct rp_server_stats s;
    rp_server_get_stats(g.srv, &s);
    assert_int_equal(s.sessions, 0);
    assert_int_equal(s.detached, 0);
    assert_int_equal(atomic_load(&g.leaves), atomic_load(&g.joins));
    assert_int_equal(atomic_load(&g.errors), 0);
    assert_true(atomic_load(&g.resumes) <= atomic_load(&g.detaches));
    assert_int_equal(s.resumes, atomic_load(&g.resumes));
    printf("resume races: %llu sessions, %llu detaches, %llu resumes, %llu "
           "refused, %llu expired, %llu kicked\n",
           (unsigned long long)atomic_load(&g.joins),
           (unsigned long long)atomic_load(&g.detaches),
           (unsigned long long)s.resumes, (unsigned long long)s.resume_refused,
           (unsigned long long)s.leaves[RP_LEAVE_RESUME_EXPIRED],
           (unsigned long long)s.leaves[RP_LEAVE_KICKED]);
    rp_server_destroy(g.srv);
}

int main(int argc, char **argv)
{
    su_parse_backend(argc, argv);
    rp_log_set_level(RP_LOG_WARN);
    const struct CMUnitTest tests[] = {cmocka_unit_test(resume_races)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
