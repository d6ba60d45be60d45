/* A TTL cache: open hashing with chaining under one mutex. Entries are small and few (keys,
 * service configurations), so one lock is plenty; the cost of a lookup is one hash and a
 * short chain walk. */
#include "engage/cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engage/mem.h"
#include "engage/timeutil.h"

typedef struct entry {
    struct entry *next;
    char *key;
    int64_t expires_ms;
    unsigned char value[];
} entry_t;

struct eg_cache {
    pthread_mutex_t lock;
    entry_t **buckets;
    size_t nbuckets, count, max, value_size;
};

static size_t hash(const char *s)
{
    size_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

eg_cache_t *eg_cache_new(size_t max_entries, size_t value_size)
{
    eg_cache_t *c = eg_xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    c->max = max_entries ? max_entries : 1;
    c->nbuckets = 64;
    while (c->nbuckets < c->max)
        c->nbuckets *= 2;
    c->buckets = eg_xcalloc(c->nbuckets, sizeof *c->buckets);
    c->value_size = value_size;
    return c;
}

static void remove_at(eg_cache_t *c, entry_t **link)
{
    entry_t *e = *link;
    *link = e->next;
    free(e->key);
    free(e);
    c->count--;
}

/* Make room for one entry: drop expired entries, else the first entry found. */
static void evict(eg_cache_t *c, int64_t now)
{
    for (size_t i = 0; i < c->nbuckets; i++) {
        entry_t **link = &c->buckets[i];
        while (*link) {
            if ((*link)->expires_ms <= now)
                remove_at(c, link);
            else
                link = &(*link)->next;
        }
    }
    for (size_t i = 0; c->count >= c->max && i < c->nbuckets; i++)
        while (c->buckets[i] && c->count >= c->max)
            remove_at(c, &c->buckets[i]);
}

void eg_cache_put(eg_cache_t *c, const char *key, const void *value, int64_t ttl_ms)
{
    int64_t now = eg_mono_ms();
    pthread_mutex_lock(&c->lock);
    entry_t **link = &c->buckets[hash(key) & (c->nbuckets - 1)];
    for (entry_t *e = *link; e; e = e->next) {
        if (strcmp(e->key, key) == 0) {
            memcpy(e->value, value, c->value_size);
            e->expires_ms = now + ttl_ms;
            goto out;
        }
    }
    if (c->count >= c->max)
        evict(c, now);
    entry_t *e = eg_xmalloc(sizeof *e + c->value_size);
    e->key = eg_xstrdup(key);
    e->expires_ms = now + ttl_ms;
    memcpy(e->value, value, c->value_size);
    e->next = *link;
    *link = e;
    c->count++;
out:
    pthread_mutex_unlock(&c->lock);
}

bool eg_cache_get(eg_cache_t *c, const char *key, void *value_out)
{
    bool found = false;
    int64_t now = eg_mono_ms();
    pthread_mutex_lock(&c->lock);
    entry_t **link = &c->buckets[hash(key) & (c->nbuckets - 1)];
    for (; *link; link = &(*link)->next) {
        if (strcmp((*link)->key, key) == 0) {
            if ((*link)->expires_ms <= now) {
                remove_at(c, link);
            } else {
                memcpy(value_out, (*link)->value, c->value_size);
                found = true;
            }
            break;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return found;
}

void eg_cache_del(eg_cache_t *c, const char *key)
{
    pthread_mutex_lock(&c->lock);
    entry_t **link = &c->buckets[hash(key) & (c->nbuckets - 1)];
    for (; *link; link = &(*link)->next) {
        if (strcmp((*link)->key, key) == 0) {
            remove_at(c, link);
            break;
        }
    }
    pthread_mutex_unlock(&c->lock);
}

void eg_cache_clear(eg_cache_t *c)
{
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->nbuckets; i++)
        while (c->buckets[i])
            remove_at(c, &c->buckets[i]);
    pthread_mutex_unlock(&c->lock);
}

void eg_cache_free(eg_cache_t *c)
{
    if (!c)
        return;
    eg_cache_clear(c);
    free(c->buckets);
    pthread_mutex_destroy(&c->lock);
    free(c);
}
