/* The per-scheduler cache of call-in groups over PostgreSQL (table call_in_groups): a group is
 * loaded on a miss, kept a minute at most (a safety net for a missed broadcast), and dropped
 * when a ConfigChanged "callin-group" arrives. Thread-safe. */
#include "callin.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "callback_store.h"
#include "callbacks.h"
#include "engage/ids.h"
#include "engage/json.h"
#include "engage/log.h"
#include "engage/mem.h"
#include "engage/phone.h"
#include "engage/subjects.h"
#include "engage/timeutil.h"
#include "services.h"

#define CACHE_TTL_MS 60000 /* a safety net: broadcasts normally make changes live at once */
#define CACHE_MAX 1024     /* beyond this, unused entries are dropped from the cold end */

typedef struct entry {
    struct entry *next;
    char tenant[40];
    int64_t loaded_ms;
    int refs;
    callin_config_t cfg;
} entry_t;

struct callin_registry {
    pthread_mutex_t lock;
    entry_t *head; /* most recently loaded first */
    size_t count;
};

callin_registry_t *callin_registry_new(void)
{
    callin_registry_t *r = eg_xcalloc(1, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    return r;
}

static void entry_free(entry_t *e)
{
    callin_config_free(&e->cfg);
    free(e);
}

void callin_registry_free(callin_registry_t *r)
{
    if (!r)
        return;
    while (r->head) {
        entry_t *e = r->head;
        r->head = e->next;
        entry_free(e);
    }
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* Take e out of the list (the caller holds the lock); it is freed now when unused, else by
 * its last user in callin_registry_release. */
static void drop_locked(callin_registry_t *r, entry_t *e)
{
    for (entry_t **l = &r->head; *l; l = &(*l)->next) {
        if (*l == e) {
            *l = e->next;
            r->count--;
            break;
        }
    }
    if (e->refs == 0)
        entry_free(e);
}

static eg_status_t load(eg_pg_t *pg, const char *tenant, const char *name, entry_t **out)
{
    const char *params[] = {tenant, name};
    eg_pg_res_t *res = NULL;
    eg_status_t st = eg_pg_exec(
        pg, "SELECT config::text FROM call_in_groups WHERE tenant_id = $1::uuid AND name = $2", 2,
        params, &res);
    if (st != EG_OK)
        goto out;
    if (eg_pg_rows(res) == 0) {
        st = EG_ENOTFOUND;
        goto out;
    }
    entry_t *e = eg_xcalloc(1, sizeof *e);
    char err[256];
    const char *text = eg_pg_value(res, 0, 0);
    st = callin_config_parse(name, text, strlen(text), &e->cfg, err, sizeof err);
    if (st != EG_OK) {
        eg_log_error("stored configuration of call-in group %s is invalid: %s", name, err);
        free(e);
        st = EG_EINTERNAL;
        goto out;
    }
    snprintf(e->tenant, sizeof e->tenant, "%s", tenant);
    e->loaded_ms = eg_mono_ms();
    e->refs = 1;
    *out = e;
out:
    eg_pg_res_free(res);
    return st;
}

eg_status_t callin_registry_get(callin_registry_t *r, eg_pg_t *pg, const char *tenant,
                                const char *name, const callin_config_t **cfg)
{
    int64_t now = eg_mono_ms();
    pthread_mutex_lock(&r->lock);
    for (entry_t *e = r->head; e; e = e->next) {
        if (strcmp(e->tenant, tenant) == 0 && strcmp(e->cfg.name, name) == 0) {
            if (now - e->loaded_ms > CACHE_TTL_MS) {
                drop_locked(r, e);
                break;
            }
            e->refs++;
            *cfg = &e->cfg;
            pthread_mutex_unlock(&r->lock);
            return EG_OK;
        }
    }
    pthread_mutex_unlock(&r->lock);

    entry_t *e = NULL;
    eg_status_t st = load(pg, tenant, name, &e);
    if (st != EG_OK)
        return st;
    pthread_mutex_lock(&r->lock);
    e->next = r->head;
    r->head = e;
    r->count++;
    if (r->count > CACHE_MAX) {
        /* Keep the newest half; drop the rest (those in use go when released). */
        entry_t *keep = r->head;
        for (size_t i = 1; keep && i < CACHE_MAX / 2; i++)
            keep = keep->next;
        while (keep && keep->next)
            drop_locked(r, keep->next);
    }
    pthread_mutex_unlock(&r->lock);
    *cfg = &e->cfg;
    return EG_OK;
}

void callin_registry_release(callin_registry_t *r, const callin_config_t *cfg)
{
    entry_t *e = (entry_t *)(void *)((char *)(uintptr_t)cfg - offsetof(entry_t, cfg));
    pthread_mutex_lock(&r->lock);
    bool listed = false;
    for (entry_t *x = r->head; x; x = x->next)
        listed = listed || x == e;
    if (--e->refs == 0 && !listed)
        entry_free(e);
    pthread_mutex_unlock(&r->lock);
}

void callin_registry_forget(callin_registry_t *r, const char *tenant, const char *name)
{
    pthread_mutex_lock(&r->lock);
    entry_t *e = r->head;
    while (e) {
        entry_t *next = e->next;
        if (strcmp(e->tenant, tenant) == 0 && (!name || strcmp(e->cfg.name, name) == 0))
            drop_locked(r, e);
        e = next;
    }
    pthread_mutex_unlock(&r->lock);
}
