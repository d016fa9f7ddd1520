/*
 * Cross-shard matchmaking's offer/commit protocol (examples/game/
 * matchmaking.h) with no NATS: a few struct mm, one per shard, joined by
 * an in-test network that carries every message through the wire codec
 * and lets a test hold, drop or reorder messages. Two leaders at once, a
 * decline, a timeout and a late commit, a ticket offered by two leaders,
 * the queue modes, a dead shard's tickets, the seats and the codec.
 */
#include "helpers.h"

#include "matchmaking.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHARDS 3
#define NET_MAX 256

struct shard {
    struct mm mm;
    int id;
    uint64_t local_matches, hosted, moved, unhosted;
    uint64_t host_player, host_token, moved_player, moved_token;
    uint64_t unhost_token;
    struct mm_record host_rec;
    char moved_host[64];
    uint16_t moved_port;
    uint64_t gone_player; /* record() says this one is gone */
};

struct packet {
    uint8_t b[MM_WIRE_MAX];
    int n;
    uint32_t from;
};

static struct shard sh[SHARDS];
static struct packet net[NET_MAX];
static int net_n;

/* What happened to each player and each token, over all shards: a player
   is in at most one match at a time (an unhosted one may match again); a
   token is moved at most once, and only while its seat is live (the
   record has one owner). */
#define KEYS 4096
static int outcome[KEYS];
static struct {
    uint64_t token;
    bool live, moved;
} tokens[KEYS];
static int tokens_n;
static bool lossy; /* random test: a full network drops */

static int token_at(uint64_t token)
{
    for (int i = 0; i < tokens_n; i++)
        if (tokens[i].token == token)
            return i;
    return -1;
}

static void t_send(void *ctx, const struct mm_msg *m)
{
    (void)ctx;
    if (lossy && net_n == NET_MAX)
        return;
    assert_true(net_n < NET_MAX);
    int n = mm_msg_encode(m, net[net_n].b, sizeof net[net_n].b);
    assert_true(n > 0);
    net[net_n].n = n;
    net[net_n].from = m->from;
    net_n++;
}

static void t_local_match(void *ctx, uint64_t a, uint64_t b)
{
    assert_true(a < KEYS && b < KEYS && a != b);
    assert_int_equal(++outcome[a], 1);
    assert_int_equal(++outcome[b], 1);
    ((struct shard *)ctx)->local_matches++;
}

static uint64_t t_host(void *ctx, uint64_t player, const struct mm_record *rec,
                       uint32_t from_shard)
{
    struct shard *s = ctx;
    (void)from_shard;
    s->hosted++;
    s->host_player = player;
    s->host_rec = *rec;
    s->host_token = ((uint64_t)s->id + 1) << 32 | s->hosted;
    assert_true(player < KEYS);
    assert_int_equal(++outcome[player], 1);
    assert_int_equal(token_at(s->host_token), -1);
    assert_true(tokens_n < KEYS);
    tokens[tokens_n].token = s->host_token;
    tokens[tokens_n].live = true;
    tokens[tokens_n++].moved = false;
    return s->host_token;
}

static void t_unhost(void *ctx, uint64_t player, uint64_t token)
{
    struct shard *s = ctx;
    s->unhosted++;
    s->unhost_token = token;
    int i = token_at(token);
    assert_true(i >= 0 && tokens[i].live);
    assert_false(tokens[i].moved); /* its player is not on the way */
    tokens[i].live = false;
    assert_int_equal(--outcome[player], 0);
}

static void t_move(void *ctx, uint64_t player, const char *host, uint16_t port,
                   uint64_t token)
{
    struct shard *s = ctx;
    s->moved++;
    s->moved_player = player;
    s->moved_token = token;
    snprintf(s->moved_host, sizeof s->moved_host, "%s", host);
    s->moved_port = port;
    assert_true(player < KEYS);
    assert_int_equal(++outcome[player], 1);
    int i = token_at(token);
    assert_true(i >= 0 && tokens[i].live);
    assert_false(tokens[i].moved);
    tokens[i].moved = true;
}

static bool t_record(void *ctx, uint64_t player, struct mm_record *out)
{
    struct shard *s = ctx;
    if (player == s->gone_player)
        return false;
    memset(out, 0, sizeof *out);
    out->name_len = (uint8_t)snprintf(out->name, sizeof out->name, "p%d_%llu",
                                      s->id, (unsigned long long)player);
    out->gold = 100 + (uint32_t)player;
    out->wins = 7;
    return true;
}

