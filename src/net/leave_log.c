/*
 * The rate-limited session-end line (leave_log.h). The window lives in
 * thread-local storage: each I/O thread has its own budget and needs no
 * field in struct net_thread.
 */
#include "net/leave_log.h"

#include "core/clock.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <ringport/log.h>
#include <stdio.h>

#define LEAVE_LOG_PER_SEC 20

static _Thread_local int64_t window_ns;
static _Thread_local uint32_t lines, suppressed;

/* "1.2.3.4:5" or "[::1]:5" into buf. */
static void peer_text(const struct rp_session *s, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (s->addr.sa.sa_family == AF_INET) {
        const struct sockaddr_in *a = &s->addr.in;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
        snprintf(buf, len, "%s:%u", host, port);
    } else if (s->addr.sa.sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = &s->addr.in6;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
        snprintf(buf, len, "[%s]:%u", host, port);
    } else {
        snprintf(buf, len, "unknown");
    }
}

void rp__session_log_end(const struct rp_session *s,
                         enum rp_leave_reason reason, int64_t now)
{
    RP_ASSERT_THREAD(s->owner);
    /* A protocol error has its own rate-limited line with a hex sample
       (session.c): one line per bad session, not two. */
    if (reason == RP_LEAVE_PROTOCOL || rp_log_get_level() > RP_LOG_INFO)
        return;
    if (now - window_ns >= RP_NS_PER_SEC) {
        if (suppressed)
            RP_INFO("session",
                    "%u more session-end lines suppressed (see "
                    "ringport_disconnects_total)",
                    suppressed);
        window_ns = now;
        lines = 0;
        suppressed = 0;
    }
    if (lines >= LEAVE_LOG_PER_SEC) {
        suppressed++;
        return;
    }
    lines++;
    char peer[INET6_ADDRSTRLEN + 16];
    peer_text(s, peer, sizeof peer);
    RP_INFO("session", "session %llu: ended (%s), peer %s",
            (unsigned long long)s->sid, rp_leave_reason_name(reason), peer);
}
