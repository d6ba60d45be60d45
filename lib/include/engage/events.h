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

/** Create or update ENGAGE_EVENTS with its subjects and limits. */
eg_status_t eg_events_stream_ensure(eg_bus_t *bus);

#endif
