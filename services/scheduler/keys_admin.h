/* API keys through the admin API: create, list and revoke a tenant's keys (bus handlers). */
#ifndef SCHED_KEYS_ADMIN_H
#define SCHED_KEYS_ADMIN_H
#include "engage/bus.h"
#include "rpc.h"
#include "scheduler.h"

/** engage.sched.key.create (KeyCreateRequest -> KeyReply with the new key's record). The api
 *  draws the key; a retry with the same key answers the same record and creates nothing. */
eg_status_t keys_admin_create(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg);
/** engage.sched.key.list (KeyRequest -> KeyReply with every key of the tenant, revoked ones
 *  included, oldest first; never a secret or a hash). */
eg_status_t keys_admin_list(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg);
/** engage.sched.key.revoke (KeyRequest -> KeyReply). Marks the key revoked in PostgreSQL, then
 *  broadcasts ConfigChanged{kind "key"} so every api and scheduler drops it from its cache.
 *  EG_ENOTFOUND for a key of another tenant; revoking a revoked key again answers EG_OK. */
eg_status_t keys_admin_revoke(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg);

/** The rules of a key (the api checks the same ones first, to name the JSON field): role "api"
 *  or "admin"; rate limit 0..KEYS_MAX_RATE_LIMIT requests/s (0 = unlimited); label up to
 *  KEYS_MAX_NAME_LEN bytes. */
#define KEYS_MAX_RATE_LIMIT 1000000
#define KEYS_MAX_NAME_LEN 128

#endif
