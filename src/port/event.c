/*
 * rp_event: a manual-reset event on an eventfd, like a WSAEVENT. Set
 * writes 1 (the counter stays non-zero, so the fd stays readable until
 * reset reads it back to zero). rp_event_wait_any is poll(2) over any
 * number of events; on an owned port's owner thread it pumps the port
 * between looks, since nobody else would complete that port's ops.
 */
#include "core/clock.h"
#include "port/port_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define WAIT_STACK_FDS 64

struct rp_event {
    int fd;
};

int rp_event_create(struct rp_event **out)
{
    struct rp_event *ev = malloc(sizeof *ev);
    if (!ev)
        return -ENOMEM;
    ev->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (ev->fd < 0) {
        int err = errno;
        free(ev);
        return -err;
    }
    *out = ev;
    return 0;
}

void rp_event_destroy(struct rp_event *ev)
{
    if (!ev)
        return;
    close(ev->fd);
    free(ev);
}

int rp_event_set(struct rp_event *ev)
{
    uint64_t one = 1;
    if (write(ev->fd, &one, sizeof one) < 0 && errno != EAGAIN)
        return -errno;
    return 0;
}

int rp_event_reset(struct rp_event *ev)
{
    uint64_t v;
    if (read(ev->fd, &v, sizeof v) < 0 && errno != EAGAIN)
        return -errno;
    return 0;
}

bool rp_event_is_set(struct rp_event *ev)
{
    struct pollfd pfd = {.fd = ev->fd, .events = POLLIN};
    return poll(&pfd, 1, 0) == 1;
}

int rp_event_fd(const struct rp_event *ev)
{
    return ev->fd;
}

int rp_event_wait_any(struct rp_event *const *events, size_t n, int timeout_ms)
{
    struct pollfd stack[WAIT_STACK_FDS];
    struct pollfd *pfds = stack;
    if (n > WAIT_STACK_FDS) {
        pfds = malloc(n * sizeof *pfds);
        if (!pfds)
            return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        pfds[i].fd = events[i]->fd;
        pfds[i].events = POLLIN;
    }
    struct rp_port *owned = rp__apc_self()->owned;
    int64_t deadline = rp_deadline_after_ms(timeout_ms);
    int r;
    for (;;) {
        int64_t left = rp__ns_left(deadline, rp_clock_ns());
        int poll_ms = 0;
        if (!owned)
            poll_ms =
                left < 0 ? -1 : (int)((left + RP_NS_PER_MS - 1) / RP_NS_PER_MS);
        r = poll(pfds, n, poll_ms);
        if (r < 0 && errno != EINTR) {
            r = -errno;
            break;
        }
        if (r > 0) {
            for (size_t i = 0; i < n; i++) {
                if (pfds[i].revents) {
                    r = (int)i;
                    goto out;
                }
            }
        }
        left = rp__ns_left(deadline, rp_clock_ns());
        if (left == 0) {
            r = -ETIMEDOUT;
            break;
        }
        if (owned)
            rp__port_pump(owned, left);
    }
out:
    if (pfds != stack)
        free(pfds);
    return r;
}
