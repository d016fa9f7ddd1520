/*
 * libringport-client's session resume against a fake server written here
 * with raw sockets, which speaks the engine control messages of
 * docs/protocol.md by hand: a fresh connection starts with HELLO and gets
 * RESUME_TOKEN; after a drop (mid-frame included) the client sends RESUME
 * {sid, token, received} and nothing else until RESUME_OK, then resends
 * exactly the frames the server had not received, in order, and uses the
 * new token; RESUME_ERROR loses the session (counted) and the client starts
 * again with HELLO; control frames never reach rp_client_recv; the client
 * ACKs what it receives, retains what it wrote until the server ACKs it,
 * and that retention counts against send_queue_max; a frame cut by
 * rp_client_drop_next comes again whole after RESUME_OK.
 *
 * One thread: the fake server's waits pump the client (rp_client_poll(c,
 * 0)) between short polls of its own socket. The test does not use the
 * engine, so the backend flag does not matter.
 */
#include "helpers.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <ringport/client.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HELLO 0xFF00
#define RESUME_TOKEN 0xFF01
#define RESUME 0xFF02
#define RESUME_OK 0xFF03
#define RESUME_ERROR 0xFF04
#define ACK 0xFF05
#define GAME 7
#define WAIT_MS 10000

struct fake {
    int lfd, fd;
    uint16_t port;
    uint8_t rx[1 << 20];
    size_t rlen;
};

static struct fake fs;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void fake_listen(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    fs.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(fs.lfd >= 0);
    assert_int_equal(bind(fs.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fs.lfd, 8), 0);
    getsockname(fs.lfd, (struct sockaddr *)&a, &len);
    fs.port = ntohs(a.sin_port);
    fs.fd = -1;
}

static void pump(struct rp_client *c)
{
    assert_true(rp_client_poll(c, 0) >= 0);
}

static void fake_accept(struct rp_client *c)
{
    uint64_t deadline = now_ms() + WAIT_MS;
    for (;;) {
        assert_true(now_ms() < deadline);
        pump(c);
        int fd = accept4(fs.lfd, NULL, NULL, SOCK_NONBLOCK);
        if (fd >= 0) {
            fs.fd = fd;
            fs.rlen = 0;
            return;
        }
        struct pollfd p = {.fd = fs.lfd, .events = POLLIN};
        poll(&p, 1, 2);
    }
}

/* Resets the connection (RST): what the server has not read is lost. */
static void fake_reset(void)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fs.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fs.fd);
    fs.fd = -1;
    fs.rlen = 0;
}

/* Reads until 'want' bytes are buffered, pumping the client. */
static void fake_fill(struct rp_client *c, size_t want)
{
    uint64_t deadline = now_ms() + WAIT_MS;
    while (fs.rlen < want) {
        assert_true(now_ms() < deadline);
        pump(c);
        ssize_t n = recv(fs.fd, fs.rx + fs.rlen, sizeof(fs.rx) - fs.rlen, 0);
        if (n > 0) {
            fs.rlen += (size_t)n;
            continue;
        }
        assert_true(n < 0 && errno == EAGAIN); /* no close expected */
        struct pollfd p = {.fd = fs.fd, .events = POLLIN};
        poll(&p, 1, 2);
    }
}

/* The next frame from the client: its type, payload copied to 'p'. */
static uint16_t fake_read(struct rp_client *c, uint8_t *p, uint16_t *len)
{
    fake_fill(c, 4);
    uint16_t l = (uint16_t)(fs.rx[0] | fs.rx[1] << 8);
    uint16_t type = (uint16_t)(fs.rx[2] | fs.rx[3] << 8);
    fake_fill(c, 4u + l);
    memcpy(p, fs.rx + 4, l);
    memmove(fs.rx, fs.rx + 4 + l, fs.rlen - 4 - l);
    fs.rlen -= 4u + l;
    *len = l;
    return type;
}

