/* Call-in groups in PostgreSQL: put, get and delete for the admin API, each audited and
 * broadcast (ConfigChanged kind "callin-group") so every scheduler's cache forgets it. */
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

static void broadcast_change(sched_t *s, const char *tenant, const char *name)
{
    Eg__ConfigChanged m = EG__CONFIG_CHANGED__INIT;
    m.tenant_id = (char *)tenant;
    m.kind = "callin-group";
    m.name = (char *)name;
    uint8_t buf[512];
    size_t n = eg__config_changed__get_packed_size(&m);
    if (n <= sizeof buf) {
        eg__config_changed__pack(&m, buf);
        eg_bus_publish(s->bus, EG_SUBJ_CONFIG_CHANGED, buf, n, eg_log_corr());
    }
}

static void audit(eg_pg_t *pg, const char *tenant, const char *action, const char *name)
{
    const char *params[] = {tenant, action, name};
    eg_pg_exec(pg,
               "INSERT INTO audit_log (tenant_id, actor, action, detail) VALUES ($1::uuid, "
               "'admin-api', $2, jsonb_build_object('callInGroup', $3::text))",
               3, params, NULL);
}

eg_status_t callin_group_put(sched_t *s, eg_pg_t *pg, const char *tenant, const char *name,
                             const char *json, bool *created, char **effective, char *err,
                             size_t errlen)
{
    callin_config_t cfg;
    eg_status_t st = callin_config_parse(name, json, strlen(json), &cfg, err, errlen);
    if (st != EG_OK)
        return st;
    char *text = callin_config_to_json(&cfg);
    const char *params[] = {tenant, name, text};
    eg_pg_res_t *res = NULL;
    st = eg_pg_exec(pg,
                    "INSERT INTO call_in_groups (tenant_id, name, config) VALUES ($1::uuid, $2, "
                    "$3::jsonb) ON CONFLICT (tenant_id, name) DO UPDATE SET config = "
                    "EXCLUDED.config, version = call_in_groups.version + 1, updated_at = now() "
                    "RETURNING (xmax = 0)",
                    3, params, &res);
    if (st == EG_OK) {
        *created = eg_pg_rows(res) == 1 && strcmp(eg_pg_value(res, 0, 0), "t") == 0;
        audit(pg, tenant, *created ? "callin-group.create" : "callin-group.update", name);
        callin_registry_forget(s->callin, tenant, name);
        broadcast_change(s, tenant, name);
        *effective = text;
        text = NULL;
    } else {
        eg_log_error("call-in group %s: cannot store: %s", name, eg_pg_error(pg));
        snprintf(err, errlen, "could not store the call-in group");
    }
    eg_pg_res_free(res);
    free(text);
    callin_config_free(&cfg);
    return st;
}

eg_status_t callin_group_get(sched_t *s, eg_pg_t *pg, const char *tenant, const char *name,
                             char **effective)
{
    const callin_config_t *cfg;
    eg_status_t st = callin_registry_get(s->callin, pg, tenant, name, &cfg);
    if (st != EG_OK)
        return st;
    *effective = callin_config_to_json(cfg);
    callin_registry_release(s->callin, cfg);
    return EG_OK;
}

eg_status_t callin_group_delete(sched_t *s, eg_pg_t *pg, const char *tenant, const char *name)
{
    const char *params[] = {tenant, name};
    eg_pg_res_t *res = NULL;
    eg_status_t st = eg_pg_exec(
        pg, "DELETE FROM call_in_groups WHERE tenant_id = $1::uuid AND name = $2", 2, params, &res);
    if (st == EG_OK && eg_pg_affected(res) == 0)
        st = EG_ENOTFOUND;
    eg_pg_res_free(res);
    if (st == EG_OK) {
        audit(pg, tenant, "callin-group.delete", name);
        callin_registry_forget(s->callin, tenant, name);
        broadcast_change(s, tenant, name);
    }
    return st;
}
