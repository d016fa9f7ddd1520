/*
 * Helpers of the metrics tests (mu_ prefix): a plain-socket HTTP GET, a
 * strict checker of the Prometheus text format (0.0.4), a value lookup,
 * and promtool / curl run as children when they are installed.
 *
 * The checker holds the text to what the format and promtool demand: every
 * line ends in '\n'; HELP and TYPE at most once per family and before its
 * samples; a family's samples together; names [a-zA-Z_:][a-zA-Z0-9_:]*,
 * label names [a-zA-Z_][a-zA-Z0-9_]*, label values quoted with only \\ \"
 * \n escapes, no label twice; values floats or +Inf/-Inf/NaN; counters
 * named *_total; histogram buckets with 'le', cumulative, ending in +Inf
 * equal to _count.
 */
#ifndef RP_TESTS_METRICS_UTIL_H
#define RP_TESTS_METRICS_UTIL_H

#include "helpers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* ---- HTTP ----------------------------------------------------------- */

struct mu_reply {
    int status;
    char *head; /* status line and headers (malloc'd, NUL-terminated) */
    char *body; /* points into the same buffer, after the blank line */
    char *raw;
};

static inline void mu_reply_free(struct mu_reply *r)
{
    free(r->raw);
    memset(r, 0, sizeof *r);
}

/* Sends 'request' verbatim to 127.0.0.1:port and reads to EOF (every
   read bounded by a 10 s timeout). Returns 0 or -errno. */
static inline int mu_http(uint16_t port, const char *request, size_t reqlen,
                          struct mu_reply *out)
{
    memset(out, 0, sizeof *out);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    size_t sent = 0;
    while (sent < reqlen) {
        ssize_t n = send(fd, request + sent, reqlen - sent, MSG_NOSIGNAL);
        if (n <= 0)
            break; /* the server may answer and close early: read it */
        sent += (size_t)n;
    }
    size_t len = 0, cap = 65536;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 1 == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* EOF, or a reset after the reply */
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    out->raw = buf;
    out->head = buf;
    char *blank = strstr(buf, "\r\n\r\n");
    if (!blank || sscanf(buf, "HTTP/1.%*d %d", &out->status) != 1) {
        out->body = buf + len;
        return -EPROTO;
    }
    *blank = '\0';
    out->body = blank + 4;
    return 0;
}

/* GET /path over HTTP/1.0 (the server closes after the reply). */
static inline int mu_get(uint16_t port, const char *path, struct mu_reply *out)
{
    char req[256];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    return mu_http(port, req, (size_t)n, out);
}

/* ---- the format ----------------------------------------------------- */

static inline bool mu_name_char(char c, bool first, bool colon)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
        return true;
    if (c == ':')
        return colon;
    return !first && c >= '0' && c <= '9';
}

/* Length of the name at 'p' (0 if none). */
static inline size_t mu_name_len(const char *p, bool colon)
{
    size_t n = 0;
    while (p[n] && mu_name_char(p[n], n == 0, colon))
        n++;
    return n;
}

static inline bool mu_value_ok(const char *s, double *out)
{
    if (strcmp(s, "+Inf") == 0 || strcmp(s, "-Inf") == 0 ||
        strcmp(s, "NaN") == 0) {
        *out = strcmp(s, "NaN") == 0 ? NAN : s[0] == '+' ? INFINITY : -INFINITY;
        return true;
    }
    char *end;
    if (!*s || (*s != '-' && (*s < '0' || *s > '9')))
        return false;
    errno = 0;
    *out = strtod(s, &end);
    return !errno && *end == '\0';
}

struct mu_family {
    char name[128];
    char type[16];
    bool help, closed;
};

#define MU_MAX_FAMILIES 256

struct mu_check {
    struct mu_family fam[MU_MAX_FAMILIES];
    int n, cur;
    char err[512];
    /* histogram state of the series being read */
    double last_bucket;
    bool in_buckets, saw_inf;
};

static inline struct mu_family *mu_family(struct mu_check *c, const char *name,
                                          size_t len, bool create)
{
    for (int i = 0; i < c->n; i++)
        if (strlen(c->fam[i].name) == len &&
            memcmp(c->fam[i].name, name, len) == 0)
            return &c->fam[i];
    if (!create || c->n == MU_MAX_FAMILIES || len >= 128)
        return NULL;
    struct mu_family *f = &c->fam[c->n++];
    memset(f, 0, sizeof *f);
    memcpy(f->name, name, len);
    return f;
}

