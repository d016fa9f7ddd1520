/*
 * rp_mpsc: intrusive lock-free multi-producer single-consumer queue for
 * cross-thread messages (mailboxes, session send requests, posted
 * completions). The node lives inside the message; the queue never
 * allocates.
 *
 * Thread: rp_mpsc_push from any thread; rp_mpsc_pop and rp_mpsc_empty only
 * from the one consumer thread. Each producer's items come out in the order
 * it pushed them. A node must not be pushed again until it has been popped.
 */
#ifndef RP_CORE_MPSC_H
#define RP_CORE_MPSC_H

#include <stdbool.h>

struct rp_mpsc_node {
    struct rp_mpsc_node *_Atomic next;
};

/*
 * Producers meet at 'head'; the consumer owns 'tail'. They sit on separate
 * cache lines so a busy producer does not slow the consumer.
 */
struct rp_mpsc {
    _Alignas(64) struct rp_mpsc_node *_Atomic head;
    _Alignas(64) struct rp_mpsc_node *tail;
    struct rp_mpsc_node stub;
};

void rp_mpsc_init(struct rp_mpsc *q);
/* Returns true if the queue was empty before this push: the producer that
   sees true is the one that should wake the consumer. */
bool rp_mpsc_push(struct rp_mpsc *q, struct rp_mpsc_node *node);
/* Returns the oldest node, or NULL when the queue is empty. A push that
   has begun but not finished is waited for (it is two stores away), so
   NULL always means empty. Consumer only. */
struct rp_mpsc_node *rp_mpsc_pop(struct rp_mpsc *q);
bool rp_mpsc_empty(struct rp_mpsc *q);

#endif
