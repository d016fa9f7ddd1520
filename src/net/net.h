/*
 * Internals of the network server (layer 6), shared by the files of
 * src/net/: the session table, the sessions, the I/O threads, the accept
 * thread and the public entry points in server.c.
 *
 * Threads and ownership:
 *   - struct rp_session lives in the table for the server's life; its fields
 *     are split into the shared part (atomics, and what the accept thread
 *     writes before it publishes the session) and the owner part, touched
 *     only by the session's I/O thread ('owner') with no lock.
 *   - A request (struct net_req) crosses threads through the owner's MPSC
 *     inbox. Send requests come from a pool and, once popped, are relinked
 *     into the session's local send queue, so a queued packet costs one node.
 */
#ifndef RP_NET_NET_H
#define RP_NET_NET_H

#include "core/assert.h"
#include "core/mpsc.h"
#include "core/pool.h"
#include "proto/frame.h"
#include <netinet/in.h>
#include <pthread.h>
#include <ringport/server.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* ---- session state word ----------------------------------------------
 * state = generation << 32 | CLOSING | refs.
 *   refs: one while open (dropped at the end of teardown), one per API call
 *   in progress, one per request node in an inbox. A free slot has refs 0.
 *   CLOSING: set once, by whoever ends the session first; no new reference
 *   is handed out after it. The thread that drops the last reference frees
 *   the slot and bumps the generation (never to 0), so old ids go stale.
 */
#define NET_CLOSING ((uint64_t)1 << 31)
#define NET_REFS_MASK ((uint64_t)NET_CLOSING - 1)

enum net_req_kind {
    NET_REQ_OPEN = 1, /* accept thread: a new fd for this slot */
    NET_REQ_CLOSE,    /* close_reason says why */
    NET_REQ_SEND,     /* one packet */
    NET_REQ_MOVE,     /* route_to / route_from / why (route.c) */
    NET_REQ_LEFT,     /* a group ran on_leave for a move out (route.c) */
    NET_REQ_RESUME,   /* a struct net_resume: a connection for a session */
};

/*
 * A request that is its kind and session alone (OPEN, LEFT, CLOSE):
 * embedded in the slot, 24 bytes where a net_req is 88. It begins as every
 * net_req does (node, sid, kind: checked in io_thread.c), so the owner
 * reads any inbox node as a net_sig first and as a net_req only for the
 * kinds that are one (SEND, MOVE, RESUME).
 */
struct net_sig {
    struct rp_mpsc_node node; /* inbox link (must stay first) */
    rp_sid sid;
    uint8_t kind; /* enum net_req_kind */
};

struct net_req {
    struct rp_mpsc_node node; /* inbox link (must stay first) */
    rp_sid sid;               /* sid and kind: as in net_sig */
    uint8_t kind;
    uint32_t bytes;        /* SEND: bytes counted in queued_bytes */
    struct net_req *next;  /* local send queue link */
    struct rp_packet *pkt; /* SEND: one reference, the request's; NULL for
                              a lent receive buffer (below) */
    /* SEND with pkt NULL (raw mode, owner thread; session.c): 'bytes'
       bytes at 'lent' in receive buffer 'lent_id' (below) of the owner's
       provided buffers, recycled when the request is released. */
    const uint8_t *lent;
    void *route_to;   /* MOVE: the target group, NULL = none */
    void *route_from; /* MOVE: only if still in this group (or NULL) */
    void *ticket;     /* MOVE: the program's, for on_enter or drop */
    uint8_t why;      /* MOVE: the old group's leave reason */
    bool ctl;    /* SEND: an engine control frame (resume.c): not counted in
                    queued_bytes, never retained or resent */
    bool own;    /* SEND: counted in own_queued, not queued_bytes */
    bool ws_raw; /* SEND (with ctl): bytes for a WebSocket connection as
                    they are, the packet's payload alone (ws_session.c:
                    a handshake response, a pong, a close) */
    uint16_t lent_id;
};

/*
 * A RESUME's hand-off (resume.c): the thread that read the RESUME (A) has
 * taken back every op on 'fd' (not closed, not shut down) and hands it to
 * the owner of 'target' (B) with what the client sent. malloc'd; freed by
 * B. 'target' carries one slot reference, or is NULL (no such session:
 * pushed to A itself, which refuses it).
 */
struct net_resume {
    struct net_req req; /* kind NET_REQ_RESUME (must stay first) */
    struct rp_session *target;
    rp_sid sid;
    int fd;
    uint64_t received;
    uint8_t token[RP_RESUME_TOKEN_SIZE];
    bool ws; /* 'fd' speaks WebSocket (its handshake is done) */
};

