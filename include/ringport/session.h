/*
 * Session ids and disconnect reasons, shared by the server and (later) the
 * content groups.
 *
 * A session id is 64 bits: the slot index in the server's session table in
 * the low 32 bits, the slot's generation in the high 32. The generation is
 * bumped every time a slot is reused, so an id kept after its session left
 * is "stale": every API rejects it with -ENOTCONN and nothing sent to it
 * ever reaches the slot's next occupant. 0 is never a valid id.
 */
#ifndef RINGPORT_SESSION_H
#define RINGPORT_SESSION_H

#include <ringport/api.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint64_t rp_sid; /* slot | generation << 32 */

#define RP_SID_NONE ((rp_sid)0)

static inline uint32_t rp_sid_slot(rp_sid sid)
{
    return (uint32_t)sid;
}

static inline uint32_t rp_sid_gen(rp_sid sid)
{
    return (uint32_t)(sid >> 32);
}

static inline rp_sid rp_sid_make(uint32_t slot, uint32_t gen)
{
    return (rp_sid)slot | (rp_sid)gen << 32;
}

/* Why a session ended; passed to on_leave and counted per reason. */
enum rp_leave_reason {
    RP_LEAVE_PEER_CLOSED = 0, /* orderly EOF from the peer */
    RP_LEAVE_RESET,           /* ECONNRESET, EPIPE and other socket errors */
    RP_LEAVE_PROTOCOL,        /* malformed or oversized frame */
    RP_LEAVE_IDLE_TIMEOUT,    /* nothing received for idle_timeout_ms */
    RP_LEAVE_FRAME_DEADLINE,  /* a started frame did not complete in time */
    RP_LEAVE_FIRST_PACKET,    /* no whole packet within the first-packet
                                 deadline after connect */
    RP_LEAVE_SEND_OVERFLOW,   /* queued bytes passed send_queue_limit: the
                                 peer does not read */
    RP_LEAVE_SERVER_STOP,     /* graceful stop */
    RP_LEAVE_KICKED,          /* rp_server_disconnect() */
    RP_LEAVE_MOVED,           /* group on_leave: rp_group_move() */
    RP_LEAVE_GROUP_STOP,      /* group on_leave: rp_group_stop() */
    RP_LEAVE_RESUME_EXPIRED,  /* detached (resume_grace_ms > 0) and not
                                 resumed within the grace period */
    RP_LEAVE_REASON_COUNT
};

/* "peer_closed", "reset", "protocol", ... (snake_case, for logs and
   metrics labels). */
RP_API const char *rp_leave_reason_name(enum rp_leave_reason reason);

#ifdef __cplusplus
}
#endif

#endif
