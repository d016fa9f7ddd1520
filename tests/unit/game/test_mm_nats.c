/*
 * Cross-shard matchmaking's protocol (examples/game/matchmaking.h) over a
 * real nats-server, the transport the cluster group will give it: each
 * "shard" here is a thread owning a struct mm and a libnats connection,
 * and libnats's callbacks only copy the message into the shard's inbox
 * (the cluster group's rule: copy and hand over). The game is not
 * involved (its SHARD_MOVE is still to come: docs/cluster.md).
 *
 *   matches_cross_a_real_nats   two shards, 100 players each, queued one
 *                               at a time: every player matched once, each
 *                               move's token is a seat its host reserved;
 *                               prints the set-up time (p50, p99)
 *   a_killed_shards_ticket_is_not_matched   a third shard's connection
 *                               torn down while its ticket is advertised:
 *                               a later player elsewhere gets no offer to
 *                               it once the advert's lease has passed
 *
 * Skips (77) with one line when nats-server is not installed. A private
 * server (tests/integration/nats_util.h), stopped by PID on every path.
 * Bounded: each wait gives up after 20 s.
 */
#include "helpers.h"

#include "../../integration/nats_util.h"
#include "matchmaking.h"

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROUNDS 100
#define INBOX 256
#define WAIT_MS 20000

static struct nu_server srv;

static uint64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

struct node {
    int id;
    natsConnection *nc;
    natsSubscription *sub_me, *sub_ads;
    pthread_mutex_t lock; /* the inbox: libnats threads -> node thread */
    struct {
        uint8_t b[MM_WIRE_MAX];
        int n;
    } inbox[INBOX];
    int in_n;
    atomic_int dropped;
    /* The node thread's own. */
    struct mm mm;
    pthread_t thr;
    atomic_bool stop;
    int players;        /* to queue, one at a time */
    uint64_t next, cur; /* next player key to queue; the one queued (0) */
    uint64_t queued_ms[ROUNDS + 1];
    atomic_int done; /* players matched (hosted or moved) */
    int local, bad;
};

static struct node nodes[3];

/* The seats hosts reserved, and what moved: checked across nodes. */
static pthread_mutex_t seats_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    uint64_t token, host_queued_ms;
    int moved;
} seats[4 * ROUNDS];
static int n_seats;
static uint64_t setup_ms[2 * ROUNDS];
static int n_setup;

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
                   void *closure)
{
    struct node *n = closure;
    (void)nc, (void)sub;
    int len = natsMsg_GetDataLength(msg);
    pthread_mutex_lock(&n->lock);
    if (len > 0 && len <= MM_WIRE_MAX && n->in_n < INBOX) {
        memcpy(n->inbox[n->in_n].b, natsMsg_GetData(msg), (size_t)len);
        n->inbox[n->in_n++].n = len;
    } else {
        atomic_fetch_add(&n->dropped, 1);
    }
    pthread_mutex_unlock(&n->lock);
    natsMsg_Destroy(msg);
}

static void n_send(void *ctx, const struct mm_msg *m)
{
    struct node *n = ctx;
    uint8_t b[MM_WIRE_MAX];
    char subj[32];
    int len = mm_msg_encode(m, b, sizeof b);
    if (len < 0) {
        n->bad++;
        return;
    }
    if (m->to == MM_ALL)
        snprintf(subj, sizeof subj, "rp.mm.ads");
    else
        snprintf(subj, sizeof subj, "rp.mm.%u", m->to);
    (void)natsConnection_Publish(n->nc, subj, b, len); /* at most once */
}

static void n_local(void *ctx, uint64_t a, uint64_t b)
{
    struct node *n = ctx;
    (void)a, (void)b;
    n->local++; /* one queued at a time: never expected */
}

static uint64_t n_host(void *ctx, uint64_t player, const struct mm_record *rec,
                       uint32_t from)
{
    struct node *n = ctx;
    (void)rec, (void)from;
    pthread_mutex_lock(&seats_lock);
    uint64_t token = 0;
    if (n_seats < (int)(sizeof seats / sizeof seats[0])) {
        token = ((uint64_t)n->id + 1) << 32 | (uint64_t)(n_seats + 1);
        seats[n_seats].token = token;
        seats[n_seats].host_queued_ms = n->queued_ms[player % 1000];
        seats[n_seats++].moved = 0;
    }
    pthread_mutex_unlock(&seats_lock);
    if (token && player == n->cur) {
        n->cur = 0;
        atomic_fetch_add(&n->done, 1);
    } else {
        n->bad++;
    }
    return token;
}

