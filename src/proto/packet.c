/*
 * rp_packet and rp_reader (include/ringport/packet.h): the serialization
 * buffer with its in-place wire header, the bounds-checked typed put/get,
 * and the size-classed pools packets are carved from.
 *
 * Byte order is explicit (shifts to store, le*toh to load) and every
 * multi-byte load goes through memcpy, never a casted pointer, so the code
 * is right on any host and never makes an unaligned access; floats go
 * through memcpy to their integer bits.
 */
#include <ringport/log.h>
#include <ringport/packet.h>

#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/assert.h"
#include "core/cpu.h"
#include "core/pool.h"
#include "proto/packet_internal.h"
#include "proto/ws_frame.h"

#include <stddef.h>

#define HDR RP_PACKET_HEADER_SIZE
#define CLASS_HEAP 0xff

/*
 * wire[] holds the header then 'cap' payload bytes. The header always
 * matches len and type (every put rewrites the length), so the wire view is
 * ready without a write: shared packets stay read-only.
 *
 * ws_room[] ends where wire[] begins: the last 'ws_hdr' bytes of it are
 * the header of the packet as one binary WebSocket message (its length is
 * HDR + len), so a broadcast to N WebSocket sessions sends one buffer N
 * times. The header depends only on the length, which is fixed once the
 * packet is shared, so it is written once, by the first WebSocket send,
 * under 'ws_once' (0 not written, 1 being written, 2 written): the one
 * thread that moves it 0 -> 1 writes the header and releases 2; any other
 * sender, on any I/O thread, acquires 2 (spinning the few nanoseconds a
 * write takes if it came in between) and only reads. A packet never sent
 * over WebSocket pays nothing, and no put does more than before.
 */
struct rp_packet {
    atomic_uint refs;        /* holders; the one that drops it to 0 frees */
    uint32_t len;            /* payload bytes written, <= cap */
    uint32_t cap;            /* payload capacity, <= RP_PACKET_MAX_PAYLOAD */
    uint8_t cls;             /* pool size class, or CLASS_HEAP (malloc) */
    bool failed;             /* a put failed; later puts fail too */
    _Atomic uint8_t ws_once; /* see above */
    uint8_t ws_hdr; /* bytes of WebSocket header at the end of ws_room */
    uint8_t ws_room[RP_WS_MAX_HEADER];
    uint8_t wire[]; /* HDR + cap bytes */
};
_Static_assert(offsetof(struct rp_packet, wire) ==
                   offsetof(struct rp_packet, ws_room) + RP_WS_MAX_HEADER,
               "the WebSocket header room must end where wire[] begins");

/*
 * Size classes by payload capacity. The caps bound what each pool keeps
 * (~18, 33, 16, 16 MiB); past a cap packets come from malloc. Big classes
 * keep small per-thread caches so idle threads do not hoard megabytes.
 */
static const struct {
    const char *name;
    size_t max_payload;
    size_t max_objects;
    unsigned cache_size;
} classes[RP_PACKET_POOL_CLASSES] = {
    {"packet-256", 256, 65536, 64},
    {"packet-2k", 2048, 16384, 32},
    {"packet-16k", 16384, 1024, 8},
    {"packet-64k", RP_PACKET_MAX_PAYLOAD, 256, 4},
};

/*
 * pools[] is written only under pools_lock, before pools_ready is released,
 * and torn down only by rp_packet_pools_shutdown when no packet is alive.
 * Two counts make "no packet is alive" mean "no thread is inside a pool":
 *   - a packet is counted created before its pool is touched, and counted
 *     freed only after rp_pool_free has returned (a release store, which
 *     shutdown's acquire loads pair with);
 *   - shutdown clears pools_ready, runs membarrier(2), then reads the
 *     counts; a creator counts, then reads pools_ready, with only a
 *     compiler barrier between. The membarrier puts a full fence into
 *     every running thread of the process, so either the creator's load
 *     comes after it and sees the pools gone (and waits on pools_lock for
 *     new ones), or its count was visible before shutdown read the counts
 *     (and the pools stay): never both missed. This is the asymmetric form
 *     of the seq_cst store/load pair it replaces: the creator's side costs
 *     no fence and no locked instruction, the rare shutdown one system
 *     call.
 * The exit hook never destroys them: exit() does not stop other threads,
 * which may still be freeing packets into the pools.
 */
