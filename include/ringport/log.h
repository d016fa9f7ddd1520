/*
 * Logging: one line per event, "time level [thread] module: message".
 * The library prints only through here. Levels below the current one cost a
 * branch; RP_DEBUG lines compile out of release (NDEBUG) builds entirely.
 */
#ifndef RINGPORT_LOG_H
#define RINGPORT_LOG_H

#include <ringport/api.h>
#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

enum rp_log_level {
    RP_LOG_DEBUG = 0,
    RP_LOG_INFO = 1,
    RP_LOG_WARN = 2,
    RP_LOG_ERROR = 3,
    RP_LOG_OFF = 4,
};

/*
 * Receives each formatted line (no trailing newline). The default sink
 * writes the line to stderr with one write(2), so lines from different
 * threads never interleave. Thread: called on the logging thread.
 */
typedef void (*rp_log_sink)(enum rp_log_level level, const char *line,
                            void *user);

/* Thread: any. Lines below 'level' are dropped. Default RP_LOG_INFO, or the
   RINGPORT_LOG environment variable (debug|info|warn|error|off). */
RP_API void rp_log_set_level(enum rp_log_level level);
RP_API enum rp_log_level rp_log_get_level(void);
/* Thread: call before other threads log. NULL restores the default. */
RP_API void rp_log_set_sink(rp_log_sink sink, void *user);
/* Names the calling thread in its log lines (and in /proc, up to 15 chars). */
RP_API void rp_log_set_thread_name(const char *name);
/* Parses "debug".."off"; returns the level or -EINVAL. */
RP_API int rp_log_level_parse(const char *name);

RP_API void rp_log_write(enum rp_log_level level, const char *module,
                         const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
RP_API void rp_log_vwrite(enum rp_log_level level, const char *module,
                          const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#define RP_LOG_AT(level, module, ...)                                          \
    do {                                                                       \
        if ((level) >= rp_log_get_level())                                     \
            rp_log_write((level), (module), __VA_ARGS__);                      \
    } while (0)

#define RP_ERROR(module, ...) RP_LOG_AT(RP_LOG_ERROR, module, __VA_ARGS__)
#define RP_WARN(module, ...) RP_LOG_AT(RP_LOG_WARN, module, __VA_ARGS__)
#define RP_INFO(module, ...) RP_LOG_AT(RP_LOG_INFO, module, __VA_ARGS__)
#ifdef NDEBUG
/* Kept behind if (0) so the format is still checked and arguments still
   count as used, but no code is emitted. */
#define RP_DEBUG(module, ...)                                                  \
    do {                                                                       \
        if (0)                                                                 \
            rp_log_write(RP_LOG_DEBUG, (module), __VA_ARGS__);                 \
    } while (0)
#else
#define RP_DEBUG(module, ...) RP_LOG_AT(RP_LOG_DEBUG, module, __VA_ARGS__)
#endif

#ifdef __cplusplus
}
#endif

#endif
