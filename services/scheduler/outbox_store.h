/* The tenants' outboxes as the relay and the recovery see them (key layout in store_keys.h):
 * the cross-tenant set of tenants whose outbox may hold entries. */
#ifndef SCHED_OUTBOX_STORE_H
#define SCHED_OUTBOX_STORE_H
#include <stdbool.h>
#include <stddef.h>

#include "engage/status.h"
#include "engage/store.h"
#include "engage/stream.h"

/** Mark tenant's outbox pending (the relay looks at it). Idempotent. */
eg_status_t outbox_store_mark_pending(eg_store_t *store, const char *tenant);

/** Mark tenant's outbox pending when it holds entries (*marked says whether it did). */
eg_status_t outbox_store_mark_if_nonempty(eg_store_t *store, const char *tenant, bool *marked);

/** The tenants in the pending set (names owned; outbox_tenants_free). */
typedef struct {
    char **name;
    size_t n;
} outbox_tenants_t;

/** List the pending set. EG_EPROTO on a reply that is not a list of names. */
eg_status_t outbox_store_pending(eg_store_t *store, outbox_tenants_t *out);
void outbox_tenants_free(outbox_tenants_t *t);

/** One relay round trip on one tenant's outbox, its commands in this order: optionally SADD
 *  or SREM the tenant in the pending set, XDEL the acknowledged entries del[0..ndel), and read
 *  the next batch of up to OUTBOX_BATCH entries (into *next, when read). */
typedef struct {
    const char *tenant, *k_out; /* k_out: store_key(STORE_OUTBOX, tenant, NULL) */
    bool sadd, srem, read;
    const char **del;
    size_t ndel;
} outbox_step_t;

#define OUTBOX_BATCH 256

/** Run one step. Any command answering an error makes it EG_EPROTO (logged with its name). */
eg_status_t outbox_store_step(eg_store_t *store, const outbox_step_t *p, eg_stream_batch_t *next);

#endif
