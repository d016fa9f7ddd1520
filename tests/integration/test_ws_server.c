/*
 * The WebSocket listener (RFC 6455) against a raw-socket client that
 * breaks each rule on purpose (tests/integration/ws_util.h), on every
 * backend variant: the handshake (the RFC's accept value, 426 for another
 * version, 400 for malformed and oversized requests, the deadline, the
 * Origin allow-list's 403, permessage-deflate not echoed), the frame rules
 * (unmasked, text, RSV, long or fragmented control frames, the message
 * limit, a frame over max_payload, a message that cuts a frame), ping and
 * pong, the close handshake, fragmented messages and frames cut across
 * writes, frames sent right behind the request, WebSocket and TCP sessions
 * side by side, resume over WebSocket, and a broadcast to WebSocket
 * sessions that stays one packet (the packet counters prove no copy).
 *
 * Every refusal and every close must arrive before an orderly end (FIN):
 * wu_expect_close and wu_expect_refusal read to EOF, and a reset fails.
 */
#include "ws_util.h"

#include "metrics_util.h"

#include <math.h>
#include <ringport/metrics.h>

#define WS_CLOSE_PROTOCOL 1002
#define WS_CLOSE_UNSUPPORTED 1003
#define WS_CLOSE_INVALID 1007
#define WS_CLOSE_TOO_BIG 1009

static struct su_events ev;

static struct rp_server *ws_start(struct rp_server_config *cfg)
{
    struct rp_server *srv = su_start(cfg);
    assert_true(rp_server_ws_port(srv) > 0);
    assert_true(rp_server_ws_port(srv) != rp_server_port(srv));
    return srv;
}

/* Resets the events and fills 'cfg' with wu_config's defaults; a test
   changes what it needs, then calls ws_start. */
static void ws_config(struct rp_server_config *cfg)
{
    su_events_reset(&ev);
    wu_config(cfg, &ev);
}

/* A client on the WebSocket port, upgraded (101 with the right accept
   value), or only connected (ws_raw) for a test that writes its own
   request. */
static int ws_client(struct rp_server *srv)
{
    return wu_connect(rp_server_ws_port(srv));
}

static int ws_raw(struct rp_server *srv)
{
    return su_connect(rp_server_ws_port(srv));
}

/* Waits until every connection has ended (the clients are closed). */
static void ws_wait_idle(struct rp_server *srv)
{
    SU_WAIT(su_sessions(srv) == 0);
    assert_int_equal(su_sessions(srv), 0);
}

/* The end of a test whose clients are all closed: every session gone,
   then wu_finish (each on_leave once, no packet left, server destroyed). */
static void ws_end(struct rp_server *srv, uint64_t packets_before)
{
    ws_wait_idle(srv);
    wu_finish(srv, &ev, packets_before);
}

static void handshake_answers_101_and_echoes(void **state)
{
    (void)state;
    uint64_t before = su_packets_alive();
    struct rp_server_config cfg;
    ws_config(&cfg);
    struct rp_server *srv = ws_start(&cfg);
    int fd = ws_raw(srv);
    char head[1024];
    /* permessage-deflate offered, a subprotocol asked: neither echoed. */
    int status = wu_handshake_status(
        fd,
        WU_REQUEST("Sec-WebSocket-Extensions: permessage-deflate; "
                   "client_max_window_bits\r\n"
                   "Sec-WebSocket-Protocol: chat\r\n"),
        head, sizeof head);
    assert_int_equal(status, 101);
    assert_non_null(
        strstr(head, "\r\nSec-WebSocket-Accept: " WU_ACCEPT "\r\n"));
    assert_non_null(strstr(head, "\r\nUpgrade: websocket\r\n"));
    assert_null(strstr(head, "Sec-WebSocket-Extensions"));
    assert_null(strstr(head, "Sec-WebSocket-Protocol"));
    wu_ping_frame(fd, 3);
    /* The TCP listener is still the framed TCP one. */
    int tcp = su_connect(rp_server_port(srv));
    su_ping(tcp, 4);
    close(tcp);
    close(fd);
    ws_wait_idle(srv);
    struct rp_server_stats s;
    su_stats(srv, &s);
    assert_int_equal(s.ws_accepts, 1);
    assert_int_equal(s.ws_upgrades, 1);
    assert_int_equal(s.accepts, 2);
    wu_finish(srv, &ev, before);
}

