/* Service configurations: validated on PUT, stored in PostgreSQL, cached per scheduler. A PUT
 * broadcasts engage.config.changed so every scheduler (this one included) forgets its copy and
 * reloads on next use: the change is live everywhere as soon as the broadcast is delivered.
 *
 * The cache is a small list under a mutex with reference counts, so a configuration that is
 * replaced while a request still uses it stays valid until that request releases it. */
#include "services.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage.pb-c.h"
#include "engage/log.h"
#include "engage/mem.h"
#include "due_store.h"
#include "engage/subjects.h"

typedef struct entry {
    struct entry *next;
    char tenant[40];
    hours_t *hours;
    svc_config_t cfg;
    int refs;
    bool stale;
} entry_t;

struct svc_registry {
    pthread_mutex_t lock;
    entry_t *head;
};

svc_registry_t *svc_registry_new(void)
{
    svc_registry_t *r = eg_xcalloc(1, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    return r;
}

static void entry_free(entry_t *e)
{
    hours_free(e->hours);
    svc_config_free(&e->cfg);
    free(e);
}

void svc_registry_free(svc_registry_t *r)
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

/* Unlink e from the list; caller holds the lock. */
static void unlink_entry(svc_registry_t *r, entry_t *e)
{
    for (entry_t **l = &r->head; *l; l = &(*l)->next) {
        if (*l == e) {
            *l = e->next;
            return;
        }
    }
}

eg_status_t svc_registry_get(svc_registry_t *r, eg_pg_t *pg, const char *tenant, const char *name,
                             const svc_config_t **cfg)
{
    pthread_mutex_lock(&r->lock);
    for (entry_t *e = r->head; e; e = e->next) {
        if (!e->stale && strcmp(e->tenant, tenant) == 0 && strcmp(e->cfg.name, name) == 0) {
            e->refs++;
            *cfg = &e->cfg;
            pthread_mutex_unlock(&r->lock);
            return EG_OK;
        }
    }
    pthread_mutex_unlock(&r->lock);

    const char *params[] = {tenant, name};
    eg_pg_res_t *res = NULL;
    eg_status_t st =
        eg_pg_exec(pg, "SELECT config::text FROM services WHERE tenant_id = $1::uuid AND name = $2",
                   2, params, &res);
    if (st != EG_OK)
        goto out;
    if (eg_pg_rows(res) == 0) {
        st = EG_ENOTFOUND;
        goto out;
    }
    entry_t *e = eg_xcalloc(1, sizeof *e);
    char err[256];
    const char *text = eg_pg_value(res, 0, 0);
    st = svc_config_parse(name, text, strlen(text), &e->cfg, err, sizeof err);
    if (st != EG_OK) {
        eg_log_error("stored configuration of service %s is invalid: %s", name, err);
        free(e);
        st = EG_EINTERNAL;
        goto out;
    }
    if (hours_compile(&e->cfg, &e->hours, err, sizeof err) != EG_OK) {
        eg_log_error("hours of service %s cannot be compiled: %s", name, err);
        svc_config_free(&e->cfg);
        free(e);
        st = EG_EINTERNAL;
        goto out;
    }
    snprintf(e->tenant, sizeof e->tenant, "%s", tenant);
    e->refs = 1;
    pthread_mutex_lock(&r->lock);
    e->next = r->head;
    r->head = e;
    pthread_mutex_unlock(&r->lock);
    *cfg = &e->cfg;
out:
    eg_pg_res_free(res);
    return st;
}

const hours_t *svc_registry_hours(const svc_config_t *cfg)
{
    const entry_t *e = (const entry_t *)(const void *)((const char *)cfg - offsetof(entry_t, cfg));
    return e->hours;
}

void svc_registry_release(svc_registry_t *r, const svc_config_t *cfg)
{
    pthread_mutex_lock(&r->lock);
    for (entry_t *e = r->head; e; e = e->next) {
        if (&e->cfg == cfg) {
            e->refs--;
            pthread_mutex_unlock(&r->lock);
            return;
        }
    }
    /* Not in the list: it was forgotten while in use; the last user frees it. */
    entry_t *e = (entry_t *)((char *)cfg - offsetof(entry_t, cfg));
    if (--e->refs == 0)
        entry_free(e);
    pthread_mutex_unlock(&r->lock);
}

void svc_registry_forget(svc_registry_t *r, const char *tenant, const char *name)
{
    pthread_mutex_lock(&r->lock);
    entry_t *e = r->head;
    while (e) {
        entry_t *next = e->next;
        if (strcmp(e->tenant, tenant) == 0 && (!name || strcmp(e->cfg.name, name) == 0)) {
            unlink_entry(r, e);
            if (e->refs == 0)
                entry_free(e);
        }
        e = next;
    }
    pthread_mutex_unlock(&r->lock);
}

static void broadcast_change(sched_t *s, const char *tenant, const char *name)
{
    Eg__ConfigChanged m = EG__CONFIG_CHANGED__INIT;
    m.tenant_id = (char *)tenant;
    m.kind = "service";
    m.name = (char *)name;
    uint8_t buf[512];
    size_t n = eg__config_changed__get_packed_size(&m);
    if (n <= sizeof buf) {
        eg__config_changed__pack(&m, buf);
        eg_bus_publish(s->bus, EG_SUBJ_CONFIG_CHANGED, buf, n, eg_log_corr());
    }
}

eg_status_t svc_put(sched_t *s, eg_pg_t *pg, const char *tenant, const char *name, const char *json,
                    bool *created, char **effective, char *err, size_t errlen)
{
    svc_config_t cfg;
    eg_status_t st = svc_config_parse(name, json, strlen(json), &cfg, err, errlen);
    if (st != EG_OK)
        return st;
    char *text = svc_config_to_json(&cfg);
    const char *params[] = {tenant, name, text};
    eg_pg_res_t *res = NULL;
    st = eg_pg_exec(pg,
                    "INSERT INTO services (tenant_id, name, config) VALUES ($1::uuid, $2, "
                    "$3::jsonb) ON CONFLICT (tenant_id, name) DO UPDATE SET config = "
                    "EXCLUDED.config, version = services.version + 1, updated_at = now() "
                    "RETURNING (xmax = 0)",
                    3, params, &res);
    if (st == EG_OK) {
        *created = eg_pg_rows(res) == 1 && strcmp(eg_pg_value(res, 0, 0), "t") == 0;
        const char *audit[] = {tenant, *created ? "service.create" : "service.update", name};
        eg_pg_exec(pg,
                   "INSERT INTO audit_log (tenant_id, actor, action, detail) VALUES ($1::uuid, "
                   "'admin-api', $2, jsonb_build_object('service', $3::text))",
                   3, audit, NULL);
        svc_registry_forget(s->services, tenant, name);
        broadcast_change(s, tenant, name);
        *effective = text;
        text = NULL;
    } else {
        snprintf(err, errlen, "could not store the service configuration");
    }
    eg_pg_res_free(res);
    free(text);
    svc_config_free(&cfg);
    return st;
}

eg_status_t svc_get(sched_t *s, eg_pg_t *pg, const char *tenant, const char *name, char **effective)
{
    const svc_config_t *cfg;
    eg_status_t st = svc_registry_get(s->services, pg, tenant, name, &cfg);
    if (st != EG_OK)
        return st;
    *effective = svc_config_to_json(cfg);
    svc_registry_release(s->services, cfg);
    return EG_OK;
}

/* Callbacks of a service not yet completed, or -1 when Redis cannot say. */
static long live_callbacks(eg_store_t *store, const char *tenant, const char *name)
{
    long n = -1;
    if (due_store_live_count(store, tenant, name, &n) != EG_OK)
        return -1;
    return n;
}

eg_status_t svc_delete(sched_t *s, eg_pg_t *pg, eg_store_t *store, const char *tenant,
                       const char *name, char **effective, char *err, size_t errlen)
{
    eg_status_t st = svc_get(s, pg, tenant, name, effective);
    if (st != EG_OK)
        return st;
    long live = live_callbacks(store, tenant, name);
    if (live != 0) {
        snprintf(err, errlen,
                 live < 0 ? "callback store unavailable; try again"
                          : "service '%s' still has %ld callbacks scheduled or queued; cancel them "
                            "first",
                 name, live);
        free(*effective);
        *effective = NULL;
        return live < 0 ? EG_EUNAVAIL : EG_ECONFLICT;
    }
    const char *params[] = {tenant, name};
    st = eg_pg_exec(pg, "DELETE FROM services WHERE tenant_id = $1::uuid AND name = $2", 2, params,
                    NULL);
    if (st == EG_OK) {
        const char *audit[] = {tenant, "service.delete", name};
        eg_pg_exec(pg,
                   "INSERT INTO audit_log (tenant_id, actor, action, detail) VALUES ($1::uuid, "
                   "'admin-api', $2, jsonb_build_object('service', $3::text))",
                   3, audit, NULL);
        svc_registry_forget(s->services, tenant, name);
        broadcast_change(s, tenant, name);
    } else {
        free(*effective);
        *effective = NULL;
        snprintf(err, errlen, "could not delete the service");
    }
    return st;
}
