/*
 * Fixed-size object pool with per-thread caches.
 *
 * Memory: objects are carved from slabs (one posix_memalign each, header
 * first, objects 16-byte aligned after it). The pool never writes into a
 * free object: free objects are tracked as pointers, in the shared 'free'
 * array (under the pool's lock) and in each thread's cache array. So a
 * caller's stamp in a freed object survives until it is handed out again.
 *
 * Thread caches: each pool takes one of RP_POOL_SLOTS slots at create
 * (a process-wide registry); every thread has a small table indexed by
 * slot (calloc'ed at its first use, reached through one initial-exec TLS
 * pointer, so the inline fast path in pool.h makes no call). A cache entry
 * remembers the id of the pool it belongs to; ids are never reused, so an entry
 * whose id differs from the pool now in its slot belongs to a destroyed pool
 * and is simply dropped (its pointers were into slabs the destroy already
 * freed; nothing follows them). A thread's table is freed by a pthread key
 * destructor when the thread exits; before that it gives cached objects back to
 * every pool still alive, checking liveness under the registry lock, which
 * rp_pool_destroy also takes. Lock order: registry, then pool.
 *
 * Batching: a cache holds up to 'cache_cap' pointers. An empty cache takes
 * half of that from the shared array in one locked memcpy; a full one gives
 * back its older half. Pools beyond RP_POOL_SLOTS live ones, or whose cap
 * leaves no room for caches, work uncached (one lock per call).
 *
 * Counters: 'allocs'/'frees' are counted in the thread's cache and added
 * to the pool's totals whenever the thread takes the pool's lock anyway
 * (batch moves, stats, thread exit), so in_use = allocs - frees is exact
 * once threads are quiet and approximate while they run.
 */
#include "core/pool.h"

#include "core/assert.h"
#include <ringport/log.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL_ALIGN 16
#define POOL_SLAB_ALIGN 64
#define POOL_SLAB_HEADER 64 /* keeps objects 64-byte aligned in the slab */
#define POOL_NAME_MAX 32
#define POOL_CACHE_DEFAULT 64
#define POOL_CACHE_MAX 4096
#define POOL_GROW_MIN 64
#define POOL_NO_SLOT UINT32_MAX

struct pool_slab {
    struct pool_slab *next;
};

struct rp_pool {
    struct rp__pool_key key; /* id, slot, cache_cap: see pool.h */
    size_t object_size;      /* rounded up to POOL_ALIGN */
    size_t max_objects;      /* 0: no cap */

    pthread_mutex_t lock; /* guards everything below */
    void **free;          /* free objects not in any cache */
    size_t nfree;
    size_t free_cap; /* length of 'free'; always >= capacity */
    size_t capacity; /* objects carved so far */
    struct pool_slab *slabs;
    uint64_t allocs, frees, fails;
    char name[POOL_NAME_MAX];
};

/* Which pool owns each slot. 'ids' lets a thread check liveness by id
   without touching a pool that may be gone. */
static struct {
    pthread_mutex_t lock;
    struct rp_pool *pools[RP_POOL_SLOTS];
    uint64_t ids[RP_POOL_SLOTS];
    uint64_t next_id;
} registry = {.lock = PTHREAD_MUTEX_INITIALIZER, .next_id = 1};

/* The calling thread's table of RP_POOL_SLOTS caches, calloc'ed at its
   first bind (then the exit destructor is armed with it), NULL before. */
_Thread_local struct rp__pool_cache *rp__pool_tl
    __attribute__((tls_model("initial-exec")));
static pthread_key_t tl_key;
static pthread_once_t tl_key_once = PTHREAD_ONCE_INIT;

/* ---- thread exit ---------------------------------------------------- */

static void pool_flush_counters(struct rp_pool *pool, struct rp__pool_cache *c)
{
    pool->allocs += c->allocs;
    pool->frees += c->frees;
    c->allocs = 0;
    c->frees = 0;
}

/*
 * Key destructor: gives every cached object back to its pool if that pool is
 * still alive, then frees the cache arrays. Runs on the exiting thread.
 */
