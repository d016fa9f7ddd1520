/*
 * libringport-client: a game client's side of a ringport connection, in C
 * with nothing but libc. It speaks the frame format of docs/protocol.md
 * (u16 length + u16 type + payload, little-endian), keeps a send queue and
 * a receive buffer, and reconnects by itself with exponential back-off and
 * jitter, so a client program only calls send, poll and recv:
 *
 *     struct rp_client_config cfg;
 *     rp_client_config_init(&cfg, "127.0.0.1", 7000);
 *     rp_client_create(&cfg, &c);
 *     rp_client_connect(c, 5000);            // blocking, with a timeout
 *     rp_client_send(c, 1, "hi", 2);
 *     while (rp_client_poll(c, 100) >= 0)    // I/O, reconnects
 *         while (rp_client_recv(c, &frame) > 0)
 *             handle(frame.type, frame.payload, frame.len);
 *
 * Two ways to drive it:
 * - blocking: rp_client_connect waits for the connection, rp_client_poll
 *   waits up to its timeout for data (or for the back-off to pass);
 * - in the caller's own poll/epoll loop: rp_client_start begins a connect
 *   without waiting; the caller watches rp_client_fd() for
 *   rp_client_events() (the descriptor changes when the client reconnects:
 *   read both again after every rp_client_poll), sleeps at most
 *   rp_client_timeout_ms(), and then calls rp_client_poll(c, 0).
 *
 * Delivery across a reconnect: a frame is written whole or not at all on a
 * connection; a frame cut by a drop is sent again, whole, on the next one,
 * and frames queued meanwhile follow in order. Without session resume on
 * the server a reconnect is a new session, and a frame that was written
 * before the drop may or may not have been handled (the server never
 * acknowledges it): at most once. The program learns of a reconnect from
 * rp_client_get_stats (connects grows) and starts its session again
 * (a game logs in again). With cfg.resume = 1 and a server with
 * resume_grace_ms > 0, a reconnect resumes the session instead: the
 * client keeps what it wrote until the server acknowledges it and, after
 * RESUME_OK, sends again exactly what the server had not received; the
 * server does the same: nothing lost or doubled either way. Only a lost
 * session (stats.sessions_lost grows) means starting again.
 *
 * Transport: TCP (the frames themselves), or WebSocket (cfg.transport =
 * RP_CLIENT_WS: RFC 6455 to the server's ws_port, frames in masked binary
 * messages; docs/client.md, "WebSocket"), the same API either way.
 *
 * Thread: a client belongs to one thread at a time; it holds no lock and
 * starts no thread. Different clients are independent.
 *
 * Errors follow ringport's convention: >= 0 success, -errno failure.
 */
#ifndef RINGPORT_CLIENT_H
#define RINGPORT_CLIENT_H

#include <stdint.h>

/* What libringport-client exports: it is built with hidden visibility, so
   only declarations marked here are part of its shared library's ABI.
   (Its own marker: the client needs none of the engine's headers.) */
#if defined(__GNUC__) || defined(__clang__)
#define RP_CLIENT_API __attribute__((visibility("default")))
#else
#define RP_CLIENT_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

struct rp_client; /* opaque; rp_client_create / rp_client_destroy */

/* How frames travel (docs/client.md, "WebSocket"). */
enum rp_client_transport {
    RP_CLIENT_TCP = 0, /* the frames themselves on a TCP stream */
    RP_CLIENT_WS,      /* RFC 6455: an upgrade to ws://host:port/ws_path,
                          then each frame (or run of frames) in a masked
                          binary message; the server's ws_port */
};