static const struct mm_ops ops = {
    .send = t_send,
    .local_match = t_local_match,
    .host = t_host,
    .unhost = t_unhost,
    .move = t_move,
    .record = t_record,
};

static void setup(enum mm_mode mode)
{
    memset(sh, 0, sizeof sh);
    memset(outcome, 0, sizeof outcome);
    tokens_n = 0;
    lossy = false;
    net_n = 0;
    for (int i = 0; i < SHARDS; i++) {
        struct mm_config c = {.mode = mode,
                              .shard = (uint32_t)i,
                              .epoch = 5000 + (uint64_t)i,
                              .spill_ms = 500,
                              .advert_ms = 100,
                              .ad_ttl_ms = 400,
                              .offer_ms = 300,
                              .promise_ms = 600,
                              .port = (uint16_t)(7200 + i)};
        snprintf(c.host, sizeof c.host, "127.0.0.1");
        sh[i].id = i;
        mm_init(&sh[i].mm, &c, &ops, &sh[i]);
    }
}

/* Delivers packet 'i' to its receivers (through the decoder) and removes
   it from the network. */
static void deliver_one(int i, uint64_t now)
{
    struct packet p = net[i];
    memmove(&net[i], &net[i + 1], (size_t)(net_n - i - 1) * sizeof net[0]);
    net_n--;
    struct mm_msg m;
    assert_int_equal(mm_msg_decode(p.b, (size_t)p.n, &m), 0);
    for (int s = 0; s < SHARDS; s++)
        mm_receive(&sh[s].mm, &m, now);
}

/* Delivers everything, including what the deliveries send, in order. */
static void deliver_all(uint64_t now)
{
    for (int guard = 0; net_n > 0; guard++) {
        assert_true(guard < 1000);
        deliver_one(0, now);
    }
}

/* Index of the first packet of 'kind' in the network, or -1. */
static int find_kind(uint8_t kind)
{
    for (int i = 0; i < net_n; i++)
        if (net[i].b[1] == kind)
            return i;
    return -1;
}

static void drop_kind(uint8_t kind)
{
    int i = find_kind(kind);
    assert_true(i >= 0);
    memmove(&net[i], &net[i + 1], (size_t)(net_n - i - 1) * sizeof net[0]);
    net_n--;
}

static void tick(int shard, uint64_t now)
{
    mm_tick(&sh[shard].mm, now);
}

/* Both shards queue one player, advertise it, and see the other's. */
static void two_waiting_and_advertised(uint64_t now)
{
    assert_true(mm_enqueue(&sh[0].mm, 11, now) > 0);
    assert_true(mm_enqueue(&sh[1].mm, 21, now) > 0);
    /* The adverts go out first, the offers after they arrived. */
    sh[0].mm.cfg.offer_ms = sh[1].mm.cfg.offer_ms = 300;
    tick(0, now), tick(1, now);
    assert_int_equal(find_kind(MM_OFFER), -1);
    deliver_all(now);
}

static void two_leaders_at_once_the_lower_shard_hosts(void **state)
{
    (void)state;
    for (int order = 0; order < 2; order++) {
        setup(MM_GLOBAL);
        two_waiting_and_advertised(1000);
        /* Both offer in the same round, before either offer arrives. */
        tick(0, 1010), tick(1, 1010);
        assert_int_equal(sh[0].mm.st.offers, 1);
        assert_int_equal(sh[1].mm.st.offers, 1);
        if (order == 1) { /* shard 1's offer arrives first */
            struct packet p = net[0];
            memmove(&net[0], &net[1], (size_t)(net_n - 1) * sizeof net[0]);
            net[net_n - 1] = p;
        }
        deliver_all(1020);
        /* Either way: shard 0 hosts, shard 1's player moves; once. */
        assert_int_equal(sh[0].hosted, 1);
        assert_int_equal(sh[1].hosted, 0);
        assert_int_equal(sh[1].moved, 1);
        assert_int_equal(sh[0].moved, 0);
        assert_int_equal(sh[0].host_player, 11);
        assert_string_equal(sh[0].host_rec.name, "p1_21");
        assert_int_equal(sh[0].host_rec.gold, 121);
        assert_int_equal(sh[1].moved_player, 21);
        assert_int_equal(sh[1].moved_token, sh[0].host_token);
        assert_string_equal(sh[1].moved_host, "127.0.0.1");
        assert_int_equal(sh[1].moved_port, 7200);
        assert_int_equal(mm_queued(&sh[0].mm), 0);
        assert_int_equal(mm_queued(&sh[1].mm), 0);
        /* Nothing more happens later. */
        for (uint64_t t = 1100; t < 3000; t += 50)
            tick(0, t), tick(1, t), deliver_all(t);
        assert_int_equal(sh[0].hosted + sh[1].hosted, 1);
        assert_int_equal(sh[0].moved + sh[1].moved, 1);
        assert_int_equal(sh[0].unhosted, 0);
    }
}

