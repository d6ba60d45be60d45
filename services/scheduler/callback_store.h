/* Callback records in Redis: the record, its indexes, its slot counter and its event in the
 * tenant's outbox, written together by one Lua script per kind of change (lua/create.lua,
 * lua/transition.lua, lua/reschedule.lua). The key layout is in store_keys.h.
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
    int reschedule;
} cb_scripts_t;

/** How long an Idempotency-Key remembers its callback. */
#define CB_IDEMPOTENCY_TTL_MS (24 * 3600 * 1000)

typedef struct {
    int slot_capacity;    /**< capacity of cb->slot_start_ms's slot; -1: takes no slot place */
    int max_active;       /**< live callbacks per number in the service; 0 = no limit */
    int max_per_day;      /**< creates per number in the service in 24 h; 0 = no limit */
    const char *idem_key; /**< the client's Idempotency-Key, or NULL */
} cb_create_opts_t;

enum { CB_LIMIT_ACTIVE = 1, CB_LIMIT_PER_DAY = 2 };

typedef struct {
    int used;       /**< EG_EFULL: places booked in the slot (also in count) */
    int count;      /**< EG_ELIMIT: the count that reached the limit */
    int limit_kind; /**< EG_ELIMIT: CB_LIMIT_ACTIVE or CB_LIMIT_PER_DAY */
    bool replayed;  /**< EG_OK: the Idempotency-Key was used before for existing_id */
    char existing_id[40];
} cb_create_result_t;

/** The second step of a write (the follow-up): mark the tenant's outbox pending (SADD); for a
 *  SCHEDULED record lower the due index entry to its due time, for a record just handed to the
 *  voice platform to its watch time (ZADD LT). Built before the write with cb_followup_init and
 *  passed to it, it is sent behind the write's script in the same round trip: it runs whatever
 *  the script answers (a refused write only marks a tenant pending or lowers an entry in vain;
 *  the relay and the dispatcher shrug that off), and always after the script's XADD. After the
 *  write, st says whether it ran (else the scheduler notes the service for repair) and lowered
 *  whether the due index moved earlier (then dispatchers must be woken).
 *
 *  The statistics are kept by the scripts themselves, in the tenant's slot:
 *   eg:{t:T}:served:<vq>          LIST of the last 32 times an agent took a callback (EWT)
 *   eg:{t:T}:stats:<service>      HASH processing -> callbacks with an agent now
 *   eg:{t:T}:daily:<service>:<d>  HASH created, completed on UTC day d (kept 3 days) */
typedef struct {
    eg_status_t st; /**< EG_OK when the follow-up ran */
    bool lowered;   /**< the due index entry moved earlier */
    int64_t due_ms; /**< the time it was lowered to */
    /* the commands, built by cb_followup_init */
    char member[200], tenant[64], due[32];
    const char *sadd[3], *zadd[6];
    const char *const *cmds[2];
    int argcs[2];
    size_t n;
} cb_followup_t;

/** Build the follow-up of a write of cb from state `from` (UNSPECIFIED for a create). */
void cb_followup_init(cb_followup_t *f, Eg__State from, const Eg__Callback *cb);

/** Load the scripts into this connection. */
eg_status_t cb_store_init(eg_store_t *store, cb_scripts_t *scripts);

/** Write a new callback with its event, in one step that also checks the Idempotency-Key, the
 *  number's limits and the slot's capacity (opts). EG_EFULL: slot full; EG_ELIMIT: a per-number
 *  limit; EG_ECONFLICT: the id exists; EG_OK with res->replayed: the key was used before. f (may
 *  be NULL) is the follow-up to send behind it. */
eg_status_t cb_store_create(eg_store_t *store, const cb_scripts_t *scripts, const Eg__Callback *cb,
                            const Eg__Event *ev, const cb_create_opts_t *opts,
                            cb_create_result_t *res, cb_followup_t *f);

/** Move a SCHEDULED callback (old = the blob read before, prev its record) to next's desired
 *  time and slot, releasing the old slot's place in the same step. EG_EFULL (*used set) when the
 *  new slot is full; EG_ECONFLICT when the record changed meanwhile. */
eg_status_t cb_store_reschedule(eg_store_t *store, const cb_scripts_t *scripts, const char *old,
                                size_t old_len, const Eg__Callback *prev, const Eg__Callback *next,
                                int capacity, const Eg__Event *ev, int *used, cb_followup_t *f);

/** Ids of a tenant's callbacks for a number, newest first (at most max; ids[i] malloc'd). */
eg_status_t cb_store_phone_ids(eg_store_t *store, const char *tenant, const char *phone, int max,
                               char **ids, int *count);

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
                                const Eg__Event *ev, int release_slot, cb_followup_t *f);

/** 1-based position of a QUEUED callback in its service's queue, 0 when not queued. */
int cb_store_queue_position(eg_store_t *store, const Eg__Callback *cb);

/** Free places left in the given slots: used[i] = callbacks booked in slot starts[i]. */
eg_status_t cb_store_slot_counts(eg_store_t *store, const char *tenant, const char *service,
                                 const int64_t *starts, size_t n, int *used);

/** Delete a number's callbacks (GDPR erase): the records ids[0..n), their entries in their
 *  services' due, queue and watch ZSETs (for those whose record cbs[i] was read; NULL: only the
 *  record), and the number's hash, in one pipelined round trip (each delete idempotent).
 *  *deleted counts the records that were there. Borrows everything. */
eg_status_t cb_store_erase_number(eg_store_t *store, const char *tenant, const char *phone,
                                  char **ids, Eg__Callback **cbs, int n, int32_t *deleted);

/** The stored form of a record (malloc'd, *len bytes): the packed protobuf without the tenant
 *  and callback ids (they are in its key), with its user data deflated into user_data_z when it
 *  is long enough for that to save room. Every blob written to Redis, and every blob remembered
 *  for a compare-and-set, is made by this. */
uint8_t *cb_store_pack(const Eg__Callback *cb, size_t *len);

/** The record of tenant's callback id from its stored form, ids put back and user data inflated
 *  back into user_data_json; NULL when the blob cannot be decoded. Free with
 *  eg__callback__free_unpacked. */
Eg__Callback *cb_store_unpack(const char *tenant, const char *id, const void *blob, size_t len);

#endif