struct rp_client_config {
    const char *host;        /* name or address; resolved by rp_client_create
                                (a blocking getaddrinfo); copied */
    uint16_t port;           /* TCP port (WS: the server's WebSocket port) */
    uint32_t max_payload;    /* a received frame over it is a protocol error
                                (the connection is dropped); default 8192,
                                at most 65535 */
    uint32_t send_queue_max; /* bytes queued and not yet written; a send
                                past it fails with -ENOBUFS; default 1 MiB */
    int reconnect;           /* 1: on a drop or a failed connect, connect
                                again after a back-off (default 1) */
    uint32_t backoff_min_ms; /* first back-off, default 100 */
    uint32_t backoff_max_ms; /* cap of the doubling, default 5000 */
    uint64_t seed;           /* jitter seed; 0: from getrandom */
    int resume;              /* 1: session resume with a ringport server
                                that has resume_grace_ms > 0 (docs/client.md;
                                needs reconnect = 1 and max_payload >= 64;
                                default 0) */
    enum rp_client_transport transport; /* default RP_CLIENT_TCP */
    const char *ws_path;      /* WS: the request path (default "/"; printable,
                                 no space, at most 256 bytes); copied */
    uint32_t ws_handshake_ms; /* WS: the server's 101 is due this long after
                                 TCP connects, else the connect fails with
                                 -ETIMEDOUT (default 10000) */
};

/* Fills the defaults above for host:port (host is not copied here). */
RP_CLIENT_API void rp_client_config_init(struct rp_client_config *cfg,
                                         const char *host, uint16_t port);

enum rp_client_state {
    RP_CLIENT_IDLE = 0,   /* created, no connect asked for yet */
    RP_CLIENT_CONNECTING, /* a connect is under way */
    RP_CLIENT_CONNECTED,
    RP_CLIENT_BACKOFF, /* dropped or refused; connects again when the
                          back-off has passed (reconnect = 1) */
    RP_CLIENT_CLOSED,  /* dropped or refused with reconnect = 0 */
};

/* A received frame. 'payload' points into the client's buffer: valid
   until the next rp_client_poll, rp_client_recv or rp_client_destroy. */
struct rp_client_frame {
    uint16_t type;
    uint16_t len;
    const uint8_t *payload;
};

struct rp_client_stats {
    uint64_t connects; /* connections made, the first included */
    uint64_t drops;    /* established connections that were lost */
    uint64_t failed_connects;
    uint64_t frames_out, frames_in;
    uint64_t frames_resent; /* frames cut by a drop and sent again whole;
                               with resume also frames the server had not
                               received, sent again after RESUME_OK */
    uint64_t resumes;       /* reconnects that resumed the session */
    uint64_t sessions_lost; /* resume: sessions refused (RESUME_ERROR) or
                               lost before their token came; each time the
                               client started a new session with HELLO and
                               dropped what it held for the old one: the
                               program logs in again */
};

/*
 * Creates a client for cfg->host:port. Returns 0, -EINVAL (bad config),
 * -ENOENT (the host does not resolve) or -ENOMEM. Nothing is connected yet.
 */
RP_CLIENT_API int rp_client_create(const struct rp_client_config *cfg,
                                   struct rp_client **out);

/* Closes the connection at once (queued frames are dropped) and frees. */
RP_CLIENT_API void rp_client_destroy(struct rp_client *c);

/*
 * Connects and waits at most timeout_ms (< 0: no limit) for the
 * connection. Returns 0 once connected, -ETIMEDOUT, or the connect's error
 * (-ECONNREFUSED, ...). A failed attempt does not start the back-off:
 * call again, or rp_client_start. Not while connected (-EISCONN).
 */
RP_CLIENT_API int rp_client_connect(struct rp_client *c, int timeout_ms);

/*
 * Starts a connect without waiting: returns 0 (connected at once, or
 * under way: see rp_client_state) or -errno. rp_client_poll finishes it.
 */
RP_CLIENT_API int rp_client_start(struct rp_client *c);

/*
 * Does the client's I/O: finishes a connect, writes queued frames, reads
 * what has arrived, and connects again once a back-off has passed. Waits
 * at most timeout_ms (0: not at all; < 0: until something happens) for the
 * socket or the back-off. Returns the number of whole frames ready for
 * rp_client_recv (>= 0), or -ENOTCONN once the client is CLOSED (the
 * cause: rp_client_last_error). A drop with reconnect on is not an error:
 * the state turns to BACKOFF and the call returns what is ready.
 */
