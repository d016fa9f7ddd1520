/*
 * A group's inbox and its runner's wake-up. The inbox is the core MPSC
 * queue (one exchange per push, no lock); the wake is a futex word, so an
 * idle group thread costs nothing and a message wakes it at once rather
 * than at its next tick.
 *
 * The rule that loses no wake-up: the runner clears 'wake' (then a full
 * fence) before it pops its inboxes, and sleeps only while 'wake' is still
 * 0. A producer pushes, fences, and sets 'wake' when its push found the
 * inbox empty (rp_mpsc_push returns true), calling FUTEX_WAKE only if it
 * was the one to turn 0 into 1. Either the runner's pops see the node, or
 * the producer's exchange sees the runner's 0 and wakes it. A push that
 * finds the inbox non-empty needs no wake: the runner will reach that node
 * before its pop reports empty (see core/mpsc.c).
 *
 * An I/O thread holds its wakes for one loop turn (turn_begin ..
 * turn_end) and makes each runner's once at the end: the rule above only
 * moves later in time, since turn_end always runs before that thread can
 * block. Without it a group thread sharing a core with the I/O thread was
 * woken, switched to, and put back to sleep for nearly every message
 * (ringport-game at 5,000 bots: about one context switch per message).
 * Runners are freed only when the server is destroyed, after its I/O
 * threads have exited, so a held pointer stays valid.
 */
#include "group/group.h"

#include <errno.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void rp__runner_wake(struct group_runner *r)
{
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_exchange(&r->wake, 1) == 0)
        syscall(SYS_futex, (uint32_t *)&r->wake, FUTEX_WAKE_PRIVATE, 1, NULL,
                NULL, 0);
}

/* The wakes this thread holds during its turn; 'on' only inside one. A
   runner that does not fit is woken at once. */
#define HELD_WAKES 8
static _Thread_local struct {
    bool on;
    int n;
    struct group_runner *runner[HELD_WAKES];
} held;

void rp__group_turn_begin(void)
{
    held.on = true;
}

void rp__group_turn_end(void)
{
    held.on = false;
    for (int i = 0; i < held.n; i++)
        rp__runner_wake(held.runner[i]);
    held.n = 0;
}

static void runner_wake_or_hold(struct group_runner *r)
{
    if (held.on) {
        for (int i = 0; i < held.n; i++)
            if (held.runner[i] == r)
                return; /* already to be woken at the turn's end */
        if (held.n < HELD_WAKES) {
            held.runner[held.n++] = r;
            return;
        }
    }
    rp__runner_wake(r);
}

void rp__group_push(void *group, struct net_route_msg *m)
{
    struct rp_group *g = group;
    atomic_fetch_add_explicit(&g->pushed, 1, memory_order_relaxed);
    if (rp_mpsc_push(&g->inbox, &m->node))
        runner_wake_or_hold(g->runner);
}

void rp__runner_arm(struct group_runner *r)
{
    atomic_store(&r->wake, 0);
    atomic_thread_fence(memory_order_seq_cst);
}

void rp__runner_sleep(struct group_runner *r, int64_t deadline_ns)
{
    struct timespec ts, *tp = NULL;
    if (deadline_ns != INT64_MAX) {
        ts.tv_sec = deadline_ns / 1000000000LL;
        ts.tv_nsec = deadline_ns % 1000000000LL;
        tp = &ts;
    }
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, the
       clock of rp_clock_ns. Returns at once if 'wake' is no longer 0;
       EINTR and ETIMEDOUT just end the wait. */
    syscall(SYS_futex, (uint32_t *)&r->wake, FUTEX_WAIT_BITSET_PRIVATE, 0, tp,
            NULL, FUTEX_BITSET_MATCH_ANY);
}
