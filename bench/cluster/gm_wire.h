/*
 * The game protocol over one blocking loopback connection, for the cluster
 * benchmarks (bench-cluster-latency, bench-cluster-races): connect, send a
 * message, read the next one. Every failure ends the program with status
 * 1 and one line naming it ("PROGRAM: what"): these are measuring tools,
 * and a broken connection spoils the measure. Every read is bounded
 * (SO_RCVTIMEO 10 s). Thread: the caller's; no state beyond the socket.
 */
#ifndef RP_BENCH_CLUSTER_GM_WIRE_H
#define RP_BENCH_CLUSTER_GM_WIRE_H

#include "protocol.h"

#include <stdint.h>

/* "PROGRAM: what" on stderr, then exit(1). */
_Noreturn void gw_die(const char *what);

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t gw_now_ns(void);

/* A connection to 127.0.0.1:port with TCP_NODELAY and a 10 s read
   timeout. */
int gw_connect(uint16_t port);

/* Writes 'm' as one frame. */
void gw_send(int fd, const struct gm_msg *m);

/* Reads the next frame into 'm'; its strings point into 'buf'
   (GM_PAYLOAD_MAX bytes). */
void gw_recv(int fd, struct gm_msg *m, uint8_t *buf);

#endif
