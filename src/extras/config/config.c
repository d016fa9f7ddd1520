/*
 * Settings from INI text and flags through one key table
 * (<ringport/config.h>). libinih does the INI syntax; it is fed through
 * ini_parse_stream with a reader over memory, so this file counts the lines
 * itself and knows on which line each entry sits (inih tells a handler
 * nothing about lines). The first error wins: a refused entry, a line too
 * long for inih's buffer, or a syntax error that inih reports by line.
 */
#include <ringport/config.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

const struct rp_config_key *rp_config_find(const struct rp_config_key *keys,
                                           size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    if (*s < '0' || *s > '9') /* strtoull would take "-1" and " 1" */
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return false;
    *out = v;
    return true;
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

int rp_config_parse_endpoint(const char *text, struct sockaddr_storage *ss,
                             socklen_t *len)
{
    struct sockaddr_storage tmp;
    char host[64];
    const char *colon = strrchr(text, ':');
    uint64_t port;
    if (!colon || !parse_u64(colon + 1, 65535, &port))
        return -EINVAL;
    size_t hlen = (size_t)(colon - text);
    if (hlen >= sizeof host)
        return -EINVAL;
    memcpy(host, text, hlen);
    host[hlen] = '\0';
    memset(&tmp, 0, sizeof tmp);
    socklen_t l;
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&tmp;
        host[hlen - 1] = '\0';
        if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
            return -EINVAL;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        l = sizeof *a6;
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&tmp;
        if (hlen == 0)
            a4->sin_addr.s_addr = htonl(INADDR_ANY);
        else if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
            return -EINVAL;
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        l = sizeof *a4;
    }
    if (ss)
        *ss = tmp;
    if (len)
        *len = l;
    return 0;
}