static void a_decline_frees_the_leaders_ticket(void **state)
{
    (void)state;
    setup(MM_GLOBAL);
    two_waiting_and_advertised(1000);
    /* Shard 1's player leaves before shard 0's offer arrives. */
    assert_int_equal(mm_cancel(&sh[1].mm, 21), 0);
    tick(0, 1010);
    deliver_all(1020);
    assert_int_equal(sh[1].mm.st.declines, 1);
    assert_int_equal(sh[0].mm.st.declines, 1);
    assert_int_equal(sh[0].hosted + sh[1].moved, 0);
    assert_int_equal(sh[0].mm.local[0].state, MM_ADVERTISED);
    /* The declined ticket is not offered to again at once... */
    tick(0, 1030);
    assert_int_equal(find_kind(MM_OFFER), -1);
    /* ...and a new player there is matched with the waiting one. */
    net_n = 0;
    assert_true(mm_enqueue(&sh[1].mm, 22, 1040) > 0);
    for (uint64_t t = 1100; t < 2000; t += 50)
        tick(0, t), tick(1, t), deliver_all(t);
    /* (Either shard may lead this time.) */
    assert_int_equal(sh[0].hosted + sh[1].hosted, 1);
    assert_int_equal(sh[0].moved + sh[1].moved, 1);
    assert_true(sh[1].moved_player == 22 || sh[1].host_player == 22);
    assert_int_equal(mm_queued(&sh[0].mm) + mm_queued(&sh[1].mm), 0);

    /* A record that cannot be read (the player just left): declined. */
    setup(MM_GLOBAL);
    two_waiting_and_advertised(1000);
    sh[1].gone_player = 21;
    tick(0, 1010);
    deliver_all(1020);
    assert_int_equal(sh[0].mm.st.declines, 1);
    assert_int_equal(sh[0].hosted, 0);
    assert_int_equal(mm_queued(&sh[1].mm), 0);
}

static void an_unanswered_offer_times_out_and_is_made_again(void **state)
{
    (void)state;
    setup(MM_GLOBAL);
    /* Only shard 1's player is advertised to shard 0. */
    assert_true(mm_enqueue(&sh[0].mm, 11, 1000) > 0);
    assert_true(mm_enqueue(&sh[1].mm, 21, 1000) > 0);
    tick(1, 1000);
    deliver_all(1000);
    tick(0, 1010);
    assert_int_equal(sh[0].mm.st.offers, 1);
    drop_kind(MM_OFFER); /* lost on the way */
    deliver_all(1010);
    tick(0, 1300); /* offer_ms 300: not yet */
    assert_int_equal(sh[0].mm.st.offer_timeouts, 0);
    tick(0, 1310);
    assert_int_equal(sh[0].mm.st.offer_timeouts, 1);
    /* Shard 1 keeps advertising; the offer is made again and goes. */
    for (uint64_t t = 1320; t < 3000 && sh[1].moved == 0; t += 50)
        tick(1, t), tick(0, t), deliver_all(t);
    assert_int_equal(sh[0].mm.st.offers, 2);
    assert_int_equal(sh[0].hosted, 1);
    assert_int_equal(sh[1].moved, 1);

    /* A promise whose COMMIT never comes: the ticket is free again. */
    setup(MM_GLOBAL);
    two_waiting_and_advertised(1000);
    tick(0, 1010);
    deliver_one(find_kind(MM_OFFER), 1010);
    assert_int_equal(sh[1].mm.local[0].state, MM_PROMISED);
    /* The ACCEPT is lost: shard 0's offer and shard 1's promise time
       out; neither hosts nor moves. */
    drop_kind(MM_ACCEPT);
    tick(0, 1400), tick(1, 1400);
    tick(1, 1610);
    assert_int_equal(sh[1].mm.st.promise_timeouts, 1);
    assert_int_equal(sh[1].mm.local[0].state, MM_ADVERTISED);
    assert_int_equal(sh[0].hosted + sh[1].moved, 0);
}