/* ---- routing to content groups (route.c) -----------------------------
 * Layer 7 (src/group) plugs in through struct net_route_ops; this layer
 * never includes it. A group is an opaque 'void *' here.
 *
 * A message for a group is a struct net_route_msg pushed into the group's
 * inbox. ENTER and LEAVE markers are embedded in the session's routing
 * extension (struct net_route_state; at most one of each is ever in
 * flight: see route.c); MSG nodes come from
 * srv->route_pool and carry one packet reference; DETACH and RESUME
 * markers (session resume) come from the same pool with no packet, since
 * any number of them may be in flight. POST nodes (rp_group_post, from
 * any thread, no session) come from the same pool with one packet
 * reference.
 *
 * A LEAVE marker's 'state' decides, exactly once, what the leave is:
 *   NET_LEAVE_MOVE  a move out: the group runs on_leave('reason');
 *   0..COUNT-1      the session ended: on_leave(state).
 * Either way the group then replies with rp__route_left(), which hands
 * its slot reference back to the I/O thread (and, for an ended session,
 * lets the server's on_leave run last). The group takes the state with an
 * exchange to NET_LEAVE_TAKEN; a disconnect while moving turns MOVE into
 * its reason with a CAS, so exactly one side wins.
 */
enum net_route_kind {
    NET_ROUTE_MSG = 1,
    NET_ROUTE_ENTER,
    NET_ROUTE_LEAVE,
    NET_ROUTE_DETACH, /* resume: on_detach / on_resume in the group, in */
    NET_ROUTE_RESUME, /* order with its messages (pooled nodes, no pkt) */
    NET_ROUTE_POST,   /* rp_group_post: no session, 'pkt' and 'tag' */
};
#define NET_LEAVE_MOVE 0x100
#define NET_LEAVE_TAKEN 0x200

struct net_route_msg {
    struct rp_mpsc_node node;   /* group inbox link (must stay first) */
    struct net_route_msg *next; /* the session's held list while moving */
    rp_sid sid;
    struct rp_packet *pkt; /* MSG: one reference, the message's */
    union {
        void *ticket; /* ENTER: the move's ticket, for on_enter */
        uint32_t tag; /* POST: rp_group_post's tag */
    };
    _Atomic int state; /* LEAVE: see above */
    uint8_t kind;
    uint8_t reason; /* LEAVE of a move: MOVED or GROUP_STOP */
};

struct net_route_ops {
    /* I/O thread, before an ENTER is pushed: false if the group is
       stopping (the session then goes to no group). A true must be
       followed by push(ENTER). */
    bool (*admit)(void *group);
    /* Any thread: appends 'm' to the group's inbox and wakes it. */
    void (*push)(void *group, struct net_route_msg *m);
    /* After the I/O threads have exited (rp_server_stop): every group
       handles what is left, runs the last on_leave calls, and stops. */
    void (*stop)(struct rp_server *srv);
    /* rp_server_destroy: frees the groups. */
    void (*destroy)(struct rp_server *srv);
    /* True on a thread that runs groups of 'srv' (in a group handler):
       rp_server_stop there would wait for itself. Thread: any. */
    bool (*is_own_thread)(const struct rp_server *srv);
    /* I/O thread, around one turn of its loop: the wakes its pushes
       would make are held from turn_begin to turn_end, one per group
       thread, so a batch of messages wakes a group thread once rather
       than once per message (on a shared core every wake was a switch).
       turn_end runs before the I/O thread can block. */
    void (*turn_begin)(void);
    void (*turn_end)(void);
};

/* Op kinds, in the low bits of an op's key (sessions are 64-aligned). */
enum net_op_kind {
    NET_OP_RECV = 1,
    NET_OP_SEND,
    NET_OP_CANCEL,
    NET_OP_CLOSE,
    NET_OP_TICK, /* thread ops: the key is the kind alone */
    NET_OP_WAKE,
    NET_OP_TICK_CANCEL,
};
#define NET_OP_KIND_MASK 7u

/* A gather send copies packets of up to NET_COALESCE_PKT bytes into one
   run of NET_COALESCE_BYTES that follows its net_tx's iovecs
   (rp__session_flush). */
#define NET_COALESCE_PKT 256u
#define NET_COALESCE_BYTES 2048u

/* The bytes of a session's receive op that the port uses for a multishot
   receive and a close (port.h, struct rp__op_priv): the rest of the
   rp_op holds session fields (struct rp_session). */
#define NET_RX_OP_HEAD offsetof(struct rp_op, rp__priv.addr)

struct net_thread;
struct net_ws;
struct net_resume_state;
struct net_route_state;