/* The next game frame; ACKs before it are checked (rising) and skipped. */
static uint32_t fake_read_game(struct rp_client *c, uint64_t *last_ack)
{
    uint8_t p[256];
    uint16_t len;
    for (;;) {
        uint16_t type = fake_read(c, p, &len);
        if (type == ACK) {
            assert_int_equal(len, 8);
            assert_true(get_u64(p) >= *last_ack);
            *last_ack = get_u64(p);
            continue;
        }
        assert_int_equal(type, GAME);
        assert_int_equal(len, 4);
        uint32_t k;
        memcpy(&k, p, 4);
        return k;
    }
}

static void fake_write(struct rp_client *c, uint16_t type, const void *p,
                       uint16_t len)
{
    uint8_t f[4 + 256];
    f[0] = (uint8_t)len;
    f[1] = (uint8_t)(len >> 8);
    f[2] = (uint8_t)type;
    f[3] = (uint8_t)(type >> 8);
    memcpy(f + 4, p, len);
    size_t off = 0;
    uint64_t deadline = now_ms() + WAIT_MS;
    while (off < 4u + len) {
        assert_true(now_ms() < deadline);
        ssize_t n = send(fs.fd, f + off, 4u + len - off, MSG_NOSIGNAL);
        if (n > 0)
            off += (size_t)n;
        else
            pump(c);
    }
}

static void send_token(struct rp_client *c, uint64_t sid, uint8_t fill)
{
    uint8_t p[24];
    put_u64(p, sid);
    memset(p + 8, fill, 16);
    fake_write(c, RESUME_TOKEN, p, sizeof(p));
}

static void send_resume_ok(struct rp_client *c, uint64_t received, uint8_t fill)
{
    uint8_t p[24];
    put_u64(p, received);
    memset(p + 8, fill, 16);
    fake_write(c, RESUME_OK, p, sizeof(p));
}

static void send_game(struct rp_client *c, uint32_t k)
{
    fake_write(c, GAME, &k, 4);
}

static struct rp_client *resume_client(uint32_t queue_max)
{
    struct rp_client_config cc;
    struct rp_client *c = NULL;
    rp_client_config_init(&cc, "127.0.0.1", fs.port);
    cc.resume = 1;
    cc.backoff_min_ms = 1;
    cc.backoff_max_ms = 10;
    cc.send_queue_max = queue_max;
    cc.seed = 7;
    assert_int_equal(rp_client_create(&cc, &c), 0);
    assert_int_equal(rp_client_start(c), 0);
    return c;
}

/* Receives game frames [first, first + n) in order; nothing else. */
static void expect_game(struct rp_client *c, uint32_t first, uint32_t n)
{
    uint64_t deadline = now_ms() + WAIT_MS;
    struct rp_client_frame f;
    uint32_t k = first;
    while (k < first + n) {
        assert_true(now_ms() < deadline);
        if (rp_client_recv(c, &f) == 1) {
            assert_int_equal(f.type, GAME);
            assert_int_equal(f.len, 4);
            uint32_t v;
            memcpy(&v, f.payload, 4);
            assert_int_equal(v, k);
            k++;
            continue;
        }
        assert_true(rp_client_poll(c, 2) >= 0);
    }
}

/* The first frame of a new connection: RESUME, checked. */
static void expect_resume(struct rp_client *c, uint64_t sid, uint8_t fill,
                          uint64_t received)
{
    uint8_t p[256], tok[16];
    uint16_t len;
    memset(tok, fill, 16);
    assert_int_equal(fake_read(c, p, &len), RESUME);
    assert_int_equal(len, 32);
    assert_int_equal(get_u64(p), sid);
    assert_memory_equal(p + 8, tok, 16);
    assert_int_equal(get_u64(p + 24), received);
}

