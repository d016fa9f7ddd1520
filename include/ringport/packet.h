/*
 * rp_packet: a reference-counted serialization buffer for one message, and
 * rp_reader: a bounds-checked view for reading one.
 *
 * A packet keeps 4 bytes of header room in front of its payload, so the
 * frame header (u16 payload length, u16 type, little-endian; see
 * docs/protocol.md) sits in place and rp_packet_wire() hands header+payload
 * to the socket without a copy. The header is kept up to date by every put,
 * so reading the wire view never writes: a packet shared by a broadcast is
 * read by many threads at once with no race.
 *
 * Lifetime: one thread creates a packet (one reference), writes it, then may
 * share it: rp_packet_ref() for each extra holder, rp_packet_unref() by each;
 * the last unref frees it, exactly once, whichever thread that is. Once
 * shared, a packet is read-only: put only while you hold the only reference.
 *
 * Errors: puts return 0 or -errno and set a sticky error flag, so a writer
 * may issue a run of puts and check rp_packet_failed() once. Reads never
 * fail loudly: a read past the end returns 0 (or empty) and sets the
 * reader's sticky error flag, checked once at the end. Peer bytes can never
 * make a read crash or touch memory outside the span.
 *
 * Memory: packets come from per-process pools of a few size classes with
 * per-thread caches (created on first use), falling back to malloc when a
 * pool is at its cap. A create and a last unref that hit the calling
 * thread's cache take no lock and no locked instruction (the live counts
 * are per thread, summed when read).
 */
#ifndef RINGPORT_PACKET_H
#define RINGPORT_PACKET_H

#include <ringport/api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Wire header: u16 payload length, then u16 type, both little-endian. */
#define RP_PACKET_HEADER_SIZE 4u
/* The largest payload the header can describe. */
#define RP_PACKET_MAX_PAYLOAD 65535u
/* The servers' default limit on a received payload (configurable). */
#define RP_PACKET_DEFAULT_MAX_PAYLOAD 8192u
/* Size classes of the packet pools (see rp_packet_pool_stats). */
#define RP_PACKET_POOL_CLASSES 4

struct rp_packet; /* opaque; lives until its last reference is dropped */

/*
 * Creates a packet of message type 'type' with room for 'capacity' payload
 * bytes and an empty payload; the caller holds its one reference. Returns
 * 0, -EMSGSIZE if capacity > RP_PACKET_MAX_PAYLOAD, or -ENOMEM (*out
 * untouched on failure). Thread: any.
 */
RP_API int rp_packet_create(size_t capacity, uint16_t type,
                            struct rp_packet **out);

/* Takes one more reference and returns 'pkt'. Thread: any holder. */
RP_API struct rp_packet *rp_packet_ref(struct rp_packet *pkt);
/* Drops one reference; the last one frees the packet. NULL is a no-op.
   Thread: any holder. */
RP_API void rp_packet_unref(struct rp_packet *pkt);

RP_API uint16_t rp_packet_type(const struct rp_packet *pkt);
/* Single holder only (the packet is not yet shared). */
RP_API void rp_packet_set_type(struct rp_packet *pkt, uint16_t type);
/* Payload bytes written so far. */
RP_API size_t rp_packet_size(const struct rp_packet *pkt);
/* Payload bytes the packet can hold (as created). */
RP_API size_t rp_packet_capacity(const struct rp_packet *pkt);
/* The payload, rp_packet_size() bytes; valid while a reference is held. */
RP_API const uint8_t *rp_packet_payload(const struct rp_packet *pkt);
/* True once a put has failed (sticky until the packet is freed). */
RP_API bool rp_packet_failed(const struct rp_packet *pkt);

/*
 * The frame as it goes on the wire: header (length and type filled in) then
 * payload, *len = RP_PACKET_HEADER_SIZE + rp_packet_size(). Writes nothing,
 * so any number of threads holding references may call it at once. Valid
 * while a reference is held.
 */
RP_API const uint8_t *rp_packet_wire(const struct rp_packet *pkt, size_t *len);

/*
 * Typed puts append at the end of the payload in little-endian order
 * (floats as their IEEE-754 bits). Each returns 0, or -ENOBUFS if the value
 * does not fit in the remaining capacity, or if an earlier put on this
 * packet failed (the flag is sticky, so no later field lands after a
 * missing one); a failed put writes nothing and sets the error flag.
 * Thread: the single holder.
 */
RP_API int rp_packet_put_u8(struct rp_packet *pkt, uint8_t v);
RP_API int rp_packet_put_u16(struct rp_packet *pkt, uint16_t v);
RP_API int rp_packet_put_u32(struct rp_packet *pkt, uint32_t v);
RP_API int rp_packet_put_u64(struct rp_packet *pkt, uint64_t v);
RP_API int rp_packet_put_i8(struct rp_packet *pkt, int8_t v);
RP_API int rp_packet_put_i16(struct rp_packet *pkt, int16_t v);
RP_API int rp_packet_put_i32(struct rp_packet *pkt, int32_t v);
RP_API int rp_packet_put_i64(struct rp_packet *pkt, int64_t v);
RP_API int rp_packet_put_f32(struct rp_packet *pkt, float v);
RP_API int rp_packet_put_f64(struct rp_packet *pkt, double v);
/* 'n' raw bytes, no length prefix. */
RP_API int rp_packet_put_bytes(struct rp_packet *pkt, const void *data,
                               size_t n);