/*
 * What a session needs only while it sends or is torn down, from
 * srv->iov_pool and held only then (an idle session has none): the gather
 * send op and its iovec array, and the op that cancels every op on the fd
 * at a teardown (a detach, a hand-off). Owner thread only.
 */
struct net_tx {
    struct rp_op send_op;     /* at most one gather send in flight */
    struct rp_op aux_op;      /* a teardown's cancel of the receive */
    struct rp_op aux_send_op; /* ... and of the send in flight */
    struct iovec iov[];       /* cfg.max_iov */
};

/*
 * The session slot: 448 bytes, 7 cache lines (checked in session.c). What
 * only some sessions use, some of the time, lives in extensions that a
 * slot points to and that are allocated at the rare event and freed once
 * it is over: the send ops and iovecs (net_tx, while sending), WebSocket
 * state (net_ws), the routing state (net_route_state, while in a group)
 * and the resume state (net_resume_state, resumable sessions). An idle
 * session in no group pays for the slot alone.
 *
 * Layout: the shared part and the embedded requests (lines 0-1); then the
 * owner's, whose per-message fields (the decoder, the send queue, the
 * route, the times) lie over the tail of the receive op (bytes 272-391), the
 * part of an rp_op a multishot receive and a close never touch (port.h,
 * struct rp__op_priv: the fields from 'addr' on).
 */
struct rp_session {
    /* ---- shared ---- */
    _Alignas(64) _Atomic uint64_t state;
    _Atomic uint32_t queued_bytes; /* sender-counted; limit check */
    /* Bytes queued by the session's own callbacks (the owner's short
       path, server.c): written by the owner alone with a plain load and
       store (no locked instruction per reply), read by any sender for
       the limit, which applies to queued_bytes + own_queued. 0 whenever
       nothing of the owner's is queued. */
    _Atomic uint32_t own_queued;
    struct net_thread *owner; /* set before the OPEN request */
    int fd;
    _Atomic int close_reason; /* for NET_REQ_CLOSE */
    socklen_t addrlen;

    /* ---- the session's holder only: its I/O thread while it is in no
       group, the group's thread while it is in one (the ENTER and LEFT
       hand-offs through MPSC queues order the accesses) ---- */
    uint32_t member_pos; /* index in the holding group's member array */
    void *data;          /* rp_session_set_data; NULL from open */

    /* ---- shared (continued) ---- */
    /* The peer (accept4's address: IPv4 or IPv6, never longer than a
       sockaddr_in6; rp_server_peer widens it to a sockaddr_storage). */
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } addr;
    bool ws; /* the connection came in on the WebSocket listener: set by
                the accept thread before the OPEN request, then the
                owner's (a RESUME's attach sets it for the new fd) */
    /* open_req and left_req are never in flight together: a group holds
       (and replies for) a session only after its owner popped the OPEN,
       and the slot is reused (a new OPEN) only after the last LEFT was
       popped and handled. */
    union {
        struct net_sig open_req; /* accept -> owner */
        struct net_sig left_req; /* group -> owner after a move's on_leave */
    };
    struct net_sig close_req; /* pushed by whoever set CLOSING remotely */

    /* ---- owner thread only ---- */
    rp_sid sid; /* the id of the current occupant */
    /* The multishot receive (both backends: the thread's provided
       buffers), and once every op is back, the close: a session holds no
       receive buffer of its own, only the decoder's partial frame. Only
       its first NET_RX_OP_HEAD bytes are the op's (prepared with
       session_rx_op_init, never rp_op_init, which would clear the rest);
       the owner's hot fields lie over the rest. */
    union {
        struct rp_op recv_op;
        struct {
            unsigned char recv_op_head_[NET_RX_OP_HEAD];
            struct rp_frame_decoder dec; /* framed mode */
            struct net_ws *ws_state;     /* WebSocket connections only
                                            (ws_session.c); NULL on TCP */
            struct net_tx *tx;           /* from srv->iov_pool while sending or
                                            tearing down */
            struct net_req *q_head, *q_tail; /* not yet sent, in order */
            int64_t last_rx_ns, frame_start_ns;
            /* The open's time until the session drains (first packet
               and handshake deadlines); from then on, the drain's. */
            union {
                int64_t joined_ns;
                int64_t drain_deadline_ns;
            };
            /* Routing (route.c): 'route' is the group the session's
               frames go to (NULL: on_message here). While 'moving', the
               old group has a LEAVE marker and frames wait in
               mv->held_*, for mv->route_next. 'mv' is the routing
               extension (net_route_state): set while the session is in
               a group, moving, or awaiting a group's reply to a LEAVE. */
            void *route;
            struct net_route_state *mv;
        };
    };
    struct net_req *inflight;       /* sent by the send in flight */
    struct rp_session *prev, *next; /* the thread's session list */
    struct rp_session *dirty_next;
    /* Resume (resume.c; resume_grace_ms > 0). A session joins at its
       first frame ('joined'); one that joined with HELLO is 'resumable'
       and has its resume state in 'rs' (NULL on every other session). A
       RESUME as a pre-join session's first frame makes it hand its fd to
       another session ('handoff'; no callback). A drop of a resumable
       session detaches it: the connection's teardown runs ('detaching':
       no new op, the state word never gets CLOSING), then 'detached' (fd
       -1, no op, no receive buffer) until rs->detach_deadline_ns. */
    struct net_resume_state *rs;
    struct net_resume *handoff;
    uint32_t inflight_n;
    uint8_t ops;    /* ops in flight (recv, send, cancel, close), plus one
                       while session_end_begin() runs */
    uint8_t reason; /* enum rp_leave_reason once ending */
    /* Flags (one bit each: the owner's alone, so sharing bytes is safe). */
    bool recv_armed : 1;
    bool sending : 1;
    bool draining : 1;  /* ends once the queue is empty (kick, stop) */
    bool closing : 1;   /* teardown begun: no new op */
    bool closed : 1;    /* close op submitted */
    bool dirty : 1;     /* on the thread's flush list */
    bool got_first : 1; /* a whole frame (raw: a byte) has arrived */
    bool ended : 1;     /* torn down; a group's reply is awaited before the
                           server's on_leave (t->awaiting counts it) */
    bool moving : 1;    /* see 'route' */
    bool joined : 1;
    bool resumable : 1; /* joined with HELLO: a token, retained frames, a
                           drop detaches. A session whose first frame was
                           a game frame is an ordinary one (no token,
                           nothing retained, a drop ends it): resume is
                           the client's choice, so clients that know
                           nothing of it work unchanged on a server that
                           has it on. */
    bool detaching : 1;
    bool detached : 1;
};