/* "raw or framed", "auto, uring or epoll" into buf. */
static void choices_text(const struct rp_config_choice *c, char *buf,
                         size_t len)
{
    size_t n = 0, used = 0;
    while (c[n].name)
        n++;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < len; i++) {
        const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
        int w = snprintf(buf + used, len - used, "%s%s", sep, c[i].name);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

/* Sets 'k' from 'value'; NULL, or what the value should have been. */
static const char *key_apply(const struct rp_config_key *k, const char *value,
                             char *want, size_t wantlen)
{
    uint64_t v;
    switch (k->kind) {
    case RP_CONFIG_ENDPOINT:
        if (*value && rp_config_parse_endpoint(value, NULL, NULL) < 0)
            return "ADDR:PORT (127.0.0.1:9100, [::1]:9100, :9100) or nothing";
        __attribute__((fallthrough)); /* stored as text */
    case RP_CONFIG_STR:
        if (strlen(value) >= k->size) {
            snprintf(want, wantlen, "at most %zu characters", k->size - 1);
            return want;
        }
        memcpy(k->dest, value, strlen(value) + 1);
        return NULL;
    case RP_CONFIG_U16:
        if (!parse_u64(value, UINT16_MAX, &v))
            return "a whole number 0..65535";
        *(uint16_t *)k->dest = (uint16_t)v;
        return NULL;
    case RP_CONFIG_U32:
        if (!parse_u64(value, UINT32_MAX, &v))
            return "a whole number 0..4294967295";
        *(uint32_t *)k->dest = (uint32_t)v;
        return NULL;
    case RP_CONFIG_BOOL:
        if (!parse_bool(value, (bool *)k->dest))
            return "true or false";
        return NULL;
    case RP_CONFIG_ENUM:
        for (const struct rp_config_choice *c = k->choices; c->name; c++)
            if (strcmp(c->name, value) == 0) {
                *(int *)k->dest = c->value;
                return NULL;
            }
        choices_text(k->choices, want, wantlen);
        return want;
    }
    return "a value of a known kind";
}

int rp_config_set(const struct rp_config_key *keys, size_t n, const char *name,
                  const char *value, char *err, size_t errlen)
{
    char want[128];
    const struct rp_config_key *k = rp_config_find(keys, n, name);
    if (!k) {
        if (err)
            snprintf(err, errlen, "unknown");
        return -ENOENT;
    }
    const char *w = key_apply(k, value, want, sizeof want);
    if (!w)
        return 0;
    if (err)
        snprintf(err, errlen, "wants %s, got '%.64s'", w, value);
    return -EINVAL;
}

/* ---- command lines ---------------------------------------------------- */

/* The key the long flag 'flag' names ("--max-sessions": "max_sessions"),
   or NULL: not "--" and words joined by '-', hidden, or no such key. */
static const struct rp_config_key *flag_key(const struct rp_config_key *keys,
                                            size_t n,
                                            const struct rp_config_flag *flags,
                                            const char *flag)
{
    char name[64];
    size_t i = 0;
    if (strncmp(flag, "--", 2) != 0 || strlen(flag + 2) >= sizeof name ||
        strchr(flag + 2, '_'))
        return NULL;
    for (const struct rp_config_flag *f = flags; f && f->flag; f++)
        if (!f->key && strcmp(f->flag, flag) == 0)
            return NULL;
    for (const char *p = flag + 2; *p; p++)
        name[i++] = *p == '-' ? '_' : *p;
    name[i] = '\0';
    return rp_config_find(keys, n, name);
}

/* The switch (a flag without a value) spelled 'arg', or NULL. */
static const struct rp_config_flag *
flag_switch(const struct rp_config_flag *flags, const char *arg)
{
    for (const struct rp_config_flag *f = flags; f && f->flag; f++)
        if (f->key && strcmp(f->flag, arg) == 0)
            return f;
    return NULL;
}

int rp_config_apply_args(const struct rp_config_key *keys, size_t n,
                         const struct rp_config_flag *flags,
                         const char *section, int argc, char *const argv[],
                         char *err, size_t errlen)
{
    const char *config = NULL;
    char why[256];
    /* First every flag checked and the file loaded, so flags override it. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            return RP_CONFIG_HELP;
        if (flag_switch(flags, a))
            continue;
        if (strcmp(a, "--config") != 0 && !flag_key(keys, n, flags, a)) {
            if (err)
                snprintf(err, errlen, "unknown flag '%s' (try --help)", a);
            return -ENOENT;
        }
        if (i + 1 >= argc) {
            if (err)
                snprintf(err, errlen, "%s needs a value (try --help)", a);
            return -EINVAL;
        }
        if (strcmp(a, "--config") == 0)
            config = argv[i + 1];
        i++;
    }
    if (config) {
        int r = rp_config_load(config, section, keys, n, err, errlen);
        if (r < 0)
            return r;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *name, *value;
        const struct rp_config_flag *sw = flag_switch(flags, a);
        if (sw) {
            name = sw->key;
            value = sw->value;
        } else {
            value = argv[++i];
            if (strcmp(a, "--config") == 0)
                continue;
            name = flag_key(keys, n, flags, a)->name;
        }
        if (rp_config_set(keys, n, name, value, why, sizeof why) < 0) {
            if (err)
                snprintf(err, errlen, "%s %s", a, why);
            return -EINVAL;
        }
    }
    return 0;
}

/* ---- INI text -------------------------------------------------------- */

struct text_stream {
    const char *p, *end;
    int line;      /* lines handed to inih so far: the current one */
    int long_line; /* first line over RP_CONFIG_MAX_LINE; 0 if none */
};

/* inih's reader: the next line into 'buf' (fgets-like), over memory. */
static char *text_reader(char *buf, int size, void *user)
{
    struct text_stream *s = user;
    if (s->p >= s->end || size < 2)
        return NULL;
    s->line++;
    size_t cap = (size_t)size - 1, n = 0;
    if (cap > RP_CONFIG_MAX_LINE)
        cap = RP_CONFIG_MAX_LINE;
    while (s->p < s->end && *s->p != '\n' && n < cap)
        buf[n++] = *s->p++;
    if (s->p < s->end && *s->p != '\n') {
        /* Too long: refused, not split into two lines behind our back. */
        if (!s->long_line)
            s->long_line = s->line;
        while (s->p < s->end && *s->p != '\n')
            s->p++;
    }
    if (s->p < s->end)
        s->p++; /* the '\n' */
    buf[n] = '\0';
    return buf;
}

struct parse_state {
    struct text_stream stream;
    const struct rp_config_key *keys;
    size_t n;
    const char *section;
    int err_line; /* first entry refused; 0 if none */
    char err[200];
};

static int entry_handler(void *user, const char *section, const char *name,
                         const char *value)
{
    struct parse_state *st = user;
    if (st->err_line)
        return 1; /* keep the first error */
    if (*section && (!st->section || strcmp(section, st->section) != 0)) {
        if (st->section)
            snprintf(st->err, sizeof st->err,
                     "section [%.48s]: unknown (keys go at the top or in "
                     "[%s])",
                     section, st->section);
        else
            snprintf(st->err, sizeof st->err,
                     "section [%.48s]: unknown (keys go at the top)", section);
    } else {
        char why[160];
        if (rp_config_set(st->keys, st->n, name, value, why, sizeof why) == 0)
            return 1;
        snprintf(st->err, sizeof st->err, "key '%.32s': %s", name, why);
    }
    st->err_line = st->stream.line;
    return 0;
}

int rp_config_parse(const char *text, size_t len, const char *file,
                    const char *section, const struct rp_config_key *keys,
                    size_t n, char *err, size_t errlen)
{
    struct parse_state st = {
        .stream = {.p = text, .end = text + len},
        .keys = keys,
        .n = n,
        .section = section,
    };
    int r = ini_parse_stream(text_reader, &st.stream, entry_handler, &st);
    if (r == 0 && !st.stream.long_line)
        return 0;
    if (r == -2) {
        if (err)
            snprintf(err, errlen, "%s: out of memory", file);
        return -ENOMEM;
    }
    /* The first of: a line too long, our refusal, inih's first error. */
    int first = r > 0 ? r : INT_MAX;
    if (st.stream.long_line && st.stream.long_line <= first) {
        if (err)
            snprintf(err, errlen, "%s:%d: line too long (max %u characters)",
                     file, st.stream.long_line, RP_CONFIG_MAX_LINE);
    } else if (st.err_line && st.err_line == first) {
        if (err)
            snprintf(err, errlen, "%s:%d: %s", file, first, st.err);
    } else if (err) {
        snprintf(err, errlen, "%s:%d: syntax error (want 'key = value')", file,
                 first);
    }
    return -EINVAL;
}

int rp_config_load(const char *path, const char *section,
                   const struct rp_config_key *keys, size_t n, char *err,
                   size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int r;
    if (fd < 0) {
        r = -errno;
        goto fail;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        r = -errno;
        goto fail_fd;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > RP_CONFIG_MAX_FILE) {
        r = S_ISREG(st.st_mode) ? -EFBIG : -EINVAL;
        goto fail_fd;
    }
    char *text = malloc((size_t)st.st_size + 1);
    if (!text) {
        r = -ENOMEM;
        goto fail_fd;
    }
    size_t len = 0;
    while (len < (size_t)st.st_size) {
        ssize_t got = read(fd, text + len, (size_t)st.st_size - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            r = -errno;
            free(text);
            goto fail_fd;
        }
        if (got == 0)
            break; /* shrank under us: parse what is there */
        len += (size_t)got;
    }
    close(fd);
    r = rp_config_parse(text, len, path, section, keys, n, err, errlen);
    free(text);
    return r;

fail_fd:
    close(fd);
fail:
    if (err)
        snprintf(err, errlen, "%s: cannot read: %s", path,
                 r == -EINVAL ? "not a regular file" : strerror(-r));
    return r;
}
