/*
 * The server's configuration (defaults and validation), the names of leave
 * reasons, and the listening socket: bind + listen at create so the port is
 * known and a bind error is reported there.
 */
#include "net/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define DAY_MS (24u * 3600u * 1000u)

void rp_server_config_init(struct rp_server_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->listen_addr = "127.0.0.1";
    cfg->io_threads = 1;
    cfg->max_sessions = 10000;
    cfg->max_payload = RP_PACKET_DEFAULT_MAX_PAYLOAD;
    cfg->send_queue_limit = 1u << 20;
    cfg->frame_deadline_ms = 10000;
    cfg->max_iov = 256;
    cfg->stop_drain_ms = 2000;
    cfg->recv_buffer_size = 16384;
    cfg->ws_handshake_timeout_ms = 5000;
    cfg->ws_max_message = 1u << 20;
    cfg->backend = RP_BACKEND_AUTO;
    cfg->mode = RP_SERVER_FRAMED;
}

static int bad(char *err, size_t errlen, const char *field, long long v,
               const char *range)
{
    if (err && errlen)
        snprintf(err, errlen, "%s = %lld: must be %s", field, v, range);
    return -EINVAL;
}

#define CHECK_RANGE(field, lo, hi, text)                                       \
    do {                                                                       \
        if ((long long)cfg->field < (long long)(lo) ||                         \
            (long long)cfg->field > (long long)(hi))                           \
            return bad(err, errlen, #field, (long long)cfg->field, text);      \
    } while (0)

int rp_server_config_validate(const struct rp_server_config *cfg, char *err,
                              size_t errlen)
{
    struct in6_addr a6;
    if (!cfg)
        return bad(err, errlen, "config", 0, "non-NULL");
    if (!cfg->listen_addr ||
        (inet_pton(AF_INET, cfg->listen_addr, &a6) != 1 &&
         inet_pton(AF_INET6, cfg->listen_addr, &a6) != 1)) {
        if (err && errlen)
            snprintf(err, errlen,
                     "listen_addr = \"%s\": must be an IPv4 or IPv6 literal",
                     cfg->listen_addr ? cfg->listen_addr : "(null)");
        return -EINVAL;
    }
    CHECK_RANGE(io_threads, 1, 64, "1..64");
    CHECK_RANGE(max_sessions, 1, 1000000, "1..1000000");
    CHECK_RANGE(max_payload, 1, RP_PACKET_MAX_PAYLOAD, "1..65535");
    if (cfg->type_max != 0 && cfg->type_min > cfg->type_max)
        return bad(err, errlen, "type_min", cfg->type_min,
                   "<= type_max when type_max is set");
    if (cfg->send_queue_limit < cfg->max_payload + RP_PACKET_HEADER_SIZE)
        return bad(err, errlen, "send_queue_limit", cfg->send_queue_limit,
                   ">= max_payload + 4 (one whole frame)");
    CHECK_RANGE(send_queue_limit, 0, 1u << 30, "<= 1073741824");
    CHECK_RANGE(idle_timeout_ms, 0, DAY_MS, "0..86400000");
    CHECK_RANGE(frame_deadline_ms, 0, DAY_MS, "0..86400000");
    CHECK_RANGE(first_packet_deadline_ms, 0, DAY_MS, "0..86400000");
    CHECK_RANGE(max_iov, 1, IOV_MAX, "1..IOV_MAX (1024)");
    CHECK_RANGE(stop_drain_ms, 0, 600000, "0..600000");
    CHECK_RANGE(spin_us, 0, 1000000, "0..1000000");
    CHECK_RANGE(resume_grace_ms, 0, DAY_MS, "0..86400000");
    if (cfg->resume_grace_ms && cfg->mode != RP_SERVER_FRAMED)
        return bad(err, errlen, "resume_grace_ms", cfg->resume_grace_ms,
                   "0 in raw mode (resume needs frames)");
    if (cfg->resume_grace_ms && cfg->max_payload < RP_RESUME_MIN_PAYLOAD)
        return bad(err, errlen, "max_payload", cfg->max_payload,
                   ">= 32 when resume_grace_ms is set (RESUME's payload)");
    if (cfg->resume_grace_ms && cfg->type_max != 0 &&
        cfg->type_max < RP_CTL_LAST)
        return bad(err, errlen, "type_max", cfg->type_max,
                   "0 or >= 0xFFFF when resume_grace_ms is set (engine "
                   "control messages)");
    if (cfg->resume_grace_ms && cfg->reject_empty)
        return bad(err, errlen, "reject_empty", 1,
                   "false when resume_grace_ms is set (HELLO is empty)");
    CHECK_RANGE(recv_buffer_size, 256, 1u << 24, "256..16777216");
    if (cfg->ws_enabled && cfg->mode != RP_SERVER_FRAMED)
        return bad(err, errlen, "ws_enabled", 1,
                   "false in raw mode (WebSocket messages carry frames)");
    if (cfg->ws_enabled) {
        CHECK_RANGE(ws_handshake_timeout_ms, 1, DAY_MS, "1..86400000");
        CHECK_RANGE(ws_max_message, cfg->max_payload + RP_PACKET_HEADER_SIZE,
                    1u << 30,
                    ">= max_payload + 4 (one whole frame), "
                    "<= 1073741824");
    }
    CHECK_RANGE(backend, RP_BACKEND_AUTO, RP_BACKEND_EPOLL, "0..2");
    CHECK_RANGE(mode, RP_SERVER_FRAMED, RP_SERVER_RAW, "0 (framed) or 1 (raw)");
    if (cfg->mode == RP_SERVER_FRAMED && !cfg->cb.on_message)
        return bad(err, errlen, "cb.on_message", 0,
                   "set in framed mode (it is NULL)");
    if (cfg->mode == RP_SERVER_RAW && !cfg->cb.on_data)
        return bad(err, errlen, "cb.on_data", 0,
                   "set in raw mode (it is NULL)");
    return 0;
}

const char *rp_leave_reason_name(enum rp_leave_reason reason)
{
    static const char *const names[RP_LEAVE_REASON_COUNT] = {
        [RP_LEAVE_PEER_CLOSED] = "peer_closed",
        [RP_LEAVE_RESET] = "reset",
        [RP_LEAVE_PROTOCOL] = "protocol",
        [RP_LEAVE_IDLE_TIMEOUT] = "idle_timeout",
        [RP_LEAVE_FRAME_DEADLINE] = "frame_deadline",
        [RP_LEAVE_FIRST_PACKET] = "first_packet",
        [RP_LEAVE_SEND_OVERFLOW] = "send_overflow",
        [RP_LEAVE_SERVER_STOP] = "server_stop",
        [RP_LEAVE_KICKED] = "kicked",
        [RP_LEAVE_MOVED] = "moved",
        [RP_LEAVE_GROUP_STOP] = "group_stop",
        [RP_LEAVE_RESUME_EXPIRED] = "resume_expired",
    };
    if ((unsigned)reason >= RP_LEAVE_REASON_COUNT)
        return "unknown";
    return names[reason];
}

/*
 * Creates srv->listen_fd, blocking (the accept thread blocks in accept4),
 * bound and listening; TCP_NODELAY here so every accepted socket inherits it.
 */
int rp__net_listen(struct rp_server *srv)
{
    return rp__net_listen_on(srv, srv->cfg.port, &srv->listen_fd, &srv->port);
}

int rp__net_listen_on(struct rp_server *srv, uint16_t port, int *out_fd,
                      uint16_t *bound)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, srv->listen_addr, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        len = sizeof *in4;
    } else if (inet_pton(AF_INET6, srv->listen_addr, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        len = sizeof *in6;
    } else {
        return -EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 1024) < 0)
        goto fail;
    len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        goto fail;
    *bound = ntohs(ss.ss_family == AF_INET ? in4->sin_port : in6->sin6_port);
    *out_fd = fd;
    return 0;
fail:;
    int err = -errno;
    close(fd);
    return err;
}