static pthread_mutex_t pools_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool pools_ready;
static struct rp_pool *pools[RP_PACKET_POOL_CLASSES];
static pthread_once_t exit_hook_once = PTHREAD_ONCE_INIT;
static bool membarrier_ok; /* registered for PRIVATE_EXPEDITED (pools_lock) */

/*
 * Exact counts, kept per thread and summed when read. Each thread writes
 * only its own block (a plain load and store, no locked instruction) and
 * readers add every block up under counts_lock; a block outlives its
 * thread (an exiting thread hands it to the next new one, its counts kept),
 * so no count is ever lost or folded. in_use = allocs - frees, read frees
 * first: a packet freed between the two sums then shows as still alive,
 * never as a negative count (its free is ordered after its creation, so
 * the later allocs sum includes it). A pool class's alloc is counted
 * before the pool is asked (and taken back if the pool is full), its free
 * after the pool took the packet back: see pools[] above.
 */
#define SLOTS (RP_PACKET_POOL_CLASSES + 1)
#define HEAP_SLOT RP_PACKET_POOL_CLASSES /* malloc'd packets' counters */

struct packet_counts {
    _Alignas(64) _Atomic uint64_t allocs[SLOTS]; /* writer: the owner */
    _Atomic uint64_t frees[SLOTS];
    struct packet_counts *next;  /* every block ever made (counts_lock) */
    struct packet_counts *spare; /* blocks whose thread exited */
};

static pthread_mutex_t counts_lock = PTHREAD_MUTEX_INITIALIZER;
static struct packet_counts *all_counts;   /* never freed */
static struct packet_counts *spare_counts; /* free for a new thread */
/* For a thread that could get no block of its own (no memory, or no
   pthread key): every writer updates it with atomic read-modify-writes. */
static struct packet_counts shared_counts;
static pthread_key_t counts_key;
static pthread_once_t counts_key_once = PTHREAD_ONCE_INIT;
static bool counts_key_ok;
static _Thread_local struct packet_counts *tl_counts
    __attribute__((tls_model("initial-exec")));

/* Thread exit: the block goes to the spare list, counts and all. */
static void counts_thread_exit(void *arg)
{
    struct packet_counts *c = arg;
    tl_counts = NULL;
    pthread_mutex_lock(&counts_lock);
    c->spare = spare_counts;
    spare_counts = c;
    pthread_mutex_unlock(&counts_lock);
}

/* fork() copies counts_lock as it is: held by another thread, it would
   stay held forever in the child. Taken around the fork, it is free in
   both. */
static void counts_prefork(void)
{
    pthread_mutex_lock(&counts_lock);
}

static void counts_postfork(void)
{
    pthread_mutex_unlock(&counts_lock);
}

static void counts_key_create(void)
{
    counts_key_ok = pthread_key_create(&counts_key, counts_thread_exit) == 0;
    pthread_atfork(counts_prefork, counts_postfork, counts_postfork);
}

/* The calling thread's block, made (or reused) on its first packet; NULL
   means "use shared_counts". */
static __attribute__((noinline, cold)) struct packet_counts *counts_attach(void)
{
    pthread_once(&counts_key_once, counts_key_create);
    if (!counts_key_ok)
        return NULL;
    pthread_mutex_lock(&counts_lock);
    struct packet_counts *c = spare_counts;
    if (c) {
        spare_counts = c->spare;
    } else if ((c = aligned_alloc(64, sizeof *c)) != NULL) {
        memset(c, 0, sizeof *c);
        c->next = all_counts;
        all_counts = c;
    }
    pthread_mutex_unlock(&counts_lock);
    if (c && pthread_setspecific(counts_key, c) != 0) {
        counts_thread_exit(c); /* back to the spares: never ours */
        c = NULL;
    }
    tl_counts = c;
    return c;
}

static inline struct packet_counts *my_counts(void)
{
    struct packet_counts *c = tl_counts;
    return RP_LIKELY(c != NULL) ? c : counts_attach();
}

/* Adds 'd' (may wrap: -1) to a count of the calling thread's block. */
static inline void count_add(struct packet_counts *c, _Atomic uint64_t *n,
                             uint64_t d, memory_order order)
{
    if (RP_UNLIKELY(c == NULL)) {
        atomic_fetch_add_explicit(n, d, memory_order_seq_cst);
        return;
    }
    /* Single writer: no read-modify-write needed. */
    atomic_store_explicit(n, atomic_load_explicit(n, memory_order_relaxed) + d,
                          order);
}