static void another_version_gets_426_naming_13(void **state)
{
    (void)state;
    uint64_t before = su_packets_alive();
    struct rp_server_config cfg;
    ws_config(&cfg);
    struct rp_server *srv = ws_start(&cfg);
    int fd = ws_raw(srv);
    char head[1024];
    const char *req = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: " WU_KEY "\r\n"
                      "Sec-WebSocket-Version: 8\r\n\r\n";
    assert_int_equal(wu_expect_refusal(fd, req, head, sizeof head), 426);
    assert_non_null(strstr(head, "\r\nSec-WebSocket-Version: 13\r\n"));
    close(fd);
    ws_wait_idle(srv);
    struct rp_server_stats s;
    su_stats(srv, &s);
    assert_int_equal(s.ws_refused, 1);
    assert_int_equal(s.leaves[RP_LEAVE_PROTOCOL], 1);
    assert_int_equal(atomic_load(&ev.joins), 0); /* never a session */
    wu_finish(srv, &ev, before);
}

static void malformed_and_oversized_requests_get_400(void **state)
{
    (void)state;
    uint64_t before = su_packets_alive();
    struct rp_server_config cfg;
    ws_config(&cfg);
    struct rp_server *srv = ws_start(&cfg);
    uint16_t port = rp_server_ws_port(srv);
    static const char *const bad[] = {
        /* no key */
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
        /* a key of 15 bytes */
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZA=\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n",
        /* not GET */
        "POST / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: " WU_KEY "\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n",
        /* no Upgrade token in Connection */
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        "Connection: keep-alive\r\nSec-WebSocket-Key: " WU_KEY "\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n",
        /* not HTTP at all */
        "\x16\x03\x01\x02\x05\x01\x07\x01\xfc\x03\x03\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int fd = su_connect(port);
        assert_int_equal(wu_expect_refusal(fd, bad[i], NULL, 0), 400);
        close(fd);
    }
    /* 5,000 bytes and no end: refused at 4 KiB, not waited for. */
    int fd = su_connect(port);
    char *big = malloc(5000);
    assert_non_null(big);
    memset(big, 'a', 5000);
    memcpy(big, "GET / HTTP/1.1\r\nX-Pad: ", 23);
    su_send_all(fd, big, 5000);
    char head[512];
    int r = wu_read_head(fd, head, sizeof head);
    assert_true(r > 0);
    assert_memory_equal(head, "HTTP/1.1 400 ", 13);
    free(big);
    /* The rest of our bytes may be unread: EOF or a reset both end it. */
    assert_int_equal(su_wait_closed(fd, SU_WAIT_MS), 0);
    close(fd);
    ws_wait_idle(srv);
    struct rp_server_stats s;
    su_stats(srv, &s);
    assert_int_equal(s.ws_refused, 6);
    assert_int_equal(s.ws_upgrades, 0);
    wu_finish(srv, &ev, before);
}

static void a_slow_handshake_is_cut_at_its_deadline(void **state)
{
    (void)state;
    uint64_t before = su_packets_alive();
    struct rp_server_config cfg;
    ws_config(&cfg);
    cfg.ws_handshake_timeout_ms = 200;
    struct rp_server *srv = ws_start(&cfg);
    int fd = ws_raw(srv);
    /* Half a request, then nothing: slowloris. */
    su_send_all(fd, "GET / HTTP/1.1\r\nHost: x\r\n", 25);
    assert_int_equal(su_wait_closed(fd, SU_WAIT_MS), 0);
    close(fd);
    ws_wait_idle(srv);
    assert_int_equal(su_leaves(srv, RP_LEAVE_FIRST_PACKET), 1);
    /* A prompt client on the same server is unaffected. */
    fd = ws_client(srv);
    wu_ping_frame(fd, 9);
    close(fd);
    ws_end(srv, before);
}

