/*
 * rp_pool: fixed-size object pool with per-thread caches.
 *
 * Objects are carved from slabs allocated up front or as the pool grows up to
 * 'max_objects'; after start-up the hot path (alloc/free on a thread whose
 * cache is not empty/full) takes no lock and makes no system call. Each thread
 * keeps a small cache per pool; a cache that overflows returns a batch to the
 * shared free list under the pool's lock, an empty one takes a batch.
 *
 * Ownership: the pool owns every slab; objects are lent to callers between
 * rp_pool_alloc and rp_pool_free. Thread: alloc and free from any thread;
 * create/destroy from one thread when no other thread uses the pool.
 */
#ifndef RP_CORE_POOL_H
#define RP_CORE_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rp_pool;

struct rp_pool_config {
    const char *name;    /* for logs and metrics; copied */
    size_t object_size;  /* bytes per object, > 0 */
    size_t initial;      /* objects allocated at create */
    size_t max_objects;  /* hard cap; 0 = no cap (grow while memory lasts) */
    unsigned cache_size; /* per-thread cache capacity; 0 = default (64);
                            at most 4096. Under a cap it is lowered to
                            max_objects / 8 (a cache strands its objects
                            from other threads), and a pool whose share is
                            below 2, or beyond the 32nd live pool, runs
                            uncached: one lock per call. */
};

struct rp_pool_stats {
    size_t capacity; /* objects allocated from the system so far */
    size_t in_use;   /* lent out now (approximate while threads run) */
    uint64_t allocs; /* successful rp_pool_alloc calls */
    uint64_t fails;  /* rp_pool_alloc calls that found the pool at its cap */
};

/* Returns 0, -EINVAL (bad config), or -ENOMEM. */
int rp_pool_create(const struct rp_pool_config *cfg, struct rp_pool **out);
/* Every object must have been freed. Thread caches of other live threads
   are emptied lazily and safely (they never touch a destroyed pool). */
void rp_pool_destroy(struct rp_pool *pool);

/* ---- the inline fast path ---------------------------------------------
 * Internals, here only so that a hit in the calling thread's cache costs
 * no call: a pool begins with its key, and each thread has one cache per
 * registry slot (pool.c says how a slot's cache is bound to a pool and
 * dropped when the pool goes). Everything else is in pool.c.
 */
#define RP_POOL_SLOTS 32

struct rp__pool_key {
    uint64_t id;        /* unique for the process's life, never 0 */
    uint32_t slot;      /* index into thread tables; >= RP_POOL_SLOTS: none */
    unsigned cache_cap; /* per-thread cache capacity (>= 2) */
};

/* One thread's cache for the pool in one slot. Owned by that thread. */
struct rp__pool_cache {
    uint64_t pool_id; /* 0: unbound */
    struct rp_pool *pool;
    unsigned count, cap;
    void **items; /* malloc'ed, 'cap' long; items[count - 1] is the hottest */
    uint64_t allocs, frees; /* not yet added to the pool's totals */
};

/* The calling thread's caches, one per slot; NULL until its first bind.
   A pointer in initial-exec TLS: read without a call (a general-dynamic
   access calls __tls_get_addr), and small enough for glibc's static TLS
   surplus should the shared library ever be dlopen'ed. */
extern _Thread_local struct rp__pool_cache *rp__pool_tl
    __attribute__((tls_model("initial-exec")));
void *rp__pool_alloc_slow(struct rp_pool *pool);
void rp__pool_free_slow(struct rp_pool *pool, void *obj);

/* The calling thread's cache hit, or NULL on a miss (nothing else tried). */
static inline void *rp_pool_alloc_cached(struct rp_pool *pool)
{
    const struct rp__pool_key *k = (const struct rp__pool_key *)pool;
    struct rp__pool_cache *t = rp__pool_tl;
    if (__builtin_expect(t != NULL && k->slot < RP_POOL_SLOTS, 1)) {
        struct rp__pool_cache *c = &t[k->slot];
        if (__builtin_expect(c->pool_id == k->id && c->count > 0, 1)) {
            c->allocs++;
            return c->items[--c->count];
        }
    }
    return NULL;
}

/* Puts 'obj' into the calling thread's cache if it has room: false on a
   miss (nothing else tried). */
static inline bool rp_pool_free_cached(struct rp_pool *pool, void *obj)
{
    const struct rp__pool_key *k = (const struct rp__pool_key *)pool;
    struct rp__pool_cache *t = rp__pool_tl;
    if (__builtin_expect(t != NULL && k->slot < RP_POOL_SLOTS, 1)) {
        struct rp__pool_cache *c = &t[k->slot];
        if (__builtin_expect(c->pool_id == k->id && c->count < k->cache_cap,
                             1)) {
            c->items[c->count++] = obj;
            c->frees++;
            return true;
        }
    }
    return false;
}

/* Returns an object (contents undefined, aligned to 16), or NULL when the
   pool is at max_objects or memory is exhausted (counted in 'fails'). Under
   a cap, objects free in other threads' caches do not count as free here.
   Thread: any. */
static inline void *rp_pool_alloc(struct rp_pool *pool)
{
    void *obj = rp_pool_alloc_cached(pool);
    return __builtin_expect(obj != NULL, 1) ? obj : rp__pool_alloc_slow(pool);
}

/* Returns 'obj' (from this pool) to the calling thread's cache; NULL is a
   no-op. Thread: any; it need not be the allocating thread. */
static inline void rp_pool_free(struct rp_pool *pool, void *obj)
{
    if (__builtin_expect(obj == NULL, 0))
        return;
    if (!rp_pool_free_cached(pool, obj))
        rp__pool_free_slow(pool, obj);
}

void rp_pool_get_stats(struct rp_pool *pool, struct rp_pool_stats *out);

#endif
