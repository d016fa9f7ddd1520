/*
 * Session lifetime under concurrency, once per backend (and under TSan on
 * epoll): while clients connect, echo and vanish, two other threads send,
 * broadcast and disconnect by id, stale ids included. Whatever the
 * interleaving: every join gets exactly one leave, nothing is delivered to
 * a slot's next occupant by a stale id (the echo bytes stay exact), and no
 * packet or session leaks.
 */
#include "net_util.h"

enum { CLIENTS = 6, ROUNDS = 30 };

static struct rp_server *race_srv;
static _Atomic int race_stop;
static uint64_t seed_state;

static void *race_sender(void *arg)
{
    uint64_t rs = (uint64_t)(uintptr_t)arg;
    struct rp_packet *pkt;
    assert_int_equal(rp_packet_create(8, 0xffff, &pkt), 0);
    rp_packet_put_u64(pkt, 7);
    while (!atomic_load(&race_stop)) {
        rp_sid ids[NT_MAX_SIDS];
        pthread_mutex_lock(&nt_rec.lock);
        int n = nt_rec.njoined;
        memcpy(ids, nt_rec.joined, sizeof(rp_sid) * (size_t)n);
        pthread_mutex_unlock(&nt_rec.lock);
        if (n == 0) {
            usleep(100);
            continue;
        }
        rp_sid sid = ids[t_rand(&rs) % (uint64_t)n];
        switch (t_rand(&rs) % 8) {
        case 0: rp_server_disconnect(race_srv, sid); break;
        case 1: rp_server_broadcast(race_srv, ids, (size_t)n, pkt); break;
        default: rp_server_send(race_srv, sid, pkt); break;
        }
        usleep(50);
    }
    rp_packet_unref(pkt);
    return NULL;
}

/* Echo type 1 frames must come back exact; type 0xffff frames are the
   senders' noise and are skipped. Returns false if the session ended. */
static bool client_round(int fd)
{
    uint8_t out[300], in[300];
    uint16_t n = (uint16_t)t_rand_range(&seed_state, 1, 200);
    for (uint16_t i = 0; i < n; i++)
        out[4 + i] = (uint8_t)t_rand(&seed_state);
    nt_frame(out, 1, out + 4, n);
    if (write(fd, out, 4u + n) != 4 + n)
        return false;
    for (;;) {
        ssize_t r = recv(fd, in, 4, MSG_WAITALL);
        if (r != 4)
            return false;
        uint16_t len = (uint16_t)(in[0] | in[1] << 8);
        uint16_t type = (uint16_t)(in[2] | in[3] << 8);
        if (len && recv(fd, in + 4, len, MSG_WAITALL) != len)
            return false;
        if (type == 0xffff)
            continue;
        assert_int_equal(type, 1);
        assert_int_equal(len, n);
        assert_memory_equal(in + 4, out + 4, n);
        return true;
    }
}

static void sessions_survive_concurrent_sends_and_kicks(void **state)
{
    (void)state;
    nt_reset();
    struct rp_server_config cfg;
    nt_config(&cfg);
    cfg.io_threads = 2;
    cfg.max_sessions = CLIENTS; /* slots are reused all the time */
    race_srv = nt_start(&cfg);
    atomic_store(&race_stop, 0);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, race_sender, (void *)(uintptr_t)(i + 1));
    int fds[CLIENTS];
    for (int c = 0; c < CLIENTS; c++)
        fds[c] = nt_connect(race_srv);
    int joined_rounds = 0;
    for (int round = 0; round < ROUNDS; round++) {
        for (int c = 0; c < CLIENTS; c++) {
            if (client_round(fds[c]) && t_rand(&seed_state) % 4)
                continue;
            close(fds[c]); /* kicked, or dropped on purpose */
            /* Wait for a free slot: a refused connect closes at once. */
            NT_WAIT_FOR(nt_count(&nt_rec.njoined) - nt_count(&nt_rec.nleft) <
                        CLIENTS);
            fds[c] = nt_connect(race_srv);
            joined_rounds++;
        }
    }
    atomic_store(&race_stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    rp_server_stop(race_srv);
    for (int c = 0; c < CLIENTS; c++)
        close(fds[c]);
    int joined = nt_count(&nt_rec.njoined), left = nt_count(&nt_rec.nleft);
    assert_int_equal(joined, left);
    struct rp_server_stats st;
    rp_server_get_stats(race_srv, &st);
    assert_int_equal(st.sessions, 0);
    uint64_t leaves = 0;
    for (int k = 0; k < RP_LEAVE_REASON_COUNT; k++)
        leaves += st.leaves[k];
    assert_int_equal(leaves, st.accepts);
    rp_server_destroy(race_srv);
    struct rp_packet_pool_stats ps;
    rp_packet_pool_stats(&ps);
    assert_int_equal(ps.created, ps.freed);
    printf("rounds with reconnects: %d, sessions: %d\n", joined_rounds, joined);
}

int main(int argc, char **argv)
{
    pt_parse_backend(argc, argv);
    seed_state = t_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sessions_survive_concurrent_sends_and_kicks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