static void n_unhost(void *ctx, uint64_t player, uint64_t token)
{
    struct node *n = ctx;
    (void)token;
    /* The module queued 'player' again: it is still this node's. */
    n->cur = player;
    atomic_fetch_sub(&n->done, 1);
}

static void n_move(void *ctx, uint64_t player, const char *host, uint16_t port,
                   uint64_t token)
{
    struct node *n = ctx;
    uint64_t now = mono_ms();
    int found = 0;
    pthread_mutex_lock(&seats_lock);
    for (int i = 0; i < n_seats; i++) {
        if (seats[i].token != token)
            continue;
        found = ++seats[i].moved;
        uint64_t start = n->queued_ms[player % 1000];
        if (seats[i].host_queued_ms > start)
            start = seats[i].host_queued_ms;
        if (n_setup < (int)(sizeof setup_ms / sizeof setup_ms[0]))
            setup_ms[n_setup++] = now - start;
    }
    pthread_mutex_unlock(&seats_lock);
    if (found != 1 || player != n->cur || strcmp(host, "127.0.0.1") != 0 ||
        port == 0)
        n->bad++;
    n->cur = 0;
    atomic_fetch_add(&n->done, 1);
}

static bool n_record(void *ctx, uint64_t player, struct mm_record *out)
{
    (void)ctx;
    memset(out, 0, sizeof *out);
    out->name_len = (uint8_t)snprintf(out->name, sizeof out->name, "pl%04llu",
                                      (unsigned long long)player);
    out->gold = 10;
    return true;
}

static const struct mm_ops node_ops = {n_send,   n_local, n_host,
                                       n_unhost, n_move,  n_record};

static void *node_main(void *arg)
{
    struct node *n = arg;
    struct mm_msg m;
    uint8_t b[MM_WIRE_MAX];
    while (!atomic_load(&n->stop)) {
        uint64_t now = mono_ms();
        if (!n->cur && n->next < (uint64_t)n->players) {
            uint64_t key = (uint64_t)n->id * 1000 + ++n->next;
            n->queued_ms[n->next] = now;
            n->cur = key;
            if (mm_enqueue(&n->mm, key, now) <= 0)
                n->bad++;
        }
        for (;;) {
            int len = 0;
            pthread_mutex_lock(&n->lock);
            if (n->in_n > 0) {
                len = n->inbox[0].n;
                memcpy(b, n->inbox[0].b, (size_t)len);
                memmove(&n->inbox[0], &n->inbox[1],
                        (size_t)(n->in_n - 1) * sizeof n->inbox[0]);
                n->in_n--;
            }
            pthread_mutex_unlock(&n->lock);
            if (!len)
                break;
            if (mm_msg_decode(b, (size_t)len, &m) == 0)
                mm_receive(&n->mm, &m, mono_ms());
            else
                n->bad++;
        }
        mm_tick(&n->mm, mono_ms());
        nu_sleep_ms(2);
    }
    return NULL;
}

static void node_start(struct node *n, int id, int players)
{
    char subj[32];
    memset(n, 0, sizeof *n);
    n->id = id;
    n->players = players;
    pthread_mutex_init(&n->lock, NULL);
    struct mm_config c = {.mode = MM_GLOBAL,
                          .shard = (uint32_t)id,
                          .epoch = mono_ms() + (uint64_t)id,
                          .advert_ms = 50,
                          .ad_ttl_ms = 500,
                          .offer_ms = 300,
                          .promise_ms = 600,
                          .port = (uint16_t)(7200 + id)};
    snprintf(c.host, sizeof c.host, "127.0.0.1");
    mm_init(&n->mm, &c, &node_ops, n);
    natsOptions *o = NULL;
    assert_int_equal(natsOptions_Create(&o), NATS_OK);
    assert_int_equal(natsOptions_SetURL(o, srv.url), NATS_OK);
    assert_int_equal(natsOptions_SetSendAsap(o, true), NATS_OK);
    assert_int_equal(natsOptions_SetNoEcho(o, true), NATS_OK);
    assert_int_equal(natsConnection_Connect(&n->nc, o), NATS_OK);
    natsOptions_Destroy(o);
    snprintf(subj, sizeof subj, "rp.mm.%d", id);
    assert_int_equal(
        natsConnection_Subscribe(&n->sub_me, n->nc, subj, on_msg, n), NATS_OK);
    assert_int_equal(
        natsConnection_Subscribe(&n->sub_ads, n->nc, "rp.mm.ads", on_msg, n),
        NATS_OK);
    assert_int_equal(natsConnection_Flush(n->nc), NATS_OK);
    assert_int_equal(pthread_create(&n->thr, NULL, node_main, n), 0);
}

