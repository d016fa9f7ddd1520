/*
 * Assertions of three strengths:
 *   assert(x)            internal invariant, gone under NDEBUG;
 *   RP_PANIC(fmt, ...)   a state that would corrupt memory if we went on:
 *                        logs and aborts in every build;
 *   RP_ASSERT_THREAD(o)  code that one thread owns ('o' has an 'owner'
 *                        pthread_t field): panics when called from any
 *                        other thread. Checked in Debug builds and in every
 *                        sanitizer build (RP_CHECK_THREADS, set by CMake
 *                        with RP_SANITIZE: make tsan is RelWithDebInfo),
 *                        so the test suite catches a wrong-thread call;
 *                        gone from release builds, like assert().
 * Peer input never reaches any of these: it gets an error code instead.
 */
#ifndef RP_CORE_ASSERT_H
#define RP_CORE_ASSERT_H

#include <assert.h>
#include <pthread.h>
#include <ringport/log.h>
#include <stdlib.h>

#define RP_PANIC(...)                                                          \
    do {                                                                       \
        rp_log_write(RP_LOG_ERROR, "panic", __VA_ARGS__);                      \
        abort();                                                               \
    } while (0)

#if defined(NDEBUG) && !defined(RP_CHECK_THREADS)
#define RP_ASSERT_THREAD(obj) ((void)0)
#else
#define RP_ASSERT_THREAD(obj)                                                  \
    do {                                                                       \
        if (!pthread_equal((obj)->owner, pthread_self()))                      \
            RP_PANIC("%s:%d: called off its owning thread", __FILE__,          \
                     __LINE__);                                                \
    } while (0)
#endif

#define RP_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define RP_LIKELY(x) __builtin_expect(!!(x), 1)

#endif
