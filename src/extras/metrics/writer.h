/*
 * The Prometheus text writer behind <ringport/metrics.h>'s rp_metrics_family
 * and friends, and the registry's layout shared by the files of
 * src/extras/metrics/. A writer owns a growing buffer; errors are sticky, so a
 * collector needs no error checks and a bad scrape is one test at the end.
 */
#ifndef RP_METRICS_WRITER_H
#define RP_METRICS_WRITER_H

#include <pthread.h>
#include <ringport/metrics.h>
#include <stdatomic.h>
#include <stdbool.h>

#define WRITER_MAX_FAMILIES 256

struct rp_metrics_writer {
    char *buf; /* malloc'd; NUL-terminated while len < cap */
    size_t len, cap;
    int error;                /* first error: -ENOMEM or -EINVAL; 0 if none */
    enum rp_metric_type type; /* of the current family */
    bool in_family;
    char family[128];
    /* Families already written this scrape (offset and length of the
       name in buf, in its HELP line): a name twice is an error. */
    uint32_t nfamilies;
    size_t family_off[WRITER_MAX_FAMILIES];
    uint8_t family_len[WRITER_MAX_FAMILIES];
};

void rp__writer_init(struct rp_metrics_writer *w);
/* Takes the text (the caller frees it) or the error. */
int rp__writer_finish(struct rp_metrics_writer *w, char **out, size_t *len);
/* True if 'name' is a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*). */
bool rp__metric_name_ok(const char *name);

struct metrics_server {
    struct rp_server *srv;
    char name[32];
    bool named;
};

struct metrics_collector {
    rp_metrics_collect_fn fn;
    void *user;
};

struct metrics_file {
    char path[64];
    char type[64];
    const void *data; /* the caller's; valid until rp_metrics_destroy */
    size_t len;
};

struct rp_metrics {
    pthread_mutex_t lock; /* registrations vs. scrapes */
    struct metrics_server servers[RP_METRICS_MAX_SERVERS];
    uint32_t nservers;
    struct metrics_collector collectors[RP_METRICS_MAX_COLLECTORS];
    uint32_t ncollectors;
    struct rp_group *groups[RP_METRICS_MAX_GROUPS];
    uint32_t ngroups;
    struct metrics_file files[RP_METRICS_MAX_FILES];
    uint32_t nfiles;
    struct rp_metrics_http *http; /* NULL: no endpoint */
    _Atomic uint64_t scrapes;
};

/* ---- group_metrics.c (m->lock held) ---- */
void rp__metrics_collect_groups(struct rp_metrics_writer *w,
                                struct rp_group *const *groups, uint32_t n);
void rp__metrics_sample_groups(struct rp_group *const *groups, uint32_t n,
                               struct rp_statline_sample *out);

/* ---- files.c ---- */
/* Copies the file registered at 'path' into *out; false if none. */
bool rp__metrics_find_file(struct rp_metrics *m, const char *path,
                           struct metrics_file *out);

/* ---- http.c ---- */
struct rp_metrics_http;
int rp__http_start(struct rp_metrics *m, const char *endpoint,
                   struct rp_metrics_http **out);
void rp__http_stop(struct rp_metrics_http *h);
uint16_t rp__http_port(const struct rp_metrics_http *h);

#endif