static void pool_thread_exit(void *arg)
{
    struct rp__pool_cache *table = arg;
    rp__pool_tl = NULL;
    pthread_mutex_lock(&registry.lock);
    for (uint32_t i = 0; i < RP_POOL_SLOTS; i++) {
        struct rp__pool_cache *c = &table[i];
        if (c->pool_id != 0 && registry.ids[i] == c->pool_id) {
            struct rp_pool *pool = c->pool;
            pthread_mutex_lock(&pool->lock);
            memcpy(pool->free + pool->nfree, c->items,
                   c->count * sizeof *c->items);
            pool->nfree += c->count;
            pool_flush_counters(pool, c);
            pthread_mutex_unlock(&pool->lock);
        }
        free(c->items);
    }
    pthread_mutex_unlock(&registry.lock);
    free(table);
}

static void pool_key_create(void)
{
    if (pthread_key_create(&tl_key, pool_thread_exit) != 0)
        RP_PANIC("pool: pthread_key_create failed");
}

/* ---- slabs ---------------------------------------------------------- */

/*
 * Carves up to 'want' new objects (at least one) into the shared array,
 * within the cap. Returns the number added: 0 at the cap or out of
 * memory. Called with the pool's lock held.
 */
static size_t pool_grow(struct rp_pool *pool, size_t want)
{
    if (pool->max_objects != 0) {
        size_t room = pool->max_objects - pool->capacity;
        if (want > room)
            want = room;
    }
    if (want == 0)
        return 0;
    if (want > (SIZE_MAX - POOL_SLAB_HEADER) / pool->object_size)
        return 0;
    if (pool->capacity + want > pool->free_cap) {
        size_t cap = pool->capacity + want;
        if (cap > SIZE_MAX / sizeof(void *))
            return 0;
        void **arr = realloc(pool->free, cap * sizeof *arr);
        if (arr == NULL)
            return 0;
        pool->free = arr;
        pool->free_cap = cap;
    }
    void *mem;
    if (posix_memalign(&mem, POOL_SLAB_ALIGN,
                       POOL_SLAB_HEADER + want * pool->object_size) != 0)
        return 0;
    struct pool_slab *slab = mem;
    slab->next = pool->slabs;
    pool->slabs = slab;
    /* Pushed in reverse so the first handed out is the first in memory. */
    unsigned char *obj = (unsigned char *)mem + POOL_SLAB_HEADER;
    for (size_t i = want; i-- > 0;)
        pool->free[pool->nfree++] = obj + i * pool->object_size;
    pool->capacity += want;
    return want;
}

/* Next growth step: double, but never less than a cache refill. */
static size_t pool_grow_step(const struct rp_pool *pool)
{
    size_t step = pool->capacity;
    if (step < POOL_GROW_MIN)
        step = POOL_GROW_MIN;
    if (step < pool->key.cache_cap)
        step = pool->key.cache_cap;
    return step;
}

/* ---- create / destroy ----------------------------------------------- */

