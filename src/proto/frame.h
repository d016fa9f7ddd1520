/*
 * Framing: cutting a byte stream into packets (internal; see
 * docs/protocol.md for the format). A frame is a 4-byte header, u16 payload
 * length then u16 type (little-endian), followed by the payload.
 *
 * Two layers:
 *   rp_frame_parse()  stateless: is there one whole frame at the start of
 *                     this span? Never allocates, never copies.
 *   rp_frame_decoder  streaming: chunks split anywhere go in, whole frames
 *                     come out through a callback. Frames that lie wholly in
 *                     a chunk are handed out in place; only a frame cut by
 *                     the chunk's end is copied, into the decoder's own
 *                     buffer (at most header + max payload bytes).
 *
 * Errors, decided as soon as the 4 header bytes are in (before any payload
 * is awaited):
 *   -EMSGSIZE  the declared payload length is over the limit;
 *   -EBADMSG   a zero-length payload where empty ones are refused, or a type
 *              outside the accepted range.
 * The server closes the session with reason PROTOCOL on either.
 */
#ifndef RP_PROTO_FRAME_H
#define RP_PROTO_FRAME_H

#include <ringport/packet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RP_FRAME_HEADER_SIZE RP_PACKET_HEADER_SIZE

/*
 * What a peer may send. All zeros is a valid, permissive setting: the
 * default payload limit, empty payloads allowed, every type accepted.
 */
struct rp_frame_limits {
    uint32_t max_payload; /* 0 = RP_PACKET_DEFAULT_MAX_PAYLOAD; values over
                             65535 act as 65535 (no frame can be larger) */
    bool reject_empty;    /* a zero-length payload is -EBADMSG */
    uint16_t type_min;    /* accepted types, inclusive; the check is off */
    uint16_t type_max;    /* when type_max == 0 */
};

/* One frame as found: the payload points into the bytes that were parsed. */
struct rp_frame {
    uint16_t type;
    uint16_t len;           /* payload bytes */
    const uint8_t *payload; /* 'len' bytes; never NULL */
};

/* The effective payload limit of 'lim' (resolves 0 to the default). */
static inline uint32_t rp_frame_max_payload(const struct rp_frame_limits *lim)
{
    uint32_t max =
        lim->max_payload ? lim->max_payload : RP_PACKET_DEFAULT_MAX_PAYLOAD;
    return max > RP_PACKET_MAX_PAYLOAD ? RP_PACKET_MAX_PAYLOAD : max;
}

/*
 * Looks for one whole frame at the start of data[0, len). Returns its size
 * (header + payload, > 0) and fills *out; 0 if more bytes are needed (*out
 * untouched); -EMSGSIZE or -EBADMSG as soon as a complete header breaks
 * 'lim'. Thread: any; touches nothing but its arguments.
 */
int rp_frame_parse(const uint8_t *data, size_t len,
                   const struct rp_frame_limits *lim, struct rp_frame *out);

/*
 * Called once per whole frame, in stream order. 'f->payload' is valid only
 * during the call (it points into the fed chunk or the decoder's buffer).
 * Return 0 to go on; a negative errno stops the feed, puts the decoder in
 * that error state and is returned by rp_frame_decoder_feed(). Must not
 * feed the same decoder.
 */
typedef int (*rp_frame_cb)(void *user, const struct rp_frame *f);

/*
 * Invariants: have <= cap <= RP_FRAME_HEADER_SIZE + max payload; while
 * have >= RP_FRAME_HEADER_SIZE the buffered header has passed the limits;
 * once 'error' is set it never changes.
 */
struct rp_frame_decoder {
    struct rp_frame_limits lim;
    int error;        /* 0, or the -errno every later feed returns */
    uint32_t have;    /* bytes of a partial frame held in 'partial' */
    uint32_t cap;     /* bytes allocated at 'partial' */
    uint8_t *partial; /* owned; allocated when a frame is first cut */
    uint64_t copied;  /* bytes ever copied into 'partial' (tests, metrics) */
    uint32_t allocs;  /* partial buffers taken from malloc, not from the
                         thread's cache (tests) */
};

/* Returns 0 or -EINVAL (max_payload over 65535, or type_min > type_max
   with the check on). Allocates nothing. */
int rp_frame_decoder_init(struct rp_frame_decoder *d,
                          const struct rp_frame_limits *lim);
void rp_frame_decoder_destroy(struct rp_frame_decoder *d);

/*
 * Feeds the next 'len' bytes of the stream. Whole frames go to 'cb'; a
 * trailing partial frame is kept (copied) for the next feed. Returns the
 * number of frames delivered, or the decoder's error (-EMSGSIZE, -EBADMSG,
 * -ENOMEM, or what 'cb' returned); frames before the error in this chunk
 * were delivered. After an error every feed returns it and does nothing.
 * Thread: the decoder's owner.
 */
int rp_frame_decoder_feed(struct rp_frame_decoder *d, const uint8_t *data,
                          size_t len, rp_frame_cb cb, void *user);

/* Bytes of a partial frame held now (0 between whole frames). */
static inline size_t rp_frame_decoder_pending(const struct rp_frame_decoder *d)
{
    return d->have;
}

/* Gives the partial buffer up if it holds nothing, so an idle session
   keeps no receive memory; the next cut frame takes one again. Given-up
   buffers of up to 4 KiB go to a small cache of the calling thread
   (freed when it exits), so a stream of split frames costs no malloc
   per frame. */
void rp_frame_decoder_trim(struct rp_frame_decoder *d);

#endif