/* u16 length then 'n' bytes; -EMSGSIZE (and the flag) if n > 65535. */
RP_API int rp_packet_put_blob(struct rp_packet *pkt, const void *data,
                              size_t n);
/* A string as u16 length then its bytes, no terminator; the same errors. */
RP_API int rp_packet_put_str(struct rp_packet *pkt, const char *s);
RP_API int rp_packet_put_strn(struct rp_packet *pkt, const char *s, size_t n);

/*
 * A read cursor over a byte span it does not own: the caller keeps the
 * bytes alive while reading. Fill it with rp_reader_init() or
 * rp_packet_reader(); the fields are public so it can live on the stack,
 * but only the functions below move them. Invariant: pos <= end.
 */
struct rp_reader {
    const uint8_t *pos; /* next byte to read */
    const uint8_t *end; /* one past the last byte */
    bool failed;        /* sticky: a read wanted more than was left */
};

/* A reader over any span, e.g. a payload framed in place in a receive
   buffer. 'data' may be NULL when 'len' is 0. */
RP_API void rp_reader_init(struct rp_reader *r, const void *data, size_t len);
/* A reader over the payload of 'pkt'; valid while a reference is held. */
RP_API void rp_packet_reader(const struct rp_packet *pkt, struct rp_reader *r);

static inline size_t rp_reader_remaining(const struct rp_reader *r)
{
    return (size_t)(r->end - r->pos);
}

static inline bool rp_reader_failed(const struct rp_reader *r)
{
    return r->failed;
}

/*
 * Typed gets consume a value from the front. One that wants more bytes than
 * remain returns 0, sets 'failed' and consumes everything left, so every
 * later read fails too: check rp_reader_failed() once after the last read.
 */
RP_API uint8_t rp_reader_get_u8(struct rp_reader *r);
RP_API uint16_t rp_reader_get_u16(struct rp_reader *r);
RP_API uint32_t rp_reader_get_u32(struct rp_reader *r);
RP_API uint64_t rp_reader_get_u64(struct rp_reader *r);
RP_API int8_t rp_reader_get_i8(struct rp_reader *r);
RP_API int16_t rp_reader_get_i16(struct rp_reader *r);
RP_API int32_t rp_reader_get_i32(struct rp_reader *r);
RP_API int64_t rp_reader_get_i64(struct rp_reader *r);
RP_API float rp_reader_get_f32(struct rp_reader *r);
RP_API double rp_reader_get_f64(struct rp_reader *r);

/* Copies 'n' raw bytes into 'dst'; on failure fills 'dst' with zeros. */
RP_API void rp_reader_get_bytes(struct rp_reader *r, void *dst, size_t n);
/* A view of the next 'n' raw bytes, or NULL on failure. */
RP_API const uint8_t *rp_reader_view_bytes(struct rp_reader *r, size_t n);
/* A view of a u16-length-prefixed byte run: returns its bytes and sets
 *len; on failure returns a pointer to an empty run and *len = 0. */
RP_API const uint8_t *rp_reader_get_blob(struct rp_reader *r, size_t *len);

/*
 * Reads a string into 'buf' ('cap' bytes, NUL-terminated when cap > 0),
 * copying at most cap - 1 bytes. Returns the string's full length, so the
 * copy was truncated iff the result is >= cap; the whole string is consumed
 * either way, and truncation is not a read failure. On failure buf is ""
 * and the result 0. The string may hold NUL bytes; it is copied as is.
 */
RP_API size_t rp_reader_get_str(struct rp_reader *r, char *buf, size_t cap);
/* The string as a view (not NUL-terminated): returns its bytes and sets
 *len; on failure returns "" and *len = 0. */
RP_API const char *rp_reader_get_strv(struct rp_reader *r, size_t *len);

/*
 * Packet pool usage, for metrics. Counters are read without stopping other
 * threads, so they are approximate while packets are being created.
 */
struct rp_packet_pool_stats {
    struct {
        size_t max_payload; /* largest payload this class holds */
        size_t capacity;    /* packets' worth of memory held by the pool */
        size_t in_use;      /* packets of this class alive now */
        uint64_t allocs;    /* packets ever taken from the pool */
        uint64_t fails;     /* times the pool was at its cap (-> malloc) */
    } classes[RP_PACKET_POOL_CLASSES];
    uint64_t heap_allocs; /* packets ever malloc'd (a pool was full) */
    size_t heap_in_use;   /* of those, alive now */
    uint64_t created;     /* every packet ever created */
    uint64_t freed;       /* every packet ever freed (last unref) */
};

/* Fills 'out' (zeros for pools not created yet). Thread: any. */
RP_API void rp_packet_pool_stats(struct rp_packet_pool_stats *out);

/*
 * Frees the packet pools now; the next rp_packet_create() creates them
 * again. Returns 0 (also when there were none), -EBUSY if a packet of a
 * pool is alive or being freed, or -ENOSYS/-EPERM where membarrier(2) is
 * refused (it is what lets rp_packet_create skip a fence; the pools are
 * kept in every failure case). Nothing frees them at
 * exit: exit() leaves other threads running, and they may still be freeing
 * packets (an exit handler only logs a WARN line naming how many packets
 * are still alive: the program's leak). Thread: any, also beside threads
 * that create and free packets: a packet is never freed into, or taken
 * from, a pool being destroyed.
 */
RP_API int rp_packet_pools_shutdown(void);

#ifdef __cplusplus
}
#endif

#endif
