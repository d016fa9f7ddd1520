/*
 * rp_server: a TCP server for game clients on top of the completion port.
 *
 * Threads and data flow:
 *
 *   accept thread --fd--> I/O thread k (owns an owned rp_port and, for
 *                         their whole life, the I/O of its sessions)
 *   I/O thread:  recv completion -> frame packets -> on_message
 *   any thread:  rp_server_send(sid, pkt) -> session send queue -> wakes the
 *                owning I/O thread (no wake when the sender is that thread)
 *   I/O thread:  gathers up to max_iov queued packets -> one send op ->
 *                on completion releases them
 *
 * Every session has exactly one receive outstanding while open and at most
 * one send in flight; packets queued meanwhile go out together in the next
 * gather send. An idle session holds no receive buffer, on either backend
 * (a multishot receive into the I/O thread's provided buffers, emulated on
 * epoll; whole frames are handed to on_message in place, only a partial
 * frame is copied into the session until it is whole).
 *
 * Callbacks run on the session's I/O thread, never two at once for one
 * session: on_join first, then on_message for each frame in arrival order,
 * then on_leave exactly once. A callback must not block; it may call any
 * rp_server_* function (a send from inside a callback is queued without a
 * wake-up and flushed at the end of the loop turn). While a session is in
 * a content group (group.h) its frames go to the group's thread instead,
 * and the server's on_leave waits for the group's last on_leave.
 *
 * Session data (the completion key): every session carries one 'void *'
 * that the program sets (rp_session_set_data, typically in on_join) and
 * that every later callback of the session receives as 'data', server's
 * and groups' alike, so a program needs no table of its own indexed by
 * session id. It stays with the session across group moves and is valid
 * from on_join to on_leave: the server's on_leave is the session's last
 * callback and the place to free it.
 *
 * Session resume (resume_grace_ms > 0, docs/server.md "Session resume"):
 * a session whose connection drops (peer closed or reset) is detached
 * rather than ended: it keeps its id, data, group and send queue (no
 * descriptor) for resume_grace_ms, and a new connection whose first frame
 * is RESUME{sid, token, received} re-attaches to it; the packets the
 * client had not received are sent again, in order. Not resumed in time,
 * it ends with RP_LEAVE_RESUME_EXPIRED. The engine speaks to the client in
 * control messages (types 0xFF00..0xFFFF, docs/protocol.md "Engine control
 * messages"), which never reach on_message.
 *
 * Errors follow the project convention: >= 0 success, -errno failure.
 */
#ifndef RINGPORT_SERVER_H
#define RINGPORT_SERVER_H

#include <ringport/api.h>
#include <ringport/packet.h>
#include <ringport/port.h>
#include <ringport/session.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rp_server;

/* Engine control messages (resume_grace_ms > 0): types RP_CTL_FIRST..
   RP_CTL_LAST are the engine's; docs/protocol.md gives their payloads. */
#define RP_CTL_FIRST 0xFF00u
#define RP_CTL_LAST 0xFFFFu
#define RP_CTL_HELLO 0xFF00u        /* C->S, empty: a new session */
#define RP_CTL_RESUME_TOKEN 0xFF01u /* S->C: u64 sid, 16-byte token */
#define RP_CTL_RESUME 0xFF02u       /* C->S: u64 sid, token, u64 received */
#define RP_CTL_RESUME_OK 0xFF03u    /* S->C: u64 received, new token */
#define RP_CTL_RESUME_ERROR 0xFF04u /* S->C: u16 code; then the close */
#define RP_CTL_ACK 0xFF05u          /* both: u64 received */
#define RP_CTL_BYE 0xFF06u          /* C->S, empty: a clean leave */
#define RP_RESUME_TOKEN_SIZE 16
#define RP_RESUME_MIN_PAYLOAD 32 /* RESUME's payload: 8 + 16 + 8 */
/* RESUME_ERROR codes. */
enum rp_resume_error {
    RP_RESUME_ERR_UNKNOWN = 1,   /* unknown, ended or expired session */
    RP_RESUME_ERR_TOKEN = 2,     /* wrong (or already used) token */
    RP_RESUME_ERR_COUNT = 3,     /* 'received' out of range */
    RP_RESUME_ERR_MALFORMED = 4, /* bad payload, or not the first frame */
};
/* The server ACKs every this many game frames it receives. */
#define RP_RESUME_ACK_EVERY 32

