/*
 * The nickname registry (game.h): a chained hash set of names under one
 * mutex. Shared by the three content threads because a name is released
 * wherever its session ends; logins and logouts are rare next to game
 * messages, so the lock is never on the hot path.
 */
#include "game.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct name_node {
    struct name_node *next;
    char name[GM_NAME_MAX + 1];
};

/* FNV-1a. */
static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

int names_init(struct names *n, uint32_t expected)
{
    uint32_t size = 64;
    while (size < expected && size < (1u << 24))
        size <<= 1;
    n->buckets = calloc(size, sizeof *n->buckets);
    if (!n->buckets)
        return -ENOMEM;
    n->mask = size - 1;
    n->count = 0;
    pthread_mutex_init(&n->lock, NULL);
    return 0;
}

void names_fini(struct names *n)
{
    if (!n->buckets)
        return;
    for (uint32_t i = 0; i <= n->mask; i++)
        for (struct name_node *e = n->buckets[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    free(n->buckets);
    n->buckets = NULL;
    pthread_mutex_destroy(&n->lock);
}

int names_add(struct names *n, const char *name)
{
    if (strlen(name) > GM_NAME_MAX)
        return -EINVAL;
    struct name_node *node = malloc(sizeof *node);
    if (!node)
        return -ENOMEM;
    strcpy(node->name, name);
    uint32_t b = name_hash(name) & n->mask;
    pthread_mutex_lock(&n->lock);
    for (struct name_node *e = n->buckets[b]; e; e = e->next)
        if (strcmp(e->name, name) == 0) {
            pthread_mutex_unlock(&n->lock);
            free(node);
            return -EEXIST;
        }
    node->next = n->buckets[b];
    n->buckets[b] = node;
    n->count++;
    pthread_mutex_unlock(&n->lock);
    return 0;
}

void names_remove(struct names *n, const char *name)
{
    uint32_t b = name_hash(name) & n->mask;
    struct name_node *gone = NULL;
    pthread_mutex_lock(&n->lock);
    for (struct name_node **at = &n->buckets[b]; *at; at = &(*at)->next)
        if (strcmp((*at)->name, name) == 0) {
            gone = *at;
            *at = gone->next;
            n->count--;
            break;
        }
    pthread_mutex_unlock(&n->lock);
    free(gone);
}

uint32_t names_count(struct names *n)
{
    pthread_mutex_lock(&n->lock);
    uint32_t c = n->count;
    pthread_mutex_unlock(&n->lock);
    return c;
}