static void a_late_commit_is_ignored_and_the_seat_dropped(void **state)
{
    (void)state;
    setup(MM_GLOBAL);
    two_waiting_and_advertised(1000);
    tick(0, 1010);
    deliver_one(find_kind(MM_OFFER), 1010);
    deliver_one(find_kind(MM_ACCEPT), 1020);
    assert_int_equal(sh[0].hosted, 1); /* the seat holds the record */
    int c = find_kind(MM_COMMIT);
    assert_true(c >= 0);
    /* The COMMIT is held up past shard 1's promise (600 ms). */
    struct packet held = net[c];
    drop_kind(MM_COMMIT);
    tick(1, 1700);
    assert_int_equal(sh[1].mm.st.promise_timeouts, 1);
    net[net_n++] = held;
    deliver_all(1710);
    /* Ignored: no move, the player still queued on shard 1; the host got
       REJECT and dropped the seat it had reserved, its player queued. */
    assert_int_equal(sh[1].moved, 0);
    assert_int_equal(sh[1].mm.st.late_ignored, 1);
    assert_int_equal(mm_queued(&sh[1].mm), 1);
    assert_int_equal(sh[0].unhosted, 1);
    assert_int_equal(sh[0].unhost_token, sh[0].host_token);
    assert_int_equal(mm_queued(&sh[0].mm), 1);
    /* A duplicate of the late COMMIT changes nothing more. */
    net[net_n++] = held;
    deliver_all(1720);
    assert_int_equal(sh[1].moved, 0);
    assert_int_equal(sh[0].unhosted, 1);

    /* A late ACCEPT (the offer timed out at the leader) is answered
       ABORT: the target's promise ends at once. */
    setup(MM_GLOBAL);
    two_waiting_and_advertised(1000);
    tick(0, 1010);
    deliver_one(find_kind(MM_OFFER), 1010);
    int a = find_kind(MM_ACCEPT);
    struct packet acc = net[a];
    drop_kind(MM_ACCEPT);
    tick(0, 1400); /* the offer times out */
    net_n = 0;     /* whatever shard 0 sent meanwhile */
    net[net_n++] = acc;
    deliver_all(1410);
    assert_int_equal(sh[0].hosted, 0);
    assert_int_equal(sh[1].mm.local[0].state, MM_ADVERTISED);
    assert_int_equal(sh[1].moved, 0);
}

static void a_ticket_offered_by_two_leaders_is_matched_once(void **state)
{
    (void)state;
    setup(MM_GLOBAL);
    assert_true(mm_enqueue(&sh[0].mm, 11, 1000) > 0);
    assert_true(mm_enqueue(&sh[1].mm, 21, 1000) > 0);
    assert_true(mm_enqueue(&sh[2].mm, 31, 1000) > 0);
    /* Only shard 1's ticket is seen: 0 and 2 both offer to it. */
    tick(1, 1000);
    deliver_all(1000);
    tick(0, 1010), tick(2, 1010);
    assert_int_equal(sh[0].mm.st.offers + sh[2].mm.st.offers, 2);
    deliver_all(1010);
    assert_int_equal(sh[0].hosted + sh[2].hosted, 1);
    assert_int_equal(sh[1].moved, 1);
    assert_int_equal(sh[1].mm.st.declines, 1);
    /* The declined one waits on; with a fourth player on shard 1 it is
       matched in turn, and nobody twice. */
    assert_true(mm_enqueue(&sh[1].mm, 22, 1050) > 0);
    for (uint64_t t = 1100; t < 3000; t += 50)
        for (int s = 0; s < SHARDS; s++)
            tick(s, t), deliver_all(t);
    assert_int_equal(sh[0].hosted + sh[1].hosted + sh[2].hosted, 2);
    assert_int_equal(sh[0].moved + sh[1].moved + sh[2].moved, 2);
    for (int s = 0; s < SHARDS; s++)
        assert_int_equal(mm_queued(&sh[s].mm), 0);
}

