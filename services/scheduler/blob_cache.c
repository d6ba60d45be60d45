/* A direct-mapped cache of callback blobs; see blob_cache.h. */
#include "blob_cache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage/mem.h"

#define KEY_MAX 112 /* "<tenant>|<id>": two 36-character uuids and a bar fit */

typedef struct {
    char key[KEY_MAX];
    void *blob;
    size_t len;
} slot_t;

struct blob_cache {
    pthread_mutex_t lock;
    slot_t *slots;
    size_t n, max_blob;
};

blob_cache_t *blob_cache_new(size_t slots, size_t max_blob)
{
    blob_cache_t *c = eg_xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    c->slots = eg_xcalloc(slots ? slots : 1, sizeof *c->slots);
    c->n = slots ? slots : 1;
    c->max_blob = max_blob;
    return c;
}

void blob_cache_free(blob_cache_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->slots[i].blob);
    free(c->slots);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* FNV-1a of the key: the slot. */
static slot_t *slot_of(blob_cache_t *c, const char *key)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return &c->slots[h % c->n];
}

static bool make_key(char out[KEY_MAX], const char *tenant, const char *id)
{
    int n = snprintf(out, KEY_MAX, "%s|%s", tenant, id);
    return n > 0 && n < KEY_MAX;
}

void blob_cache_put(blob_cache_t *c, const char *tenant, const char *id, const void *blob,
                    size_t len)
{
    char key[KEY_MAX];
    if (!make_key(key, tenant, id))
        return;
    void *copy = NULL;
    if (len <= c->max_blob) {
        copy = eg_xmalloc(len ? len : 1);
        memcpy(copy, blob, len);
    }
    pthread_mutex_lock(&c->lock);
    slot_t *s = slot_of(c, key);
    void *old = NULL;
    if (copy || strcmp(s->key, key) == 0) {
        old = s->blob;
        memcpy(s->key, key, sizeof key);
        s->blob = copy;
        s->len = len;
        if (!copy)
            s->key[0] = '\0';
    }
    pthread_mutex_unlock(&c->lock);
    free(old);
}

void *blob_cache_get(blob_cache_t *c, const char *tenant, const char *id, size_t *len)
{
    char key[KEY_MAX];
    if (!make_key(key, tenant, id))
        return NULL;
    void *copy = NULL;
    pthread_mutex_lock(&c->lock);
    slot_t *s = slot_of(c, key);
    if (s->blob && strcmp(s->key, key) == 0) {
        copy = eg_xmalloc(s->len ? s->len : 1);
        memcpy(copy, s->blob, s->len);
        *len = s->len;
    }
    pthread_mutex_unlock(&c->lock);
    return copy;
}

void blob_cache_forget(blob_cache_t *c, const char *tenant, const char *id)
{
    char key[KEY_MAX];
    if (!make_key(key, tenant, id))
        return;
    void *old = NULL;
    pthread_mutex_lock(&c->lock);
    slot_t *s = slot_of(c, key);
    if (strcmp(s->key, key) == 0) {
        old = s->blob;
        s->blob = NULL;
        s->key[0] = '\0';
    }
    pthread_mutex_unlock(&c->lock);
    free(old);
}
