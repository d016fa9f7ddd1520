/*
 * Backend choice: the config field when it is not AUTO, else
 * RINGPORT_BACKEND, else AUTO. AUTO tries io_uring and, when the kernel
 * refuses it (Docker's seccomp profile: EPERM; sandboxes: ENOSYS; memlock
 * limits on old kernels: ENOMEM; kernel.io_uring_disabled), logs one line
 * naming the reason and runs on epoll. A forced io_uring that fails is an
 * error: the caller asked for it by name.
 */
#include "backend/backend.h"
#include <ringport/log.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *rp_backend_name(enum rp_backend_kind kind)
{
    switch (kind) {
    case RP_BACKEND_AUTO: return "auto";
    case RP_BACKEND_URING: return "uring";
    case RP_BACKEND_EPOLL: return "epoll";
    }
    return "unknown";
}

int rp_backend_parse(const char *name)
{
    if (!name)
        return -EINVAL;
    for (int k = RP_BACKEND_AUTO; k <= RP_BACKEND_EPOLL; k++)
        if (strcmp(name, rp_backend_name((enum rp_backend_kind)k)) == 0)
            return k;
    return -EINVAL;
}

/* kernel.io_uring_disabled: 0 allowed, 1 only for a group, 2 off; -1 when
   the kernel has no such knob. */
static int io_uring_disabled_sysctl(void)
{
    FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "re");
    if (!f)
        return -1;
    int v = -1;
    if (fscanf(f, "%d", &v) != 1)
        v = -1;
    fclose(f);
    return v;
}

static const char *errno_name(int err)
{
    switch (err) {
    case EPERM: return "EPERM";
    case ENOSYS: return "ENOSYS";
    case ENOMEM: return "ENOMEM";
    case EINVAL: return "EINVAL";
    case EACCES: return "EACCES";
    default: return "error";
    }
}

static void log_fallback(int err)
{
    int sysctl = io_uring_disabled_sysctl();
    const char *why;
    switch (err) {
    case EPERM:
        why = sysctl > 0 ? "kernel.io_uring_disabled"
                         : "blocked by a seccomp policy or sandbox";
        break;
    case ENOSYS: why = "not available in this kernel or sandbox"; break;
    case ENOMEM: why = "locked-memory limit (RLIMIT_MEMLOCK)"; break;
    default: why = "setup failed"; break;
    }
    RP_WARN("port",
            "io_uring refused (%s: %s; %s, kernel.io_uring_disabled=%d);"
            " using epoll",
            errno_name(err), strerror(err), why, sysctl);
}

int rp__backend_select(enum rp_backend_kind want,
                       const struct rp__backend_params *p,
                       struct rp__backend **out)
{
    if (want == RP_BACKEND_AUTO) {
        const char *env = getenv("RINGPORT_BACKEND");
        if (env && *env) {
            int k = rp_backend_parse(env);
            if (k < 0) {
                RP_WARN("port", "RINGPORT_BACKEND=%s unknown; using auto", env);
                k = RP_BACKEND_AUTO;
            }
            want = (enum rp_backend_kind)k;
        }
    }
    switch (want) {
    case RP_BACKEND_URING: return rp__uring_ops.create(p, out);
    case RP_BACKEND_EPOLL: return rp__epoll_ops.create(p, out);
    case RP_BACKEND_AUTO: break;
    default: return -EINVAL;
    }
    int r = rp__uring_ops.create(p, out);
    if (r == 0)
        return 0;
    log_fallback(-r);
    return rp__epoll_ops.create(p, out);
}