static void queue_modes_local_spill_global(void **state)
{
    (void)state;
    /* local: nothing ever leaves the shard. */
    setup(MM_LOCAL);
    assert_true(mm_enqueue(&sh[0].mm, 11, 1000) > 0);
    assert_true(mm_enqueue(&sh[1].mm, 21, 1000) > 0);
    for (uint64_t t = 1000; t < 3000; t += 50)
        tick(0, t), tick(1, t);
    assert_int_equal(net_n, 0);
    assert_int_equal(mm_enqueue(&sh[0].mm, 12, 3000), 0); /* local pair */
    assert_int_equal(sh[0].local_matches, 1);
    assert_int_equal(mm_enqueue(&sh[0].mm, 12, 3000) > 0, 1);
    assert_int_equal(mm_enqueue(&sh[0].mm, 12, 3000), -EALREADY);

    /* spill: advertised only after spill_ms (500) waiting. */
    setup(MM_SPILL);
    assert_true(mm_enqueue(&sh[0].mm, 11, 1000) > 0);
    tick(0, 1000), tick(0, 1499);
    assert_int_equal(net_n, 0);
    tick(0, 1500);
    assert_int_equal(find_kind(MM_ADVERT), 0);

    /* global: advertised at once, but a local partner comes first. */
    setup(MM_GLOBAL);
    assert_true(mm_enqueue(&sh[0].mm, 11, 1000) > 0);
    tick(0, 1000);
    assert_int_equal(find_kind(MM_ADVERT), 0);
    assert_int_equal(mm_enqueue(&sh[0].mm, 12, 1001), 0);
    assert_int_equal(sh[0].local_matches, 1);
    assert_int_equal(mm_mode_parse("spill", &(enum mm_mode){0}), 0);
    assert_int_equal(mm_mode_parse("nope", &(enum mm_mode){0}), -EINVAL);
}

static void a_dead_shards_tickets_expire(void **state)
{
    (void)state;
    setup(MM_GLOBAL);
    assert_true(mm_enqueue(&sh[1].mm, 21, 1000) > 0);
    tick(1, 1000);
    deliver_all(1000);
    /* Shard 1 dies: no more adverts. Past ad_ttl_ms (400) its ticket is
       forgotten, and a player queued on shard 0 gets no offer to it. */
    tick(0, 1400);
    assert_true(mm_enqueue(&sh[0].mm, 11, 1400) > 0);
    net_n = 0;
    tick(0, 1410);
    assert_int_equal(find_kind(MM_OFFER), -1);
    assert_int_equal(sh[0].mm.st.offers, 0);
    /* A restarted shard (new epoch) replaces its old run's tickets. */
    setup(MM_GLOBAL);
    assert_true(mm_enqueue(&sh[1].mm, 21, 1000) > 0);
    tick(1, 1000);
    deliver_all(1000);
    sh[1].mm.cfg.epoch++;
    sh[1].mm.local[0].advert_ms = 0;
    tick(1, 1050);
    deliver_all(1050);
    int seen = 0;
    for (int i = 0; i < MM_MAX_REMOTE; i++)
        seen += sh[0].mm.remote[i].seen_ms != 0;
    assert_int_equal(seen, 1);
}

/* Many players on three shards, and a network that loses, duplicates and
   reorders messages and delays them at random (seeded: the same run each
   time): whatever happens, no player is matched twice and no record gets
   two live owners (the hooks above assert it at every step), and with
   loss matches still happen across shards. */
