/* Click-to-Call-In (GES's "call-in" API): a customer asks for a number to call; Engage lends
 * one of the group's numbers, with a random access code when the group uses codes, for a few
 * minutes, and recognises the customer when the call arrives (call.inbound).
 *
 * Configuration: call-in groups per tenant, stored in PostgreSQL (table call_in_groups) and
 * cached by each scheduler; a change is broadcast as ConfigChanged kind "callin-group".
 *
 * The requests live in Redis: callin_store.h. The module is split the way the callback side
 * is: callin_config.c (parse, validate, to JSON), callin_registry.c (the cache), callin_groups.c
 * (PostgreSQL, admin), callin_store.c (Redis) and callin_rpc.c (the bus handlers). */
#ifndef SCHED_CALLIN_H
#define SCHED_CALLIN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engage.pb-c.h"
#include "engage/bus.h"
#include "engage/names.h"
#include "engage/pg.h"
#include "engage/status.h"
#include "engage/store.h"
#include "scheduler.h"

#define CALLIN_NAME_MAX EG_NAME_MAX /**< group names follow lib's name rule (names.h) */
#define CALLIN_MAX_NUMBERS 1000
#define CALLIN_PHONE_MAX 16 /**< "+" and up to 15 digits */

#define CALLIN_DEFAULT_DIGITS 4
#define CALLIN_MIN_DIGITS 4
#define CALLIN_MAX_DIGITS 8
#define CALLIN_DEFAULT_EXPIRY_S 300
/** The minimum is 1 s (not GES's 30 s) so that tests of expiry stay fast. */
#define CALLIN_MIN_EXPIRY_S 1
#define CALLIN_MAX_EXPIRY_S 86400

/** A call-in group's configuration, defaults filled in. Plain data. */
typedef struct {
    char name[CALLIN_NAME_MAX + 1];
    char (*numbers)[CALLIN_PHONE_MAX + 1]; /**< owned; n_numbers entries */
    size_t n_numbers;
    bool use_access_codes;
    int access_code_digits;
    int expiry_s;
    char callback_service[CALLIN_NAME_MAX + 1]; /**< "" when not set */
} callin_config_t;

/** Parse and validate a group configuration (../shared/API.md, call-in groups). On failure
 *  EG_EINVAL with err naming the field and the rule, and cfg left empty. On EG_OK release
 *  cfg with callin_config_free. */
eg_status_t callin_config_parse(const char *name, const char *text, size_t len,
                                callin_config_t *cfg, char *err, size_t errlen);
/** The effective configuration as JSON text (caller frees). */
char *callin_config_to_json(const callin_config_t *cfg);
/** Free what cfg owns (not cfg). Accepts a zeroed cfg. */
void callin_config_free(callin_config_t *cfg);

/* ---- configuration store: PostgreSQL + a per-scheduler cache ---- */

callin_registry_t *callin_registry_new(void);
/** Accepts NULL. */
void callin_registry_free(callin_registry_t *r);
/** A tenant's group, loaded from PostgreSQL on a miss (or when the cached copy is older than
 *  a minute, a safety net for a missed broadcast). EG_ENOTFOUND when it does not exist. On
 *  EG_OK release *cfg with callin_registry_release. Thread-safe. */
eg_status_t callin_registry_get(callin_registry_t *r, eg_pg_t *pg, const char *tenant,
                                const char *name, const callin_config_t **cfg);
void callin_registry_release(callin_registry_t *r, const callin_config_t *cfg);
/** Forget a cached group (name NULL: every group of the tenant). */
void callin_registry_forget(callin_registry_t *r, const char *tenant, const char *name);

/** Validate and store a group (*created tells insert from update), then broadcast the change.
 *  *effective (caller frees) gets the effective configuration. err names the field. */
eg_status_t callin_group_put(sched_t *s, eg_pg_t *pg, const char *tenant, const char *name,
                             const char *json, bool *created, char **effective, char *err,
                             size_t errlen);
/** The effective configuration (caller frees). EG_ENOTFOUND when unknown. */
eg_status_t callin_group_get(sched_t *s, eg_pg_t *pg, const char *tenant, const char *name,
                             char **effective);
/** Delete a group. Live requests keep their pairs until they expire. EG_ENOTFOUND. */
eg_status_t callin_group_delete(sched_t *s, eg_pg_t *pg, const char *tenant, const char *name);

/* ---- bus handlers (rpc_fn of rpc.h; listed in rpc.c's routes[]) ---- */

/** engage.sched.callin.match (call.inbound): CallInMatchRequest -> CallInMatchReply. Also
 *  completes the caller's pending callbacks (cb_customer_contacted). */
eg_status_t callin_rpc_match(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg);

/** engage.sched.callin.create: CallInCreateRequest -> CallInReply. */
eg_status_t callin_rpc_create(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg);
/** engage.sched.callin.group.{put,get,delete}: CallInGroup(Put)Request -> CallInGroupReply. */
eg_status_t callin_rpc_group_put(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg);
eg_status_t callin_rpc_group_get(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg);
eg_status_t callin_rpc_group_delete(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg);

#endif
