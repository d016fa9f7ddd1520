/*
 * rp_cpu_relax(): the hint for one turn of a short spin-wait (x86 PAUSE,
 * Arm YIELD). It tells the core the loop is waiting, which saves power and
 * frees the sibling hyper-thread, and on x86 it avoids the memory-order
 * mis-speculation penalty when the awaited store lands. On an architecture
 * with no such hint it compiles to nothing: the loop stays correct, only
 * less polite. One guarded copy for the whole library: an unguarded
 * __builtin_ia32_pause() does not compile for anything but x86
 * (scripts/cross-check.sh compiles every source for aarch64 to keep it so).
 */
#ifndef RP_CORE_CPU_H
#define RP_CORE_CPU_H

static inline void rp_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

#endif