static void random_network_never_matches_twice(void **state)
{
    (void)state;
    for (unsigned seed = 1; seed <= 20; seed++) {
        setup(MM_GLOBAL);
        lossy = true;
        srand(seed);
        uint64_t now = 1000, next_key[SHARDS] = {0};
        for (int step = 0; step < 20000; step++) {
            now += (uint64_t)(rand() % 7);
            int r = rand() % 100, s = rand() % SHARDS;
            if (r < 4 && next_key[s] < 999) {
                uint64_t key = (uint64_t)s * 1000 + ++next_key[s];
                assert_true(mm_enqueue(&sh[s].mm, key, now) >= 0);
            } else if (r < 5) {
                mm_cancel(&sh[s].mm,
                          (uint64_t)s * 1000 + 1 + (uint64_t)rand() % 999);
            } else if (r < 30) {
                tick(s, now);
            } else if (net_n > 0) {
                int i = rand() % net_n, fate = rand() % 100;
                if (fate < 8) { /* lost */
                    memmove(&net[i], &net[i + 1],
                            (size_t)(net_n - i - 1) * sizeof net[0]);
                    net_n--;
                } else if (fate < 12 && net_n < NET_MAX) { /* twice */
                    net[net_n++] = net[i];
                    deliver_one(i, now);
                } else {
                    deliver_one(i, now);
                }
            }
        }
        uint64_t cross = 0;
        for (int i = 0; i < SHARDS; i++)
            cross += sh[i].moved;
        assert_true(cross > 10);
        if (getenv("MM_VERBOSE")) {
            struct mm_stats t = {0};
            for (int i = 0; i < SHARDS; i++) {
                const struct mm_stats *x = &sh[i].mm.st;
                t.local_matches += x->local_matches, t.moved += x->moved;
                t.hosted += x->hosted, t.rejects += x->rejects;
                t.aborts += x->aborts, t.late_ignored += x->late_ignored;
                t.duplicates += x->duplicates;
                t.offer_timeouts += x->offer_timeouts;
                t.promise_timeouts += x->promise_timeouts;
            }
            fprintf(stderr,
                    "seed %u: local %llu hosted %llu moved %llu rejects "
                    "%llu aborts %llu late %llu dup %llu timeouts %llu/%llu\n",
                    seed, (unsigned long long)t.local_matches,
                    (unsigned long long)t.hosted, (unsigned long long)t.moved,
                    (unsigned long long)t.rejects, (unsigned long long)t.aborts,
                    (unsigned long long)t.late_ignored,
                    (unsigned long long)t.duplicates,
                    (unsigned long long)t.offer_timeouts,
                    (unsigned long long)t.promise_timeouts);
        }
    }
}

static void forfeit_cb(void *ctx, const struct mm_seat *s)
{
    (void)s;
    (*(int *)ctx)++;
}

static void seats_are_single_use_with_a_deadline(void **state)
{
    (void)state;
    static struct mm_seats seats;
    memset(&seats, 0, sizeof seats);
    struct mm_record rec = {.name_len = 3, .name = "bob", .gold = 5};
    struct mm_seat got;
    assert_int_equal(mm_seat_reserve(&seats, 0, 100, 1, &rec), -EINVAL);
    assert_int_equal(mm_seat_reserve(&seats, 77, 2000, 1, &rec), 0);
    assert_int_equal(mm_seat_reserve(&seats, 77, 2000, 1, &rec), -EINVAL);
    assert_int_equal(mm_seat_claim(&seats, 77, 1500, &got), 0);
    assert_string_equal(got.rec.name, "bob");
    assert_int_equal(got.host_player, 1);
    assert_int_equal(mm_seat_claim(&seats, 77, 1500, &got), -ENOENT);
    assert_int_equal(mm_seat_claim(&seats, 78, 1500, &got), -ENOENT);
    /* Too late: refused, and gone. */
    assert_int_equal(mm_seat_reserve(&seats, 79, 2000, 2, &rec), 0);
    assert_int_equal(mm_seat_claim(&seats, 79, 2001, &got), -ETIMEDOUT);
    assert_int_equal(mm_seat_claim(&seats, 79, 1000, &got), -ENOENT);
    /* Never claimed: expired, forfeit called once. */
    int forfeits = 0;
    assert_int_equal(mm_seat_reserve(&seats, 80, 2000, 3, &rec), 0);
    assert_int_equal(mm_seats_expire(&seats, 2000, forfeit_cb, &forfeits), 0);
    assert_int_equal(mm_seats_expire(&seats, 2001, forfeit_cb, &forfeits), 1);
    assert_int_equal(mm_seats_expire(&seats, 9000, forfeit_cb, &forfeits), 0);
    assert_int_equal(forfeits, 1);
    assert_int_equal(mm_seat_reserve(&seats, 81, 2000, 3, &rec), 0);
    assert_int_equal(mm_seat_drop(&seats, 81), 0);
    assert_int_equal(mm_seat_drop(&seats, 81), -ENOENT);
}

