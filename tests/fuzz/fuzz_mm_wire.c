/*
 * Fuzz target for cross-shard matchmaking's NATS messages (examples/game/
 * matchmaking.c, mm_msg_decode): whatever arrives on rp.mm.* is untrusted.
 * An input either fails to decode or decodes to a message that obeys the
 * protocol's rules (ids set, a valid name, host and port) and encodes back
 * to exactly the input's bytes. The decoded message is then fed to a
 * shard's queue holding tickets in every state, which must neither crash
 * nor match a ticket twice. Any disagreement aborts.
 */
#include "../../examples/game/matchmaking.c"
#include "../../examples/game/rules.c"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned matched;

static void f_send(void *ctx, const struct mm_msg *m)
{
    uint8_t b[MM_WIRE_MAX];
    (void)ctx;
    if (mm_msg_encode(m, b, sizeof b) < 0)
        abort(); /* the protocol itself never sends an invalid message */
}

static void f_local(void *ctx, uint64_t a, uint64_t b)
{
    (void)ctx, (void)a, (void)b;
    matched += 2;
}

static uint64_t f_host(void *ctx, uint64_t p, const struct mm_record *r,
                       uint32_t from)
{
    (void)ctx, (void)p, (void)from;
    if (!gm_name_valid(r->name, r->name_len))
        abort();
    matched++;
    return 42;
}

static void f_unhost(void *ctx, uint64_t p, uint64_t token)
{
    (void)ctx, (void)p, (void)token;
}

static void f_move(void *ctx, uint64_t p, const char *host, uint16_t port,
                   uint64_t token)
{
    (void)ctx, (void)p;
    if (!host_valid(host, strlen(host)) || port == 0 || token == 0)
        abort();
    matched++;
}

static bool f_record(void *ctx, uint64_t p, struct mm_record *out)
{
    (void)ctx, (void)p;
    memset(out, 0, sizeof *out);
    memcpy(out->name, "abc", 4);
    out->name_len = 3;
    return true;
}

static const struct mm_ops f_ops = {f_send,   f_local, f_host,
                                    f_unhost, f_move,  f_record};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mm_msg m;
    if (mm_msg_decode(data, size, &m) < 0)
        return 0;
    uint8_t out[MM_WIRE_MAX];
    int n = mm_msg_encode(&m, out, sizeof out);
    if (n < 0 || (size_t)n != size || memcmp(out, data, size) != 0)
        abort();
    if (m.kind == MM_ACCEPT && strlen(m.rec.name) != m.rec.name_len)
        abort();
    if (m.kind == MM_COMMIT && strlen(m.host) != m.host_len)
        abort();

    /* Shard 0 with tickets 1..4: advertised, offering to shard 1's
       ticket 1 (offer 1, epoch 0), promised to shard 1's offer 1 (leader
       ticket 1, epoch 0), and waiting. */
    static struct mm q;
    struct mm_config c = {.mode = MM_GLOBAL,
                          .offer_ms = 10,
                          .promise_ms = 10,
                          .ad_ttl_ms = 10,
                          .advert_ms = 5,
                          .host = "h",
                          .port = 1};
    mm_init(&q, &c, &f_ops, NULL);
    matched = 0;
    for (uint64_t p = 1; p <= 4; p++)
        add_ticket(&q, p, 0, MM_ADVERTISED);
    q.local[1].state = MM_OFFERING;
    q.local[1].peer_shard = 1, q.local[1].peer_ticket = 1;
    q.local[1].offer = 1, q.next_offer = 1;
    q.local[2].state = MM_PROMISED, q.local[2].deadline_ms = 5;
    q.local[2].peer_shard = 1, q.local[2].peer_ticket = 1;
    q.local[2].offer = 1;
    q.local[3].state = MM_WAITING;
    size_t before = mm_queued(&q);
    mm_receive(&q, &m, 1);
    mm_receive(&q, &m, 2); /* a duplicate */
    /* Each message matches at most one ticket, and a duplicate none. */
    if (matched > 1 || mm_queued(&q) + matched > before)
        abort();
    mm_tick(&q, 3);
    return 0;
}