/*
 * A session's routing extension (route.c): what only a session in a group,
 * or moving, needs. calloc'd when a session in no group is first moved
 * into one (rp__route_move: no memory ends the session with RESET and
 * hands the ticket to on_ticket_drop), freed once it is in no group, not
 * moving, and no group holds a marker of it (after the group's LEFT, or
 * at an end in no group), so an idle session in no group pays nothing.
 * Owner thread only, except the markers while a group holds them (see
 * net_route_msg: the group thread reads them until it pushes LEFT).
 */
struct net_route_state {
    /* ENTER and LEAVE markers (at most one of each in flight: route.c). */
    struct net_route_msg enter_msg, leave_msg; /* owner -> group */
    void *route_next;   /* while moving: the target, NULL = none */
    void *route_ticket; /* while moving: the target's ticket */
    struct net_route_msg *held_head, *held_tail; /* frames while moving */
};

/*
 * A resumable session's resume state, an extension of its slot: malloc'd
 * when it joins with HELLO (rp__resume_first_frame: no memory ends it
 * with RESET before on_join), freed at its end (rp__resume_end), so a
 * session that never asks for resume pays nothing for it. Owner thread
 * only, like the slot's owner part.
 *
 * Game frames: 'rx_count' received; sent ones stay in ret_* (counted in
 * queued_bytes) until the client ACKs them: ret_head is frame number
 * 'acked', and acked + ret_n frames have gone to the kernel. A RESUME
 * that arrives while a connection is still up or being torn down waits
 * in pend_fd / pend_received (its token already taken).
 */
struct net_resume_state {
    int64_t detach_deadline_ns;
    uint64_t rx_count;
    uint64_t acked;
    uint64_t ack_to; /* the client's latest ACK: may run ahead of ret_*
                        while the send it acknowledges is still in flight */
    struct net_req *ret_head, *ret_tail;
    uint64_t pend_received;
    uint32_t ret_n;
    int pend_fd;  /* -1: none */
    bool pend_ws; /* pend_fd speaks WebSocket */
    uint8_t token[RP_RESUME_TOKEN_SIZE];
};

/* Per-thread counters: single writer (the thread), relaxed loads by
   rp_server_get_stats. */
struct net_counters {
    _Atomic uint64_t bytes_in, bytes_out, packets_in, packets_out;
    _Atomic uint64_t sends;
    _Atomic uint64_t leaves[RP_LEAVE_REASON_COUNT];
    _Atomic uint64_t resumes, resume_refused, resume_handoffs;
    /* Partial-frame buffers (framed): allocated when a frame is cut by a
       receive's end, freed when it completes (or the session ends). */
    _Atomic uint64_t rx_partial_allocs, rx_partial_frees;
    /* Zero-copy forwarding: receive buffers lent to sends, and the most
       out at once. */
    _Atomic uint64_t buffers_lent, buffers_lent_max;
    /* The port's counters (rp_port_stats), copied once per loop turn: the
       port is the thread's own and goes away before the server does. */
    _Atomic uint64_t port[sizeof(struct rp_port_stats) / sizeof(uint64_t)];
};

