/* Callback records in Redis. Every key of one tenant shares the hash tag {t:<tenant>}, so one
 * Lua script changes a callback, its indexes, its slot counter and the tenant's outbox
 * atomically (and the same keys work on Redis Cluster).
 *
 *   eg:{t:T}:cb:<id>        the packed Callback protobuf, expiring at desired time + 14 days
 *   eg:{t:T}:due:<service>  ZSET id -> due time (ms) of SCHEDULED callbacks
 *   eg:{t:T}:q:<service>    ZSET id -> queue score of QUEUED callbacks (rank = position)
 *   eg:{t:T}:slots:<service> HASH slot start (ms) -> callbacks booked in that slot
 *   eg:{t:T}:outbox         STREAM of packed Events not yet relayed to JetStream
 *
 * Writes are compare-and-set against the blob read before: a concurrent change makes the
 * script answer "conflict" and the caller reads again. */
#ifndef SCHED_CALLBACK_STORE_H
#define SCHED_CALLBACK_STORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engage.pb-c.h"
#include "engage/status.h"
#include "engage/store.h"

/** Retention after the desired time. */
#define CB_RETENTION_MS (14LL * 24 * 3600 * 1000)

typedef struct {
    int create;
    int transition;
} cb_scripts_t;

/** Load the scripts into this connection. */
eg_status_t cb_store_init(eg_store_t *store, cb_scripts_t *scripts);

/** Write a new callback with its event. When slot_capacity >= 0 the callback takes one place in
 *  its slot (cb->slot_start_ms) and EG_EFULL comes back when the slot is full (*slot_used gets
 *  the count). EG_ECONFLICT when the id exists. */
eg_status_t cb_store_create(eg_store_t *store, const cb_scripts_t *scripts, const Eg__Callback *cb,
                            const Eg__Event *ev, int slot_capacity, int *slot_used);

/** Read a callback. EG_ENOTFOUND when absent. On EG_OK *cb is owned by the caller (free with
 *  eg__callback__free_unpacked(*cb, NULL)) and *blob and *blob_len (free()) hold the raw bytes for
 * a later compare-and-set. */
eg_status_t cb_store_get(eg_store_t *store, const char *tenant, const char *id, Eg__Callback **cb,
                         char **blob, size_t *blob_len);

/** Replace old (the blob read before) by next with its event, moving the id between indexes
 *  according to the states, and releasing the slot when release_slot. EG_ECONFLICT when the
 *  stored blob is no longer old. */
eg_status_t cb_store_transition(eg_store_t *store, const cb_scripts_t *scripts, const char *old,
                                size_t old_len, const Eg__Callback *prev, const Eg__Callback *next,
                                const Eg__Event *ev, int release_slot);

/** 1-based position of a QUEUED callback in its service's queue, 0 when not queued. */
int cb_store_queue_position(eg_store_t *store, const Eg__Callback *cb);

/** Free places left in the given slots: used[i] = callbacks booked in slot starts[i]. */
eg_status_t cb_store_slot_counts(eg_store_t *store, const char *tenant, const char *service,
                                 const int64_t *starts, size_t n, int *used);

/** Build a key name "eg:{t:<tenant>}:<kind>[:<rest>]" into out. */
void cb_key(char *out, size_t outlen, const char *tenant, const char *kind, const char *rest);

#endif

/* ---- what crosses tenants (plain keys, no hash tag; written in a second, idempotent step) ----
 *
 *   eg:outbox:pending   SET of tenants whose outbox may hold entries (the relay's work list)
 *   eg:due:index        ZSET "<tenant>|<service>" -> earliest due time of that due ZSET
 */
#define CB_KEY_OUTBOX_PENDING "eg:outbox:pending"
#define CB_KEY_DUE_INDEX "eg:due:index"

/** After a write: mark the tenant's outbox pending and, for a SCHEDULED record, lower the due
 *  index entry to its due time. *lowered (may be NULL) tells whether the index moved earlier
 *  (then dispatchers must be woken). One round trip. */
eg_status_t cb_store_after_write(eg_store_t *store, const Eg__Callback *cb, bool *lowered);

/** Recompute the due index entry of a tenant's service from its due ZSET (after a dispatcher
 *  took callbacks from it). Safe against concurrent creates: see the .c. */
eg_status_t cb_store_refresh_due(eg_store_t *store, const char *tenant, const char *service);

/** Ids of up to max callbacks of a service due at or before now. ids[i] are malloc'd. */
eg_status_t cb_store_due_ids(eg_store_t *store, const char *tenant, const char *service,
                             int64_t now, int max, char **ids, int *count);

/** Drop an id from a service's due ZSET (its record is gone). */
eg_status_t cb_store_forget_due(eg_store_t *store, const char *tenant, const char *service,
                                const char *id);
