/*
 * A private nats-server for a test (header-only, nu_ prefix): JetStream
 * on, its store in a fresh temporary directory, on 127.0.0.1 and a port
 * the kernel picks (never 4222, where Debian's system service may
 * listen), stopped by its PID.
 *
 *   nu_start(&s, 0)    starts it ("-p -1": a free port; the port is read
 *                      from its "Listening for client connections" line)
 *   nu_kill(&s)        SIGKILL (an outage); the store stays
 *   nu_start(&s, s.port)  the same server again, same port, same store
 *   nu_stop(&s)        SIGTERM (SIGKILL after NU_WAIT_MS), store removed
 *
 * Every exit path stops it: the child dies with the test process
 * (PR_SET_PDEATHSIG, so even a SIGKILL of the test by CTest's timeout
 * takes it along), and an atexit hook stops any server still running
 * when the test exits. nu_start returns -ENOENT when nats-server is not
 * installed: the caller skips with one line (scripts/deps.sh cluster).
 */
#ifndef RP_TESTS_NATS_UTIL_H
#define RP_TESTS_NATS_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NU_WAIT_MS 10000 /* bound on a start or a stop */
#define NU_MAX 2         /* servers one test may have at once */

struct nu_server {
    pid_t pid; /* 0: not running */
    uint16_t port;
    char dir[PATH_MAX]; /* store and log; "" once removed */
    char url[64];       /* nats://127.0.0.1:PORT */
};

static struct nu_server *nu_live[NU_MAX];

static inline void nu_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* The nats-server program: $RP_NATS_SERVER, else the first in PATH,
   /usr/sbin or /usr/bin; false if there is none. */
static inline bool nu_find(char *out, size_t len)
{
    const char *env = getenv("RP_NATS_SERVER");
    if (env && *env) {
        snprintf(out, len, "%s", env);
        return access(out, X_OK) == 0;
    }
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s:/usr/sbin:/usr/bin",
             getenv("PATH") ? getenv("PATH") : "");
    for (char *save, *d = strtok_r(dirs, ":", &save); d;
         d = strtok_r(NULL, ":", &save)) {
        snprintf(out, len, "%s/nats-server", d);
        if (access(out, X_OK) == 0)
            return true;
    }
    return false;
}

static inline void nu_track(struct nu_server *s, bool on)
{
    for (int i = 0; i < NU_MAX; i++)
        if (on ? nu_live[i] == NULL : nu_live[i] == s) {
            nu_live[i] = on ? s : NULL;
            return;
        }
}

/* Waits up to NU_WAIT_MS for 'pid' to exit; SIGKILLs it past that. */
static inline void nu_reap(pid_t pid)
{
    for (int waited = 0; waited < NU_WAIT_MS; waited += 10) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
        nu_sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static inline int nu_rm(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

/* SIGKILL, as a crash would; the store stays for a restart. */
static inline void nu_kill(struct nu_server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
        nu_track(s, false);
    }
}

/* SIGTERM and wait (bounded), then remove the store. Idempotent. */
static inline void nu_stop(struct nu_server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGCONT); /* a test that stopped it (SIGSTOP) failed */
        kill(s->pid, SIGTERM);
        nu_reap(s->pid);
        s->pid = 0;
        nu_track(s, false);
    }
    if (s->dir[0]) {
        nftw(s->dir, nu_rm, 8, FTW_DEPTH | FTW_PHYS);
        s->dir[0] = '\0';
    }
}

static inline void nu_stop_all(void)
{
    for (int i = 0; i < NU_MAX; i++)
        if (nu_live[i])
            nu_stop(nu_live[i]);
}

/* The port of the "Listening for client connections on ADDR:PORT" line in
   the server's log, or 0 while there is none. */
static inline uint16_t nu_log_port(const char *dir)
{
    char path[PATH_MAX + 8], line[512];
    snprintf(path, sizeof path, "%s/log", dir);
    FILE *f = fopen(path, "r");
    uint16_t port = 0;
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f)) {
        const char *at = strstr(line, "Listening for client connections on ");
        const char *colon = at ? strrchr(at, ':') : NULL;
        if (colon)
            port = (uint16_t)atoi(colon + 1);
    }
    fclose(f);
    return port;
}

/*
 * Starts nats-server with JetStream on 127.0.0.1:'port' (0: a free port
 * the kernel picks), keeping the store of an earlier start of 's' (a
 * restart) or making a new temporary directory. Returns 0 once it
 * listens, -ENOENT if nats-server is not installed, or -ETIMEDOUT /
 * -errno if it did not come up (its log is in s->dir/log).
 */
static inline int nu_start(struct nu_server *s, uint16_t port)
{
    static bool hooked;
    char prog[PATH_MAX];
    if (!nu_find(prog, sizeof prog))
        return -ENOENT;
    if (!hooked) {
        atexit(nu_stop_all);
        hooked = true;
    }
    if (port == 0 || !s->dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(s->dir, sizeof s->dir, "%s/rp-nats.XXXXXX",
                 tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(s->dir)) {
            s->dir[0] = '\0';
            return -errno;
        }
    }
    char log[PATH_MAX + 8], portarg[16];
    snprintf(log, sizeof log, "%s/log", s->dir);
    unlink(log); /* a restart reads the new server's line, not the old */
    snprintf(portarg, sizeof portarg, "%d", port ? (int)port : -1);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        /* Dies with the test, whatever ends it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        execl(prog, prog, "-js", "-sd", s->dir, "-a", "127.0.0.1", "-p",
              portarg, (char *)NULL);
        _exit(127);
    }
    s->pid = pid;
    nu_track(s, true);
    for (int waited = 0; waited < NU_WAIT_MS; waited += 20) {
        uint16_t p = nu_log_port(s->dir);
        if (p) {
            s->port = p;
            snprintf(s->url, sizeof s->url, "nats://127.0.0.1:%u", p);
            return 0;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            s->pid = 0;
            nu_track(s, false);
            return -ECHILD;
        }
        nu_sleep_ms(20);
    }
    nu_kill(s);
    return -ETIMEDOUT;
}

#endif