static void origins_outside_the_allow_list_get_403(void **state)
{
    (void)state;
    uint64_t before = su_packets_alive();
    struct rp_server_config cfg;
    ws_config(&cfg);
    char origins[] = "http://localhost:8080, https://game.example";
    cfg.ws_origins = origins;
    struct rp_server *srv = ws_start(&cfg);
    /* The server keeps its own copy. */
    memset(origins, 'x', sizeof origins - 1);
    uint16_t port = rp_server_ws_port(srv);
    int fd = su_connect(port);
    assert_int_equal(
        wu_expect_refusal(fd, WU_REQUEST("Origin: https://evil.example\r\n"),
                          NULL, 0),
        403);
    close(fd);
    fd = su_connect(port);
    assert_int_equal(
        wu_handshake_status(fd, WU_REQUEST("Origin: HTTPS://game.example\r\n"),
                            NULL, 0),
        101);
    wu_ping_frame(fd, 1);
    close(fd);
    /* No Origin: not a browser; allowed. */
    fd = wu_connect(port);
    wu_ping_frame(fd, 2);
    close(fd);
    ws_end(srv, before);
}

/* Sends 'bytes' on a fresh upgraded connection and expects a close with
   'code' and the end of the session for PROTOCOL. */
static void expect_violation(struct rp_server *srv, const uint8_t *bytes,
                             size_t len, uint16_t code)
{
    uint64_t proto = su_leaves(srv, RP_LEAVE_PROTOCOL);
    int fd = ws_client(srv);
    wu_ping_frame(fd, 1);
    su_send_all(fd, bytes, len);
    wu_expect_close(fd, code);
    close(fd);
    ws_wait_idle(srv);
    assert_int_equal(su_leaves(srv, RP_LEAVE_PROTOCOL), proto + 1);
}

static void frame_rules_close_with_their_codes(void **state)
{
    (void)state;
    uint64_t before = su_packets_alive();
    struct rp_server_config cfg;
    ws_config(&cfg);
    cfg.max_payload = 1000;
    cfg.ws_max_message = 2000;
    struct rp_server *srv = ws_start(&cfg);
    static uint8_t f[8192], p[4096];
    uint8_t frame[64];
    size_t fl = su_frame(frame, 5, "abcd", 4);
    memset(p, 'p', sizeof p);
    size_t n;

    /* An unmasked client frame. */
    n = wu_frame(f, 0x82, frame, fl, true);
    expect_violation(srv, f, n, WS_CLOSE_PROTOCOL);
    /* A text frame. */
    n = wu_frame(f, 0x81, "hello", 5, false);
    expect_violation(srv, f, n, WS_CLOSE_UNSUPPORTED);
    /* Each RSV bit (no extension was negotiated). */
    for (uint8_t rsv = 0x10; rsv <= 0x40; rsv <<= 1) {
        n = wu_frame(f, 0x82 | rsv, frame, fl, false);
        expect_violation(srv, f, n, WS_CLOSE_PROTOCOL);
    }
    /* A ping of 126 bytes; a fragmented ping; a reserved opcode. */
    n = wu_frame(f, 0x89, p, 126, false);
    expect_violation(srv, f, n, WS_CLOSE_PROTOCOL);
    n = wu_frame(f, 0x09, p, 4, false);
    expect_violation(srv, f, n, WS_CLOSE_PROTOCOL);
    n = wu_frame(f, 0x83, p, 4, false);
    expect_violation(srv, f, n, WS_CLOSE_PROTOCOL);
    /* A continuation with no message begun. */
    n = wu_frame(f, 0x80, frame, fl, false);
    expect_violation(srv, f, n, WS_CLOSE_PROTOCOL);
    /* A message over ws_max_message: in one frame, and in fragments (each
       under the limit). */
    n = wu_frame(f, 0x82, p, 2001, false);
    expect_violation(srv, f, n, WS_CLOSE_TOO_BIG);
    n = wu_frame(f, 0x02, p, 1500, false);
    n += wu_frame(f + n, 0x80, p, 501, false);
    expect_violation(srv, f, n, WS_CLOSE_TOO_BIG);
    /* A ringport frame over max_payload inside a good message. */
    uint8_t hdr[4] = {0xE9, 0x03, 1, 0}; /* 1001 bytes */
    n = wu_frame(f, 0x82, hdr, 4, false);
    expect_violation(srv, f, n, WS_CLOSE_TOO_BIG);
    /* A message that ends inside a ringport frame. */
    n = wu_frame(f, 0x82, frame, fl - 1, false);
    expect_violation(srv, f, n, WS_CLOSE_INVALID);
    /* A close with a code no peer may send (1005). */
    uint8_t c1005[2] = {0x03, 0xED};
    n = wu_frame(f, 0x88, c1005, 2, false);
    expect_violation(srv, f, n, WS_CLOSE_PROTOCOL);
    /* A close whose reason is not UTF-8 (an overlong '/'). */
    uint8_t c1000_bad[4] = {0x03, 0xE8, 0xC0, 0xAF};
    n = wu_frame(f, 0x88, c1000_bad, 4, false);
    expect_violation(srv, f, n, WS_CLOSE_INVALID);
    wu_finish(srv, &ev, before);
}