/* The sums over every block, frees first (see above). Thread: any. */
static void counts_sum(uint64_t allocs[SLOTS], uint64_t frees[SLOTS])
{
    pthread_mutex_lock(&counts_lock);
    for (int i = 0; i < SLOTS; i++)
        frees[i] =
            atomic_load_explicit(&shared_counts.frees[i], memory_order_acquire);
    for (struct packet_counts *c = all_counts; c; c = c->next)
        for (int i = 0; i < SLOTS; i++)
            frees[i] +=
                atomic_load_explicit(&c->frees[i], memory_order_acquire);
    for (int i = 0; i < SLOTS; i++)
        allocs[i] = atomic_load_explicit(&shared_counts.allocs[i],
                                         memory_order_acquire);
    for (struct packet_counts *c = all_counts; c; c = c->next)
        for (int i = 0; i < SLOTS; i++)
            allocs[i] +=
                atomic_load_explicit(&c->allocs[i], memory_order_acquire);
    pthread_mutex_unlock(&counts_lock);
}

static size_t in_use(uint64_t allocs, uint64_t frees)
{
    return allocs > frees ? (size_t)(allocs - frees) : 0;
}

static void store_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void store_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void store_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* memcpy into a local then le*toh: one plain load on x86 (GCC does not
   merge byte-by-byte loads), and no unaligned access through a cast. */
static uint16_t load_le16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return le16toh(v);
}

static uint32_t load_le32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return le32toh(v);
}

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return le64toh(v);
}

/* ---- pools --------------------------------------------------------------- */

static size_t class_object_size(int cls)
{
    return sizeof(struct rp_packet) + HDR + classes[cls].max_payload;
}

static int class_for(size_t capacity)
{
    for (int i = 0; i < RP_PACKET_POOL_CLASSES; i++)
        if (capacity <= classes[i].max_payload)
            return i;
    return CLASS_HEAP;
}

static size_t packets_alive(void)
{
    uint64_t allocs[SLOTS], frees[SLOTS];
    counts_sum(allocs, frees);
    size_t live = 0;
    for (int i = 0; i < SLOTS; i++)
        live += in_use(allocs[i], frees[i]);
    return live;
}

static void pools_exit_hook(void)
{
    /* Only a report. Other threads may still run (exit() does not stop
       them) and free packets into the pools, so they are left to the end
       of the process; LeakSanitizer does not count them (reachable from
       pools[]), which is why a leak of pooled packets is named here. */
    size_t live = packets_alive();
    if (live > 0)
        RP_WARN("packet", "%zu packets still alive at exit", live);
}

static void register_exit_hook(void)
{
    atexit(pools_exit_hook);
}

