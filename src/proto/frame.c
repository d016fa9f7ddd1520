/*
 * Framing (src/proto/frame.h): the stateless header check and the streaming
 * decoder that the receive path runs on every chunk. The decoder's job is to
 * copy as little as possible: frames wholly inside a chunk are parsed where
 * they lie, and only the frame cut by the chunk's end is copied, so its
 * buffer is at most one frame and is not even allocated until a frame is
 * first cut. Buffers given up between frames wait in a per-thread cache for
 * the next cut frame of any decoder on that thread: an I/O thread that
 * sees split frames all the time mallocs a handful of buffers, not one per
 * split frame.
 */
#include "proto/frame.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define HDR RP_FRAME_HEADER_SIZE
/* Smallest partial buffer: room for a header and a small message, so the
   usual cut frame needs one allocation, not one for the header and one for
   the payload. */
#define PARTIAL_MIN 64u

/* The per-thread cache: at most CACHE_SLOTS buffers of at most
   CACHE_MAX_CAP bytes (64 KiB a thread at worst). A thread's buffers are
   freed by a key destructor when it exits; the main thread's stay
   reachable through its TLS until the process ends. */
#define CACHE_SLOTS 16u
#define CACHE_MAX_CAP 4096u

struct partial_cache {
    uint32_t n;
    uint32_t cap[CACHE_SLOTS];
    uint8_t *buf[CACHE_SLOTS];
};

static _Thread_local struct partial_cache cache;
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static int cache_key_ok; /* 0 if the key could not be made: no caching */

static void cache_free(void *arg)
{
    struct partial_cache *c = arg;
    while (c->n > 0)
        free(c->buf[--c->n]);
}

static void cache_init(void)
{
    cache_key_ok = pthread_key_create(&cache_key, cache_free) == 0;
}

/* Gives the decoder's (empty) buffer to the cache, or frees it. */
static void partial_release(struct rp_frame_decoder *d)
{
    if (d->partial && d->cap <= CACHE_MAX_CAP && cache.n < CACHE_SLOTS) {
        pthread_once(&cache_once, cache_init);
        if (cache_key_ok &&
            (cache.n > 0 || pthread_setspecific(cache_key, &cache) == 0)) {
            cache.buf[cache.n] = d->partial;
            cache.cap[cache.n] = d->cap;
            cache.n++;
            d->partial = NULL;
        }
    }
    free(d->partial);
    d->partial = NULL;
    d->cap = 0;
}

static uint16_t load_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (unsigned)p[1] << 8);
}

int rp_frame_parse(const uint8_t *data, size_t len,
                   const struct rp_frame_limits *lim, struct rp_frame *out)
{
    if (len < HDR)
        return 0;
    uint16_t plen = load_le16(data);
    uint16_t type = load_le16(data + 2);
    if (plen > rp_frame_max_payload(lim))
        return -EMSGSIZE;
    if (plen == 0 && lim->reject_empty)
        return -EBADMSG;
    if (lim->type_max != 0 && (type < lim->type_min || type > lim->type_max))
        return -EBADMSG;
    if (len - HDR < plen)
        return 0;
    out->type = type;
    out->len = plen;
    out->payload = data + HDR;
    return (int)(HDR + plen);
}

int rp_frame_decoder_init(struct rp_frame_decoder *d,
                          const struct rp_frame_limits *lim)
{
    if (lim->max_payload > RP_PACKET_MAX_PAYLOAD)
        return -EINVAL;
    if (lim->type_max != 0 && lim->type_min > lim->type_max)
        return -EINVAL;
    memset(d, 0, sizeof *d);
    d->lim = *lim;
    return 0;
}

void rp_frame_decoder_destroy(struct rp_frame_decoder *d)
{
    partial_release(d);
    d->have = 0;
}

void rp_frame_decoder_trim(struct rp_frame_decoder *d)
{
    if (d->have == 0)
        partial_release(d);
}

static int decoder_fail(struct rp_frame_decoder *d, int err)
{
    d->error = err;
    return err;
}

/* Makes room for 'want' buffered bytes; 'want' never exceeds one frame that
   passed the limits, which bounds the buffer. */
static int partial_reserve(struct rp_frame_decoder *d, size_t want)
{
    if (want <= d->cap)
        return 0;
    size_t limit = RP_FRAME_HEADER_SIZE + rp_frame_max_payload(&d->lim);
    /* A cached buffer larger than this decoder's largest frame (another
       server's, with a larger max_payload) stays in the cache: the
       invariant cap <= limit bounds what a session holds. */
    if (!d->partial && cache.n > 0 && cache.cap[cache.n - 1] <= limit) {
        cache.n--;
        d->partial = cache.buf[cache.n];
        d->cap = cache.cap[cache.n];
        if (want <= d->cap)
            return 0;
    }
    size_t cap = want < PARTIAL_MIN ? PARTIAL_MIN : want;
    if (cap > limit)
        cap = limit;
    uint8_t *p = realloc(d->partial, cap);
    if (!p)
        return -ENOMEM;
    d->allocs++;
    d->partial = p;
    d->cap = (uint32_t)cap;
    return 0;
}

/* Bytes the partial frame will have when whole (only the header while the
   header itself is incomplete). */
static size_t partial_want(const struct rp_frame_decoder *d)
{
    return d->have < HDR ? HDR : HDR + (size_t)load_le16(d->partial);
}

static int partial_append(struct rp_frame_decoder *d, const uint8_t *data,
                          size_t n)
{
    int rc = partial_reserve(d, d->have + n);
    if (rc < 0)
        return rc;
    memcpy(d->partial + d->have, data, n);
    d->have += (uint32_t)n;
    d->copied += n;
    return 0;
}

int rp_frame_decoder_feed(struct rp_frame_decoder *d, const uint8_t *data,
                          size_t len, rp_frame_cb cb, void *user)
{
    struct rp_frame f;
    int frames = 0;
    int rc;

    if (d->error)
        return d->error;

    /* First finish the frame cut by the previous chunk, copying only what
       it still lacks. At most two rounds: the header, then the payload. */
    while (d->have > 0 && len > 0) {
        size_t need = partial_want(d) - d->have;
        size_t n = need < len ? need : len;
        if ((rc = partial_append(d, data, n)) < 0)
            return decoder_fail(d, rc);
        data += n;
        len -= n;
        rc = rp_frame_parse(d->partial, d->have, &d->lim, &f);
        if (rc < 0)
            return decoder_fail(d, rc);
        if (rc > 0) {
            d->have = 0;
            frames++;
            if ((rc = cb(user, &f)) < 0)
                return decoder_fail(d, rc);
        }
    }

    /* Whole frames in the chunk are handed out where they lie. */
    while (len > 0) {
        rc = rp_frame_parse(data, len, &d->lim, &f);
        if (rc < 0)
            return decoder_fail(d, rc);
        if (rc == 0)
            break;
        data += rc;
        len -= (size_t)rc;
        frames++;
        if ((rc = cb(user, &f)) < 0)
            return decoder_fail(d, rc);
    }

    /* The tail is a frame cut short (its header, if whole, was checked). */
    if (len > 0) {
        size_t whole = len < HDR ? HDR : HDR + (size_t)load_le16(data);
        if ((rc = partial_reserve(d, whole)) < 0 ||
            (rc = partial_append(d, data, len)) < 0)
            return decoder_fail(d, rc);
    }
    return frames;
}
