/*
 * The competitor servers of the side-by-side benchmark (bench/servers/) are
 * correct: a wrong baseline makes every ratio meaningless. Each is started
 * as a child on port 0, checked with real client sockets (every byte
 * compared), and stopped with SIGTERM, which must end it with status 0.
 *
 * The baselines do not use ringport's backends, so the two registrations
 * split the work instead of repeating it: --backend=uring checks
 * bench-uring_echo (skipped, exit 77, where the kernel refuses io_uring);
 * --backend=epoll (and auto) check bench-epoll_echo, bench-uv_echo (when
 * libuv was found at build time) and bench-epoll_room. Programs are found
 * beside this test: BUILD/tests/<this> -> BUILD/bench/bench-<name>.
 */
#include "helpers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 15000 /* bound on any one wait: a hang fails, slowness not */

extern char **environ;

static char bench_dir[PATH_MAX];
static uint64_t seed;

struct child {
    pid_t pid;
    int out; /* read end of its stdout */
    uint16_t port;
};

static pid_t live; /* killed by the teardown if a test failed midway */

static int kill_leftover_child(void **state)
{
    (void)state;
    if (live > 0) {
        kill(live, SIGKILL);
        waitpid(live, NULL, 0);
        live = 0;
    }
    return 0;
}

static void program(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/bench-%s", bench_dir, name);
}

