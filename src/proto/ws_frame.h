/*
 * WebSocket frames (RFC 6455 section 5), server side, as a pure codec: the
 * decoder cuts the client's byte stream into frames and unmasks their
 * payload in place; the encoder writes the (unmasked) header of a server
 * frame. No I/O; the decoder allocates nothing (a control frame's payload,
 * at most 125 bytes, is gathered in the decoder itself).
 *
 * Why the engine has its own (and not libwebsockets or wslay): see
 * proto/ws_handshake.h. The point is the send side: a server frame's
 * header depends only on the payload length, so the engine writes it
 * once per packet, in header room in front of the packet's wire bytes
 * (rp__packet_ws_wire), and a broadcast to N WebSocket sessions stays one
 * shared buffer.
 *
 * Binary message payloads are not reassembled into a buffer: they are
 * handed out as they arrive (RP_WS_DATA, in place, unmasked) and the
 * caller streams them into its ringport frame decoder, which copies only
 * a frame cut by a chunk's end. A fragmented message therefore costs no
 * more memory than an unfragmented one; the limit is on its total size.
 *
 * Rules (a violation sets d->error to the close code and fails the feed
 * with -EPROTO; every later feed fails the same way):
 *   1002  a frame without the mask bit (clients must mask), RSV bits set
 *         (no extension is negotiated), an unknown opcode, a control frame
 *         over 125 bytes or fragmented, a continuation with no message
 *         started, a new data frame inside a fragmented message, a 64-bit
 *         length with its top bit set, a close payload of 1 byte or with
 *         a code a peer may not send;
 *   1003  a text frame (the engine carries binary frames only);
 *   1007  a close whose reason is not UTF-8;
 *   1009  a message (all its fragments) over max_message bytes.
 */
#ifndef RP_PROTO_WS_FRAME_H
#define RP_PROTO_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RP_WS_OP_CONT 0x0
#define RP_WS_OP_TEXT 0x1
#define RP_WS_OP_BINARY 0x2
#define RP_WS_OP_CLOSE 0x8
#define RP_WS_OP_PING 0x9
#define RP_WS_OP_PONG 0xA

#define RP_WS_CLOSE_NORMAL 1000
#define RP_WS_CLOSE_GOING_AWAY 1001
#define RP_WS_CLOSE_PROTOCOL 1002
#define RP_WS_CLOSE_UNSUPPORTED 1003
#define RP_WS_CLOSE_INVALID 1007
#define RP_WS_CLOSE_TOO_BIG 1009
#define RP_WS_CLOSE_INTERNAL 1011

#define RP_WS_MAX_CONTROL 125u
/* The longest header a server frame needs (64-bit length, no mask). */
#define RP_WS_MAX_HEADER 10u

enum rp_ws_event {
    RP_WS_DATA = 1,    /* binary payload bytes, in place and unmasked */
    RP_WS_MESSAGE_END, /* the binary message is complete (len 0) */
    RP_WS_PING,        /* a whole ping's payload: answer with a pong */
    RP_WS_PONG,        /* a whole pong's payload (usually ignored) */
    RP_WS_CLOSE,       /* a whole close's payload (0, or 2..125 bytes) */
};

/*
 * Called in stream order. Return 0 to go on, or a negative errno to stop
 * the feed (returned by rp_ws_decoder_feed; the decoder is left as it was
 * after this event, so a caller that stops at a close stops for good).
 */
typedef int (*rp_ws_cb)(void *user, enum rp_ws_event ev, const uint8_t *data,
                        size_t len);

/*
 * Invariants: hdr_have < the current header's size while a header is
 * being gathered; 'remain' payload bytes of the current frame are still
 * to come; ctl_len <= RP_WS_MAX_CONTROL; msg_len <= max_message; once
 * 'error' is set it never changes.
 */
struct rp_ws_decoder {
    uint64_t max_message; /* bytes per binary message, all fragments */
    uint64_t msg_len;     /* bytes of the current message so far */
    uint64_t remain;      /* payload bytes of the current frame to come */
    uint8_t hdr[14];
    uint8_t hdr_have;
    uint8_t opcode;  /* the current frame's */
    bool fin;        /* the current frame's */
    bool in_payload; /* 'remain' counts; else a header is being read */
    bool in_message; /* a fragmented binary message awaits continuations */
    uint8_t mask[4];
    uint8_t mask_pos; /* mask index of the next payload byte */
    uint8_t ctl_len;
    uint8_t ctl[RP_WS_MAX_CONTROL];
    uint16_t error; /* 0, or the close code every later feed fails with */
};

void rp_ws_decoder_init(struct rp_ws_decoder *d, uint64_t max_message);

/*
 * Feeds the next 'len' bytes of the stream. Unmasks binary payloads in
 * place ('data' is written) and hands them out with RP_WS_DATA. Returns 0,
 * -EPROTO (d->error holds the close code to send), or what 'cb' returned.
 * Thread: the decoder's owner.
 */
int rp_ws_decoder_feed(struct rp_ws_decoder *d, uint8_t *data, size_t len,
                       rp_ws_cb cb, void *user);

/* Whether a close code may appear in a close frame a peer sends. */
bool rp_ws_close_code_valid(uint16_t code);

/*
 * Writes the header of an unmasked server frame with FIN set, the minimal
 * length encoding, into dst (RP_WS_MAX_HEADER bytes of room). Returns its
 * size: 2, 4 or 10.
 */
size_t rp_ws_header(uint8_t *dst, uint8_t opcode, uint64_t len);

struct rp_packet;
/*
 * A packet as one binary WebSocket message: its WebSocket header then its
 * ringport wire bytes (header + payload), *len bytes. The header lives in
 * room the packet reserves in front of its wire bytes and is written once,
 * by the first call, under an atomic once-flag (the other callers, on any
 * thread, wait the few nanoseconds that takes, then only read), so any
 * number of threads may send the same shared packet at once and a
 * broadcast stays one buffer. A put resets it (a sole holder may make the
 * packet longer after its sends are back). Lives in proto/packet.c, which
 * owns the packet's layout. Thread: any holder.
 */
const uint8_t *rp__packet_ws_wire(const struct rp_packet *pkt, size_t *len);

#endif
