/* The list of services whose second write step failed; see repair.h. */
#include "repair.h"

#include <stdlib.h>
#include <string.h>

#include "due_store.h"
#include "outbox_store.h"
#include "engage/log.h"
#include "engage/mem.h"

void repair_init(repair_t *r)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
}

void repair_destroy(repair_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->items[i]);
    pthread_mutex_destroy(&r->lock);
}

void repair_note(repair_t *r, const char *tenant, const char *service)
{
    size_t len = strlen(tenant) + strlen(service) + 2;
    char *item = eg_xmalloc(len);
    strcpy(item, tenant);
    strcat(item, "|");
    strcat(item, service);
    pthread_mutex_lock(&r->lock);
    bool known = false;
    for (size_t i = 0; i < r->n && !known; i++)
        known = strcmp(r->items[i], item) == 0;
    if (!known && r->n < REPAIR_MAX) {
        r->items[r->n++] = item;
        item = NULL;
    } else if (!known) {
        r->overflow = true;
    }
    pthread_mutex_unlock(&r->lock);
    free(item);
}

void repair_note_all(repair_t *r)
{
    pthread_mutex_lock(&r->lock);
    r->overflow = true;
    pthread_mutex_unlock(&r->lock);
}

bool repair_pending(repair_t *r)
{
    pthread_mutex_lock(&r->lock);
    bool pending = r->n > 0 || r->overflow;
    pthread_mutex_unlock(&r->lock);
    return pending;
}

/* One item: mark the tenant's outbox pending (the relay skips an empty one) and recompute the
 * service's due index entry. */
static eg_status_t repair_one(eg_store_t *store, char *item)
{
    char *bar = strchr(item, '|');
    *bar = '\0';
    eg_status_t st = outbox_store_mark_pending(store, item);
    if (st == EG_OK)
        st = due_store_refresh(store, item, bar + 1);
    *bar = '|';
    return st;
}

void repair_run(repair_t *r, eg_store_t *store, bool *everything)
{
    pthread_mutex_lock(&r->lock);
    size_t n = r->n;
    char *items[REPAIR_MAX];
    memcpy(items, r->items, n * sizeof *items);
    r->n = 0;
    *everything = r->overflow;
    r->overflow = false;
    pthread_mutex_unlock(&r->lock);
    size_t done = 0;
    for (size_t i = 0; i < n; i++) {
        if (repair_one(store, items[i]) == EG_OK) {
            done++;
            free(items[i]);
            items[i] = NULL;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (items[i]) {
            char *bar = strchr(items[i], '|');
            *bar = '\0';
            repair_note(r, items[i], bar + 1);
            free(items[i]);
        }
    if (n)
        eg_log_info("repair: second write step redone for %zu of %zu services", done, n);
}
