/*
 * ringport: a completion-port engine for multithreaded game servers on
 * Linux, on io_uring with an epoll fallback. This umbrella header pulls in
 * the API of the core library, libringport (pkg-config ringport); each part
 * also has its own header. The extras, libringport-extras (pkg-config
 * ringport-extras), have their own headers, included by name:
 * <ringport/metrics.h> (Prometheus endpoint, stats line) and
 * <ringport/config.h> (INI files and flags).
 *
 * Conventions of every public call: a fallible call returns int, >= 0 on
 * success and -errno on failure (as io_uring and libuv do); engine-owned
 * objects are opaque; a call that takes a callback and fails never calls it.
 */
#ifndef RINGPORT_RINGPORT_H
#define RINGPORT_RINGPORT_H

#define RP_VERSION_MAJOR 0
#define RP_VERSION_MINOR 4
#define RP_VERSION_PATCH 0
#define RP_VERSION_STRING "0.4.0"

#include <ringport/api.h>
#include <ringport/group.h>
#include <ringport/log.h>
#include <ringport/packet.h>
#include <ringport/port.h>
#include <ringport/server.h>
#include <ringport/session.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of the library actually linked (may differ from the header's
   when linked against a newer shared library of the same major). */
RP_API int rp_version_major(void);
RP_API const char *rp_version_string(void);

#ifdef __cplusplus
}
#endif

#endif
