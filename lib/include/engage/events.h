/* The ENGAGE_EVENTS JetStream stream: lifecycle events (engage.events.<tenant>) and
 * dispatches (engage.dispatch.<tenant>). Every service that uses it ensures it at start, so
 * start order does not matter. */
#ifndef ENGAGE_EVENTS_H
#define ENGAGE_EVENTS_H
#include "engage/bus.h"
#include "engage/status.h"

/** Retention of the stream: longer than the 14 days records are kept, so a replay can rebuild
 *  the history. */
#define EG_EVENTS_MAX_AGE_S (15LL * 24 * 3600)
/** JetStream's duplicate window for message ids (the outbox relay's dedupe horizon). */
#define EG_EVENTS_DUP_WINDOW_S (10LL * 60)

/** The replicas ENGAGE_EVENTS should have: ENGAGE_JS_REPLICAS, 1 to 5, default 1 (a value
 *  outside that range is logged and 1 is used). 3 on a 3-node NATS cluster. */
int eg_events_replicas(void);

/** Create or update ENGAGE_EVENTS with its subjects, limits and eg_events_replicas() replicas
 *  (an existing stream with other replicas is scaled; see eg_bus_js_stream_ensure_replicas).
 *  Returns as that call. */
eg_status_t eg_events_stream_ensure(eg_bus_t *bus);

#endif
