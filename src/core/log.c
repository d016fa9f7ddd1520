/*
 * The logger: formats "2026-11-27T10:30:09.123Z WARN [io-1] session: ..."
 * into a stack buffer and hands it to the sink in one piece. The default
 * sink writes it to stderr with a single write(2), which keeps lines from
 * different threads whole without a lock.
 */
#include <ringport/log.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 1024
#define THREAD_NAME_MAX 16

static atomic_int log_level = -1; /* -1: not read from the environment yet */
static rp_log_sink log_sink;
static void *log_sink_user;
static _Thread_local char thread_name[THREAD_NAME_MAX];

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

int rp_log_level_parse(const char *name)
{
    static const char *const names[] = {"debug", "info", "warn", "error",
                                        "off"};
    for (int i = 0; i <= RP_LOG_OFF; i++)
        if (strcasecmp(name, names[i]) == 0)
            return i;
    return -EINVAL;
}

enum rp_log_level rp_log_get_level(void)
{
    int level = atomic_load_explicit(&log_level, memory_order_relaxed);
    if (level >= 0)
        return (enum rp_log_level)level;
    const char *env = getenv("RINGPORT_LOG");
    level = env ? rp_log_level_parse(env) : -1;
    if (level < 0)
        level = RP_LOG_INFO;
    atomic_store_explicit(&log_level, level, memory_order_relaxed);
    return (enum rp_log_level)level;
}

void rp_log_set_level(enum rp_log_level level)
{
    atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

void rp_log_set_sink(rp_log_sink sink, void *user)
{
    log_sink = sink;
    log_sink_user = user;
}

void rp_log_set_thread_name(const char *name)
{
    snprintf(thread_name, sizeof thread_name, "%s", name);
    /* The kernel limit is 15 characters plus the terminator. */
    pthread_setname_np(pthread_self(), thread_name);
}

static const char *current_thread_name(char *fallback, size_t size)
{
    if (thread_name[0])
        return thread_name;
    snprintf(fallback, size, "t%ld", (long)syscall(SYS_gettid));
    return fallback;
}

void rp_log_vwrite(enum rp_log_level level, const char *module, const char *fmt,
                   va_list ap)
{
    if (level < RP_LOG_DEBUG || level > RP_LOG_ERROR)
        return;
    int saved_errno = errno; /* logging must not disturb the caller */
    char line[LOG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char tid[THREAD_NAME_MAX];
    int n = snprintf(
        line, sizeof line,
        "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s [%s] %s: ", tm.tm_year + 1900,
        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
        ts.tv_nsec / 1000000L, level_names[level],
        current_thread_name(tid, sizeof tid), module);
    if (n < 0)
        n = 0;
    if ((size_t)n < sizeof line)
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    if (log_sink) {
        log_sink(level, line, log_sink_user);
    } else {
        size_t len = strlen(line);
        line[len < sizeof line - 1 ? len : sizeof line - 2] = '\n';
        len = len < sizeof line - 1 ? len + 1 : sizeof line - 1;
        ssize_t w = write(STDERR_FILENO, line, len);
        (void)w; /* nowhere left to report a failed log write */
    }
    errno = saved_errno;
}

void rp_log_write(enum rp_log_level level, const char *module, const char *fmt,
                  ...)
{
    va_list ap;
    va_start(ap, fmt);
    rp_log_vwrite(level, module, fmt, ap);
    va_end(ap);
}