static __attribute__((noinline, cold)) void pools_init(void)
{
    pthread_once(&exit_hook_once, register_exit_hook);
    pthread_mutex_lock(&pools_lock);
    if (!atomic_load_explicit(&pools_ready, memory_order_relaxed)) {
        /* Once per process (Linux 4.14+); without it shutdown refuses
           (-ENOSYS) rather than race a creator. */
        if (!membarrier_ok)
            membarrier_ok =
                syscall(SYS_membarrier,
                        MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
        for (int i = 0; i < RP_PACKET_POOL_CLASSES; i++) {
            struct rp_pool_config cfg = {
                .name = classes[i].name,
                .object_size = class_object_size(i),
                .initial = 0,
                .max_objects = classes[i].max_objects,
                .cache_size = classes[i].cache_size,
            };
            int rc = rp_pool_create(&cfg, &pools[i]);
            if (rc < 0) {
                /* Not fatal: this class falls back to malloc. */
                pools[i] = NULL;
                RP_WARN("packet", "pool %s: create failed (%d), using malloc",
                        classes[i].name, rc);
            }
        }
        atomic_store_explicit(&pools_ready, true, memory_order_release);
    }
    pthread_mutex_unlock(&pools_lock);
}

/*
 * Allocation comes in two paths. The fast one (inlined in rp_packet_create)
 * is a hit in the calling thread's pool cache, with the thread's count
 * block attached and the pools up: no call, no locked instruction. Anything
 * else (first packet of a thread, pools shut down or not made yet, an empty
 * cache, a full pool, a size past the pools) takes packet_alloc_slow.
 * Freeing mirrors it.
 */

/* A packet from its class's pool, or NULL (pool full or not created). */
static struct rp_packet *packet_from_pool(struct packet_counts *c, int cls)
{
    count_add(c, c ? &c->allocs[cls] : &shared_counts.allocs[cls], 1,
              memory_order_relaxed);
    /* The count stays before the load below in the compiled code; the CPU
       fence this pair needs is shutdown's membarrier (see pools[]). */
    atomic_signal_fence(memory_order_seq_cst);
    while (!atomic_load_explicit(&pools_ready, memory_order_acquire))
        pools_init(); /* waits out a shutdown, then makes new pools */
    struct rp_packet *p = pools[cls] ? rp_pool_alloc(pools[cls]) : NULL;
    if (p != NULL) {
        p->cls = (uint8_t)cls;
        return p;
    }
    /* Not from this pool after all: give the count back (a reader may
       briefly see one packet too many, never one too few). */
    count_add(c, c ? &c->allocs[cls] : &shared_counts.allocs[cls], (uint64_t)-1,
              memory_order_release);
    return NULL;
}

static __attribute__((noinline)) struct rp_packet *
packet_alloc_slow(size_t capacity)
{
    struct packet_counts *c = my_counts();
    int cls = class_for(capacity);
    struct rp_packet *p = cls != CLASS_HEAP ? packet_from_pool(c, cls) : NULL;
    if (p != NULL)
        return p;
    /* Past the pools (too big, at its cap, or none): plain malloc. */
    p = malloc(sizeof *p + HDR + capacity);
    if (!p)
        return NULL;
    p->cls = CLASS_HEAP;
    count_add(c, c ? &c->allocs[HEAP_SLOT] : &shared_counts.allocs[HEAP_SLOT],
              1, memory_order_relaxed);
    return p;
}

/* The fast path: packet_from_pool's steps, and NULL at any miss (the
   count it made given back) for packet_alloc_slow to start over. */
static inline struct rp_packet *packet_alloc_fast(size_t capacity)
{
    struct packet_counts *c = tl_counts;
    int cls = class_for(capacity);
    if (RP_UNLIKELY(c == NULL || cls == CLASS_HEAP))
        return NULL;
    count_add(c, &c->allocs[cls], 1, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst); /* see packet_from_pool */
    struct rp_pool *pool;
    struct rp_packet *p;
    if (RP_LIKELY(atomic_load_explicit(&pools_ready, memory_order_acquire) &&
                  (pool = pools[cls]) != NULL &&
                  (p = rp_pool_alloc_cached(pool)) != NULL)) {
        p->cls = (uint8_t)cls;
        return p;
    }
    count_add(c, &c->allocs[cls], (uint64_t)-1, memory_order_release);
    return NULL;
}

static __attribute__((noinline)) void packet_free_slow(struct rp_packet *p)
{
    struct packet_counts *c = my_counts();
    int slot = p->cls == CLASS_HEAP ? HEAP_SLOT : p->cls;
    if (p->cls == CLASS_HEAP)
        free(p);
    else
        rp_pool_free(pools[p->cls], p);
    /* Counted only now, with release: a shutdown that sees this count
       (acquire) also sees the pool done with the packet. */
    count_add(c, c ? &c->frees[slot] : &shared_counts.frees[slot], 1,
              memory_order_release);
}

/* The fast path: false at any miss, with nothing done. */
static inline bool packet_free_fast(struct rp_packet *p)
{
    struct packet_counts *c = tl_counts;
    unsigned cls = p->cls;
    /* A live pooled packet keeps its pool alive (shutdown waits for it). */
    if (RP_LIKELY(c != NULL && cls < RP_PACKET_POOL_CLASSES &&
                  rp_pool_free_cached(pools[cls], p))) {
        count_add(c, &c->frees[cls], 1, memory_order_release);
        return true;
    }
    return false;
}

void rp_packet_pool_stats(struct rp_packet_pool_stats *out)
{
    memset(out, 0, sizeof *out);
    uint64_t allocs[SLOTS], frees[SLOTS];
    counts_sum(allocs, frees);
    pthread_mutex_lock(&pools_lock);
    for (int i = 0; i < RP_PACKET_POOL_CLASSES; i++) {
        out->classes[i].max_payload = classes[i].max_payload;
        out->classes[i].in_use = in_use(allocs[i], frees[i]);
        if (pools[i]) {
            struct rp_pool_stats ps;
            rp_pool_get_stats(pools[i], &ps);
            out->classes[i].capacity = ps.capacity;
            out->classes[i].allocs = ps.allocs;
            out->classes[i].fails = ps.fails;
        }
    }
    pthread_mutex_unlock(&pools_lock);
    out->heap_allocs = allocs[HEAP_SLOT];
    out->heap_in_use = in_use(allocs[HEAP_SLOT], frees[HEAP_SLOT]);
    for (int i = 0; i < SLOTS; i++) {
        out->freed += frees[i];
        out->created += allocs[i];
    }
}

/* A full memory barrier on every running thread of the process. Returns 0
   or -errno. A forked child may not inherit the registration: -EPERM
   registers again and retries once. */
static int fence_all_threads(void)
{
    for (int tries = 0; tries < 2; tries++) {
        if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) ==
            0)
            return 0;
        if (errno != EPERM ||
            syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
                    0, 0) < 0)
            break;
    }
    return -errno;
}

