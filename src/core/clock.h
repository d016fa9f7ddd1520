/*
 * Monotonic time for deadlines, timeouts and measurements. CLOCK_MONOTONIC
 * through the vDSO costs tens of nanoseconds and never jumps with wall time.
 */
#ifndef RP_CORE_CLOCK_H
#define RP_CORE_CLOCK_H

#include <stdint.h>
#include <time.h>

#define RP_NS_PER_US 1000LL
#define RP_NS_PER_MS 1000000LL
#define RP_NS_PER_SEC 1000000000LL

/* Nanoseconds since an arbitrary fixed point; only differences matter. */
static inline int64_t rp_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * RP_NS_PER_SEC + ts.tv_nsec;
}

static inline int64_t rp_clock_ms(void)
{
    return rp_clock_ns() / RP_NS_PER_MS;
}

/* A relative timeout in ms (< 0: forever) as an absolute deadline in ns
   (INT64_MAX: forever). */
static inline int64_t rp_deadline_after_ms(int timeout_ms)
{
    if (timeout_ms < 0)
        return INT64_MAX;
    return rp_clock_ns() + (int64_t)timeout_ms * RP_NS_PER_MS;
}

static inline struct timespec rp_timespec_from_ns(int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / RP_NS_PER_SEC,
                          .tv_nsec = ns % RP_NS_PER_SEC};
    return ts;
}

#endif