static void the_codec_round_trips_and_refuses_bad_input(void **state)
{
    (void)state;
    struct mm_msg m = {.kind = MM_COMMIT,
                       .from = 1,
                       .to = 2,
                       .epoch = 9,
                       .offer = 3,
                       .leader_ticket = 4,
                       .target_ticket = 5,
                       .token = 0xabcdef,
                       .host_len = 9,
                       .host = "127.0.0.1",
                       .port = 7201};
    uint8_t b[MM_WIRE_MAX + 1], b2[MM_WIRE_MAX];
    struct mm_msg d;
    int n = mm_msg_encode(&m, b, MM_WIRE_MAX);
    assert_true(n > 0);
    assert_int_equal(mm_msg_decode(b, (size_t)n, &d), 0);
    assert_int_equal(mm_msg_encode(&d, b2, sizeof b2), n);
    assert_memory_equal(b, b2, (size_t)n);
    assert_string_equal(d.host, "127.0.0.1");
    assert_int_equal(d.port, 7201);
    /* Every shorter prefix and one trailing byte are refused. */
    for (int k = 0; k < n; k++)
        assert_int_equal(mm_msg_decode(b, (size_t)k, &d), -EBADMSG);
    b[n] = 0;
    assert_int_equal(mm_msg_decode(b, (size_t)n + 1, &d), -EBADMSG);
    /* A token 0, a bad host, an unknown kind or version. */
    m.token = 0;
    assert_int_equal(mm_msg_encode(&m, b2, sizeof b2), -EINVAL);
    m.token = 1;
    m.host[0] = ' ';
    assert_int_equal(mm_msg_encode(&m, b2, sizeof b2), -EINVAL);
    b[1] = 9;
    assert_int_equal(mm_msg_decode(b, (size_t)n, &d), -EBADMSG);
    b[1] = MM_COMMIT;
    b[0] = 2;
    assert_int_equal(mm_msg_decode(b, (size_t)n, &d), -EBADMSG);
    /* ACCEPT: the name follows LOGIN's rules. */
    struct mm_msg a = {.kind = MM_ACCEPT,
                       .from = 1,
                       .to = 0,
                       .offer = 1,
                       .leader_ticket = 1,
                       .target_ticket = 1,
                       .rec = {.name_len = 3, .name = "Bob", .wins = 2}};
    n = mm_msg_encode(&a, b, MM_WIRE_MAX);
    assert_true(n > 0);
    assert_int_equal(mm_msg_decode(b, (size_t)n, &d), 0);
    assert_int_equal(d.rec.wins, 2);
    b[MM_HEAD_LEN + 1] = '!';
    assert_int_equal(mm_msg_decode(b, (size_t)n, &d), -EBADMSG);
    /* ADVERT goes to all; an OFFER to one shard, never to itself. */
    struct mm_msg ad = {
        .kind = MM_ADVERT, .from = 1, .to = 0, .target_ticket = 1};
    assert_int_equal(mm_msg_encode(&ad, b, MM_WIRE_MAX), -EINVAL);
    ad.to = MM_ALL;
    assert_int_equal(mm_msg_encode(&ad, b, MM_WIRE_MAX), MM_HEAD_LEN);
    struct mm_msg o = {.kind = MM_OFFER,
                       .from = 1,
                       .to = 1,
                       .offer = 1,
                       .leader_ticket = 1,
                       .target_ticket = 1};
    assert_int_equal(mm_msg_encode(&o, b, MM_WIRE_MAX), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(two_leaders_at_once_the_lower_shard_hosts),
        cmocka_unit_test(a_decline_frees_the_leaders_ticket),
        cmocka_unit_test(an_unanswered_offer_times_out_and_is_made_again),
        cmocka_unit_test(a_late_commit_is_ignored_and_the_seat_dropped),
        cmocka_unit_test(a_ticket_offered_by_two_leaders_is_matched_once),
        cmocka_unit_test(random_network_never_matches_twice),
        cmocka_unit_test(queue_modes_local_spill_global),
        cmocka_unit_test(a_dead_shards_tickets_expire),
        cmocka_unit_test(seats_are_single_use_with_a_deadline),
        cmocka_unit_test(the_codec_round_trips_and_refuses_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
