/* The ENGAGE_EVENTS stream's one definition: its subjects, limits and replicas. The replicas
 * come from ENGAGE_JS_REPLICAS (1 by default; 3 on the cluster topology, where the stream and
 * the durable consumers on it, whose replicas follow the stream's, survive the loss of one
 * node). */
#include "engage/events.h"

#include "engage/config.h"
#include "engage/subjects.h"

int eg_events_replicas(void)
{
    return (int)eg_config_int("ENGAGE_JS_REPLICAS", 1, 1, 5);
}

eg_status_t eg_events_stream_ensure(eg_bus_t *bus)
{
    const char *subjects[] = {EG_SUBJ_EVENTS_ALL, EG_SUBJ_DISPATCH_ALL};
    return eg_bus_js_stream_ensure_replicas(bus, EG_STREAM_EVENTS, subjects, 2, EG_EVENTS_MAX_AGE_S,
                                            EG_EVENTS_DUP_WINDOW_S, eg_events_replicas());
}
