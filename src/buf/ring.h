/*
 * rp_ring: a byte ring buffer, the receive and send buffer of a session.
 *
 * Bytes go in at the tail and come out at the head, in order. Besides plain
 * copies (write, read, peek) the ring hands out its free and used regions as
 * one or two iovecs, so a recv can scatter straight into the free space
 * (then rp_ring_commit) and a send can gather straight from the used bytes
 * (then rp_ring_consume); a parser reads a frame in place through
 * rp_ring_contig when the frame does not wrap.
 *
 * A ring may grow: created with a max capacity above its capacity, it
 * doubles (keeping its bytes in order) when a write or rp_ring_reserve needs
 * more room, and refuses with -ENOBUFS at the cap. A fixed ring (max
 * capacity 0) never allocates after rp_ring_init.
 *
 * Ownership: the ring owns its data buffer; the struct itself belongs to the
 * caller (usually embedded in a session). Thread: a ring is owned by one
 * thread at a time and is not thread-safe; nothing here locks.
 */
#ifndef RP_BUF_RING_H
#define RP_BUF_RING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* The largest capacity: tail - head must fit in uint32_t. */
#define RP_RING_MAX_CAPACITY ((size_t)1 << 31)

/*
 * head and tail run freely and wrap with '& mask':
 *     0 <= tail - head <= mask + 1 <= max_capacity,
 *     mask + 1 (the capacity) a power of two.
 * Both drop back to 0 whenever the ring drains, so an empty ring offers its
 * whole free space as one segment (one plain recv, one contiguous frame).
 */
struct rp_ring {
    uint32_t head;         /* next byte to read */
    uint32_t tail;         /* next byte to write */
    uint32_t mask;         /* capacity - 1 */
    uint32_t max_capacity; /* growth cap; == mask + 1 for a fixed ring */
    uint8_t *data;         /* owned by the ring; mask + 1 bytes */
};

/*
 * Sets up 'ring' with room for 'capacity' bytes, rounded up to a power of
 * two. 'max_capacity' (also rounded up) lets the ring grow by doubling up
 * to it; 0 makes a fixed ring. Returns 0, -EINVAL if 'capacity' is 0, either
 * size is over RP_RING_MAX_CAPACITY or the max is below the capacity, or
 * -ENOMEM. On failure 'ring' holds no memory and needs no destroy.
 */
int rp_ring_init(struct rp_ring *ring, size_t capacity, size_t max_capacity);

/* Frees the data buffer. The ring must be initialized again before any other
   use; destroying it twice is harmless. */
void rp_ring_destroy(struct rp_ring *ring);

static inline size_t rp_ring_capacity(const struct rp_ring *ring)
{
    return (size_t)ring->mask + 1;
}

/* Bytes stored, ready to read. */
static inline size_t rp_ring_used_bytes(const struct rp_ring *ring)
{
    return ring->tail - ring->head;
}

/* Bytes that can be written without growing. */
static inline size_t rp_ring_free_bytes(const struct rp_ring *ring)
{
    return rp_ring_capacity(ring) - rp_ring_used_bytes(ring);
}

/*
 * Copies 'n' bytes from 'src' in at the tail, all or nothing, growing the
 * ring if it may. Returns 0, or -ENOBUFS (nothing written) if they do not
 * fit even at the max capacity, or -ENOMEM if growing failed.
 */
int rp_ring_write(struct rp_ring *ring, const void *src, size_t n);

/* Moves up to 'n' bytes from the head into 'dst'; returns how many. */
size_t rp_ring_read(struct rp_ring *ring, void *dst, size_t n);

/*
 * Copies up to 'n' bytes starting 'offset' bytes past the head into 'dst'
 * without consuming them (across the wrap if need be). Returns how many: 0
 * when 'offset' is at or past the used bytes.
 */
size_t rp_ring_peek(const struct rp_ring *ring, size_t offset, void *dst,
                    size_t n);

/*
 * Drops 'n' bytes from the head, e.g. after a send took them from the used
 * iovecs or a parser handled them in place. Returns 0, or -EINVAL (ring
 * unchanged) if fewer than 'n' bytes are stored.
 */
int rp_ring_consume(struct rp_ring *ring, size_t n);

/*
 * Makes 'n' bytes written directly into the free iovecs part of the used
 * bytes, e.g. after a recv. Returns 0, or -EINVAL (ring unchanged) if 'n'
 * is more than the free bytes.
 */
int rp_ring_commit(struct rp_ring *ring, size_t n);

/*
 * Fills 'iov' with the free region, in write order, and returns the number
 * of segments used: 0 (full), 1 or 2. The views hold until the next call
 * that changes the ring: a drained ring restarts at index 0 and a growing
 * one moves, so leave the ring alone while a recv into them is in flight,
 * then rp_ring_commit what it received.
 */
int rp_ring_free_iov(const struct rp_ring *ring, struct iovec iov[2]);

/*
 * Fills 'iov' with the used bytes, in read order, and returns the number of
 * segments used: 0 (empty), 1 or 2. The bytes stay put while more are
 * written or committed, so a send from these views may be in flight
 * meanwhile, unless the ring grows: growing moves them (write on a growable
 * ring, rp_ring_reserve). Reading or consuming ends the views.
 */
int rp_ring_used_iov(const struct rp_ring *ring, struct iovec iov[2]);

/*
 * Returns a pointer to the first 'n' used bytes when they lie contiguously
 * in the buffer, so a parser can read them in place; NULL if fewer than 'n'
 * bytes are stored or they wrap (then rp_ring_peek them into a copy). Valid
 * as rp_ring_used_iov's views are.
 */
const uint8_t *rp_ring_contig(const struct rp_ring *ring, size_t n);

/*
 * Makes room for 'n' more bytes, doubling the capacity as often as needed
 * (bytes kept in order, moved to the start of the new buffer). Returns 0
 * (also when the room was already there), -ENOBUFS if the max capacity does
 * not allow it (ring unchanged), or -ENOMEM.
 */
int rp_ring_reserve(struct rp_ring *ring, size_t n);

/* Test hook: moves an empty ring's head and tail to 'index', e.g. next to
   UINT32_MAX to exercise the wrap. Returns 0, or -EBUSY if not empty. */
int rp__ring_set_index(struct rp_ring *ring, uint32_t index);

#endif