static void resume_resends_exactly_what_the_server_missed(void **state)
{
    (void)state;
    fake_listen();
    struct rp_client *c = resume_client(1 << 20);
    uint8_t p[256];
    uint16_t len;
    uint64_t ack = 0;
    struct rp_client_stats st;

    fake_accept(c);
    assert_int_equal(fake_read(c, p, &len), HELLO);
    assert_int_equal(len, 0);
    send_token(c, 42, 0xA1);
    for (uint32_t k = 0; k < 100; k++)
        assert_int_equal(rp_client_send(c, GAME, &k, 4), 0);
    /* The server reads 60 frames and two bytes of the 61st. */
    for (uint32_t k = 0; k < 60; k++)
        assert_int_equal(fake_read_game(c, &ack), k);
    fake_fill(c, 2);
    for (uint32_t k = 0; k < 70; k++)
        send_game(c, k);
    expect_game(c, 0, 70); /* the token never reached recv */
    fake_reset();

    /* RESUME first, with the old token and the 70 received. */
    fake_accept(c);
    expect_resume(c, 42, 0xA1, 70);
    /* Nothing else before RESUME_OK: pump, then check the socket. */
    for (int i = 0; i < 20; i++) {
        pump(c);
        poll(NULL, 0, 1);
    }
    assert_true(recv(fs.fd, p, sizeof(p), MSG_PEEK) < 0 && errno == EAGAIN);
    send_resume_ok(c, 60, 0xB2);
    /* Frames 60..99 again, whole and in order, then nothing doubled. */
    for (uint32_t k = 60; k < 100; k++)
        assert_int_equal(fake_read_game(c, &ack), k);
    for (uint32_t k = 70; k < 80; k++)
        send_game(c, k);
    expect_game(c, 70, 10);
    rp_client_get_stats(c, &st);
    assert_int_equal(st.resumes, 1);
    assert_int_equal(st.sessions_lost, 0);
    assert_int_equal(st.frames_in, 80);
    assert_int_equal(st.frames_out, 100);
    assert_true(st.frames_resent >= 40);

    /* The client drops this time; the new token is used; refused. */
    rp_client_drop(c);
    fake_reset();
    fake_accept(c);
    expect_resume(c, 42, 0xB2, 80);
    uint8_t code[2] = {2, 0};
    uint32_t x = 1000;
    fake_write(c, RESUME_ERROR, code, 2);
    fake_reset();
    /* Lost: counted, and a new session starts with HELLO; what was
       retained for the old one is not sent on it. */
    fake_accept(c);
    assert_int_equal(fake_read(c, p, &len), HELLO);
    rp_client_get_stats(c, &st);
    assert_int_equal(st.sessions_lost, 1);
    assert_int_equal(rp_client_send(c, GAME, &x, 4), 0);
    ack = 0;
    assert_int_equal(fake_read_game(c, &ack), 1000);
    send_token(c, 43, 0xC3);
    send_game(c, 0);
    expect_game(c, 0, 1);
    rp_client_drop(c);
    fake_accept(c);
    expect_resume(c, 43, 0xC3, 1); /* counts start again per session */
    rp_client_destroy(c);
    fake_reset();
    close(fs.lfd);
}

static void client_acks_what_it_receives_and_retains_until_acked(void **state)
{
    (void)state;
    fake_listen();
    /* Room for 39 frames of 4 + 100 bytes. */
    struct rp_client *c = resume_client(39 * 104 + 50);
    uint8_t p[256], big[100] = {0};
    uint16_t len;
    uint64_t ack = 0;
    fake_accept(c);
    assert_int_equal(fake_read(c, p, &len), HELLO);
    send_token(c, 9, 0x11);

    /* ACKs: the server sends 200 frames one by one; the client ACKs at
       least every 32, rising, with nothing out of range. */
    for (uint32_t k = 0; k < 200; k++) {
        send_game(c, k);
        expect_game(c, k, 1);
    }
    uint32_t acks = 0;
    uint64_t last = 0;
    while (last < 192) {
        uint16_t type = fake_read(c, p, &len);
        assert_int_equal(type, ACK);
        assert_true(get_u64(p) > last && get_u64(p) <= 200);
        assert_true(get_u64(p) - last >= 32);
        last = get_u64(p);
        acks++;
    }
    assert_int_equal(acks, 6);

    /* Retention: written frames stay until the server ACKs them. */
    uint32_t n = 0;
    while (rp_client_send(c, 1, big, sizeof(big)) == 0)
        n++;
    assert_int_equal(n, 39);
    assert_int_equal(rp_client_send(c, 1, big, sizeof(big)), -ENOBUFS);
    for (uint32_t k = 0; k < n; k++) {
        assert_int_equal(fake_read(c, p, &len), 1);
        assert_int_equal(len, sizeof(big));
    }
    assert_int_equal(rp_client_flush(c, WAIT_MS), 0); /* written, unacked */
    assert_int_equal(rp_client_send(c, 1, big, sizeof(big)), -ENOBUFS);
    uint8_t a[8];
    put_u64(a, 30);
    fake_write(c, ACK, a, 8);
    uint64_t deadline = now_ms() + WAIT_MS;
    int r;
    while ((r = rp_client_send(c, 1, big, sizeof(big))) == -ENOBUFS) {
        assert_true(now_ms() < deadline);
        assert_true(rp_client_poll(c, 2) >= 0);
    }
    assert_int_equal(r, 0); /* 30 released: room again */
    (void)ack;
    rp_client_destroy(c);
    fake_reset();
    close(fs.lfd);
}