int rp_packet_pools_shutdown(void)
{
    int rc = 0;
    pthread_mutex_lock(&pools_lock);
    if (!atomic_load(&pools_ready))
        goto out; /* none to free */
    if (!membarrier_ok) {
        rc = -ENOSYS;
        goto out;
    }
    /* Closed first, fenced everywhere, counted last: a creator that
       counted itself before the fence reached its thread is seen below;
       one after it finds pools_ready false and waits on pools_lock (see
       pools[]). */
    atomic_store(&pools_ready, false);
    if ((rc = fence_all_threads()) < 0) {
        atomic_store(&pools_ready, true);
        goto out;
    }
    uint64_t allocs[SLOTS], frees[SLOTS];
    counts_sum(allocs, frees);
    size_t live = 0;
    for (int i = 0; i < RP_PACKET_POOL_CLASSES; i++)
        live += in_use(allocs[i], frees[i]);
    if (live > 0) {
        atomic_store(&pools_ready, true);
        rc = -EBUSY;
        goto out;
    }
    for (int i = 0; i < RP_PACKET_POOL_CLASSES; i++) {
        if (pools[i])
            rp_pool_destroy(pools[i]);
        pools[i] = NULL;
    }
out:
    pthread_mutex_unlock(&pools_lock);
    return rc;
}

/* ---- packet -------------------------------------------------------------- */

/* Writes the WebSocket header for the packet's length (the minimal
   encoding, as RFC 6455 5.2 asks). Only under ws_once's 1. */
