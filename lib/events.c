/* The ENGAGE_EVENTS stream's one definition. */
#include "engage/events.h"

#include "engage/subjects.h"

eg_status_t eg_events_stream_ensure(eg_bus_t *bus)
{
    const char *subjects[] = {EG_SUBJ_EVENTS_ALL, EG_SUBJ_DISPATCH_ALL};
    return eg_bus_js_stream_ensure(bus, EG_STREAM_EVENTS, subjects, 2, EG_EVENTS_MAX_AGE_S,
                                   EG_EVENTS_DUP_WINDOW_S);
}
