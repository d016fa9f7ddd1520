/*
 * A raw WebSocket client for the tests (wu_ prefix): the handshake written
 * by hand, masked frames built byte by byte, and server frames read and
 * checked (never masked) off a plain blocking socket, so every rule of
 * RFC 6455 the server enforces can be broken on purpose. Built on
 * server_util.h (su_connect, su_read_full).
 */
#ifndef RP_TESTS_WS_UTIL_H
#define RP_TESTS_WS_UTIL_H

#include "server_util.h"

/* The RFC 6455 example key and its accept value (section 1.3). */
#define WU_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define WU_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

#define WU_REQUEST(extra)                                                      \
    "GET / HTTP/1.1\r\n"                                                       \
    "Host: 127.0.0.1\r\n"                                                      \
    "Upgrade: websocket\r\n"                                                   \
    "Connection: Upgrade\r\n"                                                  \
    "Sec-WebSocket-Key: " WU_KEY "\r\n"                                        \
    "Sec-WebSocket-Version: 13\r\n" extra "\r\n"

/* Reads an HTTP response head (up to its blank line) into 'out'. Returns
   its length, or a negative errno (EOF before it: -ECONNABORTED). */
static inline int wu_read_head(int fd, char *out, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        int r = su_read_full(fd, out + n, 1, SU_WAIT_MS);
        if (r < 0)
            return r;
        n++;
        if (n >= 4 && memcmp(out + n - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    out[n] = 0;
    return (int)n;
}

/* Sends 'request' and returns the response head's status code; the head
   is left in 'head' (may be NULL). */
static inline int wu_handshake_status(int fd, const char *request, char *head,
                                      size_t cap)
{
    char buf[1024];
    if (!head) {
        head = buf;
        cap = sizeof buf;
    }
    su_send_all(fd, request, strlen(request));
    int r = wu_read_head(fd, head, cap);
    if (r < 0)
        fail_msg("no handshake response: %s", strerror(-r));
    int status = 0;
    if (sscanf(head, "HTTP/1.1 %d ", &status) != 1)
        fail_msg("not an HTTP/1.1 response: %.60s", head);
    return status;
}

/* A WebSocket connection, upgraded: 101 with the RFC's accept value. */
static inline int wu_connect(uint16_t port)
{
    int fd = su_connect(port);
    char head[1024];
    assert_int_equal(wu_handshake_status(fd, WU_REQUEST(""), head, sizeof head),
                     101);
    assert_non_null(
        strstr(head, "\r\nSec-WebSocket-Accept: " WU_ACCEPT "\r\n"));
    return fd;
}

/* A client frame: b0 (FIN, RSV, opcode as given), masked unless 'unmasked'.
   Returns its size in 'out' (room for len + 14). */
static inline size_t wu_frame(uint8_t *out, uint8_t b0, const void *payload,
                              size_t len, bool unmasked)
{
    static const uint8_t key[4] = {0xa1, 0x07, 0x5c, 0xe3};
    const uint8_t *p = payload;
    size_t n = 0;
    out[n++] = b0;
    uint8_t m = unmasked ? 0 : 0x80;
    if (len <= 125) {
        out[n++] = (uint8_t)(m | len);
    } else if (len <= 0xFFFF) {
        out[n++] = m | 126;
        out[n++] = (uint8_t)(len >> 8);
        out[n++] = (uint8_t)len;
    } else {
        out[n++] = m | 127;
        for (int i = 7; i >= 0; i--)
            out[n++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    if (unmasked) {
        memcpy(out + n, p, len);
        return n + len;
    }
    memcpy(out + n, key, 4);
    n += 4;
    for (size_t i = 0; i < len; i++)
        out[n + i] = p[i] ^ key[i & 3];
    return n + len;
}

static inline void wu_send(int fd, uint8_t b0, const void *payload, size_t len)
{
    uint8_t *f = malloc(len + 14);
    assert_non_null(f);
    su_send_all(fd, f, wu_frame(f, b0, payload, len, false));
    free(f);
}

/* One ringport frame as one binary message. */
static inline void wu_send_frame(int fd, uint16_t type, const void *payload,
                                 size_t len)
{
    uint8_t *f = malloc(len + 4);
    assert_non_null(f);
    size_t n = su_frame(f, type, payload, len);
    wu_send(fd, 0x82, f, n);
    free(f);
}

/*
 * Reads one server frame: its first byte into *b0 and its payload into
 * 'payload' (room for 'cap'). Fails the test on a masked server frame or
 * a non-minimal length. Returns the payload length or su_read_full's
 * error.
 */
static inline int wu_read(int fd, uint8_t *b0, uint8_t *payload, size_t cap)
{
    uint8_t h[10];
    int r = su_read_full(fd, h, 2, SU_WAIT_MS);
    if (r < 0)
        return r;
    *b0 = h[0];
    assert_int_equal(h[1] & 0x80, 0); /* servers never mask */
    uint64_t len = h[1] & 0x7F;
    if (len == 126) {
        if ((r = su_read_full(fd, h + 2, 2, SU_WAIT_MS)) < 0)
            return r;
        len = (uint64_t)h[2] << 8 | h[3];
        assert_true(len > 125);
    } else if (len == 127) {
        if ((r = su_read_full(fd, h + 2, 8, SU_WAIT_MS)) < 0)
            return r;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | h[2 + i];
        assert_true(len > 0xFFFF);
    }
    assert_true(len <= cap);
    if (len && (r = su_read_full(fd, payload, (size_t)len, SU_WAIT_MS)) < 0)
        return r;
    return (int)len;
}

/* Expects the next message to be exactly one ringport frame. */
static inline void wu_expect_frame(int fd, uint16_t type, const void *payload,
                                   size_t len)
{
    static _Thread_local uint8_t got[4 + 65535];
    uint8_t b0 = 0;
    int r = wu_read(fd, &b0, got, sizeof got);
    if (r < 0)
        fail_msg("expected a message of %zu bytes: %s", len + 4, strerror(-r));
    assert_int_equal(b0, 0x82); /* FIN, binary */
    assert_int_equal((size_t)r, len + 4);
    assert_int_equal(got[0] | got[1] << 8, len);
    assert_int_equal(got[2] | got[3] << 8, type);
    assert_memory_equal(got + 4, payload, len);
}

/* One frame there and back. */
static inline void wu_ping_frame(int fd, uint16_t type)
{
    uint8_t msg[16];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)(type * 17 + i);
    wu_send_frame(fd, type, msg, sizeof msg);
    wu_expect_frame(fd, type, msg, sizeof msg);
}

/*
 * Expects a close frame with 'code' (0: an empty close), skipping nothing,
 * then an orderly end of the stream (a FIN, not a reset: the close frame
 * must never be overtaken).
 */
static inline void wu_expect_close(int fd, uint16_t code)
{
    uint8_t b0 = 0, p[125];
    int r = wu_read(fd, &b0, p, sizeof p);
    if (r < 0)
        fail_msg("expected a close frame (%u): %s", code, strerror(-r));
    assert_int_equal(b0, 0x88);
    if (code == 0) {
        assert_int_equal(r, 0);
    } else {
        assert_true(r >= 2);
        assert_int_equal(p[0] << 8 | p[1], code);
    }
    uint8_t more;
    assert_int_equal(su_read_full(fd, &more, 1, SU_WAIT_MS), -ECONNABORTED);
}

/* Expects the server to end the connection with an HTTP-level refusal:
   the response head, then EOF. Returns the status. */
static inline int wu_expect_refusal(int fd, const char *request, char *head,
                                    size_t cap)
{
    int status = wu_handshake_status(fd, request, head, cap);
    uint8_t more;
    assert_int_equal(su_read_full(fd, &more, 1, SU_WAIT_MS), -ECONNABORTED);
    return status;
}

/* Server defaults for the WebSocket tests: su_config plus a WebSocket
   listener on an ephemeral port. */
static inline void wu_config(struct rp_server_config *cfg, struct su_events *ev)
{
    su_config(cfg, ev);
    cfg->ws_enabled = true;
    cfg->ws_port = 0;
}

/*
 * The end of a WebSocket test: like su_finish, but a connection refused at
 * its handshake (or cut before it) never joins, so joins count upgrades
 * and TCP accepts, not every accept.
 */
static inline void wu_finish(struct rp_server *srv, struct su_events *ev,
                             uint64_t packets_before)
{
    struct rp_server_stats s;
    rp_server_stop(srv);
    rp_server_get_stats(srv, &s);
    assert_int_equal(s.sessions, 0);
    assert_int_equal(s.ws_sessions, 0);
    uint64_t leaves = 0;
    for (int r = 0; r < RP_LEAVE_REASON_COUNT; r++)
        leaves += s.leaves[r];
    assert_int_equal(leaves, s.accepts);
    uint64_t joined = s.accepts - s.ws_accepts + s.ws_upgrades;
    assert_int_equal(atomic_load(&ev->joins), joined);
    assert_int_equal(atomic_load(&ev->leaves), joined);
    su_events_check_once(ev);
    rp_server_destroy(srv);
    ev->srv = NULL;
    assert_int_equal(su_packets_alive(), packets_before);
}

#endif
