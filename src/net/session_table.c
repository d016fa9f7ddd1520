/*
 * The session table: max_sessions slots allocated at create, a free list,
 * and the one-atomic lookup-and-reference that makes a stale id harmless.
 *
 * Each slot's state word packs generation, CLOSING and a reference count
 * (net.h). Lookups never lock: load, check, CAS. Only the free list takes a
 * mutex, once per connection (accept) and once per slot release.
 */
#include "net/net.h"

#include "core/assert.h"

#include <errno.h>
#include <stdlib.h>

static inline uint32_t state_gen(uint64_t st)
{
    return (uint32_t)(st >> 32);
}

int rp__table_init(struct net_table *t, uint32_t count)
{
    /* calloc: untouched slots cost no resident memory. */
    t->slots = calloc(count, sizeof *t->slots);
    t->free_stack = malloc(sizeof *t->free_stack * count);
    if (!t->slots || !t->free_stack) {
        free(t->slots);
        free(t->free_stack);
        return -ENOMEM;
    }
    pthread_mutex_init(&t->lock, NULL);
    t->count = count;
    /* Lowest index on top, so slots are reused LIFO from 0 up. */
    for (uint32_t i = 0; i < count; i++) {
        atomic_init(&t->slots[i].state, (uint64_t)1 << 32);
        t->free_stack[i] = count - 1 - i;
    }
    t->free_top = count;
    return 0;
}

void rp__table_destroy(struct net_table *t)
{
    if (!t->slots)
        return;
    pthread_mutex_destroy(&t->lock);
    free(t->slots);
    free(t->free_stack);
    t->slots = NULL;
}

struct rp_session *rp__table_alloc(struct net_table *t, rp_sid *sid)
{
    pthread_mutex_lock(&t->lock);
    if (t->free_top == 0) {
        pthread_mutex_unlock(&t->lock);
        return NULL;
    }
    uint32_t idx = t->free_stack[--t->free_top];
    pthread_mutex_unlock(&t->lock);
    struct rp_session *s = &t->slots[idx];
    uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
    *sid = rp_sid_make(idx, state_gen(st));
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
    t->free_stack[t->free_top++] = (uint32_t)(s - t->slots);
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
