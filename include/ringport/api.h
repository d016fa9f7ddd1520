/*
 * RP_API marks what libringport and libringport-extras export. Both
 * libraries are built with hidden visibility (-fvisibility=hidden), so a
 * function or object is part of the shared library's ABI only if its
 * declaration in include/ringport/ carries RP_API:
 *
 *     RP_API int rp_server_start(struct rp_server *srv);
 *     RP_API extern const uint64_t rp_group_tick_bounds_ns[...];
 *
 * Everything else (rp__* internals, the ring, pool, MPSC and framing
 * modules under src/) stays inside the library: it links from the static
 * archives, but never from the .so. The abi_exports test compares the
 * libraries' dynamic symbols with these declarations, both ways. The ABI
 * policy (soname, what needs a new major) is in docs/architecture.md.
 */
#ifndef RINGPORT_API_H
#define RINGPORT_API_H

#if defined(__GNUC__) || defined(__clang__)
#define RP_API __attribute__((visibility("default")))
#else
#define RP_API
#endif

#endif
