/*
 * Cross-shard chat (docs/cluster.md): two ringport-game shards on one
 * private nats-server, a player on each in channel 0.
 *   - 100 lines from shard 0 reach the player on shard 1 in order, each
 *     once, from the right name; a line the other way arrives too; the
 *     sender's own shard gives it its line at once, as without a cluster;
 *   - lines crafted on the chat subject (the test speaks the NATS text
 *     protocol itself): a duplicate is dropped, a jump in the sequence is
 *     counted as a gap, a line from a restarted origin (new epoch) starts
 *     its count again, and a message that does not decode is counted and
 *     dropped, never delivered;
 *   - nats-server killed: chat stays local (the sender still gets its
 *     line, the line is counted as not sent); restarted: cross-shard chat
 *     resumes by itself (the time it took is printed, not asserted), in
 *     order, with no duplicate.
 */
#include "cluster_util.h"

#include "../../examples/game/cluster_wire.c"
#include "../../examples/game/rules.c"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#define LINES 100

/* The next CHAT_MSG on 'fd' within 'ms', or false. Other messages
   (none are expected here) fail the test. */
static bool chat_within(int fd, int ms, struct gm_msg *m, uint8_t *buf)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0)
        return false;
    gu_expect(fd, GM_CHAT_MSG, m, buf);
    return true;
}

static void say(int fd, const char *text)
{
    struct gm_msg m = {.type = GM_CHAT};
    m.u.chat = gm_str_of(text, strlen(text));
    gu_send(fd, &m);
}

/* The sender gets its own line back from its own shard at once. */
static void say_and_see(int fd, const char *text)
{
    struct gm_msg m;
    uint8_t buf[GM_PAYLOAD_MAX];
    say(fd, text);
    gu_expect(fd, GM_CHAT_MSG, &m, buf);
    assert_int_equal(m.u.chat_msg.text.len, strlen(text));
    assert_memory_equal(m.u.chat_msg.text.p, text, strlen(text));
}

/* Sends probes from 'from' until 'to' hears one (bounded); returns the
   milliseconds it took. Probes heard later are skipped by the caller. */
static uint64_t until_heard(int from, int to)
{
    struct gm_msg m;
    uint8_t buf[GM_PAYLOAD_MAX];
    uint64_t t0 = cl_now_ms();
    while (cl_now_ms() - t0 < CL_RETRY_MS) {
        say_and_see(from, "probe");
        if (chat_within(to, 50, &m, buf))
            return cl_now_ms() - t0;
    }
    fail_msg("no chat line crossed the shards within %d ms", CL_RETRY_MS);
    return 0;
}

/* Expects "n=<first>" .. "n=<last>" on 'fd' from 'name', in order,
   skipping probes. */
static void expect_lines(int fd, const char *name, int first, int last)
{
    struct gm_msg m;
    uint8_t buf[GM_PAYLOAD_MAX];
    for (int i = first; i <= last;) {
        gu_expect(fd, GM_CHAT_MSG, &m, buf);
        char text[256];
        snprintf(text, sizeof text, "%.*s", (int)m.u.chat_msg.text.len,
                 m.u.chat_msg.text.p);
        if (strcmp(text, "probe") == 0)
            continue;
        char want[32];
        snprintf(want, sizeof want, "n=%d", i);
        if (strcmp(text, want) != 0)
            fail_msg("expected '%s', got '%s'", want, text);
        assert_int_equal(m.u.chat_msg.from.len, strlen(name));
        assert_memory_equal(m.u.chat_msg.from.p, name, strlen(name));
        assert_int_equal(m.u.chat_msg.channel, 0);
        i++;
    }
}

/* ---- a raw NATS publisher (the text protocol: INFO, CONNECT, PUB) ------ */

static int nats_raw_connect(uint16_t port)
{
    int fd = gu_connect(port);
    char info[4096];
    ssize_t n = read(fd, info, sizeof info - 1); /* INFO {...}\r\n */
    assert_true(n > 5);
    assert_memory_equal(info, "INFO ", 5);
    const char *hello = "CONNECT {\"verbose\":false,\"pedantic\":false}\r\n";
    assert_int_equal(write(fd, hello, strlen(hello)), (ssize_t)strlen(hello));
    return fd;
}

static void nats_raw_pub(int fd, const char *subj, const void *data, size_t len)
{
    char head[128];
    int n = snprintf(head, sizeof head, "PUB %s %zu\r\n", subj, len);
    assert_int_equal(write(fd, head, (size_t)n), n);
    if (len)
        assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(write(fd, "\r\n", 2), 2);
}

/* PING, then wait for PONG: everything before it reached the server. */
static void nats_raw_flush(int fd)
{
    assert_int_equal(write(fd, "PING\r\n", 6), 6);
    char buf[256];
    size_t have = 0;
    while (have < sizeof buf - 1) {
        ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
        assert_true(n > 0);
        have += (size_t)n;
        buf[have] = '\0';
        if (strstr(buf, "PONG"))
            return;
    }
    fail_msg("no PONG from nats-server");
}

