/* What the dispatcher reads and keeps in Redis: each service's due and watch ZSETs and the
 * cross-tenant due index (key layout in store_keys.h). The index entry of a service is never
 * later than the earliest score in its two ZSETs, possibly earlier: a dispatcher that looks in
 * vain loses one round trip, a due callback is never forgotten. */
#ifndef SCHED_DUE_STORE_H
#define SCHED_DUE_STORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engage/status.h"
#include "engage/store.h"

/** A service the due index says may have due work: "<tenant>|<service>" split in place. */
typedef struct {
    char member[200];             /**< the index member, NUL between tenant and service */
    const char *tenant, *service; /**< views into member */
} due_service_t;

/** Up to max services whose index entry is at or before now (earliest first) into out; *n is
 *  how many. Malformed members are skipped. */
eg_status_t due_store_next_batch(eg_store_t *store, int64_t now, size_t max, due_service_t *out,
                                 size_t *n);

/** The earliest time in the due index into *at; *has is false when it is empty. */
eg_status_t due_store_earliest(eg_store_t *store, bool *has, int64_t *at);

/** Ids of up to max callbacks of a service due, or at their watch time, at or before now (due
 *  ones first). ids[i] are malloc'd (the caller frees them). */
eg_status_t due_store_ids(eg_store_t *store, const char *tenant, const char *service, int64_t now,
                          int max, char **ids, int *count);

/** Recompute the due index entry of a tenant's service from its due and watch ZSETs (after a
 *  dispatcher took callbacks from it). Safe against concurrent creates: see the .c. */
eg_status_t due_store_refresh(eg_store_t *store, const char *tenant, const char *service);

/** Drop an id from a service's due and watch ZSETs (its record is gone). */
eg_status_t due_store_forget(eg_store_t *store, const char *tenant, const char *service,
                             const char *id);

/** Callbacks of a service not yet completed: SCHEDULED (due) plus dialled (watch) into *n. */
eg_status_t due_store_live_count(eg_store_t *store, const char *tenant, const char *service,
                                 long *n);

#endif
