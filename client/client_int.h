/*
 * libringport-client's internals shared by its two files: client.c (the
 * connection, the frame queues, reconnect and resume) and ws_transport.c
 * (the WebSocket transport under them). Not installed.
 */
#ifndef RINGPORT_CLIENT_INT_H
#define RINGPORT_CLIENT_INT_H

#include <ringport/client.h>

#include "ws_codec.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define HEADER 4
#define READ_CHUNK 65536

/* Engine control messages (docs/protocol.md); all fields little-endian. */
#define CTL_FIRST 0xFF00
#define CTL_HELLO 0xFF00
#define CTL_RESUME_TOKEN 0xFF01
#define CTL_RESUME 0xFF02
#define CTL_RESUME_OK 0xFF03
#define CTL_RESUME_ERROR 0xFF04
#define CTL_ACK 0xFF05
#define CTL_BYE 0xFF06
#define TOKEN_LEN 16
#define ACK_EVERY_FRAMES 32
#define ACK_EVERY_BYTES 16384

/* WebSocket state (cfg.transport == RP_CLIENT_WS), ws_transport.c. */
enum { WIRE_NONE, WIRE_CTL, WIRE_OUT, WIRE_PONG };
#define WS_RAW_CAP 32768            /* received bytes not yet decoded */
#define WS_MSG_MAX (HEADER + 65535) /* payload of one message we send */

/*
 * Outgoing: one WebSocket message at a time sits in 'wire' (header, mask
 * key, masked payload) from its first byte until the socket took its last:
 * its payload (wire_pay bytes of 'ctl' or of 'out' from their send
 * offsets, per wire_src) counts as written only then, so a drop never
 * leaves a ringport frame half-sent as far as the frame accounting knows.
 * Messages never interleave (a ping's pong waits for the message begun).
 * Incoming: 'raw' holds socket bytes; data-frame payloads stream into
 * the client's 'in' as they arrive (rx_left bytes of the current data
 * frame remain), so after a decode 'raw' holds only an incomplete frame
 * header or an incomplete control frame. Bytes are read into 'raw' only
 * while 'in' has WS_RAW_CAP bytes free, so a decode always fits.
 */
struct cws {
    int on;          /* cfg.transport == RP_CLIENT_WS */
    int handshaking; /* CONNECTING with TCP up: the upgrade is under way */
    char *path;
    char key[RP_CWS_KEY_LEN + 1];
    int64_t hs_deadline_ms; /* CLOCK_MONOTONIC ms: the 101 is due by then */
    char req[512];
    size_t req_len, req_sent;
    uint8_t *wire; /* RP_CWS_MAX_HEADER + WS_MSG_MAX */
    size_t wire_len, wire_sent, wire_pay;
    int wire_src;
    uint8_t ping[RP_CWS_MAX_CONTROL]; /* the last ping's payload */
    size_t ping_len;
    int pong_due;
    uint8_t *raw; /* WS_RAW_CAP */
    size_t raw_len;
    uint64_t rx_left;
    uint8_t rnd[256]; /* getrandom bytes for mask keys, used from rnd_pos */
    size_t rnd_pos;
};

struct rp_client {
    struct rp_client_config cfg;
    char *host;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int fd;
    enum rp_client_state state;
    int last_error;
    uint32_t attempt;    /* failed connects since the last success */
    int64_t retry_at_ms; /* BACKOFF: when to connect again */
    uint64_t rng;        /* xorshift64 state, never 0 */
    int ever_connected;

    uint8_t *out;
    size_t out_len, out_sent, out_cap;
    size_t whole_end;   /* end of the frames written whole on this connection */
    uint64_t whole_cnt; /* how many they are */
    uint64_t out_base;  /* session number of the frame at out[0] */
    uint64_t out_hi;    /* game frames ever written whole on the session */
    uint8_t ctl[64];
    size_t ctl_len, ctl_sent;

    uint8_t *in;
    size_t in_pos, scan, in_len, in_cap;
    uint32_t in_ready; /* whole game frames in [in_pos, scan) */

    /* Resume (cfg.resume). */
    int have_session; /* sid and token are held */
    int resuming;     /* RESUME written, RESUME_OK awaited */
    int fresh;        /* this connection began with HELLO */
    int cut_next;     /* rp_client_drop_next: cut the next frame sent */
    uint64_t sid;
    uint8_t token[TOKEN_LEN];
    uint64_t in_count;   /* game frames received on the session */
    uint64_t in_acked;   /* in_count the server was last told */
    size_t in_ack_bytes; /* payload bytes received since */

    struct rp_client_stats stats;
    struct cws ws;
};

/* ---- ws_transport.c ---------------------------------------------------- */

/* Sets up cfg.transport's buffers at create: 0 or -ENOMEM. */
int rp__cws_init(struct rp_client *c);
void rp__cws_free(struct rp_client *c);
/* Forgets the connection's WebSocket state (a drop or a close). */
void rp__cws_reset(struct rp_client *c);
/* TCP is up: picks a key and queues the upgrade request. */
int rp__cws_begin(struct rp_client *c);
/* Writes the request, reads and checks the answer: 1 done (the socket
   carries WebSocket frames now), 0 waiting for the socket, or -errno. */
int rp__cws_handshake(struct rp_client *c);
/* The events the handshake waits for. */
short rp__cws_handshake_events(const struct rp_client *c);

/*
 * Writes the message in 'wire' (and then a pong due). Returns 1 once the
 * wire is empty, 0 while the socket is full, or -errno. When a message of
 * ours completed, *src and *pay say whose payload went out (else *pay = 0).
 */
int rp__cws_flush(struct rp_client *c, int *src, size_t *pay);
/*
 * Starts a binary message with the whole frames at the start of p[0, len)
 * that fit one message (at least the first) and writes what the socket
 * takes. The wire must be empty. Returns the payload bytes once all of it
 * is written, 0 if it waits in the wire (for rp__cws_flush), or -errno.
 */
ssize_t rp__cws_send(struct rp_client *c, int src, const uint8_t *p,
                     size_t len);
/* For rp_client_drop_next: writes a random strict prefix of the message
   carrying the one frame p[0, len), nothing more. */
void rp__cws_cut(struct rp_client *c, const uint8_t *p, size_t len);
/* Writes a whole masked frame at once if the socket takes it (for BYE
   and the close when leaving): 0, or -ETIMEDOUT after timeout_ms. */
int rp__cws_send_now(struct rp_client *c, unsigned opcode, const void *p,
                     size_t len, int timeout_ms);
/* Data in the wire or a pong due. */
int rp__cws_pending(const struct rp_client *c);
/*
 * Reads what arrived into the client's 'in' (payload bytes of binary
 * messages), answering pings. Returns 0 (the socket is empty, or 'in' has
 * no room), -ECONNRESET (the server closed: its close is answered), or
 * -EPROTO (a frame against RFC 6455: a close 1002 is sent). The caller
 * scans 'in' after every call through 'scan'.
 */
int rp__cws_read(struct rp_client *c, int (*scan)(struct rp_client *));
/* 'in' has room for a read. */
int rp__cws_can_read(const struct rp_client *c);

#endif