enum rp_server_mode {
    RP_SERVER_FRAMED = 0, /* length-prefixed packets (docs/protocol.md) */
    RP_SERVER_RAW = 1,    /* bytes as they come: on_data, rp_server_send_raw */
};

/*
 * A received frame, the same view in the server's on_message and in a
 * group's on_message. Valid only during the call; to keep it (to forward
 * it, queue it, look at it on a later tick) call rp_message_keep.
 */
struct rp_message {
    uint16_t type;
    uint16_t len;           /* payload bytes */
    const uint8_t *payload; /* never NULL */
    /* The packet that holds these bytes (a group's message, or one that
       waited while its session left a group: rp_server_send can forward
       it as is), or NULL when they lie in a receive buffer (the server's
       on_message, usually). rp_message_keep reads it for you. */
    struct rp_packet *packet;
};

struct rp_server_callbacks {
    /* A new session; its data is NULL until rp_session_set_data. Return
       nothing; to refuse by address use accept_filter, to drop later call
       rp_server_disconnect. */
    void (*on_join)(struct rp_server *srv, rp_sid sid, void *user);
    /* Framed mode: one whole frame, for a session in no group. */
    void (*on_message)(struct rp_server *srv, rp_sid sid, void *data,
                       const struct rp_message *msg, void *user);
    /* Raw mode: the next bytes of the stream ('bytes' valid during the
       call). */
    void (*on_data)(struct rp_server *srv, rp_sid sid, void *data,
                    const void *bytes, size_t len, void *user);
    /* The session has ended; 'sid' is already stale for every API but
       rp_session_get_data / set_data. Called exactly once per joined
       session (also at server stop), after every other callback of the
       session, the groups' included: free 'data' here. On the session's
       I/O thread. */
    void (*on_leave)(struct rp_server *srv, rp_sid sid, void *data,
                     enum rp_leave_reason reason, void *user);
    /* A move ticket (rp_group_move) that no on_enter will receive: the
       move was replaced by a later one, its target was stopping or is the
       group the session is in, or the session ended first. Each ticket
       comes back exactly once: to its on_enter or here. Runs on the
       session's I/O thread (or, for a move that reached the server as it
       stopped, on the thread in rp_server_stop; for a session its target
       group could not take for lack of memory, on that group's thread),
       possibly while a group
       handles the session: it gets the ticket, not the session's data.
       Required to pass tickets. */
    void (*on_ticket_drop)(struct rp_server *srv, rp_sid sid, void *ticket,
                           void *user);
    /* Resume (resume_grace_ms > 0), for a session in no group (a session
       in a group gets its group's on_detach / on_resume instead, on the
       group's thread). on_detach: its connection dropped; the session
       waits up to resume_grace_ms for a RESUME (sends to it are kept, up
       to send_queue_limit). on_resume: a new connection took it over (the
       old one, if still up, is cut first: on_detach runs before). Each
       on_resume follows one on_detach. On the session's I/O thread; may
       be NULL. */
    void (*on_detach)(struct rp_server *srv, rp_sid sid, void *data,
                      void *user);
    void (*on_resume)(struct rp_server *srv, rp_sid sid, void *data,
                      void *user);
    /* On the accept thread, before a session exists: return 0 to accept,
       anything else to refuse (the socket is closed and counted). */
    int (*accept_filter)(const struct sockaddr *addr, socklen_t addrlen,
                         void *user);
};

/*
 * Fill with rp_server_config_init() (the defaults below), then change what
 * you need. Zero-valued timeouts are off.
 */
