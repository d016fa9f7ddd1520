/*
 * Static files on the metrics endpoint (rp_metrics_add_file): a small
 * table of paths and the caller's bytes, under the registry's lock like
 * every registration, so the endpoint's thread can look a path up while
 * the program adds another. The bytes are never copied (a status page
 * embedded in the binary costs nothing at run time).
 */
#include "metrics/writer.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int rp_metrics_add_file(struct rp_metrics *m, const char *path,
                        const char *content_type, const void *data, size_t len)
{
    if (!m || !path || path[0] != '/' ||
        strlen(path) >= sizeof m->files[0].path ||
        strcmp(path, "/metrics") == 0 || !content_type || !*content_type ||
        strlen(content_type) >= sizeof m->files[0].type || (!data && len))
        return -EINVAL;
    int r = 0;
    pthread_mutex_lock(&m->lock);
    struct metrics_file *f = NULL;
    for (uint32_t i = 0; i < m->nfiles && !f; i++)
        if (strcmp(m->files[i].path, path) == 0)
            f = &m->files[i];
    if (!f && m->nfiles == RP_METRICS_MAX_FILES)
        r = -ENOSPC;
    else {
        if (!f)
            f = &m->files[m->nfiles++];
        snprintf(f->path, sizeof f->path, "%s", path);
        snprintf(f->type, sizeof f->type, "%s", content_type);
        f->data = data ? data : "";
        f->len = len;
    }
    pthread_mutex_unlock(&m->lock);
    return r;
}

bool rp__metrics_find_file(struct rp_metrics *m, const char *path,
                           struct metrics_file *out)
{
    bool found = false;
    pthread_mutex_lock(&m->lock);
    for (uint32_t i = 0; i < m->nfiles && !found; i++)
        if (strcmp(m->files[i].path, path) == 0) {
            *out = m->files[i];
            found = true;
        }
    pthread_mutex_unlock(&m->lock);
    return found;
}