#define NET_STAT_ADD(t, field, n)                                              \
    atomic_store_explicit(                                                     \
        &(t)->stats.field,                                                     \
        atomic_load_explicit(&(t)->stats.field, memory_order_relaxed) + (n),   \
        memory_order_relaxed)

struct net_thread {
    struct rp_server *srv;
    uint32_t index;
    pthread_t tid;
    pthread_t owner; /* == tid; for RP_ASSERT_THREAD */
    sem_t ready;
    int start_error;
    enum rp_backend_kind kind;
    struct rp_port *port;    /* owned; created and destroyed on the thread */
    struct rp_buffers *bufs; /* io_uring provided buffers */
    uint32_t nbufs; /* how many at most (io_uring's ring grows to it) */
    bool uring;
    /* The receive being handed to the application (session_input): the
       session whose callback runs, and the provided buffer its bytes lie
       in (rx_buf_id < 0: none, as on epoll). A raw send of those bytes
       from inside the callback may borrow the buffer instead of copying
       it (zero-copy forwarding; at most once per buffer: rx_lent), and a
       send to rx_session skips the slot lookup (server.c). 'lent' counts
       buffers held by sends, kept under nbufs / 2 so that half stays for
       receives (io_uring: a ring that lending runs dry grows, up to
       nbufs; io_thread.c buffer_count). */
    struct rp_session *rx_session;
    const uint8_t *rx_base;
    size_t rx_len;
    int32_t rx_buf_id;
    bool rx_lent;
    uint32_t lent;
    uint32_t lend_max; /* nbufs / 2; 0 with RINGPORT_BENCH_NO_LEND */
    struct rp_mpsc inbox;
    _Atomic int wake_pending; /* one wake post in flight at most */
    _Atomic int posters;      /* producers inside rp_port_post now */
    _Atomic int stop_req;
    struct rp_op wake_op, tick_op, tick_cancel_op;
    bool tick_armed;
    bool stopping;
    int64_t now; /* clock at the start of the loop turn */
    int64_t stop_deadline_ns;
    int64_t tick_ns;
    struct rp_session *list;  /* every open session of this thread */
    struct rp_session *dirty; /* sessions with queued, unsent packets */
    uint32_t open;
    uint32_t awaiting; /* ended sessions whose group has not replied: the
                          thread stays until they have had on_leave */
    /* Where the chunk being framed stands: a protocol error's sample. */
    const uint8_t *rx_pos, *rx_limit;
    /* Rate-limited protocol-error log. */
    int64_t log_window_ns;
    uint32_t log_lines, log_suppressed;
    struct net_counters stats;
};

/*
 * The session table (session_table.c). Memory follows use: 'slots' is a
 * MAP_NORESERVE reservation of 'count' slots, and a slot's page becomes
 * resident only when a slot in it is first handed out (an untouched slot
 * reads as zeros: generation 0, which no id has). Free slots go out lowest
 * first (released ones below 'fresh', then 'fresh'), so the pages in use
 * are those of the most sessions ever open at once. Lookups index 'slots'
 * directly: O(1) and lock-free.
 */
#define NET_TABLE_LEVELS 3 /* bitmap levels: 64^3 slots per top word */
struct net_table {
    struct rp_session *slots; /* count slots, mmap'ed */
    size_t map_bytes;
    uint32_t count;
    pthread_mutex_t lock; /* the free slots: accept vs. last-unref threads */
    uint32_t fresh;       /* slots [fresh, count) were never handed out */
    uint64_t *free_bits[NET_TABLE_LEVELS]; /* set: released, free */
    uint32_t free_words[NET_TABLE_LEVELS];
};