static void ping_gets_a_pong_and_close_is_echoed(void **state)
{
    (void)state;
    uint64_t before = su_packets_alive();
    struct rp_server_config cfg;
    ws_config(&cfg);
    struct rp_server *srv = ws_start(&cfg);
    int fd = ws_client(srv);
    uint8_t b0, got[125], p[125];
    for (size_t i = 0; i < sizeof p; i++)
        p[i] = (uint8_t)(i ^ 0x5a);
    /* Empty, small and the largest control payload. */
    static const size_t sizes[] = {0, 5, 125};
    for (size_t i = 0; i < 3; i++) {
        wu_send(fd, 0x89, p, sizes[i]);
        int r = wu_read(fd, &b0, got, sizeof got);
        assert_int_equal(b0, 0x8A);
        assert_int_equal(r, (int)sizes[i]);
        assert_memory_equal(got, p, sizes[i]);
    }
    /* An unsolicited pong is ignored; the session goes on. */
    wu_send(fd, 0x8A, "x", 1);
    wu_ping_frame(fd, 2);
    /* The close handshake: the code comes back, then a FIN; the session
       ends as the peer's close. */
    uint8_t bye[6] = {0x03, 0xE8, 'b', 'y', 'e', '!'};
    wu_send(fd, 0x88, bye, sizeof bye);
    wu_expect_close(fd, 1000);
    close(fd);
    /* An empty close gets an empty close. */
    fd = ws_client(srv);
    wu_send(fd, 0x88, NULL, 0);
    wu_expect_close(fd, 0);
    close(fd);
    ws_wait_idle(srv);
    assert_int_equal(su_leaves(srv, RP_LEAVE_PEER_CLOSED), 2);
    wu_finish(srv, &ev, before);
}

