/*
 * The Prometheus text exposition format (version 0.0.4), written:
 *
 *     # HELP ringport_accepts_total Connections accepted into sessions.
 *     # TYPE ringport_accepts_total counter
 *     ringport_accepts_total{server="lobby"} 1027
 *
 * Names are checked, label values and HELP text escaped (backslash, double
 * quote in label values, newline), numbers printed exactly (integers as
 * integers, doubles with 17 digits, +Inf/-Inf/NaN by name). Every family
 * appears once, its samples together, as the format requires.
 */
#include "metrics/writer.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rp__writer_init(struct rp_metrics_writer *w)
{
    memset(w, 0, sizeof *w);
}

int rp__writer_finish(struct rp_metrics_writer *w, char **out, size_t *len)
{
    if (!w->error && !w->buf) {
        w->buf = malloc(1);
        if (w->buf)
            w->buf[0] = '\0';
        else
            w->error = -ENOMEM;
    }
    if (w->error) {
        free(w->buf);
        w->buf = NULL;
        return w->error;
    }
    *out = w->buf;
    *len = w->len;
    w->buf = NULL;
    return 0;
}

static void fail(struct rp_metrics_writer *w, int err)
{
    if (!w->error)
        w->error = err;
}

static bool reserve(struct rp_metrics_writer *w, size_t more)
{
    if (w->error)
        return false;
    if (w->len + more + 1 <= w->cap)
        return true;
    size_t cap = w->cap ? w->cap : 16384;
    while (cap < w->len + more + 1)
        cap *= 2;
    char *grown = realloc(w->buf, cap);
    if (!grown) {
        fail(w, -ENOMEM);
        return false;
    }
    w->buf = grown;
    w->cap = cap;
    return true;
}

static void put(struct rp_metrics_writer *w, const char *s, size_t n)
{
    if (!reserve(w, n))
        return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

static void puts_(struct rp_metrics_writer *w, const char *s)
{
    put(w, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void
putf(struct rp_metrics_writer *w, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        fail(w, -EINVAL);
        return;
    }
    put(w, tmp, (size_t)n);
}

/* HELP text escapes \ and newline; label values also escape ". */
static void put_escaped(struct rp_metrics_writer *w, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            put(w, "\\\\", 2);
        else if (*s == '\n')
            put(w, "\\n", 2);
        else if (*s == '"' && quote)
            put(w, "\\\"", 2);
        else
            put(w, s, 1);
    }
}

static bool name_char(char c, bool first, bool colon)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
        return true;
    if (c == ':')
        return colon;
    return !first && c >= '0' && c <= '9';
}

static bool name_ok(const char *name, bool colon)
{
    if (!name || !*name)
        return false;
    for (const char *p = name; *p; p++)
        if (!name_char(*p, p == name, colon))
            return false;
    return true;
}

bool rp__metric_name_ok(const char *name)
{
    return name_ok(name, true);
}

static bool label_name_ok(const char *name)
{
    return name_ok(name, false) && strncmp(name, "__", 2) != 0;
}

void rp_metrics_family(struct rp_metrics_writer *w, const char *name,
                       enum rp_metric_type type, const char *help)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    size_t n = name ? strlen(name) : 0;
    if (!rp__metric_name_ok(name) || n >= sizeof w->family ||
        (unsigned)type > RP_METRIC_HISTOGRAM) {
        fail(w, -EINVAL);
        return;
    }
    for (uint32_t i = 0; i < w->nfamilies && !w->error; i++)
        if (w->family_len[i] == n &&
            memcmp(w->buf + w->family_off[i], name, n) == 0) {
            fail(w, -EINVAL); /* a family must not be split */
            return;
        }
    if (w->nfamilies == WRITER_MAX_FAMILIES) {
        fail(w, -EINVAL);
        return;
    }
    puts_(w, "# HELP ");
    size_t off = w->len;
    puts_(w, name);
    put(w, " ", 1);
    put_escaped(w, help ? help : "", false);
    puts_(w, "\n# TYPE ");
    puts_(w, name);
    put(w, " ", 1);
    puts_(w, types[type]);
    put(w, "\n", 1);
    if (w->error)
        return;
    w->family_off[w->nfamilies] = off;
    w->family_len[w->nfamilies] = (uint8_t)n;
    w->nfamilies++;
    memcpy(w->family, name, n + 1);
    w->type = type;
    w->in_family = true;
}

