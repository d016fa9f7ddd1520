/*
 * Helpers for the tests that run our programs as child processes
 * (header-only, cu_ prefix): find a program in the build tree, start it
 * with its stdout (and, if asked, stderr) on pipes, read its output a line
 * at a time, read the port from its "listening on ADDR:PORT" line, stop it
 * with SIGTERM and wait for its exit status.
 *
 * Every wait is bounded by CU_WAIT_MS (a test may define it before the
 * include; default 15 s): a hang fails the test, slowness does not. Every
 * child started here is tracked until it is reaped, so the teardown
 * cu_kill_leftovers() leaves no child of a failed test running.
 */
#ifndef RP_TESTS_CHILD_UTIL_H
#define RP_TESTS_CHILD_UTIL_H

#include "helpers.h"

#include <ringport/port.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CU_WAIT_MS
#define CU_WAIT_MS 15000 /* bound on any one wait for a child */
#endif
#define CU_MAX_LIVE 4 /* children one test may have at once */

extern char **environ;

struct cu_child {
    pid_t pid;
    int out; /* read end of its stdout */
    int err; /* read end of its stderr; -1 when it goes to ours */
};

static char cu_build_dir[PATH_MAX]; /* set by cu_find_build_dir() */
static pid_t cu_live[CU_MAX_LIVE];  /* started and not yet reaped */

/* BUILD from BUILD/tests/<this test>: our programs lie below it. Exits 1
   if /proc/self/exe cannot be read. */
static inline void cu_find_build_dir(void)
{
    ssize_t n =
        readlink("/proc/self/exe", cu_build_dir, sizeof cu_build_dir - 1);
    if (n <= 0) {
        perror("readlink /proc/self/exe");
        exit(1);
    }
    cu_build_dir[n] = '\0';
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(cu_build_dir, '/');
        if (slash)
            *slash = '\0';
    }
}

/* The backend named by --backend= (t_backend). Exits 77 (skip) if it is
   unknown or this kernel refuses it: the programs would only fail to
   start. */
static inline const char *cu_backend(int argc, char **argv)
{
    const char *name = t_backend(argc, argv);
    int kind = rp_backend_parse(name);
    struct rp_port_config cfg = {
        .backend = kind < 0 ? RP_BACKEND_AUTO : (enum rp_backend_kind)kind};
    struct rp_port *port;
    if (kind < 0 || rp_port_create(&cfg, &port) < 0) {
        printf("backend %s unavailable: skipped\n", name);
        exit(77);
    }
    rp_port_destroy(port);
    return name;
}

/* The path of 'rel' ("examples/echo/ringport-echo") in the build tree. */
static inline void cu_program(char *out, size_t len, const char *rel)
{
    snprintf(out, len, "%s/%s", cu_build_dir, rel);
}

/* Replaces 'old' by 'pid' in the live set (0 = a free slot); fails the
   test when no slot is free. */
static inline void cu_track(pid_t pid, pid_t old)
{
    for (size_t i = 0; i < CU_MAX_LIVE; i++)
        if (cu_live[i] == old) {
            cu_live[i] = pid;
            return;
        }
    fail_msg("more than %d children", CU_MAX_LIVE);
}

/* A cmocka teardown: SIGKILLs and reaps every child not yet reaped. */
static inline int cu_kill_leftovers(void **state)
{
    (void)state;
    for (size_t i = 0; i < CU_MAX_LIVE; i++)
        if (cu_live[i] > 0) {
            kill(cu_live[i], SIGKILL);
            waitpid(cu_live[i], NULL, 0);
            cu_live[i] = 0;
        }
    return 0;
}

/* Starts 'argv' (argv[0] a path) with its stdout on a pipe, and its stderr
   too if 'pipe_err' (else it shares ours, for diagnostics). */
static inline void cu_start(struct cu_child *c, char *const argv[],
                            bool pipe_err)
{
    int o[2], e[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    assert_int_equal(pipe2(o, O_CLOEXEC), 0);
    if (pipe_err)
        assert_int_equal(pipe2(e, O_CLOEXEC), 0);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, o[1], STDOUT_FILENO);
    if (pipe_err)
        posix_spawn_file_actions_adddup2(&fa, e[1], STDERR_FILENO);
    int err = posix_spawn(&c->pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(o[1]);
    if (pipe_err)
        close(e[1]);
    if (err)
        fail_msg("cannot start %s: %s", argv[0], strerror(err));
    c->out = o[0];
    c->err = e[0];
    cu_track(c->pid, 0);
}

/* One line of 'fd' without its '\n', at most len - 1 bytes; returns its
   length, 0 at EOF. Waits at most CU_WAIT_MS for each byte, then fails. */
static inline size_t cu_read_line(int fd, char *line, size_t len)
{
    size_t n = 0;
    while (n + 1 < len) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, CU_WAIT_MS);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            fail_msg("no line within %d ms", CU_WAIT_MS);
        if (read(fd, line + n, 1) != 1 || line[n] == '\n')
            break;
        n++;
    }
    line[n] = '\0';
    return n;
}