/* Makes 'f' the current family; a family may not come back later. */
static inline bool mu_enter(struct mu_check *c, struct mu_family *f)
{
    int idx = (int)(f - c->fam);
    if (idx == c->cur)
        return true;
    if (f->closed)
        return false;
    if (c->cur >= 0)
        c->fam[c->cur].closed = true;
    c->cur = idx;
    return true;
}

/* Parses '{a="x",b="y"}' at *pp; 'le' gets the le label's value. */
static inline bool mu_labels(const char **pp, char *le, size_t lelen)
{
    const char *p = *pp;
    char seen[16][64];
    int nseen = 0;
    if (*p != '{')
        return true;
    p++;
    while (*p != '}') {
        size_t n = mu_name_len(p, false);
        if (n == 0 || n >= 64 || p[n] != '=' || p[n + 1] != '"')
            return false;
        for (int i = 0; i < nseen; i++)
            if (strlen(seen[i]) == n && memcmp(seen[i], p, n) == 0)
                return false;
        if (nseen < 16) {
            memcpy(seen[nseen], p, n);
            seen[nseen++][n] = '\0';
        }
        bool is_le = n == 2 && memcmp(p, "le", 2) == 0;
        p += n + 2;
        size_t vl = 0;
        while (*p != '"') {
            if (*p == '\0' || *p == '\n')
                return false;
            if (*p == '\\') {
                p++;
                if (*p != '\\' && *p != '"' && *p != 'n')
                    return false;
            }
            if (is_le && vl + 1 < lelen)
                le[vl++] = *p;
            p++;
        }
        if (is_le)
            le[vl] = '\0';
        p++;
        if (*p == ',')
            p++;
        else if (*p != '}')
            return false;
    }
    *pp = p + 1;
    return true;
}

__attribute__((format(printf, 3, 4))) static inline bool
mu_fail(struct mu_check *c, int line, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(c->err, sizeof c->err, "line %d: %s", line, msg);
    return false;
}

static inline bool mu_ends_with(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

/* Checks one sample line. */
static inline bool mu_sample(struct mu_check *c, int ln, const char *line)
{
    size_t n = mu_name_len(line, true);
    if (n == 0)
        return mu_fail(c, ln, "no metric name: '%.80s'", line);
    /* Its family: the name itself, or a histogram's _bucket/_sum/_count. */
    struct mu_family *f = mu_family(c, line, n, false);
    const char *suffix = "";
    static const char *const sfx[] = {"_bucket", "_sum", "_count"};
    for (int i = 0; !f && i < 3; i++)
        if (mu_ends_with(line, n, sfx[i])) {
            f = mu_family(c, line, n - strlen(sfx[i]), false);
            if (f && strcmp(f->type, "histogram") == 0)
                suffix = sfx[i];
            else
                f = NULL;
        }
    if (!f || !f->type[0])
        return mu_fail(c, ln, "sample before its # TYPE: '%.80s'", line);
    if (strcmp(f->type, "histogram") == 0 && !*suffix)
        return mu_fail(c, ln, "histogram sample without a suffix");
    if (!mu_enter(c, f))
        return mu_fail(c, ln, "family %s split", f->name);
    const char *p = line + n;
    char le[64] = "";
    if (!mu_labels(&p, le, sizeof le))
        return mu_fail(c, ln, "bad labels: '%.80s'", line);
    if (*p != ' ')
        return mu_fail(c, ln, "want one space before the value");
    p++;
    char value[64];
    const char *sp = strchr(p, ' ');
    size_t vl = sp ? (size_t)(sp - p) : strlen(p);
    if (vl == 0 || vl >= sizeof value)
        return mu_fail(c, ln, "no value");
    memcpy(value, p, vl);
    value[vl] = '\0';
    double v;
    if (!mu_value_ok(value, &v))
        return mu_fail(c, ln, "bad value '%s'", value);
    if (sp) { /* a timestamp: an integer */
        const char *t = sp + 1;
        if (*t == '-')
            t++;
        if (!*t || strspn(t, "0123456789") != strlen(t))
            return mu_fail(c, ln, "bad timestamp");
    }
    if (strcmp(suffix, "_bucket") == 0) {
        double bound;
        if (!le[0] || !mu_value_ok(le, &bound))
            return mu_fail(c, ln, "bucket without a valid le");
        if (c->in_buckets && v < c->last_bucket)
            return mu_fail(c, ln, "buckets not cumulative");
        c->in_buckets = true;
        c->last_bucket = v;
        c->saw_inf = isinf(bound);
    } else if (strcmp(suffix, "_count") == 0) {
        if (!c->saw_inf)
            return mu_fail(c, ln, "histogram without a +Inf bucket");
        if (v != c->last_bucket)
            return mu_fail(c, ln, "_count %g != +Inf bucket %g", v,
                           c->last_bucket);
        c->in_buckets = false;
        c->saw_inf = false;
    } else if (!strcmp(f->type, "counter") && v < 0) {
        return mu_fail(c, ln, "negative counter");
    }
    return true;
}

/* Returns true if 'text' is valid; else false with the reason in c->err. */
static inline bool mu_check_text(const char *text, struct mu_check *c)
{
    memset(c, 0, sizeof *c);
    c->cur = -1;
    size_t len = strlen(text);
    if (len == 0 || text[len - 1] != '\n')
        return mu_fail(c, 0, "text does not end with a newline");
    int ln = 0;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        char line[2048];
        size_t l = (size_t)(nl - p);
        ln++;
        if (l >= sizeof line)
            return mu_fail(c, ln, "line too long");
        memcpy(line, p, l);
        line[l] = '\0';
        p = nl + 1;
        if (l == 0)
            continue;
        if (strncmp(line, "# HELP ", 7) == 0 ||
            strncmp(line, "# TYPE ", 7) == 0) {
            const char *name = line + 7;
            size_t n = mu_name_len(name, true);
            if (n == 0 || name[n] != ' ')
                return mu_fail(c, ln, "bad name in '%.60s'", line);
            struct mu_family *f = mu_family(c, name, n, true);
            if (!f || !mu_enter(c, f))
                return mu_fail(c, ln, "family split or too many");
            if (line[2] == 'H') {
                if (f->help)
                    return mu_fail(c, ln, "second HELP for %s", f->name);
                f->help = true;
                for (const char *h = name + n + 1; *h; h++)
                    if (*h == '\\' && h[1] != '\\' && h[1] != 'n')
                        return mu_fail(c, ln, "bad escape in HELP");
                    else if (*h == '\\')
                        h++;
                continue;
            }
            const char *type = name + n + 1;
            if (f->type[0])
                return mu_fail(c, ln, "second TYPE for %s", f->name);
            if (strcmp(type, "counter") && strcmp(type, "gauge") &&
                strcmp(type, "histogram") && strcmp(type, "summary") &&
                strcmp(type, "untyped"))
                return mu_fail(c, ln, "unknown type '%s'", type);
            if (!strcmp(type, "counter") &&
                !mu_ends_with(f->name, strlen(f->name), "_total"))
                return mu_fail(c, ln, "counter %s not named *_total", f->name);
            snprintf(f->type, sizeof f->type, "%s", type);
            continue;
        }
        if (line[0] == '#')
            continue; /* a comment */
        if (!mu_sample(c, ln, line))
            return false;
    }
    return true;
}

