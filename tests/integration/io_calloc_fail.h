/*
 * Fails callocs made on an I/O thread, for the tests of what a session
 * does when an extension cannot be allocated. A program that includes
 * this header (from one file) is linked with -Wl,--wrap=calloc
 * (tests/CMakeLists.txt): every calloc of its own objects, the library's
 * included, goes through __wrap_calloc, which fails the armed number of
 * calls made on an I/O thread (a thread named rp-io-N) and passes every
 * other call through. On an I/O thread of a TCP server only a session's
 * extensions (resume state, routing state) are calloc'd.
 *
 * Arm with atomic_store(&calloc_fail_left, N); calloc_failed counts the
 * calls that failed.
 */
#ifndef RP_TESTS_IO_CALLOC_FAIL_H
#define RP_TESTS_IO_CALLOC_FAIL_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);

static _Atomic int calloc_fail_left; /* I/O-thread callocs still to fail */
static _Atomic int calloc_failed;    /* failed so far */

void *__wrap_calloc(size_t n, size_t size)
{
    if (atomic_load(&calloc_fail_left) > 0) {
        char name[16];
        if (pthread_getname_np(pthread_self(), name, sizeof name) == 0 &&
            strncmp(name, "rp-io-", 6) == 0 &&
            atomic_fetch_sub(&calloc_fail_left, 1) > 0) {
            atomic_fetch_add(&calloc_failed, 1);
            errno = ENOMEM;
            return NULL;
        }
    }
    return __real_calloc(n, size);
}

#endif