RP_CLIENT_API int rp_client_poll(struct rp_client *c, int timeout_ms);

/*
 * Queues one frame (copied) and writes it at once if the socket takes it.
 * Returns 0, -EMSGSIZE (len > 65535), -ENOBUFS (the queue would pass
 * send_queue_max) or -ENOTCONN (CLOSED, or never started). Frames sent
 * while connecting or in back-off wait for the connection.
 */
RP_CLIENT_API int rp_client_send(struct rp_client *c, uint16_t type,
                                 const void *payload, uint16_t len);

/* Takes the next received frame: 1 with *out filled, or 0 if none. */
RP_CLIENT_API int rp_client_recv(struct rp_client *c,
                                 struct rp_client_frame *out);

/*
 * Waits at most timeout_ms for every queued frame to be written (handing
 * received frames to nobody: they stay for rp_client_recv). Returns 0,
 * -ETIMEDOUT, or -ENOTCONN once CLOSED.
 */
RP_CLIENT_API int rp_client_flush(struct rp_client *c, int timeout_ms);

/* Drops the connection now (as a network drop would): for tests. */
RP_CLIENT_API void rp_client_drop(struct rp_client *c);

/*
 * A clean leave: writes what is queued (waiting at most timeout_ms; < 0:
 * no limit), then, with resume on, BYE, so the server ends the session at
 * once instead of keeping it for a resume; then shuts its side down and
 * closes once the server has closed (so no reset can overtake the BYE;
 * frames that still arrive are discarded). The client is
 * CLOSED afterwards. Returns 0, -ETIMEDOUT (closed all the same) or
 * -ENOTCONN.
 */
RP_CLIENT_API int rp_client_leave(struct rp_client *c, int timeout_ms);

/*
 * For tests: the next rp_client_send while connected drops the connection
 * in the middle of its frame, as a network drop mid-frame would: what was
 * queued before is written, then (at a frame boundary) a random prefix of
 * the new frame, at least one byte and never all of it, then the
 * connection is reset. The frame stays queued and is sent again whole, as
 * after any drop. Cleared by that send.
 */
RP_CLIENT_API void rp_client_drop_next(struct rp_client *c);

RP_CLIENT_API enum rp_client_state rp_client_state(const struct rp_client *c);
RP_CLIENT_API int rp_client_fd(const struct rp_client *c); /* -1 when none */
RP_CLIENT_API short
rp_client_events(const struct rp_client *c); /* POLLIN / POLLOUT */
/* Milliseconds until the client needs rp_client_poll without any socket
   event (a back-off ending; over WebSocket also the ws_handshake_ms bound
   on the server's answer to the upgrade), or -1 for no such deadline. */
RP_CLIENT_API int rp_client_timeout_ms(const struct rp_client *c);
/* Why the last connection ended or the last connect failed (-errno), or
   0. A frame over max_payload reads -EMSGSIZE; a peer close -ECONNRESET
   (WS: also a close frame); a WebSocket handshake refused or answered
   wrongly, or a frame against RFC 6455 (a text or masked frame from the
   server, RSV bits, a bad control frame), -EPROTO. */
RP_CLIENT_API int rp_client_last_error(const struct rp_client *c);
RP_CLIENT_API void rp_client_get_stats(const struct rp_client *c,
                                       struct rp_client_stats *out);

/*
 * The back-off before attempt 'attempt' (1 = first retry): the doubling
 * d = min(max_ms, min_ms << (attempt - 1)), then "equal jitter": a value in
 * [d/2, d], drawn from 'rnd'. Exposed so its bounds can be tested.
 */
RP_CLIENT_API uint32_t rp_client_backoff_ms(uint32_t attempt, uint32_t min_ms,
                                            uint32_t max_ms, uint64_t rnd);

#ifdef __cplusplus
}
#endif

#endif
