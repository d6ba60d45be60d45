/* The outbox relay: publishes each event written to a tenant's outbox to JetStream. */
#ifndef SCHED_RELAY_H
#define SCHED_RELAY_H
#include "scheduler.h"

typedef struct relay relay_t;

/** Start the relay thread with its own Redis connection and JetStream batch publisher. */
eg_status_t relay_start(relay_t **out, sched_t *s);
/** Stop and join (it makes a last pass over every tenant first). Accepts NULL. */
void relay_stop(relay_t *r);

/** Tell the relay that tenant's outbox has a new entry: call after the write's second step (the
 *  SADD to eg:outbox:pending), in place of wake_signal(&s->relay_wake). The relay's next pass
 *  reads that tenant's outbox without listing the pending set. tenant is borrowed (copied).
 *  Thread-safe and cheap (a mutex and a scan of at most WAKE_NAMES names); when more tenants
 *  than that wait, the pass lists the pending set instead, so no hint is ever lost. */
void relay_hint(sched_t *s, const char *tenant);

#endif