struct rp_server {
    struct rp_server_config cfg;
    char listen_addr[64];
    /* Set at create (AUTO, or what the config asked), resolved by the
       first I/O thread of rp_server_start. Atomic because the metrics
       endpoint reads it (rp_server_backend) on its own thread, from
       before the start (a server is registered before it starts) to the
       destroy: a plain field was a data race TSan reported. */
    _Atomic enum rp_backend_kind backend;
    int listen_fd;
    uint16_t port;
    /* The WebSocket listener (ws_enabled): its own accept thread, the
       same I/O threads and session table. */
    int ws_listen_fd;
    uint16_t ws_port;
    int ws_spare_fd;
    pthread_t ws_accept_tid;
    char *ws_origins; /* owned copy of cfg.ws_origins, or NULL */
    struct net_table table;
    struct rp_pool *req_pool;   /* struct net_req, any thread */
    struct rp_pool *iov_pool;   /* struct net_tx + max_iov iovecs +
                                   NET_COALESCE_BYTES, I/O threads */
    struct rp_pool *route_pool; /* struct net_route_msg, any thread */
    /* Set once by the first rp_group_create (layer 7), before any move. */
    const struct net_route_ops *_Atomic route_ops;
    void *_Atomic groups; /* layer 7's per-server state */
    struct net_thread *threads;
    uint32_t nthreads;
    pthread_t accept_tid;
    bool started, stopped;
    pthread_mutex_t life_lock; /* start/stop/destroy */
    _Atomic int accept_stop;
    _Atomic uint32_t next_thread; /* the accept threads' round robin */
    int spare_fd;                 /* EMFILE reserve (accept thread) */
    _Atomic uint64_t accepts, refused, accept_errors;
    _Atomic uint64_t sessions_now, sessions_max;
    _Atomic uint64_t detached_now;
    _Atomic uint64_t ws_accepts, ws_sessions_now, ws_upgrades, ws_refused;
};

/* ---- listener.c ---- */
int rp__net_listen(struct rp_server *srv);
/* Binds and listens on listen_addr:'port' (0: ephemeral); *fd and *bound
   get the socket and its port. Returns 0 or -errno. */
int rp__net_listen_on(struct rp_server *srv, uint16_t port, int *fd,
                      uint16_t *bound);

/* ---- session_table.c ---- */
int rp__table_init(struct net_table *t, uint32_t count);
void rp__table_destroy(struct net_table *t);
/* Takes a free slot and names its next id; NULL when full. The slot stays
   unpublished (refs 0: every lookup refuses it) until rp__table_publish,
   called once its fields are filled. Thread: any. */
struct rp_session *rp__table_alloc(struct net_table *t, rp_sid *sid);
/* Opens the slot: one reference, the open one. Release order. */
void rp__table_publish(struct rp_session *s, rp_sid sid);
/* The session for 'sid' with one more reference, or NULL (-ENOTCONN). */
struct rp_session *rp__session_get(struct rp_server *srv, rp_sid sid);
void rp__session_put(struct rp_server *srv, struct rp_session *s);
/* Sets CLOSING if 'sid' is current and open, taking one reference for the
   close request in the same step. Returns 0 or -ENOTCONN. */
int rp__session_mark_closing(struct rp_server *srv, rp_sid sid,
                             struct rp_session **out);

/*
 * Every "Owner thread" entry point below checks that it runs on 't' and
 * that 's' belongs to 't' (Debug and sanitizer builds: core/assert.h); a
 * call from any other thread panics instead of racing the owner.
 */
#define NET_ASSERT_OWNER(t, s)                                                 \
    do {                                                                       \
        RP_ASSERT_THREAD(t);                                                   \
        RP_ASSERT_THREAD((s)->owner);                                          \
    } while (0)

/* ---- session.c ----
 * Thread: owner (the session's I/O thread 't'), every function. */
void rp__session_open(struct net_thread *t, struct rp_session *s);
void rp__session_complete(struct net_thread *t, struct rp_session *s,
                          unsigned kind, int32_t res, uint32_t flags);
/* Ends the session for 'reason' (owner thread; CLOSING already set or set
   here). Idempotent. 'drain' lets queued sends go out first. */
void rp__session_end(struct net_thread *t, struct rp_session *s,
                     enum rp_leave_reason reason, bool drain);
void rp__session_enqueue(struct net_thread *t, struct rp_session *s,
                         struct net_req *r);
void rp__session_flush(struct net_thread *t, struct rp_session *s);
void rp__session_mark_dirty(struct net_thread *t, struct rp_session *s);
/* Releases what a send request carries (its packet reference, or the
   receive buffer lent to it) and the request itself. */
void rp__req_release(struct net_thread *t, struct net_req *r);
/* True if 'len' bytes at 'data' may be sent from the receive buffer they
   arrived in (see net_thread.rx_*): then the caller queues a request
   with pkt NULL and rp__session_lend() marks the buffer lent. */
bool rp__session_can_lend(const struct net_thread *t, const void *data,
                          size_t len);
/* Resume: begins the detach of the session's connection (a drop, or a
   RESUME taking it over); on_detach runs. */
void rp__session_detach(struct net_thread *t, struct rp_session *s);
/* Resume: a detached session takes 'fd' (RESUME accepted). Returns 0, or
   -ENOMEM (the session has ended: RESET). */
