/*
 * GET /metrics over HTTP, on libmicrohttpd's own internal thread. GET
 * /metrics answers 200 (text/plain; version=0.0.4), and so does GET of a
 * path added with rp_metrics_add_file (its bytes, its type); another path
 * is 404, another method 405, a request with a body 413. libmicrohttpd's
 * limits bound what a bad scraper can hold: a few connections in all and
 * per address, a small per-connection memory pool (a huge header gets 431
 * or 413 from libmicrohttpd itself) and an idle timeout.
 */
#include "metrics/writer.h"

#include <errno.h>
#include <microhttpd.h>
#include <ringport/config.h>
#include <ringport/log.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HTTP_MAX_CONNECTIONS 8
#define HTTP_MAX_PER_IP 4
#define HTTP_TIMEOUT_S 5
#define HTTP_MEMORY_LIMIT (16 * 1024) /* request line and headers */
#define HTTP_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct rp_metrics_http {
    struct rp_metrics *m;
    struct MHD_Daemon *daemon;
    uint16_t port;
};

/* libmicrohttpd's complaints (a bad request, a full connection table):
   at most HTTP_LOG_PER_SEC lines a second, so a bad scraper cannot flood
   the log. Only the endpoint's thread logs here, but keep it atomic. */
#define HTTP_LOG_PER_SEC 5
static _Atomic int64_t log_window;
static _Atomic int log_lines;

__attribute__((format(printf, 2, 0))) static void
http_log(void *cls, const char *fmt, va_list ap)
{
    char line[256];
    struct timespec ts;
    (void)cls;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t sec = ts.tv_sec;
    if (atomic_exchange_explicit(&log_window, sec, memory_order_relaxed) != sec)
        atomic_store_explicit(&log_lines, 0, memory_order_relaxed);
    if (atomic_fetch_add_explicit(&log_lines, 1, memory_order_relaxed) >=
        HTTP_LOG_PER_SEC)
        return;
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    RP_WARN("metrics", "http: %s", line);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status,
                             const char *text)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; charset=utf-8");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET");
    enum MHD_Result r = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return r;
}

/* The bytes are the program's, valid until rp_metrics_destroy, which
   stops this thread first: no copy. */
static enum MHD_Result reply_file(struct MHD_Connection *c,
                                  const struct metrics_file *f)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        f->len, (void *)f->data, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, f->type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    enum MHD_Result r = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return r;
}

static bool has_body(struct MHD_Connection *c)
{
    const char *cl = MHD_lookup_connection_value(
        c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te = MHD_lookup_connection_value(
        c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    return te || (cl && strcmp(cl, "0") != 0);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **req_state)
{
    struct rp_metrics_http *h = cls;
    static _Thread_local bool named;
    (void)version, (void)upload, (void)upload_size, (void)req_state;
    if (!named) {
        rp_log_set_thread_name("metrics");
        named = true;
    }
    /* Answered on the first call, before any body is read: libmicrohttpd
       then closes the connection instead of reading the body. */
    struct metrics_file file;
    bool is_file =
        strcmp(url, "/metrics") != 0 && rp__metrics_find_file(h->m, url, &file);
    if (strcmp(url, "/metrics") != 0 && !is_file)
        return reply(c, MHD_HTTP_NOT_FOUND, "not found: try GET /metrics\n");
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET\n");
    if (has_body(c))
        return reply(c, MHD_HTTP_CONTENT_TOO_LARGE, "no body, please\n");
    if (is_file)
        return reply_file(c, &file);

    char *text;
    size_t len;
    int r = rp_metrics_render(h->m, &text, &len);
    if (r < 0) {
        RP_ERROR("metrics", "render: %s", strerror(-r));
        return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                     "cannot render metrics (see the server log)\n");
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            HTTP_CONTENT_TYPE);
    enum MHD_Result q = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return q;
}

int rp__http_start(struct rp_metrics *m, const char *endpoint,
                   struct rp_metrics_http **out)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (rp_config_parse_endpoint(endpoint, &ss, &sslen) < 0) {
        RP_ERROR("metrics", "endpoint '%s': want ADDR:PORT", endpoint);
        return -EINVAL;
    }
    struct rp_metrics_http *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    h->m = m;
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    errno = 0;
    h->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER,
        http_log, NULL, MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNECTIONS,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)HTTP_MAX_PER_IP,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_TIMEOUT_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_MEMORY_LIMIT,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 16u, MHD_OPTION_END);
    if (!h->daemon) {
        int err = errno ? errno : EADDRINUSE;
        RP_ERROR("metrics", "cannot serve on %s: %s", endpoint, strerror(err));
        free(h);
        return -err;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    RP_INFO("metrics", "serving GET /metrics on %s (port %u)", endpoint,
            h->port);
    *out = h;
    return 0;
}

void rp__http_stop(struct rp_metrics_http *h)
{
    MHD_stop_daemon(h->daemon);
    free(h);
}

uint16_t rp__http_port(const struct rp_metrics_http *h)
{
    return h->port;
}