static void ws_header_write(struct rp_packet *p)
{
    uint32_t n = HDR + p->len;
    uint8_t *end = p->ws_room + RP_WS_MAX_HEADER;
    if (n <= 125) {
        end[-2] = 0x80 | RP_WS_OP_BINARY;
        end[-1] = (uint8_t)n;
        p->ws_hdr = 2;
    } else if (n <= 0xFFFF) {
        end[-4] = 0x80 | RP_WS_OP_BINARY;
        end[-3] = 126;
        end[-2] = (uint8_t)(n >> 8);
        end[-1] = (uint8_t)n;
        p->ws_hdr = 4;
    } else {
        end[-10] = 0x80 | RP_WS_OP_BINARY;
        end[-9] = 127;
        for (int i = 0; i < 8; i++)
            end[-8 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
        p->ws_hdr = 10;
    }
}

const uint8_t *rp__packet_ws_wire(const struct rp_packet *pkt, size_t *len)
{
    /* The header room is the one part of a shared packet written after
       it is shared: once, by one thread (see struct rp_packet). */
    struct rp_packet *p = (struct rp_packet *)(uintptr_t)pkt;
    if (atomic_load_explicit(&p->ws_once, memory_order_acquire) != 2) {
        uint8_t none = 0;
        if (atomic_compare_exchange_strong_explicit(&p->ws_once, &none, 1,
                                                    memory_order_acquire,
                                                    memory_order_acquire)) {
            ws_header_write(p);
            atomic_store_explicit(&p->ws_once, 2, memory_order_release);
        } else {
            while (atomic_load_explicit(&p->ws_once, memory_order_acquire) != 2)
                rp_cpu_relax();
        }
    }
    *len = pkt->ws_hdr + HDR + pkt->len;
    return (const uint8_t *)pkt + offsetof(struct rp_packet, wire) -
           pkt->ws_hdr;
}

static void packet_init(struct rp_packet *p, size_t capacity, uint16_t type)
{
    atomic_init(&p->refs, 1);
    p->len = 0;
    p->cap = (uint32_t)capacity;
    p->failed = false;
    store_le16(p->wire, 0);
    store_le16(p->wire + 2, type);
    atomic_store_explicit(&p->ws_once, 0, memory_order_relaxed);
}

static __attribute__((noinline)) int
packet_create_slow(size_t capacity, uint16_t type, struct rp_packet **out)
{
    struct rp_packet *p = packet_alloc_slow(capacity);
    if (!p)
        return -ENOMEM;
    packet_init(p, capacity, type);
    *out = p;
    return 0;
}

int rp_packet_create(size_t capacity, uint16_t type, struct rp_packet **out)
{
    if (capacity > RP_PACKET_MAX_PAYLOAD)
        return -EMSGSIZE;
    struct rp_packet *p = packet_alloc_fast(capacity);
    if (RP_UNLIKELY(p == NULL)) /* a tail call: the fast path saves nothing */
        return packet_create_slow(capacity, type, out);
    packet_init(p, capacity, type);
    *out = p;
    return 0;
}

struct rp_packet *rp_packet_ref(struct rp_packet *pkt)
{
    /*
     * The sole holder takes a second reference without a locked
     * instruction, as rp_packet_unref frees without one: only a holder
     * may ref or unref, so a count of 1 read by a holder means the caller
     * holds the only reference and no other thread can change the count
     * until it shares the packet, which it does after this store (a
     * queue, a request: their own release/acquire carries the store).
     * The load is acquire for the case where another holder's unref made
     * it 1: its writes then happen before ours and, through our later
     * unref (release) or free, before the free, as with the RMW. A plain
     * store ends the release sequence of that unref, which is why the
     * acquire is taken here rather than left to the final unref.
     */
    if (atomic_load_explicit(&pkt->refs, memory_order_acquire) == 1) {
        atomic_store_explicit(&pkt->refs, 2, memory_order_relaxed);
        return pkt;
    }
    /* Shared already: the caller holds a reference, so the count cannot
       be 0 and no ordering is needed to take another. */
    unsigned old =
        atomic_fetch_add_explicit(&pkt->refs, 1, memory_order_relaxed);
    (void)old;
    assert(old > 0);
    return pkt;
}

void rp_packet_unref(struct rp_packet *pkt)
{
    if (!pkt)
        return;
    /* The sole holder frees without a locked instruction: nobody else can
       take a reference to a packet they do not hold. The acquire pairs with
       the release of every earlier unref. */
    if (atomic_load_explicit(&pkt->refs, memory_order_acquire) == 1) {
        if (!packet_free_fast(pkt))
            packet_free_slow(pkt);
        return;
    }
    /* acq_rel: our writes happen before the free (release), and the freeing
       thread sees every other holder's (acquire). A standalone fence would
       do, but ThreadSanitizer does not model fences. */
    unsigned old =
        atomic_fetch_sub_explicit(&pkt->refs, 1, memory_order_acq_rel);
    assert(old > 0);
    if (old == 1 && !packet_free_fast(pkt))
        packet_free_slow(pkt);
}

uint16_t rp_packet_type(const struct rp_packet *pkt)
{
    return load_le16(pkt->wire + 2);
}

void rp_packet_set_type(struct rp_packet *pkt, uint16_t type)
{
    store_le16(pkt->wire + 2, type);
}

size_t rp_packet_size(const struct rp_packet *pkt)
{
    return pkt->len;
}

size_t rp_packet_capacity(const struct rp_packet *pkt)
{
    return pkt->cap;
}

const uint8_t *rp_packet_payload(const struct rp_packet *pkt)
{
    return pkt->wire + HDR;
}

bool rp_packet_failed(const struct rp_packet *pkt)
{
    return pkt->failed;
}

const uint8_t *rp_packet_wire(const struct rp_packet *pkt, size_t *len)
{
    *len = HDR + pkt->len;
    return pkt->wire;
}

/* Claims 'n' payload bytes at the end, or flags the packet and returns
   NULL. Keeps the header's length in step. */
static uint8_t *put_room(struct rp_packet *p, size_t n)
{
    if (p->failed || p->cap - p->len < n) {
        p->failed = true;
        return NULL;
    }
    uint8_t *at = p->wire + HDR + p->len;
    p->len += (uint32_t)n;
    store_le16(p->wire, (uint16_t)p->len);
    /* A sole holder again (every send back) may put more: a WebSocket
       header written for the old length must be written again. */
    atomic_store_explicit(&p->ws_once, 0, memory_order_relaxed);
    return at;
}

int rp__packet_put_frame(struct rp_packet *pkt, uint16_t type,
                         const void *payload, uint16_t len)
{
    uint8_t *at = put_room(pkt, HDR + (size_t)len);
    if (!at)
        return -ENOBUFS;
    store_le16(at, len);
    store_le16(at + 2, type);
    if (len > 0) /* 'payload' may be NULL then */
        memcpy(at + HDR, payload, len);
    return 0;
}

int rp_packet_put_u8(struct rp_packet *pkt, uint8_t v)
{
    uint8_t *at = put_room(pkt, 1);
    if (!at)
        return -ENOBUFS;
    *at = v;
    return 0;
}

int rp_packet_put_u16(struct rp_packet *pkt, uint16_t v)
{
    uint8_t *at = put_room(pkt, 2);
    if (!at)
        return -ENOBUFS;
    store_le16(at, v);
    return 0;
}

int rp_packet_put_u32(struct rp_packet *pkt, uint32_t v)
{
    uint8_t *at = put_room(pkt, 4);
    if (!at)
        return -ENOBUFS;
    store_le32(at, v);
    return 0;
}

int rp_packet_put_u64(struct rp_packet *pkt, uint64_t v)
{
    uint8_t *at = put_room(pkt, 8);
    if (!at)
        return -ENOBUFS;
    store_le64(at, v);
    return 0;
}

/* Signed values go out as their two's-complement bits (C11 conversion to
   an unsigned type is defined modulo 2^N). */
int rp_packet_put_i8(struct rp_packet *pkt, int8_t v)
{
    return rp_packet_put_u8(pkt, (uint8_t)v);
}

int rp_packet_put_i16(struct rp_packet *pkt, int16_t v)
{
    return rp_packet_put_u16(pkt, (uint16_t)v);
}

int rp_packet_put_i32(struct rp_packet *pkt, int32_t v)
{
    return rp_packet_put_u32(pkt, (uint32_t)v);
}

int rp_packet_put_i64(struct rp_packet *pkt, int64_t v)
{
    return rp_packet_put_u64(pkt, (uint64_t)v);
}

int rp_packet_put_f32(struct rp_packet *pkt, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    return rp_packet_put_u32(pkt, bits);
}

int rp_packet_put_f64(struct rp_packet *pkt, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return rp_packet_put_u64(pkt, bits);
}

/* memcpy for the few bytes of a typical field or message without a call:
   two overlapping fixed-size copies cover any n in [k, 2k]. */
static inline void copy_small(uint8_t *dst, const uint8_t *src, size_t n)
{
    if (n >= 16 && n <= 32) {
        memcpy(dst, src, 16);
        memcpy(dst + n - 16, src + n - 16, 16);
    } else if (n >= 8 && n < 16) {
        memcpy(dst, src, 8);
        memcpy(dst + n - 8, src + n - 8, 8);
    } else if (n >= 4 && n < 8) {
        memcpy(dst, src, 4);
        memcpy(dst + n - 4, src + n - 4, 4);
    } else if (n > 0 && n < 4) {
        dst[0] = src[0];
        dst[n / 2] = src[n / 2];
        dst[n - 1] = src[n - 1];
    } else if (n > 32) {
        memcpy(dst, src, n);
    }
}

int rp_packet_put_bytes(struct rp_packet *pkt, const void *data, size_t n)
{
    uint8_t *at = put_room(pkt, n);
    if (!at)
        return -ENOBUFS;
    copy_small(at, data, n);
    return 0;
}

int rp_packet_put_blob(struct rp_packet *pkt, const void *data, size_t n)
{
    if (n > UINT16_MAX) {
        pkt->failed = true;
        return -EMSGSIZE;
    }
    /* Claim prefix and bytes at once so a failure writes neither. */
    uint8_t *at = put_room(pkt, 2 + n);
    if (!at)
        return -ENOBUFS;
    store_le16(at, (uint16_t)n);
    copy_small(at + 2, data, n);
    return 0;
}

int rp_packet_put_strn(struct rp_packet *pkt, const char *s, size_t n)
{
    return rp_packet_put_blob(pkt, s, n);
}

int rp_packet_put_str(struct rp_packet *pkt, const char *s)
{
    return rp_packet_put_blob(pkt, s, strlen(s));
}

/* ---- reader -------------------------------------------------------------- */

void rp_reader_init(struct rp_reader *r, const void *data, size_t len)
{
    /* Never hold a null pointer: even NULL + 0 is undefined in C. */
    static const uint8_t empty[1];
    const uint8_t *p = data ? data : empty;
    r->pos = p;
    r->end = p + (data ? len : 0);
    r->failed = false;
}

void rp_packet_reader(const struct rp_packet *pkt, struct rp_reader *r)
{
    rp_reader_init(r, pkt->wire + HDR, pkt->len);
}

/* Consumes 'n' bytes and returns where they start, or fails the reader:
   flag set, everything left consumed, NULL returned. A failed reader fails
   every read, even of 0 bytes. */
static const uint8_t *take(struct rp_reader *r, size_t n)
{
    if (r->failed || (size_t)(r->end - r->pos) < n) {
        r->failed = true;
        r->pos = r->end;
        return NULL;
    }
    const uint8_t *at = r->pos;
    r->pos += n;
    return at;
}

uint8_t rp_reader_get_u8(struct rp_reader *r)
{
    const uint8_t *at = take(r, 1);
    return at ? *at : 0;
}

uint16_t rp_reader_get_u16(struct rp_reader *r)
{
    const uint8_t *at = take(r, 2);
    return at ? load_le16(at) : 0;
}

uint32_t rp_reader_get_u32(struct rp_reader *r)
{
    const uint8_t *at = take(r, 4);
    return at ? load_le32(at) : 0;
}

uint64_t rp_reader_get_u64(struct rp_reader *r)
{
    const uint8_t *at = take(r, 8);
    return at ? load_le64(at) : 0;
}

/* Unsigned to signed conversion of an out-of-range value is
   implementation-defined in C11; memcpy states two's complement plainly. */
int8_t rp_reader_get_i8(struct rp_reader *r)
{
    uint8_t u = rp_reader_get_u8(r);
    int8_t v;
    memcpy(&v, &u, sizeof v);
    return v;
}

int16_t rp_reader_get_i16(struct rp_reader *r)
{
    uint16_t u = rp_reader_get_u16(r);
    int16_t v;
    memcpy(&v, &u, sizeof v);
    return v;
}

int32_t rp_reader_get_i32(struct rp_reader *r)
{
    uint32_t u = rp_reader_get_u32(r);
    int32_t v;
    memcpy(&v, &u, sizeof v);
    return v;
}

int64_t rp_reader_get_i64(struct rp_reader *r)
{
    uint64_t u = rp_reader_get_u64(r);
    int64_t v;
    memcpy(&v, &u, sizeof v);
    return v;
}

float rp_reader_get_f32(struct rp_reader *r)
{
    uint32_t u = rp_reader_get_u32(r);
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

double rp_reader_get_f64(struct rp_reader *r)
{
    uint64_t u = rp_reader_get_u64(r);
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

void rp_reader_get_bytes(struct rp_reader *r, void *dst, size_t n)
{
    const uint8_t *at = take(r, n);
    if (n == 0)
        return;
    if (at)
        memcpy(dst, at, n);
    else
        memset(dst, 0, n);
}

const uint8_t *rp_reader_view_bytes(struct rp_reader *r, size_t n)
{
    return take(r, n);
}

const uint8_t *rp_reader_get_blob(struct rp_reader *r, size_t *len)
{
    size_t n = rp_reader_get_u16(r);
    const uint8_t *at = take(r, n);
    if (!at) {
        *len = 0;
        return (const uint8_t *)"";
    }
    *len = n;
    return at;
}

const char *rp_reader_get_strv(struct rp_reader *r, size_t *len)
{
    return (const char *)rp_reader_get_blob(r, len);
}

size_t rp_reader_get_str(struct rp_reader *r, char *buf, size_t cap)
{
    size_t n;
    const uint8_t *at = rp_reader_get_blob(r, &n);
    if (cap == 0)
        return n;
    size_t copy = n < cap - 1 ? n : cap - 1;
    if (copy)
        memcpy(buf, at, copy);
    buf[copy] = '\0';
    return n;
}