/* Starts bench-'name' with 'flags' on port 0 and reads its port. */
static void child_start(struct child *c, const char *name, const char *flags)
{
    char path[PATH_MAX + 64], line[128], fl[64];
    char *argv[8] = {path, "--port", "0"};
    int n = 3, o[2];
    program(path, sizeof path, name);
    snprintf(fl, sizeof fl, "%s", flags ? flags : "");
    for (char *t = strtok(fl, " "); t && n < 7; t = strtok(NULL, " "))
        argv[n++] = t;
    argv[n] = NULL;
    assert_int_equal(pipe2(o, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, o[1], STDOUT_FILENO);
    int err = posix_spawn(&c->pid, path, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(o[1]);
    if (err)
        fail_msg("cannot start %s: %s", path, strerror(err));
    live = c->pid;
    c->out = o[0];
    size_t len = 0;
    while (len + 1 < sizeof line) {
        struct pollfd p = {.fd = c->out, .events = POLLIN};
        if (poll(&p, 1, WAIT_MS) <= 0)
            fail_msg("%s: no first line", name);
        if (read(c->out, line + len, 1) != 1 || line[len] == '\n')
            break;
        len++;
    }
    line[len] = '\0';
    const char *colon = strrchr(line, ':');
    if (strncmp(line, "listening on 127.0.0.1:", 23) != 0 || !colon)
        fail_msg("%s: first line '%s'", name, line);
    int port = atoi(colon + 1);
    assert_true(port > 0 && port < 65536);
    c->port = (uint16_t)port;
}

/* Waits (bounded) for the child to exit; returns its status. */
static int child_wait(struct child *c)
{
    int status = 0;
    for (int waited = 0;; waited += 5) {
        if (waitpid(c->pid, &status, WNOHANG) == c->pid)
            break;
        if (waited >= WAIT_MS)
            fail_msg("pid %d did not exit", (int)c->pid);
        usleep(5000);
    }
    live = 0;
    close(c->out);
    if (!WIFEXITED(status))
        fail_msg("died of signal %d", WTERMSIG(status));
    return WEXITSTATUS(status);
}

static void child_stop(struct child *c)
{
    assert_int_equal(kill(c->pid, SIGTERM), 0);
    assert_int_equal(child_wait(c), 0);
}

static int client(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {WAIT_MS / 1000, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

static void send_all(int fd, const void *p, size_t len)
{
    const uint8_t *b = p;
    while (len > 0) {
        ssize_t w = send(fd, b, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            fail_msg("send: %s", strerror(errno));
        b += w;
        len -= (size_t)w;
    }
}

static void recv_all(int fd, void *p, size_t len)
{
    uint8_t *b = p;
    while (len > 0) {
        ssize_t r = recv(fd, b, len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            fail_msg("recv: %s", r == 0 ? "closed" : strerror(errno));
        b += r;
        len -= (size_t)r;
    }
}

static void fill(uint8_t *p, size_t len, uint64_t *rng)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)t_rand(rng);
}

/*
 * Streams 'len' random bytes through the echo while reading the echo at
 * the same time (poll on one socket), so the server meets full socket
 * buffers; every byte comes back in order.
 */
static void echo_stream(int fd, size_t len, uint64_t *rng)
{
    uint8_t *out = malloc(len), *in = malloc(len);
    assert_non_null(out);
    assert_non_null(in);
    fill(out, len, rng);
    size_t sent = 0, got = 0;
    while (got < len) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (sent < len)
            p.events |= POLLOUT;
        if (poll(&p, 1, WAIT_MS) <= 0)
            fail_msg("echo stalled at %zu of %zu bytes", got, len);
        if ((p.revents & POLLOUT) && sent < len) {
            size_t chunk = len - sent < 65536 ? len - sent : 65536;
            ssize_t w =
                send(fd, out + sent, chunk, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w > 0)
                sent += (size_t)w;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = recv(fd, in + got, len - got, MSG_DONTWAIT);
            if (r == 0)
                fail_msg("closed after %zu bytes", got);
            if (r > 0)
                got += (size_t)r;
        }
    }
    assert_memory_equal(in, out, len);
    free(out);
    free(in);
}

/* Echo servers: ping-pong on several sockets at once, many small writes
   before any read (the echo coalesces them), a stream of megabytes. */
static void check_echo(const char *name, const char *flags)
{
    struct child c;
    uint64_t rng = seed;
    child_start(&c, name, flags);
    int fd[6];
    for (int i = 0; i < 6; i++)
        fd[i] = client(c.port);
    uint8_t msg[6][3000], back[3000];
    for (int round = 0; round < 30; round++) {
        size_t len[6];
        for (int i = 0; i < 6; i++) {
            len[i] = (size_t)t_rand_range(&rng, 1, sizeof msg[i]);
            fill(msg[i], len[i], &rng);
            send_all(fd[i], msg[i], len[i]);
        }
        for (int i = 5; i >= 0; i--) {
            recv_all(fd[i], back, len[i]);
            assert_memory_equal(back, msg[i], len[i]);
        }
    }
    /* 500 writes of 7 bytes before reading anything. */
    uint8_t many[3500], many_back[3500];
    fill(many, sizeof many, &rng);
    for (size_t off = 0; off < sizeof many; off += 7)
        send_all(fd[0], many + off, 7);
    recv_all(fd[0], many_back, sizeof many_back);
    assert_memory_equal(many_back, many, sizeof many);
    echo_stream(fd[1], (size_t)8 << 20, &rng);
    /* Closing some clients leaves the others served. */
    for (int i = 0; i < 6; i += 2)
        close(fd[i]);
    for (int i = 1; i < 6; i += 2) {
        send_all(fd[i], "still here", 10);
        recv_all(fd[i], back, 10);
        assert_memory_equal(back, "still here", 10);
        close(fd[i]);
    }
    child_stop(&c);
}

static void flags_help_and_bad_flags(const char *name)
{
    char path[PATH_MAX + 64];
    program(path, sizeof path, name);
    char *help[] = {path, "--help", NULL}, *bad[] = {path, "--bogus", NULL},
         *zero[] = {path, "--threads", "0", NULL};
    char **cases[] = {help, bad, zero};
    int want[] = {0, 2, 2};
    for (int i = 0; i < 3; i++) {
        struct child c;
        int o[2];
        assert_int_equal(pipe2(o, O_CLOEXEC), 0);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, o[1], STDOUT_FILENO);
        posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null",
                                         O_WRONLY, 0);
        assert_int_equal(
            posix_spawn(&c.pid, path, &fa, NULL, cases[i], environ), 0);
        posix_spawn_file_actions_destroy(&fa);
        close(o[1]);
        c.out = o[0];
        live = c.pid;
        assert_int_equal(child_wait(&c), want[i]);
    }
}

static bool built(const char *name)
{
    char path[PATH_MAX + 64];
    program(path, sizeof path, name);
    return access(path, X_OK) == 0;
}

static void epoll_echo_echoes_every_byte_and_exits_0_on_sigterm(void **state)
{
    (void)state;
    flags_help_and_bad_flags("epoll_echo");
    check_echo("epoll_echo", NULL);
    check_echo("epoll_echo", "--threads 2 --spin-us 30");
}

static void uv_echo_echoes_every_byte_and_exits_0_on_sigterm(void **state)
{
    (void)state;
    if (!built("uv_echo"))
        skip(); /* libuv was not found at build time */
    flags_help_and_bad_flags("uv_echo");
    check_echo("uv_echo", NULL);
    check_echo("uv_echo", "--threads 2 --spin-us 30");
}

static void uring_echo_echoes_every_byte_and_exits_0_on_sigterm(void **state)
{
    (void)state;
    flags_help_and_bad_flags("uring_echo");
    check_echo("uring_echo", NULL);
    check_echo("uring_echo", "--threads 2 --spin-us 30");
}

/* ---- the room server ------------------------------------------------------
 */

#define T_JOIN 1
#define T_MSG 2
#define ROOM_MEMBERS 3
#define ROOM_MSGS 40

/* A type-2 frame: u32 sender, u32 seq (UINT32_MAX: hello), filler. */
static size_t room_frame(uint8_t *f, uint32_t sender, uint32_t seq,
                         size_t filler)
{
    uint16_t len = (uint16_t)(8 + filler);
    f[0] = (uint8_t)len;
    f[1] = (uint8_t)(len >> 8);
    f[2] = T_MSG;
    f[3] = 0;
    memcpy(f + 4, &sender, 4);
    memcpy(f + 8, &seq, 4);
    for (size_t i = 0; i < filler; i++)
        f[12 + i] = (uint8_t)(sender * 31 + seq * 7 + i);
    return 4 + len;
}

static size_t room_filler(uint32_t sender, uint32_t seq)
{
    return (sender * 131 + seq * 17) % 2000;
}

/* Reads one frame into 'f' (at least 4 + 65535 bytes); returns its size. */
static size_t read_frame(int fd, uint8_t *f)
{
    recv_all(fd, f, 4);
    size_t len = (size_t)(f[0] | f[1] << 8);
    recv_all(fd, f + 4, len);
    return 4 + len;
}

static void epoll_room_broadcasts_to_every_member_in_order(void **state)
{
    (void)state;
    flags_help_and_bad_flags("epoll_room");
    struct child c;
    child_start(&c, "epoll_room", NULL);
    /* Two rooms, ids 7 and 8; client i joins room 7 + i / ROOM_MEMBERS. */
    enum { N = 2 * ROOM_MEMBERS };
    int fd[N];
    uint8_t *f = malloc(4 + 65535), *want = malloc(4 + 65535);
    assert_non_null(f);
    assert_non_null(want);
    for (uint32_t i = 0; i < N; i++) {
        fd[i] = client(c.port);
        uint8_t join[8] = {4, 0, T_JOIN, 0};
        uint32_t room = 7 + i / ROOM_MEMBERS;
        memcpy(join + 4, &room, 4);
        send_all(fd[i], join, sizeof join);
        /* A hello after the JOIN: once it comes back, i is a member. */
        size_t n = room_frame(f, i, UINT32_MAX, 0);
        send_all(fd[i], f, n);
        for (;;) {
            n = read_frame(fd[i], f);
            uint32_t sender, seq;
            memcpy(&sender, f + 4, 4);
            memcpy(&seq, f + 8, 4);
            assert_int_equal(seq, UINT32_MAX); /* nothing else sent yet */
            if (sender == i)
                break;
        }
    }
    /* Everyone sends ROOM_MSGS messages, interleaved. */
    for (uint32_t seq = 0; seq < ROOM_MSGS; seq++)
        for (uint32_t i = 0; i < N; i++) {
            size_t n = room_frame(f, i, seq, room_filler(i, seq));
            send_all(fd[i], f, n);
        }
    /* Each member gets every message of its room, the sender's own too,
       in sender order, byte for byte, and nothing of the other room. */
    for (uint32_t r = 0; r < N; r++) {
        uint32_t next[N] = {0};
        uint32_t room = r / ROOM_MEMBERS, expected = ROOM_MEMBERS * ROOM_MSGS;
        for (uint32_t got = 0; got < expected;) {
            size_t n = read_frame(fd[r], f);
            uint32_t sender, seq;
            memcpy(&sender, f + 4, 4);
            memcpy(&seq, f + 8, 4);
            assert_true(sender < N);
            assert_int_equal(sender / ROOM_MEMBERS, room);
            if (seq == UINT32_MAX)
                continue; /* a later member's hello */
            assert_int_equal(seq, next[sender]);
            next[sender]++;
            size_t wn = room_frame(want, sender, seq, room_filler(sender, seq));
            assert_int_equal(n, wn);
            assert_memory_equal(f, want, n);
            got++;
        }
    }
    for (int i = 0; i < N; i++)
        close(fd[i]);
    child_stop(&c);
    free(f);
    free(want);
}

/* BUILD/bench from BUILD/tests/<this program>. */
static void find_bench_dir(void)
{
    ssize_t n = readlink("/proc/self/exe", bench_dir, sizeof bench_dir - 7);
    if (n <= 0) {
        perror("readlink /proc/self/exe");
        exit(1);
    }
    bench_dir[n] = '\0';
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(bench_dir, '/');
        if (slash)
            *slash = '\0';
    }
    strcat(bench_dir, "/bench");
}

static bool kernel_has_io_uring(void)
{
    struct io_uring_params p = {0};
    long fd = syscall(__NR_io_uring_setup, 4, &p);
    if (fd < 0)
        return false;
    close((int)fd);
    return true;
}

int main(int argc, char **argv)
{
    seed = t_seed();
    find_bench_dir();
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(t_backend(argc, argv), "uring") == 0) {
        if (!kernel_has_io_uring()) {
            printf("io_uring refused: skipping bench-uring_echo\n");
            return 77;
        }
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_teardown(
                uring_echo_echoes_every_byte_and_exits_0_on_sigterm,
                kill_leftover_child),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(
            epoll_echo_echoes_every_byte_and_exits_0_on_sigterm,
            kill_leftover_child),
        cmocka_unit_test_teardown(
            uv_echo_echoes_every_byte_and_exits_0_on_sigterm,
            kill_leftover_child),
        cmocka_unit_test_teardown(
            epoll_room_broadcasts_to_every_member_in_order,
            kill_leftover_child),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
