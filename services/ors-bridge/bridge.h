/* The ors-bridge's shared state. */
#ifndef BRIDGE_BRIDGE_H
#define BRIDGE_BRIDGE_H
#include <stdatomic.h>

#include "engage/bus.h"
#include "engage/config.h"
#include "engage/metrics.h"

typedef struct {
    const eg_config_t *cfg;
    eg_bus_t *bus;
    const char *consumer;       /**< this bridge's name in the voice events consumer group */
    atomic_bool stopping;       /**< set by main at shutdown; both loops read it */
    atomic_bool dispatch_ready; /**< the dispatch consumer is bound (commands.c) */
    atomic_bool events_ready;   /**< the voice events group is ready (voice_events.c) */
    eg_counter_t *dials, *cancels, *dial_dupes, *events, *deadlettered, *retries;
    eg_counter_t *replies, *routes; /**< callback.reply and route entries written */
} bridge_t;

#define BRIDGE_EVENTS_GROUP "engage-bridge"

#endif
