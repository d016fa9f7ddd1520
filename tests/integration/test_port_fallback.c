/*
 * The fallback: in a forked child, a hand-written seccomp filter makes
 * io_uring_setup fail with EPERM (Docker's default profile) or ENOSYS (some
 * sandboxes). A port created with AUTO then runs on epoll, logs one line
 * naming the reason, and a small echo over loopback works; a port forced
 * to io_uring fails with that errno. The filter dies with the child.
 */
#include "port_util.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <ringport/log.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#if defined(__x86_64__)
#define PT_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define PT_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

/* In the child: no cmocka (it longjmps); fail with the line number. */
#define CHECK(x)                                                               \
    do {                                                                       \
        if (!(x)) {                                                            \
            fprintf(stderr, "child check failed: %s (line %d)\n", #x,          \
                    __LINE__);                                                 \
            _exit(__LINE__ & 0x7f ? __LINE__ & 0x7f : 1);                      \
        }                                                                      \
    } while (0)

static char log_lines[4096];
static int log_count;

static void capture(enum rp_log_level level, const char *line, void *user)
{
    (void)level;
    (void)user;
    size_t used = strlen(log_lines);
    snprintf(log_lines + used, sizeof log_lines - used, "%s\n", line);
    log_count++;
}

static int refuse_io_uring(int err)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PT_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K,
                 SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof filter / sizeof filter[0],
                              .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -errno;
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
        return -errno;
    return 0;
}

static void child_echo_on_fallback(int err, const char *name)
{
    unsetenv("RINGPORT_BACKEND"); /* AUTO must mean auto here */
    CHECK(refuse_io_uring(err) == 0);
    rp_log_set_sink(capture, NULL);

    struct rp_port_config forced = {.backend = RP_BACKEND_URING};
    struct rp_port *p = NULL;
    CHECK(rp_port_create(&forced, &p) == -err);

    struct rp_port_config cfg = {.backend = RP_BACKEND_AUTO,
                                 .flags = RP_PORT_OWNED};
    log_count = 0;
    log_lines[0] = '\0';
    CHECK(rp_port_create(&cfg, &p) == 0);
    CHECK(rp_port_backend(p) == RP_BACKEND_EPOLL);
    CHECK(log_count == 1);
    char want[64];
    snprintf(want, sizeof want, "io_uring refused (%s", name);
    CHECK(strstr(log_lines, want) != NULL);
    CHECK(strstr(log_lines, "using epoll") != NULL);

    /* A small echo: the port sends, the peer echoes, the port receives. */
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    char out[] = "ping over epoll", in[sizeof out], echo[sizeof out];
    struct iovec tx = {out, sizeof out}, rx = {in, sizeof in};
    struct rp_op send_op, recv_op;
    rp_op_init(&send_op);
    rp_op_init(&recv_op);
    CHECK(rp_port_send(p, &send_op, sv[0], &tx, 1) == 0);
    struct rp_completion c;
    CHECK(rp_port_get(p, &c, PT_WAIT_MS) == 0);
    CHECK(c.op == &send_op && c.res == (int32_t)sizeof out);
    CHECK(read(sv[1], echo, sizeof echo) == (ssize_t)sizeof echo);
    CHECK(rp_port_recv(p, &recv_op, sv[0], &rx, 1) == 0);
    CHECK(write(sv[1], echo, sizeof echo) == (ssize_t)sizeof echo);
    CHECK(rp_port_get(p, &c, PT_WAIT_MS) == 0);
    CHECK(c.op == &recv_op && c.res == (int32_t)sizeof out);
    CHECK(memcmp(in, out, sizeof out) == 0);
    close(sv[0]);
    close(sv[1]);
    rp_port_destroy(p);
    rp_log_set_sink(NULL, NULL);
    _exit(0);
}

static void run_child(int err, const char *name)
{
#ifndef PT_AUDIT_ARCH
    skip();
#endif
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        child_echo_on_fallback(err, name);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void auto_falls_back_to_epoll_when_io_uring_is_eperm(void **state)
{
    (void)state;
    run_child(EPERM, "EPERM");
}

static void auto_falls_back_to_epoll_when_io_uring_is_enosys(void **state)
{
    (void)state;
    run_child(ENOSYS, "ENOSYS");
}

int main(int argc, char **argv)
{
    (void)t_backend(argc, argv); /* the same test for either flag */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(auto_falls_back_to_epoll_when_io_uring_is_eperm),
        cmocka_unit_test(auto_falls_back_to_epoll_when_io_uring_is_enosys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