/* name{labels[,extra="..."]} with the series suffix ("" or "_bucket"). */
static void put_series(struct rp_metrics_writer *w, const char *suffix,
                       const struct rp_metric_label *labels, size_t n,
                       const char *extra_name, const char *extra_value)
{
    puts_(w, w->family);
    puts_(w, suffix);
    if (n == 0 && !extra_name)
        return;
    put(w, "{", 1);
    for (size_t i = 0; i < n; i++) {
        if (!label_name_ok(labels[i].name) || !labels[i].value ||
            (extra_name && strcmp(labels[i].name, extra_name) == 0)) {
            fail(w, -EINVAL);
            return;
        }
        if (i)
            put(w, ",", 1);
        puts_(w, labels[i].name);
        put(w, "=\"", 2);
        put_escaped(w, labels[i].value, true);
        put(w, "\"", 1);
    }
    if (extra_name) {
        if (n)
            put(w, ",", 1);
        puts_(w, extra_name);
        put(w, "=\"", 2);
        puts_(w, extra_value);
        put(w, "\"", 1);
    }
    put(w, "}", 1);
}

/* The shortest of %.15g..%.17g that reads back as 'v' (0.005, not
   0.0050000000000000001). */
static void shortest(char *buf, size_t len, double v)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

static void put_double(struct rp_metrics_writer *w, double v)
{
    char tmp[40];
    if (isnan(v))
        puts_(w, "NaN");
    else if (isinf(v))
        puts_(w, v > 0 ? "+Inf" : "-Inf");
    else if (v == (double)(int64_t)v && fabs(v) < 9.007199254740992e15)
        putf(w, "%" PRId64, (int64_t)v);
    else {
        shortest(tmp, sizeof tmp, v);
        puts_(w, tmp);
    }
}

static bool sample_ok(struct rp_metrics_writer *w, bool histogram)
{
    if (!w->in_family || (w->type == RP_METRIC_HISTOGRAM) != histogram) {
        fail(w, -EINVAL);
        return false;
    }
    return !w->error;
}

void rp_metrics_sample(struct rp_metrics_writer *w,
                       const struct rp_metric_label *labels, size_t nlabels,
                       double value)
{
    if (!sample_ok(w, false))
        return;
    put_series(w, "", labels, nlabels, NULL, NULL);
    put(w, " ", 1);
    put_double(w, value);
    put(w, "\n", 1);
}

void rp_metrics_sample_u64(struct rp_metrics_writer *w,
                           const struct rp_metric_label *labels, size_t nlabels,
                           uint64_t value)
{
    if (!sample_ok(w, false))
        return;
    put_series(w, "", labels, nlabels, NULL, NULL);
    putf(w, " %" PRIu64 "\n", value);
}

void rp_metrics_histogram(struct rp_metrics_writer *w,
                          const struct rp_metric_label *labels, size_t nlabels,
                          const double *bounds, size_t nbounds,
                          const uint64_t *counts, double sum)
{
    if (!sample_ok(w, true))
        return;
    uint64_t cum = 0;
    for (size_t i = 0; i <= nbounds && !w->error; i++) {
        char le[32];
        if (i == nbounds) {
            snprintf(le, sizeof le, "+Inf");
        } else if (i > 0 && !(bounds[i] > bounds[i - 1])) {
            fail(w, -EINVAL); /* bounds must rise */
            return;
        } else {
            shortest(le, sizeof le, bounds[i]);
        }
        cum += counts[i];
        put_series(w, "_bucket", labels, nlabels, "le", le);
        putf(w, " %" PRIu64 "\n", cum);
    }
    put_series(w, "_sum", labels, nlabels, NULL, NULL);
    put(w, " ", 1);
    put_double(w, sum);
    put(w, "\n", 1);
    put_series(w, "_count", labels, nlabels, NULL, NULL);
    putf(w, " %" PRIu64 "\n", cum);
}