struct rp_server_config {
    const char *listen_addr;    /* IPv4 or IPv6 literal; "127.0.0.1" */
    uint16_t port;              /* 0 = an ephemeral port (rp_server_port) */
    uint32_t io_threads;        /* 1..64; 1 */
    uint32_t max_sessions;      /* 1..1,000,000; 10,000 */
    uint32_t max_payload;       /* 1..65535; 8,192 */
    bool reject_empty;          /* framed: a zero-length payload is a
                                   protocol error (PROTOCOL); false */
    uint16_t type_min;          /* framed: accepted message types, */
    uint16_t type_max;          /* inclusive; no check while type_max is 0 */
    uint32_t send_queue_limit;  /* bytes queued per session before it is cut
                                   with SEND_OVERFLOW; >= max frame; 1 MiB */
    uint32_t idle_timeout_ms;   /* nothing received for this long; 0 (off) */
    uint32_t frame_deadline_ms; /* a frame once started must complete within
                                   this: stops a 1-byte drip; 10,000 */
    uint32_t first_packet_deadline_ms; /* first whole frame (framed) or first
                                          byte (raw) after connect; 0 (off) */
    uint32_t max_iov; /* packets per gather send, 1..IOV_MAX; 256 */
    uint32_t
        stop_drain_ms; /* graceful stop: queued sends get this long; 2,000 */
    uint32_t spin_us;  /* I/O thread wait policy (rp_port_config); 0 */
    uint32_t recv_buffer_size; /* provided buffer size (per I/O thread, not
                                  per session); 16,384 */
    uint32_t resume_grace_ms;  /* session resume: how long a dropped session
                                  waits detached; 0 (off: a drop ends it).
                                  On: framed mode, the join waits for the
                                  client's first frame, and types 0xFF00..
                                  0xFFFF are the engine's */
    /* WebSocket (RFC 6455, docs/protocol.md "WebSocket mapping"): a
       second listener on listen_addr whose connections are ordinary
       sessions (ids, groups, moves, limits, resume); each binary message
       carries whole frames. Framed mode only. */
    bool ws_enabled;        /* false */
    uint16_t ws_port;       /* 0 = an ephemeral port (rp_server_ws_port) */
    const char *ws_origins; /* comma-separated Origin allow-list; a browser
                               from any other origin gets 403. NULL or ""
                               = any (copied at create) */
    uint32_t ws_handshake_timeout_ms; /* the whole upgrade request within
                                         this after connect; 5,000 */
    uint32_t ws_max_message;          /* bytes per binary message, all fragments
                                         together (close 1009 past it);
                                         >= max_payload + 4; 1 MiB */
    enum rp_backend_kind backend;     /* AUTO (env RINGPORT_BACKEND applies) */
    enum rp_server_mode mode;         /* FRAMED */
    struct rp_server_callbacks cb;
    void *user; /* passed to every callback */
};

RP_API void rp_server_config_init(struct rp_server_config *cfg);

/*
 * Checks every field. Returns 0, or -EINVAL and writes one line naming the
 * field, its value and the allowed range into 'err' (e.g. "io_threads = 0:
 * must be 1..64"). 'err' may be NULL.
 */
RP_API int rp_server_config_validate(const struct rp_server_config *cfg,
                                     char *err, size_t errlen);

/*
 * Validates the config (logging the error line), creates the server and
 * binds and listens (so the port is known and a bind error is reported
 * here), but starts no thread. Returns 0, -EINVAL, -EADDRINUSE, ...
 */
RP_API int rp_server_create(const struct rp_server_config *cfg,
                            struct rp_server **out);
/* Starts the I/O threads and the accept thread. Returns 0 or -errno. */
RP_API int rp_server_start(struct rp_server *srv);
/*
 * Graceful stop: stops accepting (new connections are refused), lets queued
 * sends drain up to stop_drain_ms, ends every session with
 * RP_LEAVE_SERVER_STOP (each on_leave runs once), joins every thread.
 * Returns 0 (also when already stopped, or never started), or -EDEADLK,
 * doing nothing, when called on one of the server's own threads: an I/O
 * thread (on_join, on_message, on_data, on_leave), the accept thread
 * (accept_filter) or a thread running one of its groups (any group
 * handler). The stop joins those threads, so from there it would wait for
 * itself. Thread: any other. Idempotent.
 */
RP_API int rp_server_stop(struct rp_server *srv);
/* Stops the server if it runs, then frees everything. On one of the
   server's own threads (see rp_server_stop) it logs an error and does
   nothing. */
