/*
 * The session table: max_sessions slots reserved at create, the free slots,
 * and the one-atomic lookup-and-reference that makes a stale id harmless.
 *
 * Memory follows use. The slot array is one anonymous MAP_NORESERVE
 * mapping: its pages cost nothing (no resident memory, no commit charge)
 * until a slot in them is first handed out, so a table for 1,000,000
 * sessions costs what the sessions that ever ran at once cost. Nothing
 * writes a slot before that: an untouched slot reads as all zeros, state
 * 0 = generation 0, refs 0, which every lookup refuses (no id has
 * generation 0), and its first occupant gets generation 1. Lookups stay
 * an index into one array: O(1), no lock, no indirection.
 *
 * Free slots are handed out lowest first: those below the high-water mark
 * 'fresh' that have been released (a three-level bitmap, set bit = free,
 * O(1) to find the lowest), and only when there are none the next never
 * used slot. So a server that held N sessions at once has touched exactly
 * its N lowest slots, whatever the churn since, and a low slot's page is
 * reused before a new page is touched. The bitmap itself is calloc'ed (one
 * bit per slot; its pages too stay untouched until slots are released).
 *
 * Each slot's state word packs generation, CLOSING and a reference count
 * (net.h). Lookups never lock: load, check, CAS. Only the free slots take
 * a mutex, once per connection (accept) and once per slot release.
 */
#include "net/net.h"

#include "core/assert.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static inline uint32_t state_gen(uint64_t st)
{
    return (uint32_t)(st >> 32);
}

int rp__table_init(struct net_table *t, uint32_t count)
{
    memset(t, 0, sizeof *t);
    size_t bytes = (size_t)count * sizeof *t->slots;
    void *slots = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (slots == MAP_FAILED)
        return -ENOMEM;
    /* Level 0: a bit per slot; level k + 1: a bit per word of level k. */
    size_t words = count;
    for (int l = 0; l < NET_TABLE_LEVELS; l++) {
        words = (words + 63) / 64;
        t->free_words[l] = (uint32_t)words;
        if (!(t->free_bits[l] = calloc(words, sizeof(uint64_t)))) {
            for (int k = 0; k < l; k++)
                free(t->free_bits[k]);
            munmap(slots, bytes);
            return -ENOMEM;
        }
    }
    pthread_mutex_init(&t->lock, NULL);
    t->slots = slots;
    t->map_bytes = bytes;
    t->count = count;
    return 0;
}

void rp__table_destroy(struct net_table *t)
{
    if (!t->slots)
        return;
    pthread_mutex_destroy(&t->lock);
    munmap(t->slots, t->map_bytes);
    for (int l = 0; l < NET_TABLE_LEVELS; l++)
        free(t->free_bits[l]);
    t->slots = NULL;
}

/* The lowest released slot, taken out of the bitmap, or UINT32_MAX. Lock
   held. */
static uint32_t table_take_lowest(struct net_table *t)
{
    const int top = NET_TABLE_LEVELS - 1;
    uint32_t w = 0;
    while (w < t->free_words[top] && t->free_bits[top][w] == 0)
        w++;
    if (w == t->free_words[top])
        return UINT32_MAX;
    /* Down the levels: each set bit names a word below with a bit set. */
    for (int l = top; l > 0; l--)
        w = w * 64 + (uint32_t)__builtin_ctzll(t->free_bits[l][w]);
    uint32_t idx = w * 64 + (uint32_t)__builtin_ctzll(t->free_bits[0][w]);
    /* Up again, clearing each summary bit whose word went empty. */
    uint32_t bit = idx;
    for (int l = 0; l < NET_TABLE_LEVELS; l++) {
        uint64_t *word = &t->free_bits[l][bit / 64];
        *word &= ~((uint64_t)1 << (bit % 64));
        if (*word != 0)
            break;
        bit /= 64;
    }
    return idx;
}

/* Marks slot 'idx' (below 'fresh') free. Lock held. */
static void table_put(struct net_table *t, uint32_t idx)
{
    uint32_t bit = idx;
    for (int l = 0; l < NET_TABLE_LEVELS; l++) {
        t->free_bits[l][bit / 64] |= (uint64_t)1 << (bit % 64);
        bit /= 64;
    }
}