static void node_stop(struct node *n)
{
    atomic_store(&n->stop, true);
    pthread_join(n->thr, NULL);
    if (n->sub_me)
        natsSubscription_Destroy(n->sub_me);
    if (n->sub_ads)
        natsSubscription_Destroy(n->sub_ads);
    if (n->nc)
        natsConnection_Destroy(n->nc);
    n->sub_me = n->sub_ads = NULL;
    n->nc = NULL;
    pthread_mutex_destroy(&n->lock);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void matches_cross_a_real_nats(void **state)
{
    (void)state;
    n_seats = n_setup = 0;
    node_start(&nodes[0], 0, ROUNDS);
    node_start(&nodes[1], 1, ROUNDS);
    uint64_t t0 = mono_ms();
    while ((atomic_load(&nodes[0].done) < ROUNDS ||
            atomic_load(&nodes[1].done) < ROUNDS) &&
           mono_ms() - t0 < WAIT_MS)
        nu_sleep_ms(10);
    node_stop(&nodes[0]);
    node_stop(&nodes[1]);
    assert_int_equal(atomic_load(&nodes[0].done), ROUNDS);
    assert_int_equal(atomic_load(&nodes[1].done), ROUNDS);
    assert_int_equal(nodes[0].bad + nodes[1].bad, 0);
    assert_int_equal(nodes[0].local + nodes[1].local, 0);
    /* Every seat reserved was moved to exactly once (no REJECT here: an
       unhosted seat would show moved 0 and be counted in done). */
    int moved = 0;
    for (int i = 0; i < n_seats; i++) {
        assert_true(seats[i].moved <= 1);
        moved += seats[i].moved;
    }
    assert_int_equal(moved, ROUNDS);
    assert_int_equal(n_setup, ROUNDS);
    qsort(setup_ms, (size_t)n_setup, sizeof setup_ms[0], cmp_u64);
    printf("mm over nats: %d cross-shard matches, set-up p50 %llu ms p99 "
           "%llu ms (advert 50 ms, tick 2 ms)\n",
           n_setup, (unsigned long long)setup_ms[n_setup / 2],
           (unsigned long long)setup_ms[n_setup * 99 / 100]);
}

static void a_killed_shards_ticket_is_not_matched(void **state)
{
    (void)state;
    n_seats = n_setup = 0;
    /* Shard 2 queues one player and advertises it, then dies (its
       connection torn down, its thread stopped: no word to anyone). */
    node_start(&nodes[2], 2, 1);
    node_start(&nodes[0], 0, 0);
    uint64_t t0 = mono_ms();
    bool seen = false;
    while (!seen && mono_ms() - t0 < WAIT_MS) {
        nu_sleep_ms(10);
        atomic_store(&nodes[0].stop, true);
        pthread_join(nodes[0].thr, NULL);
        for (int i = 0; i < MM_MAX_REMOTE; i++)
            seen |= nodes[0].mm.remote[i].seen_ms != 0;
        atomic_store(&nodes[0].stop, false);
        assert_int_equal(
            pthread_create(&nodes[0].thr, NULL, node_main, &nodes[0]), 0);
    }
    assert_true(seen);
    node_stop(&nodes[2]);
    /* Past the advert's lease (500 ms), a player queued on shard 0 finds
       nobody to offer to. */
    nu_sleep_ms(700);
    atomic_store(&nodes[0].stop, true);
    pthread_join(nodes[0].thr, NULL);
    atomic_store(&nodes[0].stop, false);
    nodes[0].players = 1;
    assert_int_equal(pthread_create(&nodes[0].thr, NULL, node_main, &nodes[0]),
                     0);
    nu_sleep_ms(500);
    node_stop(&nodes[0]);
    assert_int_equal(nodes[0].mm.st.offers, 0);
    assert_int_equal(atomic_load(&nodes[0].done), 0);
    assert_int_equal(mm_queued(&nodes[0].mm), 1);
}

int main(void)
{
    int r = nu_start(&srv, 0);
    if (r == -ENOENT) {
        printf("skipping test_mm_nats: nats-server not installed "
               "(scripts/deps.sh cluster)\n");
        return 77;
    }
    if (r < 0) {
        fprintf(stderr, "nats-server did not start: %d\n", r);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matches_cross_a_real_nats),
        cmocka_unit_test(a_killed_shards_ticket_is_not_matched),
    };
    r = cmocka_run_group_tests(tests, NULL, NULL);
    nu_stop(&srv);
    nats_CloseAndWait(2000);
    return r;
}