static void fragments_and_cut_writes_are_reassembled(void **state)
{
    (void)state;
    uint64_t before = su_packets_alive();
    struct rp_server_config cfg;
    ws_config(&cfg);
    cfg.max_payload = 65535;
    struct rp_server *srv = ws_start(&cfg);
    int fd = ws_client(srv);
    static uint8_t payload[60000], frame[60004], f[200000];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 13 + 7);

    /* One ringport frame in three fragments, a ping between two. */
    size_t fl = su_frame(frame, 11, payload, 1000);
    size_t n = wu_frame(f, 0x02, frame, 3, false);
    n += wu_frame(f + n, 0x00, frame + 3, 500, false);
    n += wu_frame(f + n, 0x89, "mid", 3, false);
    n += wu_frame(f + n, 0x80, frame + 503, fl - 503, false);
    su_send_all(fd, f, n);
    uint8_t b0, got[16];
    assert_int_equal(wu_read(fd, &b0, got, sizeof got), 3);
    assert_int_equal(b0, 0x8A);
    wu_expect_frame(fd, 11, payload, 1000);

    /* Two ringport frames in one message: two messages back. */
    n = su_frame(frame, 12, payload, 10);
    n += su_frame(frame + n, 13, payload + 10, 20);
    wu_send(fd, 0x82, frame, n);
    wu_expect_frame(fd, 12, payload, 10);
    wu_expect_frame(fd, 13, payload + 10, 20);

    /* Every size class of the length (7-bit, 16-bit, 64-bit: the reply to
       a 60,000-byte payload is 60,004 bytes, a 16-bit one; 65,535 makes
       the server use the 64-bit length), each message written one byte
       at a time for the small ones, in odd cuts for the large. */
    static const size_t sizes[] = {0, 1, 121, 122, 1000, 60000, 65535};
    static uint8_t big[65539];
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        const uint8_t *src = payload;
        if (sizes[i] > sizeof payload) {
            for (size_t k = 0; k < sizes[i]; k++)
                big[k] = (uint8_t)(k * 13 + 7);
            src = big;
        }
        uint8_t *wire = malloc(sizes[i] + 4);
        assert_non_null(wire);
        size_t wl = su_frame(wire, 20, src, sizes[i]);
        n = wu_frame(f, 0x82, wire, wl, false);
        size_t step = sizes[i] < 200 ? 1 : 7777;
        for (size_t at = 0; at < n; at += step)
            su_send_all(fd, f + at, n - at < step ? n - at : step);
        free(wire);
        wu_expect_frame(fd, 20, src, sizes[i]);
    }
    close(fd);
    ws_end(srv, before);
}

static void frames_right_behind_the_request_are_read(void **state)
{
    (void)state;
    uint64_t before = su_packets_alive();
    struct rp_server_config cfg;
    ws_config(&cfg);
    struct rp_server *srv = ws_start(&cfg);
    int fd = ws_raw(srv);
    static uint8_t buf[1024];
    const char *req = WU_REQUEST("");
    size_t n = strlen(req);
    memcpy(buf, req, n);
    uint8_t frame[16];
    size_t fl = su_frame(frame, 7, "early", 5);
    n += wu_frame(buf + n, 0x82, frame, fl, false);
    su_send_all(fd, buf, n);
    char head[1024];
    assert_true(wu_read_head(fd, head, sizeof head) > 0);
    assert_memory_equal(head, "HTTP/1.1 101 ", 13);
    wu_expect_frame(fd, 7, "early", 5);
    close(fd);
    ws_end(srv, before);
}

static void raw_mode_refuses_a_websocket_listener(void **state)
{
    (void)state;
    struct rp_server_config cfg;
    ws_config(&cfg);
    cfg.mode = RP_SERVER_RAW;
    char err[160];
    assert_int_equal(rp_server_config_validate(&cfg, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "ws_enabled"));
    cfg.mode = RP_SERVER_FRAMED;
    cfg.ws_max_message = cfg.max_payload; /* less than one whole frame */
    assert_int_equal(rp_server_config_validate(&cfg, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "ws_max_message"));
}

/*
 * A broadcast to WebSocket and TCP sessions on two I/O threads is one
 * packet: the packet counters move by exactly the one the test made
 * (no copy per session, no second buffer for the WebSocket header), and
 * every WebSocket client gets it as one binary message, every TCP client
 * as one frame.
 */
static uint64_t packets_out(struct rp_server *srv)
{
    struct rp_server_stats s;
    rp_server_get_stats(srv, &s);
    return s.packets_out;
}

static bool pool_settled(const struct rp_packet_pool_stats *p0,
                         struct rp_packet_pool_stats *p1)
{
    rp_packet_pool_stats(p1);
    return p1->freed == p1->created && p1->created == p0->created + 1;
}

