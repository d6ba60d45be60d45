/* Callback service configurations: PostgreSQL is the source of truth; each scheduler keeps
 * the ones in use in memory and drops an entry when a change is broadcast on the bus. */
#ifndef SCHED_SERVICES_H
#define SCHED_SERVICES_H
#include <stdbool.h>

#include "engage/pg.h"
#include "hours.h"
#include "scheduler.h"
#include "service_config.h"

svc_registry_t *svc_registry_new(void);
void svc_registry_free(svc_registry_t *r);

/** The configuration of a tenant's service, loaded from PostgreSQL on a miss. EG_ENOTFOUND
 *  when it does not exist. On EG_OK release *cfg with svc_registry_release. */
eg_status_t svc_registry_get(svc_registry_t *r, eg_pg_t *pg, const char *tenant, const char *name,
                             const svc_config_t **cfg);
void svc_registry_release(svc_registry_t *r, const svc_config_t *cfg);
/** The compiled hours of a configuration obtained from svc_registry_get (valid until it is
 *  released). */
const hours_t *svc_registry_hours(const svc_config_t *cfg);
/** Forget a cached entry (after a change). */
void svc_registry_forget(svc_registry_t *r, const char *tenant, const char *name);

/** Validate and store a configuration; *created tells insert from update. err names the field
 *  on EG_EINVAL. */
eg_status_t svc_put(sched_t *s, eg_pg_t *pg, const char *tenant, const char *name, const char *json,
                    bool *created, char **effective, char *err, size_t errlen);
/** The stored configuration, defaults filled in (caller frees). */
eg_status_t svc_get(sched_t *s, eg_pg_t *pg, const char *tenant, const char *name,
                    char **effective);

/** Delete a service. Refused (EG_ECONFLICT, err says why) while it has callbacks waiting or
 *  queued: cancel them first. *effective gets the deleted configuration (caller frees). */
eg_status_t svc_delete(sched_t *s, eg_pg_t *pg, eg_store_t *store, const char *tenant,
                       const char *name, char **effective, char *err, size_t errlen);

#endif
