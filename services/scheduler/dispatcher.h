/* The dispatcher: hands SCHEDULED callbacks to the voice platform when they fall due. */
#ifndef SCHED_DISPATCHER_H
#define SCHED_DISPATCHER_H
#include "scheduler.h"

typedef struct dispatcher dispatcher_t;

/** Start the dispatcher thread with its own connections. */
eg_status_t dispatcher_start(dispatcher_t **out, sched_t *s);
/** Stop and join. Accepts NULL. */
void dispatcher_stop(dispatcher_t *d);

/** Rebuild what crosses tenants from the configured services: outbox pending marks and due
 *  index entries (after a crash between a write and its second step). */
eg_status_t dispatcher_recover(sched_t *s, eg_store_t *store, eg_pg_t *pg);

#endif