int rp__session_attach(struct net_thread *t, struct rp_session *s, int fd,
                       bool ws);
/* Resume: this pre-join session hands its fd on with 'r' (see net_resume). */
void rp__session_handoff(struct net_thread *t, struct rp_session *s,
                         struct net_resume *r);
/* Framed input (a TCP read, or a WebSocket binary message's payload):
   whole frames to the application. Returns 0, or -ECANCELED once the
   session is ending (drop the rest). */
int rp__session_frames(struct net_thread *t, struct rp_session *s,
                       const uint8_t *data, size_t len);
/* Deadline checks for one session at the thread's tick. */
void rp__session_tick(struct net_thread *t, struct rp_session *s);
/* The session's last step once no group holds it: the server's on_leave,
   then the open reference goes. */
void rp__session_left(struct net_thread *t, struct rp_session *s);

/* Takes a released send request's bytes off the session's count. Thread:
   owner. */
static inline void rp__req_unqueue(struct rp_session *s,
                                   const struct net_req *r)
{
    if (r->own)
        atomic_store_explicit(
            &s->own_queued,
            atomic_load_explicit(&s->own_queued, memory_order_relaxed) -
                r->bytes,
            memory_order_relaxed);
    else
        atomic_fetch_sub_explicit(&s->queued_bytes, r->bytes,
                                  memory_order_relaxed);
}

/* ---- resume.c ----
 * Thread: owner, unless said otherwise. Nothing here runs while
 * resume_grace_ms is 0 but rp__resume_sent (a no-op then). */
static inline bool rp__resume_on(const struct rp_server *srv)
{
    return srv->cfg.resume_grace_ms != 0;
}
/* A control frame for the session's queue: at its head ('first') or its
   tail. Returns 0 or -ENOMEM. */
int rp__resume_ctl(struct net_thread *t, struct rp_session *s, uint16_t type,
                   const void *payload, size_t len, bool first);
/* A frame of a session that has not joined: HELLO or a game frame joins
   it, RESUME hands its connection over. Returns what session_on_frame
   returns (0, or -ECANCELED: drop the rest of the input). */
int rp__resume_first_frame(struct net_thread *t, struct rp_session *s,
                           const struct rp_frame *f);
/* A control frame of a joined session (ACK; anything else ends it).
   Returns 0 or -ECANCELED. */
int rp__resume_ctl_frame(struct net_thread *t, struct rp_session *s,
                         const struct rp_frame *f);
/* The send of 'r' (a list of n nodes) is back: retains game frames (resume
   on), frees the rest. */
void rp__resume_sent(struct net_thread *t, struct rp_session *s,
                     struct net_req *r);
/* A RESUME waits in pend_fd and the session is detached now: validates
   the count and attaches, or refuses it (the session stays detached). */
void rp__resume_attach(struct net_thread *t, struct rp_session *s);
/* NET_REQ_RESUME on the target's owner (drops its references). */
void rp__resume_request(struct net_thread *t, struct net_resume *r);
/* At the session's end: a waiting RESUME is refused, retained frames are
   released. */
void rp__resume_end(struct net_thread *t, struct rp_session *s);
/* After the thread exited: a hand-off still in its inbox. Thread: the
   stopping one. */
void rp__resume_drop_request(struct rp_server *srv, struct net_resume *r);
/* Group side: a DETACH/RESUME marker for the session's group, or the
   server's callback when it is in none (route.c). */
void rp__route_notify(struct net_thread *t, struct rp_session *s, bool resumed);

/* ---- ws_session.c ----
 * A WebSocket connection on a session (RFC 6455): the handshake, then
 * binary messages whose payload is the session's framed input, pings,
 * closes. Thread: owner, every function. */
/* Gives the connection its WebSocket state: before the handshake, or
   'upgraded' (a RESUME's fd whose handshake was done on another session).
   Returns 0 or -ENOMEM. */
int rp__ws_open(struct net_thread *t, struct rp_session *s, bool upgraded);
/* Frees the connection's WebSocket state (NULL: nothing). */
void rp__ws_release(struct rp_session *s);
/* Received bytes; 'data' is the receive buffer's, unmasked in place. */
void rp__ws_input(struct net_thread *t, struct rp_session *s, uint8_t *data,
                  size_t len);
/* The framed input broke a rule (-EMSGSIZE, -EBADMSG): a close frame, then
   the end (PROTOCOL). */
void rp__ws_frame_error(struct net_thread *t, struct rp_session *s, int err);
/* True when a close frame or an HTTP refusal is queued: the end is a FIN
   after it, never a reset that could overtake it. */
