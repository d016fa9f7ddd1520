/*
 * What the three echo-model programs share, so each of them holds only its
 * notification model: command-line flags, the listening socket, the
 * dedicated accept thread (plain blocking accept4(), no AcceptEx, as in the
 * lecture) and the signal handling of a clean stop.
 */
#ifndef RP_EXAMPLES_ECHO_COMMON_H
#define RP_EXAMPLES_ECHO_COMMON_H

#include <ringport/port.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* Fixed receive buffer per session; the echo is half-duplex: one recv or
   one send in flight per session, never both. */
#define ECHO_BUF_SIZE (16 * 1024)

struct echo_opts {
    const char *listen;           /* numeric IPv4/IPv6 address */
    uint16_t port;                /* 0: the kernel picks a free one */
    enum rp_backend_kind backend; /* auto, uring, epoll */
    int threads;                  /* echo-port's worker pool */
};

/*
 * Parses argv into 'o' (which holds the defaults on entry). --help prints
 * the usage and exits 0; a bad flag prints one line and exits 2.
 * 'with_threads' accepts --threads N (echo-port's worker pool).
 */
void echo_parse_args(int argc, char **argv, struct echo_opts *o,
                     bool with_threads);

/* Creates a port for 'o' with 'flags'; logs and returns -errno on error. */
int echo_port_create(const struct echo_opts *o, uint32_t flags,
                     struct rp_port **out);

/*
 * Called on the accept thread for each accepted socket (non-blocking,
 * close-on-exec). It owns the fd from then on: it hands it to the I/O side
 * or closes it.
 */
typedef void (*echo_handoff_fn)(int fd, void *user);

struct echo_acceptor {
    int listen_fd;
    pthread_t thread;
    echo_handoff_fn handoff;
    void *user;
};

/*
 * Opens the listening socket (SO_REUSEADDR, TCP_NODELAY inherited by the
 * accepted sockets) and prints "listening on ADDR:PORT" as the first line
 * of stdout, flushed. Returns 0 or -errno.
 */
int echo_listen(const struct echo_opts *o, struct echo_acceptor *a);

/* Starts the accept thread; call after echo_block_signals(). 0 or -errno. */
int echo_accept_start(struct echo_acceptor *a, echo_handoff_fn handoff,
                      void *user);

/* Wakes the accept thread out of accept4() (shutdown of the listening
   socket), joins it and closes the listening socket. */
void echo_accept_stop(struct echo_acceptor *a);

/* Blocks SIGINT and SIGTERM in the caller (threads created after inherit
   the mask, so only echo_wait_for_stop() sees them) and ignores SIGPIPE. */
void echo_block_signals(void);

/* Waits for SIGINT or SIGTERM; returns the signal number. */
int echo_wait_for_stop(void);

/* A start-up step failed with -errno 'err': prints one line naming it and
   exits 1. Only for errors before any session exists. */
void echo_die(const char *what, int err);

#endif
