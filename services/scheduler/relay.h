/* The outbox relay: publishes each event written to a tenant's outbox to JetStream. */
#ifndef SCHED_RELAY_H
#define SCHED_RELAY_H
#include "scheduler.h"

typedef struct relay relay_t;

/** Start the relay thread with its own Redis connection. */
eg_status_t relay_start(relay_t **out, sched_t *s);
/** Stop and join (it finishes the batch in hand). Accepts NULL. */
void relay_stop(relay_t *r);

#endif