static void crafted_line(int fd, uint64_t epoch, uint64_t seq, const char *t)
{
    struct cw_chat c = {.origin = 77,
                        .epoch = epoch,
                        .seq = seq,
                        .channel = 0,
                        .from_len = 5,
                        .text_len = (uint16_t)strlen(t)};
    memcpy(c.from, "ghost", 6);
    memcpy(c.text, t, c.text_len + 1u);
    uint8_t buf[CW_CHAT_MAX];
    int n = cw_chat_encode(&c, buf, sizeof buf);
    assert_true(n > 0);
    nats_raw_pub(fd, "rp.chat.0", buf, (size_t)n);
}

static void expect_text(int fd, const char *text)
{
    struct gm_msg m;
    uint8_t buf[GM_PAYLOAD_MAX];
    for (;;) {
        gu_expect(fd, GM_CHAT_MSG, &m, buf);
        if (m.u.chat_msg.text.len == 5 &&
            memcmp(m.u.chat_msg.text.p, "probe", 5) == 0)
            continue;
        break;
    }
    if (m.u.chat_msg.text.len != strlen(text) ||
        memcmp(m.u.chat_msg.text.p, text, strlen(text)) != 0)
        fail_msg("expected '%s', got '%.*s'", text, (int)m.u.chat_msg.text.len,
                 m.u.chat_msg.text.p);
}

static void chat_crosses_shards_in_order_once(void **state)
{
    (void)state;
    struct gu_game a, b;
    cl_shard_start(&a, 0);
    cl_shard_start(&b, 1);
    cl_wait_connected(&a, 1);
    cl_wait_connected(&b, 1);
    int ann, ben;
    assert_int_equal(cl_try_login(a.port, "ann", &ann), 0);
    assert_int_equal(cl_try_login(b.port, "ben", &ben), 0);

    /* 100 lines a -> b, in order, once; one line b -> a. */
    until_heard(ann, ben);
    until_heard(ben, ann);
    for (int i = 0; i < LINES; i++) {
        char text[32];
        snprintf(text, sizeof text, "n=%d", i);
        say_and_see(ann, text);
    }
    expect_lines(ben, "ann", 0, LINES - 1);
    /* They came to b's lobby as posts from its cluster group. */
    assert_true(cl_metric(&b, "ringport_group_posts_total{group=\"lobby\"}") >=
                LINES);
    say_and_see(ben, "n=0");
    expect_lines(ann, "ben", 0, 0);

    /* Crafted lines from a shard 77: 1, 2, 2 (duplicate), 5 (gap of 2),
       garbage, then a new epoch starting at 9 (no gap: a new run). */
    double gaps0 = cl_metric(&b, "ringport_cluster_chat_gaps_total");
    int raw = nats_raw_connect(cl_nats.port);
    crafted_line(raw, 1000, 1, "g1");
    crafted_line(raw, 1000, 2, "g2");
    crafted_line(raw, 1000, 2, "g2 again");
    crafted_line(raw, 1000, 5, "g5");
    nats_raw_pub(raw, "rp.chat.0", "not a chat line", 15);
    crafted_line(raw, 2000, 9, "new run");
    nats_raw_flush(raw);
    close(raw);
    expect_text(ben, "g1");
    expect_text(ben, "g2");
    expect_text(ben, "g5");
    expect_text(ben, "new run");
    assert_true(cl_metric(&b, "ringport_cluster_chat_duplicates_total") == 1);
    assert_true(cl_metric(&b, "ringport_cluster_chat_gaps_total") == gaps0 + 2);
    assert_true(cl_metric(&b, "ringport_cluster_chat_bad_total") == 1);
    /* ann's shard got the same crafted lines. */
    expect_text(ann, "g1");
    expect_text(ann, "g2");
    expect_text(ann, "g5");
    expect_text(ann, "new run");

    /* Outage: chat stays local and is counted as not sent. */
    uint16_t port = cl_nats.port;
    nu_kill(&cl_nats);
    cl_wait_connected(&a, 0);
    cl_wait_connected(&b, 0);
    say_and_see(ann, "during the outage");
    cl_wait_metric(&a, "ringport_cluster_chat_out_failed_total", 1);

    /* Back: chat resumes by itself, in order, with no duplicate. */
    assert_int_equal(nu_start(&cl_nats, port), 0);
    uint64_t t_restart = cl_now_ms();
    cl_wait_connected(&a, 1);
    cl_wait_connected(&b, 1);
    until_heard(ann, ben);
    fprintf(stderr,
            "cross-shard chat resumed %llu ms after nats-server restarted\n",
            (unsigned long long)(cl_now_ms() - t_restart));
    for (int i = 0; i < 20; i++) {
        char text[32];
        snprintf(text, sizeof text, "n=%d", i);
        say_and_see(ann, text);
    }
    expect_lines(ben, "ann", 0, 19);
    assert_true(cl_metric(&b, "ringport_cluster_chat_duplicates_total") == 1);
    cl_wait_metric(&b, "ringport_cluster_chat_in_total", LINES + 24);

    close(ann);
    close(ben);
    gu_stop(&a);
    gu_stop(&b);
}

int main(int argc, char **argv)
{
    (void)t_seed();
    gu_backend = t_backend(argc, argv);
    cu_find_build_dir();
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(chat_crosses_shards_in_order_once,
                                  cu_kill_leftovers),
    };
    return cmocka_run_group_tests(tests, cl_nats_up, cl_nats_down);
}