static void pool_free_memory(struct rp_pool *pool)
{
    for (struct pool_slab *s = pool->slabs, *n; s != NULL; s = n) {
        n = s->next;
        free(s);
    }
    free(pool->free);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

/* Gives 'pool' a slot in the thread tables, if one is free. */
static void pool_register(struct rp_pool *pool)
{
    pthread_once(&tl_key_once, pool_key_create);
    pthread_mutex_lock(&registry.lock);
    pool->key.id = registry.next_id++;
    for (uint32_t i = 0; i < RP_POOL_SLOTS; i++) {
        if (registry.pools[i] == NULL) {
            registry.pools[i] = pool;
            registry.ids[i] = pool->key.id;
            pool->key.slot = i;
            break;
        }
    }
    pthread_mutex_unlock(&registry.lock);
    if (pool->key.slot == POOL_NO_SLOT)
        RP_WARN("pool", "%s: more than %d pools alive, this one is uncached",
                pool->name, RP_POOL_SLOTS);
}

int rp_pool_create(const struct rp_pool_config *cfg, struct rp_pool **out)
{
    if (cfg == NULL || out == NULL || cfg->object_size == 0 ||
        cfg->object_size > SIZE_MAX / 4 || cfg->cache_size > POOL_CACHE_MAX ||
        (cfg->max_objects != 0 && cfg->initial > cfg->max_objects))
        return -EINVAL;

    struct rp_pool *pool = calloc(1, sizeof *pool);
    if (pool == NULL)
        return -ENOMEM;
    pool->object_size =
        (cfg->object_size + POOL_ALIGN - 1) & ~(size_t)(POOL_ALIGN - 1);
    pool->max_objects = cfg->max_objects;
    pool->key.slot = POOL_NO_SLOT;
    snprintf(pool->name, sizeof pool->name, "%s",
             cfg->name ? cfg->name : "pool");
    /*
     * A cache can strand up to cache_cap free objects on one thread, out of
     * other threads' reach. Under a cap keep that to an eighth of the pool;
     * a share too small to batch means no caches at all.
     */
    size_t cache_cap = cfg->cache_size ? cfg->cache_size : POOL_CACHE_DEFAULT;
    if (pool->max_objects != 0 && cache_cap > pool->max_objects / 8)
        cache_cap = pool->max_objects / 8;
    pool->key.cache_cap = (unsigned)cache_cap;
    if (pthread_mutex_init(&pool->lock, NULL) != 0)
        goto fail_mutex;
    if (cfg->initial != 0 && pool_grow(pool, cfg->initial) != cfg->initial)
        goto fail_initial;
    if (pool->key.cache_cap >= 2)
        pool_register(pool);
    *out = pool;
    return 0;

fail_initial:
    pool_free_memory(pool);
    return -ENOMEM;
fail_mutex:
    free(pool);
    return -ENOMEM;
}

void rp_pool_destroy(struct rp_pool *pool)
{
    if (pool == NULL)
        return;
    if (pool->key.slot != POOL_NO_SLOT) {
        /* After this no exiting thread touches the pool; one already
           giving objects back holds the lock until it is done. */
        pthread_mutex_lock(&registry.lock);
        registry.pools[pool->key.slot] = NULL;
        registry.ids[pool->key.slot] = 0;
        pthread_mutex_unlock(&registry.lock);
        /* Our own cache we can tidy now; other threads drop theirs when
           they next use the slot or exit. */
        struct rp__pool_cache *c =
            rp__pool_tl ? &rp__pool_tl[pool->key.slot] : NULL;
        if (c != NULL && c->pool_id == pool->key.id) {
            free(c->items);
            memset(c, 0, sizeof *c);
        }
    }
    pool_free_memory(pool);
}

/* ---- alloc / free --------------------------------------------------- */

/*
 * Returns the calling thread's cache for 'pool', binding the slot's entry
 * to it first if needed, or NULL when the pool is uncached or the cache
 * array cannot be allocated.
 */
static struct rp__pool_cache *pool_cache_bind(struct rp_pool *pool)
{
    if (rp__pool_tl == NULL) {
        struct rp__pool_cache *table = calloc(RP_POOL_SLOTS, sizeof *table);
        if (table == NULL)
            return NULL;
        if (pthread_setspecific(tl_key, table) != 0) {
            free(table);
            return NULL;
        }
        rp__pool_tl = table;
    }
    /*
     * The entry, if bound, belongs to a pool that owned this slot before
     * and has been destroyed (a slot has one live owner). Its pointers
     * lead into freed slabs: drop them unread.
     */
    struct rp__pool_cache *c = &rp__pool_tl[pool->key.slot];
    if (c->cap < pool->key.cache_cap) {
        void **items = malloc(pool->key.cache_cap * sizeof *items);
        if (items == NULL)
            return NULL;
        free(c->items);
        c->items = items;
        c->cap = pool->key.cache_cap;
    }
    c->pool_id = pool->key.id;
    c->pool = pool;
    c->count = 0;
    c->allocs = 0;
    c->frees = 0;
    return c;
}

static struct rp__pool_cache *pool_cache(struct rp_pool *pool)
{
    if (pool->key.slot == POOL_NO_SLOT)
        return NULL;
    struct rp__pool_cache *c =
        rp__pool_tl ? &rp__pool_tl[pool->key.slot] : NULL;
    if (c != NULL && c->pool_id == pool->key.id)
        return c;
    return pool_cache_bind(pool);
}

/* Takes one object from the shared array, growing the pool if needed.
   Called with the lock held. */
static void *pool_take_locked(struct rp_pool *pool)
{
    if (pool->nfree == 0 && pool_grow(pool, pool_grow_step(pool)) == 0) {
        pool->fails++;
        return NULL;
    }
    return pool->free[--pool->nfree];
}

static void *pool_alloc_slow(struct rp_pool *pool, struct rp__pool_cache *c)
{
    void *obj;

    pthread_mutex_lock(&pool->lock);
    if (c == NULL) {
        obj = pool_take_locked(pool);
        if (obj != NULL)
            pool->allocs++;
        pthread_mutex_unlock(&pool->lock);
        return obj;
    }
    pool_flush_counters(pool, c);
    obj = pool_take_locked(pool);
    if (obj != NULL) {
        /* Refill half the cache, leaving the other half for frees. */
        size_t n = pool->key.cache_cap / 2;
        if (n > pool->nfree)
            n = pool->nfree;
        pool->nfree -= n;
        memcpy(c->items, pool->free + pool->nfree, n * sizeof *c->items);
        c->count = (unsigned)n;
        c->allocs++;
    }
    pthread_mutex_unlock(&pool->lock);
    return obj;
}

/* The inline fast path (pool.h) found no bound cache with an object. */
void *rp__pool_alloc_slow(struct rp_pool *pool)
{
    struct rp__pool_cache *c = pool_cache(pool);
    if (c != NULL && c->count > 0) {
        c->allocs++;
        return c->items[--c->count];
    }
    return pool_alloc_slow(pool, c);
}

static void pool_free_slow(struct rp_pool *pool, struct rp__pool_cache *c,
                           void *obj)
{
    pthread_mutex_lock(&pool->lock);
    if (c == NULL) {
        pool->free[pool->nfree++] = obj;
        pool->frees++;
        pthread_mutex_unlock(&pool->lock);
        return;
    }
    /* Full: give back the older (colder) half, keep the hot half. */
    unsigned half = c->count / 2;
    memcpy(pool->free + pool->nfree, c->items, half * sizeof *c->items);
    pool->nfree += half;
    pool_flush_counters(pool, c);
    pthread_mutex_unlock(&pool->lock);
    c->count -= half;
    memmove(c->items, c->items + half, c->count * sizeof *c->items);
    c->items[c->count++] = obj;
    c->frees++;
}

/* The inline fast path (pool.h) found no bound cache with room. */
void rp__pool_free_slow(struct rp_pool *pool, void *obj)
{
    if (obj == NULL)
        return;
    assert(((uintptr_t)obj & (POOL_ALIGN - 1)) == 0);
    struct rp__pool_cache *c = pool_cache(pool);
    if (c != NULL && c->count < pool->key.cache_cap) {
        c->items[c->count++] = obj;
        c->frees++;
        return;
    }
    pool_free_slow(pool, c, obj);
}

void rp_pool_get_stats(struct rp_pool *pool, struct rp_pool_stats *out)
{
    struct rp__pool_cache *c = NULL;
    if (pool->key.slot != POOL_NO_SLOT && rp__pool_tl != NULL &&
        rp__pool_tl[pool->key.slot].pool_id == pool->key.id)
        c = &rp__pool_tl[pool->key.slot];

    pthread_mutex_lock(&pool->lock);
    if (c != NULL)
        pool_flush_counters(pool, c);
    out->capacity = pool->capacity;
    out->allocs = pool->allocs;
    out->fails = pool->fails;
    /* Other threads' unflushed counts can make frees run ahead. */
    out->in_use =
        pool->allocs > pool->frees ? (size_t)(pool->allocs - pool->frees) : 0;
    pthread_mutex_unlock(&pool->lock);
}