#define BC_WS 6
#define BC_TCP 2
static void a_broadcast_to_websocket_sessions_is_one_packet(void **state)
{
    (void)state;
    uint64_t before = su_packets_alive();
    struct rp_server_config cfg;
    ws_config(&cfg);
    cfg.io_threads = 2;
    cfg.max_payload = 65535;
    struct rp_server *srv = ws_start(&cfg);
    int ws[BC_WS], tcp[BC_TCP];
    for (int i = 0; i < BC_WS; i++) {
        ws[i] = ws_client(srv);
        wu_ping_frame(ws[i], 1);
    }
    for (int i = 0; i < BC_TCP; i++) {
        tcp[i] = su_connect(rp_server_port(srv));
        su_ping(tcp[i], 1);
    }
    SU_WAIT(atomic_load(&ev.joins) == BC_WS + BC_TCP);
    assert_int_equal(atomic_load(&ev.joins), BC_WS + BC_TCP);
    rp_sid ids[BC_WS + BC_TCP];
    pthread_mutex_lock(&ev.lock);
    memcpy(ids, ev.joined, sizeof ids);
    pthread_mutex_unlock(&ev.lock);

    static const size_t sizes[] = {10, 200, 65535};
    static uint8_t payload[65535];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 3 + 1);
    /* The counters move when a send completes, which may be after its
       bytes have arrived: wait for every send so far (101 and an echo per
       WebSocket client, an echo per TCP one). */
    uint64_t sent = 2 * BC_WS + BC_TCP;
    SU_WAIT(packets_out(srv) == sent);
    assert_int_equal(packets_out(srv), sent);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        struct rp_packet_pool_stats p0, p1;
        struct rp_server_stats s0, s1;
        rp_server_get_stats(srv, &s0);
        rp_packet_pool_stats(&p0);
        struct rp_packet *pkt;
        assert_int_equal(rp_packet_create(sizes[k], 42, &pkt), 0);
        assert_int_equal(rp_packet_put_bytes(pkt, payload, sizes[k]), 0);
        assert_int_equal(rp_server_broadcast(srv, ids, BC_WS + BC_TCP, pkt),
                         BC_WS + BC_TCP);
        rp_packet_unref(pkt);
        for (int i = 0; i < BC_WS; i++)
            wu_expect_frame(ws[i], 42, payload, sizes[k]);
        for (int i = 0; i < BC_TCP; i++)
            su_expect_frame(tcp[i], 42, payload, sizes[k]);
        /* Every session's send is back once the bytes arrived; the packet
           is freed by the last. */
        SU_WAIT(pool_settled(&p0, &p1));
        assert_true(pool_settled(&p0, &p1));
        sent += BC_WS + BC_TCP;
        SU_WAIT(packets_out(srv) == sent);
        rp_server_get_stats(srv, &s1);
        size_t wire = 4 + sizes[k];
        size_t hdr = wire <= 125 ? 2 : wire <= 65535 ? 4 : 10;
        assert_int_equal(s1.bytes_out - s0.bytes_out,
                         BC_WS * (hdr + wire) + BC_TCP * wire);
        assert_int_equal(s1.packets_out - s0.packets_out, BC_WS + BC_TCP);
    }
    for (int i = 0; i < BC_WS; i++)
        close(ws[i]);
    for (int i = 0; i < BC_TCP; i++)
        close(tcp[i]);
    ws_end(srv, before);
}

/* ---- resume over WebSocket ---------------------------------------------- */

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Reads one message holding one ringport frame; returns its type and
   payload length. */
static int read_frame_msg(int fd, uint16_t *type, uint8_t *payload, size_t cap)
{
    static uint8_t buf[4 + 65535];
    uint8_t b0;
    int r = wu_read(fd, &b0, buf, sizeof buf);
    if (r < 0)
        return r;
    assert_int_equal(b0, 0x82);
    assert_true(r >= 4);
    size_t len = (size_t)(buf[0] | buf[1] << 8);
    assert_int_equal((size_t)r, len + 4);
    assert_true(len <= cap);
    *type = (uint16_t)(buf[2] | buf[3] << 8);
    memcpy(payload, buf + 4, len);
    return (int)len;
}

static uint64_t detached_now(struct rp_server *srv)
{
    struct rp_server_stats s;
    rp_server_get_stats(srv, &s);
    return s.detached;
}