bool rp__ws_soft_end(const struct rp_session *s);
/* A graceful end (drain) of an upgraded connection: a close frame goes
   last (1001 for SERVER_STOP, else 1000), unless one is queued already. */
void rp__ws_goodbye(struct net_thread *t, struct rp_session *s,
                    enum rp_leave_reason reason);
/* The handshake deadline at the thread's tick: true if it ended 's'. */
bool rp__ws_tick(struct net_thread *t, struct rp_session *s);
/* resume_refuse's bytes for a WebSocket connection: the RESUME_ERROR frame
   as a binary message, then a close frame. Writes 'out' (at least 16
   bytes) and returns the length. */
size_t rp__ws_wrap_refusal(const uint8_t *frame, size_t len, uint8_t *out);

/* ---- io_thread.c ---- */
int rp__thread_start(struct rp_server *srv, struct net_thread *t);
void rp__thread_join(struct net_thread *t);
/* Pushes a request and wakes the thread if needed. Thread: any. */
void rp__thread_push(struct net_thread *t, struct net_req *r);
/* The same for a slot's embedded OPEN, LEFT or CLOSE. Thread: any. */
void rp__thread_push_sig(struct net_thread *t, struct net_sig *g);
/* Asks the thread to stop (it drains, then exits). Thread: any. */
void rp__thread_stop(struct net_thread *t);
/* The calling thread's I/O thread of 'srv', or NULL. */
struct net_thread *rp__thread_current(const struct rp_server *srv);
/* After the thread exited: releases requests left in its inbox. */
void rp__thread_drain_inbox(struct net_thread *t);

/* ---- route.c ---- */
/* Owner thread: a frame for a session in (or moving to) a group. */
void rp__route_frame(struct net_thread *t, struct rp_session *s,
                     const struct rp_frame *f);
/* Owner thread: applies a move (request or direct call). */
void rp__route_move(struct net_thread *t, struct rp_session *s, void *to,
                    void *from, enum rp_leave_reason why, void *ticket);
/* Owner thread: the group has run on_leave (a move out, or the end). */
void rp__route_on_left(struct net_thread *t, struct rp_session *s);
/* Owner thread, at the session's end: the group's last leave. Returns true
   if a group still holds the session (its reply will come: then
   rp__session_left), false if none does. */
bool rp__route_end(struct net_thread *t, struct rp_session *s);
/*
 * Asks the session's I/O thread to move it to 'to' (NULL: no group) with
 * 'ticket'; if 'from' is not NULL, only while it is still in 'from' and
 * not moving. Returns 0 (the ticket is the engine's until on_enter or
 * on_ticket_drop), -ENOTCONN (stale or closing; nothing changes) or
 * -ENOMEM (the ticket stays with the caller). Thread: any.
 */
int rp__route_request(struct rp_server *srv, rp_sid sid, void *to, void *from,
                      enum rp_leave_reason why, void *ticket);
/* Gives a ticket no on_enter will get back to the program (NULL: nothing).
   Thread: the session's I/O thread, or the stopping one. */
void rp__route_ticket_drop(struct rp_server *srv, rp_sid sid, void *ticket);
/* Group thread, after on_leave: hands the membership reference back to
   the I/O thread (a NET_REQ_LEFT). */
void rp__route_left(struct rp_server *srv, rp_sid sid);
/* Releases a MSG node and its packet. Thread: any. */
void rp__route_msg_free(struct rp_server *srv, struct net_route_msg *m);
/* The slot of a session the caller holds (a reference, or membership). */
static inline struct rp_session *rp__slot(struct rp_server *srv, rp_sid sid)
{
    return &srv->table.slots[rp_sid_slot(sid)];
}

/* ---- server.c ---- */
/* Sets CLOSING for 'sid' and has its owner end it for 'why' (KICKED lets
   queued sends go first). Allocates nothing: the close request lives in
   the slot. Returns 0, or -ENOTCONN if stale or already ending (its end,
   and a group's LEAVE, are on their way then). Thread: any. */
int rp__server_close(struct rp_server *srv, rp_sid sid,
                     enum rp_leave_reason why);

/* Partial-frame buffers allocated and freed so far, summed over the I/O
   threads (tests: an idle session's buffer is freed once its frame is
   whole). Thread: any; exact once the I/O threads are quiet. */
void rp__server_partial_buffers(struct rp_server *srv, uint64_t *allocs,
                                uint64_t *frees);

/* ---- accept.c ---- */
/* Starts the accept thread (and the WebSocket listener's, if any). */
int rp__accept_start(struct rp_server *srv);
void rp__accept_stop(struct rp_server *srv);
/* True on the accept thread of 'srv' (in its accept_filter). */
bool rp__accept_is_current(const struct rp_server *srv);

#endif