RP_API void rp_server_destroy(struct rp_server *srv);

/* The bound port (useful with port 0) and the backend in use. */
RP_API uint16_t rp_server_port(const struct rp_server *srv);
/* The WebSocket listener's bound port, or 0 when ws_enabled is false. */
RP_API uint16_t rp_server_ws_port(const struct rp_server *srv);
RP_API enum rp_backend_kind rp_server_backend(const struct rp_server *srv);

/*
 * Queues 'pkt' for the session and takes one reference to it; the caller
 * keeps its own. Returns 0, -ENOBUFS if the session's send queue is over its
 * byte limit (the peer reads too slowly: it is being disconnected with
 * SEND_OVERFLOW), -ENOTCONN if 'sid' is stale or closing, or -EINVAL for
 * a type in 0xFF00..0xFFFF on a server with resume on. Framed mode sends
 * the packet's wire bytes (header + payload). A detached session (resume)
 * keeps what is sent to it until it resumes or ends. Thread: any.
 */
RP_API int rp_server_send(struct rp_server *srv, rp_sid sid,
                          struct rp_packet *pkt);
/*
 * rp_server_send, except that the caller's reference goes with the packet:
 * the engine holds it from here, whatever the result (on failure it is
 * dropped), so the caller does not unref it. For a packet made to be sent
 * once: create, put, rp_server_send_take, done; a ref and an unref less
 * than rp_server_send + rp_packet_unref. Same returns. Thread: any.
 */
RP_API int rp_server_send_take(struct rp_server *srv, rp_sid sid,
                               struct rp_packet *pkt);
/*
 * Framed mode: sends one frame of 'type' with a copy of the 'len' payload
 * bytes at 'payload' (the caller keeps its buffer). From the session's own
 * on_message (a reply) this is the cheapest send there is: the frame is
 * written straight into the session's outgoing batch, with no packet of
 * its own (on a WebSocket connection, with resume on, for a frame of more
 * than 2 KiB, with a send_queue_limit under 64 KiB, and from any other
 * thread, it becomes a packet, as rp_server_send would send it; a batch
 * is charged its 2 KiB against send_queue_limit, so the limit bounds
 * memory). Returns 0, -ENOBUFS, -ENOTCONN, as
 * rp_server_send; -EMSGSIZE if len > RP_PACKET_MAX_PAYLOAD; -ENOMEM; or
 * -EINVAL in raw mode, or for a type in 0xFF00..0xFFFF with resume on.
 * Thread: any.
 */
RP_API int rp_server_send_frame(struct rp_server *srv, rp_sid sid,
                                uint16_t type, const void *payload, size_t len);
/* Raw mode: copies 'len' bytes into the session's send queue (from the
   session's own on_data, 1 KiB or more of the delivered bytes are sent
   from the receive buffer instead, without a copy). Same returns.
   Thread: any. */
RP_API int rp_server_send_raw(struct rp_server *srv, rp_sid sid,
                              const void *data, size_t len);
/*
 * Queues one shared packet for 'n' sessions: one buffer, n references, no
 * copies. Returns how many sessions it was queued for (stale ids and full
 * queues are skipped, as rp_server_send would refuse them). Thread: any.
 */
RP_API int rp_server_broadcast(struct rp_server *srv, const rp_sid *ids,
                               size_t n, struct rp_packet *pkt);
/* Ends the session with RP_LEAVE_KICKED after the sends already queued.
   Returns 0, or -ENOTCONN if stale. Twice is harmless. Thread: any. */
RP_API int rp_server_disconnect(struct rp_server *srv, rp_sid sid);
/* The peer's address. Returns 0 or -ENOTCONN. Thread: any. */
RP_API int rp_server_peer(struct rp_server *srv, rp_sid sid,
                          struct sockaddr_storage *addr, socklen_t *addrlen);

/*
 * Session data. The session's own thread may set and read it: the
 * session's I/O thread while it is in no group (its server callbacks), the
 * group's thread while it is in a group (that group's callbacks, on_tick
 * included), from on_join to the end of on_leave. A move hands it over: a
 * group keeps it until its on_leave returns; a session in no group hands
 * it over when rp_group_move is called on its I/O thread (the move applies
 * at once there). No lock and no lookup: the id names a slot. Returns 0,
 * or -ENOTCONN if the slot holds another session now (a stale id; a
 * program bug on the session's own thread).
 */
