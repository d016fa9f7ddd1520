/*
 * rp_ring: byte ring buffer with iovec views of its free and used regions;
 * see ring.h for the contract. Every copy is at most two memcpy calls: the
 * part up to the end of the buffer, then the part from its start.
 */
#include "buf/ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static inline uint32_t ring_cap(const struct rp_ring *ring)
{
    return ring->mask + 1;
}

static inline uint32_t ring_min(uint32_t a, uint32_t b)
{
    return a < b ? a : b;
}

/* Cache-line aligned: memcpy (rep movsb above a few KiB) runs markedly
   faster into and out of an aligned buffer (bench_ring, drained case). */
static uint8_t *ring_alloc(size_t cap)
{
    void *p;
    return posix_memalign(&p, 64, cap) == 0 ? p : NULL;
}

/* 1 <= n <= RP_RING_MAX_CAPACITY, so the loop ends without overflow. */
static size_t ring_round_up(size_t n)
{
    size_t cap = 1;
    while (cap < n)
        cap <<= 1;
    return cap;
}

/* Copies 'n' stored bytes starting at index 'from' out to 'dst'. */
static void ring_copy_out(const struct rp_ring *ring, uint32_t from,
                          uint8_t *dst, uint32_t n)
{
    uint32_t at = from & ring->mask;
    uint32_t first = ring_min(n, ring_cap(ring) - at);
    memcpy(dst, ring->data + at, first);
    if (n > first)
        memcpy(dst + first, ring->data, n - first);
}

/* Copies 'n' bytes from 'src' into the free region at the tail. */
static void ring_copy_in(struct rp_ring *ring, const uint8_t *src, uint32_t n)
{
    uint32_t at = ring->tail & ring->mask;
    uint32_t first = ring_min(n, ring_cap(ring) - at);
    memcpy(ring->data + at, src, first);
    if (n > first)
        memcpy(ring->data, src + first, n - first);
}

int rp_ring_init(struct rp_ring *ring, size_t capacity, size_t max_capacity)
{
    memset(ring, 0, sizeof *ring);
    if (capacity == 0 || capacity > RP_RING_MAX_CAPACITY ||
        max_capacity > RP_RING_MAX_CAPACITY)
        return -EINVAL;
    size_t cap = ring_round_up(capacity);
    size_t max = max_capacity ? ring_round_up(max_capacity) : cap;
    if (max < cap)
        return -EINVAL;
    ring->data = ring_alloc(cap);
    if (!ring->data)
        return -ENOMEM;
    ring->mask = (uint32_t)(cap - 1);
    ring->max_capacity = (uint32_t)max;
    return 0;
}

void rp_ring_destroy(struct rp_ring *ring)
{
    free(ring->data);
    memset(ring, 0, sizeof *ring);
}

/* Moves the bytes, in order, to the start of a buffer of 'cap' bytes. */
static int ring_grow(struct rp_ring *ring, uint32_t cap)
{
    uint32_t used = ring->tail - ring->head;
    uint8_t *data = ring_alloc(cap);
    if (!data)
        return -ENOMEM;
    ring_copy_out(ring, ring->head, data, used);
    free(ring->data);
    ring->data = data;
    ring->mask = cap - 1;
    ring->head = 0;
    ring->tail = used;
    return 0;
}

int rp_ring_reserve(struct rp_ring *ring, size_t n)
{
    size_t used = rp_ring_used_bytes(ring);
    if (n <= rp_ring_free_bytes(ring))
        return 0;
    if (n > ring->max_capacity - used)
        return -ENOBUFS;
    /* used + n <= max_capacity <= 2^31: doubling cannot overflow. */
    size_t cap = rp_ring_capacity(ring);
    while (cap < used + n)
        cap <<= 1;
    return ring_grow(ring, (uint32_t)cap);
}

int rp_ring_write(struct rp_ring *ring, const void *src, size_t n)
{
    if (n > rp_ring_free_bytes(ring)) {
        int rc = rp_ring_reserve(ring, n);
        if (rc < 0)
            return rc;
    }
    if (n == 0)
        return 0;
    ring_copy_in(ring, src, (uint32_t)n);
    ring->tail += (uint32_t)n;
    return 0;
}

int rp_ring_commit(struct rp_ring *ring, size_t n)
{
    if (n > rp_ring_free_bytes(ring))
        return -EINVAL;
    ring->tail += (uint32_t)n;
    return 0;
}

int rp_ring_consume(struct rp_ring *ring, size_t n)
{
    if (n > rp_ring_used_bytes(ring))
        return -EINVAL;
    ring->head += (uint32_t)n;
    /* Drained: start over at 0 so the next recv gets one segment. */
    if (ring->head == ring->tail)
        ring->head = ring->tail = 0;
    return 0;
}

size_t rp_ring_read(struct rp_ring *ring, void *dst, size_t n)
{
    uint32_t k =
        (uint32_t)(n < rp_ring_used_bytes(ring) ? n : rp_ring_used_bytes(ring));
    if (k == 0)
        return 0;
    ring_copy_out(ring, ring->head, dst, k);
    rp_ring_consume(ring, k);
    return k;
}

size_t rp_ring_peek(const struct rp_ring *ring, size_t offset, void *dst,
                    size_t n)
{
    size_t used = rp_ring_used_bytes(ring);
    if (offset >= used || n == 0)
        return 0;
    uint32_t k = (uint32_t)(n < used - offset ? n : used - offset);
    ring_copy_out(ring, ring->head + (uint32_t)offset, dst, k);
    return k;
}

int rp_ring_free_iov(const struct rp_ring *ring, struct iovec iov[2])
{
    uint32_t free_bytes = ring_cap(ring) - (ring->tail - ring->head);
    uint32_t at = ring->tail & ring->mask;
    if (free_bytes == 0)
        return 0;
    uint32_t first = ring_min(free_bytes, ring_cap(ring) - at);
    iov[0].iov_base = ring->data + at;
    iov[0].iov_len = first;
    if (first == free_bytes)
        return 1;
    iov[1].iov_base = ring->data;
    iov[1].iov_len = free_bytes - first;
    return 2;
}

int rp_ring_used_iov(const struct rp_ring *ring, struct iovec iov[2])
{
    uint32_t used = ring->tail - ring->head;
    uint32_t at = ring->head & ring->mask;
    if (used == 0)
        return 0;
    uint32_t first = ring_min(used, ring_cap(ring) - at);
    iov[0].iov_base = ring->data + at;
    iov[0].iov_len = first;
    if (first == used)
        return 1;
    iov[1].iov_base = ring->data;
    iov[1].iov_len = used - first;
    return 2;
}

const uint8_t *rp_ring_contig(const struct rp_ring *ring, size_t n)
{
    uint32_t at = ring->head & ring->mask;
    if (n > rp_ring_used_bytes(ring) || n > ring_cap(ring) - at)
        return NULL;
    return ring->data + at;
}

int rp__ring_set_index(struct rp_ring *ring, uint32_t index)
{
    if (ring->head != ring->tail)
        return -EBUSY;
    ring->head = ring->tail = index;
    return 0;
}
