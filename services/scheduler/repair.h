/* Repair of the second step of a write. Every change is written in two steps (callback_store.h):
 * the tenant's own keys in one Lua script, then the cross-tenant keys eg:outbox:pending and
 * eg:due:index. When the second step fails (Redis went away in between), the writer notes the
 * tenant's service here and the dispatcher thread redoes the step every second until it
 * succeeds; a scheduler that died in between is covered by the full check at start-up, which the
 * dispatcher also repeats every ENGAGE_RECOVERY_INTERVAL_S (default 1800 s), so a quiet tenant
 * is never forgotten even when the process that failed never comes back. */
#ifndef SCHED_REPAIR_H
#define SCHED_REPAIR_H
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "engage/status.h"
#include "engage/store.h"

#define REPAIR_MAX 256

typedef struct {
    pthread_mutex_t lock;
    char *items[REPAIR_MAX]; /**< "<tenant>|<service>" */
    size_t n;
    bool overflow; /**< more than REPAIR_MAX failed: redo every service */
} repair_t;

void repair_init(repair_t *r);
void repair_destroy(repair_t *r);

/** Remember that tenant's service needs its second step redone. Thread-safe. */
void repair_note(repair_t *r, const char *tenant, const char *service);

/** Ask for the full check of every service (a full check failed). */
void repair_note_all(repair_t *r);

/** True when something is waiting to be repaired. */
bool repair_pending(repair_t *r);

/** Redo the second step of every noted service (outbox marked pending, due index refreshed).
 *  Items that fail stay noted. *everything is set when the list overflowed: the caller must run
 *  the full recovery. */
void repair_run(repair_t *r, eg_store_t *store, bool *everything);

#endif