/*
 * The value of the series 'series' (exactly as written: name and labels,
 * e.g. "ringport_disconnects_total{reason=\"kicked\"}"), or NAN if absent.
 */
static inline double mu_value(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return NAN;
}

/* ---- tools ---------------------------------------------------------- */

static inline bool mu_have(const char *path)
{
    return access(path, X_OK) == 0;
}

/*
 * Runs argv with stdin from 'in_path' (or /dev/null) and stdout+stderr to
 * 'out_path'. Returns the exit status, or -1.
 */
static inline int mu_run(char *const argv[], const char *in_path,
                         const char *out_path)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, in_path ? in_path : "/dev/null",
                                     O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path,
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (r != 0)
        return -1;
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A file's contents (malloc'd, NUL-terminated), or NULL. */
static inline char *mu_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t len = 0, cap = 65536;
    char *buf = malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

#define MU_PROMTOOL "/usr/bin/promtool"
#define MU_CURL "/usr/bin/curl"

/*
 * Runs `promtool check metrics` on 'text'. Returns 0 (accepted), 77 if
 * promtool is not installed (the caller says it skipped), or fails the
 * test with promtool's complaint.
 */
static inline int mu_promtool(const char *text)
{
    if (!mu_have(MU_PROMTOOL)) {
        printf("promtool not installed (apt-get install prometheus): "
               "promtool check skipped, the strict parser alone checked "
               "the format\n");
        return 77;
    }
    char in[] = "/tmp/ringport-metrics-XXXXXX";
    char out[] = "/tmp/ringport-promtool-XXXXXX";
    int fd = mkstemp(in);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    fd = mkstemp(out);
    assert_true(fd >= 0);
    close(fd);
    char *argv[] = {MU_PROMTOOL, "check", "metrics", NULL};
    int st = mu_run(argv, in, out);
    char *said = mu_slurp(out);
    unlink(in);
    unlink(out);
    if (st != 0 || (said && *said))
        fail_msg("promtool check metrics: status %d: %s", st, said ? said : "");
    free(said);
    return 0;
}

#endif