RP_API int rp_session_set_data(struct rp_server *srv, rp_sid sid, void *data);
/* The session's data, or NULL (none set, or a stale id). Same thread rule. */
RP_API void *rp_session_get_data(struct rp_server *srv, rp_sid sid);

/*
 * Keeps a message past its callback: a packet with one reference, the
 * caller's (rp_packet_unref when done; rp_server_send and
 * rp_server_broadcast take their own). A group's message is already a
 * packet: one more reference, no copy. The server's on_message hands
 * frames over in place from the receive buffer: a copy. Returns 0, or
 * -ENOMEM (copy only). Thread: the callback's.
 */
RP_API int rp_message_keep(const struct rp_message *msg,
                           struct rp_packet **out);
/* Always a copy of 'msg' as a packet (one reference, the caller's): for a
   packet of your own to change. 0 or -ENOMEM. */
RP_API int rp_message_to_packet(const struct rp_message *msg,
                                struct rp_packet **out);

/*
 * Counters, kept per I/O thread without atomics on the hot path and summed
 * here (each counter is read with a relaxed load; the sum is a consistent
 * picture per thread, not across threads).
 */
struct rp_server_stats {
    uint64_t sessions;      /* open now */
    uint64_t sessions_max;  /* high-water mark */
    uint64_t accepts;       /* connections accepted into sessions */
    uint64_t refused;       /* closed at once: max_sessions, accept_filter,
                               stopping */
    uint64_t accept_errors; /* EMFILE/ENFILE and other accept4 failures */
    uint64_t bytes_in, bytes_out;
    uint64_t packets_in, packets_out;
    uint64_t sends; /* send operations (gather writes) completed */
    uint64_t leaves[RP_LEAVE_REASON_COUNT];
    /* Resume (resume_grace_ms > 0); expiries are
       leaves[RP_LEAVE_RESUME_EXPIRED]. */
    uint64_t detached;        /* sessions detached now (no descriptor) */
    uint64_t resumes;         /* RESUMEs that re-attached a session */
    uint64_t resume_refused;  /* RESUMEs answered with RESUME_ERROR */
    uint64_t resume_handoffs; /* connections handed to another session */
    /* WebSocket (ws_enabled): the transport's share of the counts above. */
    uint64_t ws_accepts;  /* connections accepted on the WebSocket port */
    uint64_t ws_sessions; /* open now over WebSocket (handshake or after) */
    uint64_t ws_upgrades; /* handshakes answered 101 */
    uint64_t ws_refused;  /* handshakes answered 400, 403 or 426 */
    /* The I/O threads' ports, summed (struct rp_port_stats; the *_max
       fields are the largest of one thread): system calls per message is
       io_enters / packets_in (docs/server.md "I/O counters"). */
    uint64_t io_enters;        /* system calls into the backend */
    uint64_t io_waits;         /* of which waits (may sleep) */
    uint64_t io_waits_empty;   /* waits that returned with no completion */
    uint64_t io_waits_short;   /* moderated waits that timed out short */
    uint64_t io_completions;   /* completions the ports dispatched */
    uint64_t recv_nobufs;      /* io_uring: receives ended by -ENOBUFS */
    uint64_t recv_rearms;      /* io_uring: multishot receives re-armed */
    uint64_t sends_short;      /* sends continued after a short completion */
    uint64_t sends_late;       /* io_uring: sends not done in the enter that
                                  submitted them */
    uint64_t buffers_out_max;  /* most receive buffers out of the ring */
    uint64_t buffers_lent;     /* receive buffers lent to sends (zero-copy) */
    uint64_t buffers_lent_max; /* most lent at once */
    uint64_t buffers; /* receive buffers in one I/O thread's ring now (the
                         largest; io_uring grows it under load) */
};

RP_API void rp_server_get_stats(struct rp_server *srv,
                                struct rp_server_stats *out);

#ifdef __cplusplus
}
#endif

#endif
