/*
 * Broadcasts to WebSocket sessions from several threads at once, the
 * sessions spread over four I/O threads: the same packet is sent by every
 * I/O thread at the same moment, each through rp__packet_ws_wire. The
 * WebSocket header lives in the packet and is written only by its puts,
 * before the broadcast shares it, so the senders only read it; a header
 * written lazily at send time would be a data race that ThreadSanitizer
 * reports here (make tsan runs this test), and a wrong or torn header
 * breaks the clients' framing.
 *
 * Each client reads on its own thread and checks every message: FIN and
 * binary, unmasked, the minimal length encoding, one ringport frame with
 * the sender's pattern, and each sender's sequence in order. The three
 * length encodings (7-bit, 16-bit, 64-bit) are all in the mix. Bounded
 * in count; CTest's timeout bounds the time.
 */
#include "../integration/ws_util.h"

#define CLIENTS 12
#define SENDERS 3
#define PER_SENDER 150
#define BIG 65535

static struct su_events ev;
static rp_sid ids[CLIENTS];
static struct rp_server *srv;
static _Atomic int errors;
static _Atomic uint64_t received;

static size_t size_of(uint32_t seq)
{
    if (seq % 50 == 7)
        return BIG; /* 65,539 bytes on the wire: a 64-bit length */
    if (seq % 5 == 0)
        return 300; /* 16-bit */
    return 16;      /* 7-bit */
}

static uint8_t pattern(uint32_t sender, uint32_t seq, size_t i)
{
    return (uint8_t)(sender * 101 + seq * 7 + i);
}

static void *sender_main(void *arg)
{
    uint32_t sender = (uint32_t)(uintptr_t)arg;
    for (uint32_t seq = 0; seq < PER_SENDER; seq++) {
        size_t n = size_of(seq);
        struct rp_packet *pkt;
        if (rp_packet_create(n, (uint16_t)(100 + sender), &pkt) < 0) {
            atomic_fetch_add(&errors, 1);
            return NULL;
        }
        uint8_t head[8];
        memcpy(head, &seq, 4);
        memcpy(head + 4, &sender, 4);
        rp_packet_put_bytes(pkt, head, 8);
        for (size_t i = 8; i < n; i++)
            rp_packet_put_u8(pkt, pattern(sender, seq, i));
        if (rp_server_broadcast(srv, ids, CLIENTS, pkt) != CLIENTS)
            atomic_fetch_add(&errors, 1);
        rp_packet_unref(pkt);
    }
    return NULL;
}

/* Reads exactly n bytes (blocking socket with a receive timeout). */
static bool read_n(int fd, uint8_t *p, size_t n)
{
    while (n) {
        ssize_t r = recv(fd, p, n, 0);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            return false;
        }
        p += r;
        n -= (size_t)r;
    }
    return true;
}

static void *reader_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    static _Thread_local uint8_t buf[4 + BIG];
    uint32_t next[SENDERS] = {0};
    for (int k = 0; k < SENDERS * PER_SENDER; k++) {
        uint8_t h[10];
        if (!read_n(fd, h, 2))
            goto bad;
        uint64_t len = h[1] & 0x7F;
        if (h[0] != 0x82 || (h[1] & 0x80))
            goto bad;
        if (len == 126) {
            if (!read_n(fd, h + 2, 2))
                goto bad;
            len = (uint64_t)h[2] << 8 | h[3];
            if (len <= 125)
                goto bad;
        } else if (len == 127) {
            if (!read_n(fd, h + 2, 8))
                goto bad;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | h[2 + i];
            if (len <= 0xFFFF)
                goto bad;
        }
        if (len < 12 || len > sizeof buf || !read_n(fd, buf, (size_t)len))
            goto bad;
        size_t plen = (size_t)(buf[0] | buf[1] << 8);
        uint32_t seq, sender;
        memcpy(&seq, buf + 4, 4);
        memcpy(&sender, buf + 8, 4);
        if (plen + 4 != len || sender >= SENDERS ||
            (uint32_t)(buf[2] | buf[3] << 8) != 100 + sender ||
            seq != next[sender] || plen != size_of(seq))
            goto bad;
        for (size_t i = 8; i < plen; i++)
            if (buf[4 + i] != pattern(sender, seq, i))
                goto bad;
        next[sender]++;
        atomic_fetch_add(&received, 1);
    }
    return NULL;
bad:
    atomic_fetch_add(&errors, 1);
    return NULL;
}

static void broadcasts_from_many_threads_stay_well_formed(void **state)
{
    (void)state;
    uint64_t before = su_packets_alive();
    struct rp_server_config cfg;
    su_events_reset(&ev);
    wu_config(&cfg, &ev);
    cfg.io_threads = 4;
    cfg.max_payload = 65535;
    cfg.send_queue_limit = 64u << 20;
    srv = su_start(&cfg);
    int fds[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        fds[i] = wu_connect(rp_server_ws_port(srv));
        wu_ping_frame(fds[i], 1);
    }
    SU_WAIT(atomic_load(&ev.joins) == CLIENTS);
    assert_int_equal(atomic_load(&ev.joins), CLIENTS);
    atomic_store(&ev.echo, false);
    pthread_mutex_lock(&ev.lock);
    memcpy(ids, ev.joined, sizeof ids);
    pthread_mutex_unlock(&ev.lock);

    pthread_t readers[CLIENTS], senders[SENDERS];
    for (int i = 0; i < CLIENTS; i++)
        assert_int_equal(pthread_create(&readers[i], NULL, reader_main,
                                        (void *)(intptr_t)fds[i]),
                         0);
    for (int i = 0; i < SENDERS; i++)
        assert_int_equal(pthread_create(&senders[i], NULL, sender_main,
                                        (void *)(uintptr_t)i),
                         0);
    for (int i = 0; i < SENDERS; i++)
        pthread_join(senders[i], NULL);
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(readers[i], NULL);
    assert_int_equal(atomic_load(&errors), 0);
    assert_int_equal(atomic_load(&received),
                     (uint64_t)CLIENTS * SENDERS * PER_SENDER);
    for (int i = 0; i < CLIENTS; i++)
        close(fds[i]);
    SU_WAIT(su_sessions(srv) == 0);
    assert_int_equal(su_sessions(srv), 0);
    wu_finish(srv, &ev, before);
}

int main(int argc, char **argv)
{
    su_parse_backend(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(broadcasts_from_many_threads_stay_well_formed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