static void resume_works_over_websocket(void **state)
{
    (void)state;
    uint64_t before = su_packets_alive();
    struct rp_server_config cfg;
    ws_config(&cfg);
    cfg.resume_grace_ms = 10000;
    struct rp_server *srv = ws_start(&cfg);
    uint16_t port = rp_server_ws_port(srv);

    int fd = wu_connect(port);
    wu_send_frame(fd, RP_CTL_HELLO, NULL, 0);
    uint8_t p[64];
    uint16_t type;
    int r = read_frame_msg(fd, &type, p, sizeof p);
    assert_int_equal(type, RP_CTL_RESUME_TOKEN);
    assert_int_equal(r, 8 + RP_RESUME_TOKEN_SIZE);
    rp_sid sid = le64(p);
    uint8_t tok[RP_RESUME_TOKEN_SIZE];
    memcpy(tok, p + 8, sizeof tok);
    wu_ping_frame(fd, 5); /* one game frame each way */
    /* The link drops (no close frame): the session waits, detached. */
    close(fd);
    SU_WAIT(su_sessions(srv) == 1 && detached_now(srv) == 1);
    assert_int_equal(detached_now(srv), 1);

    /* A new WebSocket connection takes it back. */
    fd = wu_connect(port);
    uint8_t res[RP_RESUME_MIN_PAYLOAD];
    put64(res, sid);
    memcpy(res + 8, tok, sizeof tok);
    put64(res + 24, 1);
    wu_send_frame(fd, RP_CTL_RESUME, res, sizeof res);
    r = read_frame_msg(fd, &type, p, sizeof p);
    assert_int_equal(type, RP_CTL_RESUME_OK);
    assert_int_equal(r, 8 + RP_RESUME_TOKEN_SIZE);
    assert_int_equal(le64(p), 1); /* the server had our one frame */
    wu_ping_frame(fd, 6);

    /* A RESUME with the spent token is refused over WebSocket too: the
       error as a binary message, then a close. */
    int fd2 = wu_connect(port);
    wu_send_frame(fd2, RP_CTL_RESUME, res, sizeof res);
    r = read_frame_msg(fd2, &type, p, sizeof p);
    assert_int_equal(type, RP_CTL_RESUME_ERROR);
    assert_int_equal(r, 2);
    assert_int_equal(p[0] | p[1] << 8, RP_RESUME_ERR_TOKEN);
    wu_expect_close(fd2, 1000);
    close(fd2);

    wu_send(fd, 0x88, (uint8_t[]){0x03, 0xE8}, 2);
    wu_expect_close(fd, 1000);
    close(fd);
    ws_wait_idle(srv);
    struct rp_server_stats s;
    rp_server_get_stats(srv, &s);
    assert_int_equal(s.resumes, 1);
    assert_int_equal(s.resume_refused, 1);
    assert_int_equal(atomic_load(&ev.joins), 1);
    rp_server_stop(srv);
    assert_int_equal(atomic_load(&ev.leaves), 1);
    assert_int_equal(atomic_load(&ev.by_reason[RP_LEAVE_PEER_CLOSED]), 1);
    rp_server_destroy(srv);
    assert_int_equal(su_packets_alive(), before);
}

/* A kick and a graceful stop end an upgraded connection with a close
   frame (1000, 1001) behind what was queued, then a FIN. */
static void kick_and_stop_send_a_close_frame(void **state)
{
    (void)state;
    uint64_t before = su_packets_alive();
    struct rp_server_config cfg;
    ws_config(&cfg);
    struct rp_server *srv = ws_start(&cfg);
    int a = ws_client(srv);
    wu_ping_frame(a, 1);
    SU_WAIT(atomic_load(&ev.joins) == 1);
    pthread_mutex_lock(&ev.lock);
    rp_sid sid = ev.joined[0];
    pthread_mutex_unlock(&ev.lock);
    struct rp_packet *pkt;
    assert_int_equal(rp_packet_create(3, 9, &pkt), 0);
    rp_packet_put_bytes(pkt, "bye", 3);
    assert_int_equal(rp_server_send(srv, sid, pkt), 0);
    rp_packet_unref(pkt);
    assert_int_equal(rp_server_disconnect(srv, sid), 0);
    wu_expect_frame(a, 9, "bye", 3);
    wu_expect_close(a, 1000);
    close(a);
    int b = ws_client(srv);
    wu_ping_frame(b, 2);
    rp_server_stop(srv);
    wu_expect_close(b, 1001);
    close(b);
    assert_int_equal(su_leaves(srv, RP_LEAVE_KICKED), 1);
    assert_int_equal(su_leaves(srv, RP_LEAVE_SERVER_STOP), 1);
    wu_finish(srv, &ev, before);
}

