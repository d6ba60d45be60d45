/* The tenants' outboxes as the relay and the recovery see them (key layout in store_keys.h):
 * the cross-tenant set of tenants whose outbox may hold entries. */
#ifndef SCHED_OUTBOX_STORE_H
#define SCHED_OUTBOX_STORE_H
#include <stdbool.h>

#include "engage/status.h"
#include "engage/store.h"

/** Mark tenant's outbox pending (the relay looks at it). Idempotent. */
eg_status_t outbox_store_mark_pending(eg_store_t *store, const char *tenant);

/** Mark tenant's outbox pending when it holds entries (*marked says whether it did). */
eg_status_t outbox_store_mark_if_nonempty(eg_store_t *store, const char *tenant, bool *marked);

#endif
