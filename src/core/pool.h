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
/* Returns an object (contents undefined, aligned to 16), or NULL when the
   pool is at max_objects or memory is exhausted (counted in 'fails'). Under
   a cap, objects free in other threads' caches do not count as free here.
   Thread: any. */
void *rp_pool_alloc(struct rp_pool *pool);
/* Returns 'obj' (from this pool) to the calling thread's cache. Thread: any;
   it need not be the allocating thread. */
void rp_pool_free(struct rp_pool *pool, void *obj);
void rp_pool_get_stats(struct rp_pool *pool, struct rp_pool_stats *out);

#endif
