/*
 * Assertions of three strengths:
 *   assert(x)            internal invariant, gone under NDEBUG;
 *   RP_PANIC(fmt, ...)   a state that would corrupt memory if we went on:
 *                        logs and aborts in every build;
 *   RP_ASSERT_THREAD(o)  code that one thread owns ('o' has an 'owner'
 *                        pthread_t field); checked in debug builds.
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

#ifdef NDEBUG
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