struct rp_session *rp__table_alloc(struct net_table *t, rp_sid *sid)
{
    pthread_mutex_lock(&t->lock);
    uint32_t idx = table_take_lowest(t);
    if (idx == UINT32_MAX && t->fresh < t->count)
        idx = t->fresh++;
    pthread_mutex_unlock(&t->lock);
    if (idx == UINT32_MAX)
        return NULL;
    struct rp_session *s = &t->slots[idx];
    uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
    uint32_t gen = state_gen(st);
    *sid = rp_sid_make(idx, gen ? gen : 1); /* 0: never used */
    atomic_store_explicit(&s->queued_bytes, 0, memory_order_relaxed);
    atomic_store_explicit(&s->close_reason, 0, memory_order_relaxed);
    return s;
}

void rp__table_publish(struct rp_session *s, rp_sid sid)
{
    /* A free slot is written by nobody else: lookups only read it. */
    atomic_store_explicit(&s->state, (uint64_t)rp_sid_gen(sid) << 32 | 1,
                          memory_order_release);
}

static void table_release(struct net_table *t, struct rp_session *s,
                          uint64_t st)
{
    uint32_t gen = state_gen(st) + 1;
    if (gen == 0)
        gen = 1; /* generation 0 is never used: sid 0 means none */
    atomic_store_explicit(&s->state, (uint64_t)gen << 32, memory_order_release);
    pthread_mutex_lock(&t->lock);
    table_put(t, (uint32_t)(s - t->slots));
    pthread_mutex_unlock(&t->lock);
}

static struct rp_session *slot_of(struct rp_server *srv, rp_sid sid)
{
    uint32_t idx = rp_sid_slot(sid);
    if (sid == RP_SID_NONE || idx >= srv->table.count)
        return NULL;
    return &srv->table.slots[idx];
}

struct rp_session *rp__session_get(struct rp_server *srv, rp_sid sid)
{
    struct rp_session *s = slot_of(srv, sid);
    if (!s)
        return NULL;
    uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
    for (;;) {
        if (state_gen(st) != rp_sid_gen(sid) || (st & NET_CLOSING) ||
            (st & NET_REFS_MASK) == 0)
            return NULL;
        if (atomic_compare_exchange_weak_explicit(&s->state, &st, st + 1,
                                                  memory_order_acq_rel,
                                                  memory_order_acquire))
            return s;
    }
}

void rp__session_put(struct rp_server *srv, struct rp_session *s)
{
    uint64_t st = atomic_fetch_sub_explicit(&s->state, 1, memory_order_acq_rel);
    assert((st & NET_REFS_MASK) > 0);
    if ((st & NET_REFS_MASK) == 1) {
        /* Refs reach 0 only after the open ref is dropped, which happens
           only once CLOSING is set: nobody can take a new one now. */
        assert(st & NET_CLOSING);
        table_release(&srv->table, s, st - 1);
    }
}

int rp__session_mark_closing(struct rp_server *srv, rp_sid sid,
                             struct rp_session **out)
{
    struct rp_session *s = slot_of(srv, sid);
    if (!s)
        return -ENOTCONN;
    uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
    for (;;) {
        if (state_gen(st) != rp_sid_gen(sid) || (st & NET_CLOSING) ||
            (st & NET_REFS_MASK) == 0)
            return -ENOTCONN;
        if (atomic_compare_exchange_weak_explicit(
                &s->state, &st, (st + 1) | NET_CLOSING, memory_order_acq_rel,
                memory_order_acquire)) {
            *out = s;
            return 0;
        }
    }
}

/* The slot of 'sid' if it still holds that session, whatever its state:
   the holder asks about its own session, which keeps its slot (and
   generation) until its on_leave has returned. */
static struct rp_session *slot_current(struct rp_server *srv, rp_sid sid)
{
    struct rp_session *s = slot_of(srv, sid);
    if (!s)
        return NULL;
    uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
    if (state_gen(st) != rp_sid_gen(sid) || (st & NET_REFS_MASK) == 0)
        return NULL;
    return s;
}

int rp_session_set_data(struct rp_server *srv, rp_sid sid, void *data)
{
    struct rp_session *s = slot_current(srv, sid);
    if (!s)
        return -ENOTCONN;
    s->data = data;
    return 0;
}

void *rp_session_get_data(struct rp_server *srv, rp_sid sid)
{
    struct rp_session *s = slot_current(srv, sid);
    return s ? s->data : NULL;
}