/* rp_client_drop_next: the server gets part of frame 5 and a reset; after
   RESUME_OK {5} the frame comes again whole. */
static void a_frame_cut_by_a_drop_comes_again_whole(void **state)
{
    (void)state;
    fake_listen();
    struct rp_client *c = resume_client(1 << 20);
    uint8_t p[256];
    uint16_t len;
    uint64_t ack = 0;
    fake_accept(c);
    assert_int_equal(fake_read(c, p, &len), HELLO);
    send_token(c, 5, 0x55);
    for (uint32_t k = 0; k < 5; k++) {
        assert_int_equal(rp_client_send(c, GAME, &k, 4), 0);
        assert_int_equal(fake_read_game(c, &ack), k);
    }
    rp_client_drop_next(c);
    uint32_t five = 5;
    assert_int_equal(rp_client_send(c, GAME, &five, 4), 0);
    assert_int_not_equal(rp_client_state(c), RP_CLIENT_CONNECTED);
    /* The bytes before the reset: a prefix of the 8-byte frame. */
    size_t got = 0;
    uint64_t deadline = now_ms() + WAIT_MS;
    for (;;) {
        assert_true(now_ms() < deadline);
        ssize_t n = recv(fs.fd, p + got, sizeof(p) - got, 0);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (n == 0 || errno != EAGAIN)
            break;
        poll(NULL, 0, 1);
    }
    assert_true(got >= 1 && got <= 7);
    assert_int_equal(p[0], 4); /* its header's length byte */
    fake_reset();
    fake_accept(c);
    expect_resume(c, 5, 0x55, 0);
    send_resume_ok(c, 5, 0x66);
    assert_int_equal(fake_read_game(c, &ack), 5);
    struct rp_client_stats st;
    rp_client_get_stats(c, &st);
    assert_int_equal(st.frames_out, 6);
    assert_true(st.frames_resent >= 1);
    rp_client_destroy(c);
    fake_reset();
    close(fs.lfd);
}

static void a_resume_client_refuses_the_engines_types(void **state)
{
    (void)state;
    fake_listen();
    struct rp_client *c = resume_client(1 << 20);
    assert_int_equal(rp_client_send(c, HELLO, NULL, 0), -EINVAL);
    assert_int_equal(rp_client_send(c, 0xFFFF, NULL, 0), -EINVAL);
    rp_client_destroy(c);
    close(fs.lfd);

    struct rp_client_config cc;
    struct rp_client *d = NULL;
    rp_client_config_init(&cc, "127.0.0.1", 7);
    cc.resume = 1;
    cc.reconnect = 0; /* resume needs reconnect */
    assert_int_equal(rp_client_create(&cc, &d), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(resume_resends_exactly_what_the_server_missed),
        cmocka_unit_test(client_acks_what_it_receives_and_retains_until_acked),
        cmocka_unit_test(a_frame_cut_by_a_drop_comes_again_whole),
        cmocka_unit_test(a_resume_client_refuses_the_engines_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