/* The port of a "listening on ADDR:PORT" line; fails on any other line. */
static inline uint16_t cu_listening_port(const char *line)
{
    const char *colon = strrchr(line, ':');
    if (strncmp(line, "listening on ", 13) != 0 || !colon)
        fail_msg("unexpected first line '%s'", line);
    int port = atoi(colon + 1);
    assert_true(port > 0 && port < 65536);
    return (uint16_t)port;
}

/* Reads the child's first line of stdout (bounded, as cu_read_line) and
   returns the port it listens on. */
static inline uint16_t cu_read_port(struct cu_child *c)
{
    char line[256];
    cu_read_line(c->out, line, sizeof line);
    return cu_listening_port(line);
}

/* Waits for the child to exit, at most CU_WAIT_MS (then SIGKILLs it and
   fails), and returns its exit status; fails if a signal ended it. Its
   pipes stay open (cu_close). */
static inline int cu_wait(struct cu_child *c)
{
    int status = 0;
    for (int waited = 0;; waited += 10) {
        pid_t r = waitpid(c->pid, &status, WNOHANG);
        if (r == c->pid)
            break;
        assert_int_equal(r, 0);
        if (waited >= CU_WAIT_MS) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &status, 0);
            cu_track(0, c->pid);
            fail_msg("child %d did not exit within %d ms", (int)c->pid,
                     CU_WAIT_MS);
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    cu_track(0, c->pid);
    if (!WIFEXITED(status))
        fail_msg("child died of signal %d", WTERMSIG(status));
    return WEXITSTATUS(status);
}

static inline void cu_close(struct cu_child *c)
{
    close(c->out);
    if (c->err >= 0)
        close(c->err);
}

/* SIGTERM (which must be delivered); the caller then reads what it prints
   and cu_wait()s. */
static inline void cu_term(struct cu_child *c)
{
    assert_int_equal(kill(c->pid, SIGTERM), 0);
}

/* SIGTERM, then the exit status must be 0 (bounded as cu_wait). */
static inline void cu_stop(struct cu_child *c)
{
    cu_term(c);
    assert_int_equal(cu_wait(c), 0);
    cu_close(c);
}

/*
 * Runs program 'rel' with 'args' (NULL-terminated, at most 14), which it
 * must refuse: exit status 2 (bounded as cu_wait). With 'says' not NULL,
 * the first line of its stderr must contain it.
 */
static inline void cu_expect_refusal(const char *rel, const char *const *args,
                                     const char *says)
{
    char path[PATH_MAX + 64], line[512];
    char *argv[16] = {path};
    int n = 1;
    struct cu_child c;
    cu_program(path, sizeof path, rel);
    for (; *args && n < 15; args++)
        argv[n++] = (char *)*args;
    argv[n] = NULL;
    cu_start(&c, argv, says != NULL);
    if (says)
        cu_read_line(c.err, line, sizeof line);
    assert_int_equal(cu_wait(&c), 2);
    cu_close(&c);
    if (says && !strstr(line, says))
        fail_msg("stderr '%s' does not say '%s'", line, says);
}

/*
 * Runs ringport-bench (tools/bench) against 'port' with 'args' (NULL-
 * terminated, at most 32; with --json): its first line must report the
 * messages verified, its second (the JSON) "ok":true, and it must exit 0.
 * Each line and the exit are bounded as cu_read_line and cu_wait.
 */
static inline void cu_bench_verifies(uint16_t port, const char *const *args)
{
    char path[PATH_MAX + 64], port_s[16], line[512];
    char *argv[40] = {path, "--port", port_s};
    int n = 3;
    struct cu_child load;
    cu_program(path, sizeof path, "tools/bench/ringport-bench");
    snprintf(port_s, sizeof port_s, "%u", port);
    for (; *args && n < 35; args++)
        argv[n++] = (char *)*args;
    argv[n] = NULL;
    cu_start(&load, argv, false);
    cu_read_line(load.out, line, sizeof line);
    assert_non_null(strstr(line, "msgs verified"));
    cu_read_line(load.out, line, sizeof line);
    assert_non_null(strstr(line, "\"ok\":true"));
    assert_int_equal(cu_wait(&load), 0);
    cu_close(&load);
}

/* ---- ringport-echo (examples/echo) ------------------------------------- */

#define CU_ECHO "examples/echo/ringport-echo"

/* Starts ringport-echo on an ephemeral port with 'backend' and no stats
   line, then 'extra' flags (NULL-terminated; may be NULL); stdout and
   stderr on pipes. Returns its port (bounded as cu_read_line). */
static inline uint16_t cu_echo_start(struct cu_child *c, const char *backend,
                                     const char *const *extra)
{
    char path[PATH_MAX + 64];
    char *argv[24] = {path,        "--port",        "0",
                      "--backend", (char *)backend, "--no-stats"};
    int n = 6;
    cu_program(path, sizeof path, CU_ECHO);
    for (; extra && *extra && n < 22; extra++)
        argv[n++] = (char *)*extra;
    argv[n] = NULL;
    cu_start(c, argv, true);
    return cu_read_port(c);
}

/* SIGTERM: the next line is the final line of totals, then status 0. */
static inline void cu_echo_stop(struct cu_child *c)
{
    char line[1024];
    cu_term(c);
    cu_read_line(c->out, line, sizeof line);
    assert_non_null(strstr(line, "final: accepts"));
    assert_int_equal(cu_wait(c), 0);
    cu_close(c);
}

#endif