static uint64_t ws_open(struct rp_server *srv)
{
    struct rp_server_stats s;
    rp_server_get_stats(srv, &s);
    return s.ws_sessions;
}

static void metric_is(const char *text, const char *series, double want)
{
    double v = mu_value(text, series);
    if (isnan(v) || v != want)
        fail_msg("%s = %g, want %g", series, v, want);
}

static void metrics_count_sessions_by_transport(void **state)
{
    (void)state;
    uint64_t before = su_packets_alive();
    struct rp_server_config cfg;
    ws_config(&cfg);
    struct rp_server *srv = ws_start(&cfg);
    struct rp_metrics *m;
    assert_int_equal(rp_metrics_create("127.0.0.1:0", &m), 0);
    assert_int_equal(rp_metrics_add_server(m, srv, NULL), 0);
    int ws = ws_client(srv);
    wu_ping_frame(ws, 1);
    int tcp = su_connect(rp_server_port(srv));
    su_ping(tcp, 2);
    int bad = ws_raw(srv);
    const char *v8 = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: " WU_KEY
                     "\r\nSec-WebSocket-Version: 8\r\n\r\n";
    assert_int_equal(wu_expect_refusal(bad, v8, NULL, 0), 426);
    close(bad);
    /* The refused connection's state goes when its close is back. */
    SU_WAIT(su_sessions(srv) == 2 && ws_open(srv) == 1);
    assert_int_equal(su_sessions(srv), 2);
    assert_int_equal(ws_open(srv), 1);
    struct mu_reply r;
    assert_int_equal(mu_get(rp_metrics_port(m), "/metrics", &r), 0);
    assert_int_equal(r.status, 200);
    metric_is(r.body, "ringport_transport_sessions{transport=\"ws\"}", 1);
    metric_is(r.body, "ringport_transport_sessions{transport=\"tcp\"}", 1);
    metric_is(r.body, "ringport_transport_accepts_total{transport=\"ws\"}", 2);
    metric_is(r.body, "ringport_transport_accepts_total{transport=\"tcp\"}", 1);
    metric_is(r.body, "ringport_ws_handshakes_total{result=\"upgraded\"}", 1);
    metric_is(r.body, "ringport_ws_handshakes_total{result=\"refused\"}", 1);
    mu_reply_free(&r);
    close(ws);
    close(tcp);
    ws_wait_idle(srv);
    rp_metrics_destroy(m);
    wu_finish(srv, &ev, before);
}

int main(int argc, char **argv)
{
    su_parse_backend(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(handshake_answers_101_and_echoes),
        cmocka_unit_test(another_version_gets_426_naming_13),
        cmocka_unit_test(malformed_and_oversized_requests_get_400),
        cmocka_unit_test(a_slow_handshake_is_cut_at_its_deadline),
        cmocka_unit_test(origins_outside_the_allow_list_get_403),
        cmocka_unit_test(frame_rules_close_with_their_codes),
        cmocka_unit_test(ping_gets_a_pong_and_close_is_echoed),
        cmocka_unit_test(fragments_and_cut_writes_are_reassembled),
        cmocka_unit_test(frames_right_behind_the_request_are_read),
        cmocka_unit_test(raw_mode_refuses_a_websocket_listener),
        cmocka_unit_test(a_broadcast_to_websocket_sessions_is_one_packet),
        cmocka_unit_test(resume_works_over_websocket),
        cmocka_unit_test(metrics_count_sessions_by_transport),
        cmocka_unit_test(kick_and_stop_send_a_close_frame),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
