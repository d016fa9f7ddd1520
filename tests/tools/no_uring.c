/*
 * no_uring: runs a command in a process where io_uring_setup(2) fails, the
 * way Docker's default seccomp profile (EPERM) or some sandboxes (ENOSYS)
 * refuse it. It installs a raw-BPF seccomp filter that answers
 * io_uring_setup with the chosen errno and allows every other system call,
 * then execv()s the command. The filter is inherited by every child the
 * command forks (ringport-echo started by a test is refused too: wanted).
 *
 *   no_uring --errno=EPERM|ENOSYS PROGRAM [ARG]...
 *
 * tests/CMakeLists.txt registers every integration test a third and fourth
 * time through it (<name>.fallback-eperm, <name>.fallback-enosys) with
 * --backend=auto, so the whole suite runs on the epoll fallback.
 * Exit status: the command's, or 2 for a usage error, 1 if the filter
 * cannot be installed or the command cannot be started.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define NU_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NU_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425 /* the same number on every architecture */
#endif

/* Returns 0 or -errno. io_uring_setup is refused with 'err'; any other
   call, and any call made with a foreign architecture's numbering, is
   allowed. */
static int refuse_io_uring(int err)
{
#ifdef NU_AUDIT_ARCH
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NU_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K,
                 SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof filter / sizeof filter[0],
                              .filter = filter};
    /* Lets an unprivileged process install a filter (and keeps set-uid
       programs from gaining rights under it). */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -errno;
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
        return -errno;
    return 0;
#else
    (void)err;
    return -ENOTSUP;
#endif
}

static int usage(void)
{
    fprintf(stderr, "usage: no_uring --errno=EPERM|ENOSYS PROGRAM [ARG]...\n");
    return 2;
}

int main(int argc, char **argv)
{
    int err;
    if (argc < 3)
        return usage();
    if (strcmp(argv[1], "--errno=EPERM") == 0)
        err = EPERM;
    else if (strcmp(argv[1], "--errno=ENOSYS") == 0)
        err = ENOSYS;
    else
        return usage();

    int r = refuse_io_uring(err);
    if (r < 0) {
        fprintf(stderr, "no_uring: cannot install the seccomp filter: %s\n",
                strerror(-r));
        return 1;
    }
    execv(argv[2], argv + 2);
    fprintf(stderr, "no_uring: cannot run %s: %s\n", argv[2], strerror(errno));
    return 1;
}
