/* Call-in requests in Redis: the allocation of a group's (number, access code) pairs, the
 * match of an inbound call, and the GDPR erase of a caller's requests. Two Lua scripts do the
 * writing (lua/callin_allocate.lua, lua/callin_match.lua), every key they touch in their KEYS.
 *
 * Keys (every one carries the tenant's hash tag; families in store_keys.h):
 *
 *   eg:{t:T}:ci:req:<id>        HASH  the request: id, tenant, group, to, code ("" without
 *                                     codes), from, cbsvc, userData, created, expires (ms);
 *                                     expires with the request (PX)
 *   eg:{t:T}:ci:n:<number>      ZSET  access code -> expiry (ms) of the live requests on that
 *                                     number; the member "-" holds the whole number (a group
 *                                     without codes). Expired members are removed by the next
 *                                     allocation or match that looks at the number; the key
 *                                     expires with its last member.
 *   eg:{t:T}:ci:pairs:<number>  HASH  code -> request id: the index call.inbound matching
 *                                     reads (dialled number + access code, or dialled number +
 *                                     "-" and then the record's "from" against the caller's
 *                                     number). Its fields go with the ZSET's members, and the
 *                                     key expires with it.
 *   eg:{t:T}:ci:call:<call id>  HASH  a match remembered for an hour under the call's id
 *
 * A (number, code) pair is held by at most one live request, also across groups that share a
 * number; a request without code holds its number alone. Nothing polls. */
#ifndef SCHED_CALLIN_STORE_H
#define SCHED_CALLIN_STORE_H
#include <stdint.h>

#include "callin.h"
#include "engage.pb-c.h"
#include "engage/status.h"
#include "engage/store.h"

/** Load the allocation script into a worker's connection (*script gets the handle). */
eg_status_t callin_store_init(eg_store_t *store, int *script);

/** Allocate a (number, code) pair of the group for request id (chosen by the api: a retry
 *  with the same id answers the first result and allocates nothing). On EG_OK *out (free with
 *  eg__call_in_request__free_unpacked) holds the stored request. EG_EUNAVAIL when no pair is
 *  free: *retry_after_ms (may be NULL) gets the time until the first held pair of the group
 *  frees, or 0 when unknown. */
eg_status_t callin_store_allocate(eg_store_t *store, int script, const char *tenant,
                                  const callin_config_t *cfg, const char *id,
                                  const char *from_phone, const char *callback_service_id,
                                  const char *user_data_json, Eg__CallInRequest **out,
                                  int64_t *retry_after_ms);

/** Match an inbound call to the live request it answers, and consume that request (pair index,
 *  record and number entry deleted in one step, so one request routes one call). The match is
 *  remembered under call_id for an hour: a repeat gets the same request back. On EG_OK *out
 *  (free with eg__call_in_request__free_unpacked) is the request; EG_ENOTFOUND with *why (a
 *  static text) when nothing matches. */
eg_status_t callin_store_match(eg_store_t *store, const char *tenant, const char *dialed,
                               const char *code, const char *caller, const char *call_id,
                               Eg__CallInRequest **out, const char **why);

/** Delete the tenant's call-in requests whose caller is phone (GDPR erase): the record, its
 *  pair and its held code. *erased counts them. */
eg_status_t callin_store_erase_caller(eg_store_t *store, const char *tenant, const char *phone,
                                      int *erased);

#endif
