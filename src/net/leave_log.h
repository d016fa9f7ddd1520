/*
 * One INFO line per session end: "session 4294967297: ended (idle_timeout),
 * peer 127.0.0.1:51234". At most LEAVE_LOG_PER_SEC lines a second per I/O
 * thread; the lines dropped are counted and reported in one line when the
 * next second's first end is logged, so a mass disconnect (server stop, a
 * network blip) cannot flood the log. Counters, not this, are the record.
 */
#ifndef RP_NET_LEAVE_LOG_H
#define RP_NET_LEAVE_LOG_H

#include "net/net.h"

/* Thread: the session's owner. 'now' is the thread's loop clock (ns). */
void rp__session_log_end(const struct rp_session *s,
                         enum rp_leave_reason reason, int64_t now);

#endif
