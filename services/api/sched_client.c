/* Scheduler calls with a bounded wait. A request that times out may or may not have been
 * carried out, so only requests that are safe to repeat go through here: reads, and writes the
 * scheduler makes idempotent (a create is retried with the same request, and a retried cancel
 * of an already cancelled callback answers "not cancellable" only if it truly was). */
#include "sched_client.h"

#include <stdatomic.h>
#include <time.h>

#include "engage/bus.h"
#include "engage/log.h"
#include "engage/timeutil.h"

#define PER_TRY_TIMEOUT_MS 1000

eg_status_t sched_call(api_t *api, const char *subject, const void *data, size_t len,
                       const char *corr_id, void **reply, size_t *reply_len)
{
    int64_t deadline = eg_mono_ms() + api->sched_wait_ms;
    eg_status_t st;
    for (;;) {
        int64_t left = deadline - eg_mono_ms();
        int timeout = (int)(left < PER_TRY_TIMEOUT_MS ? left : PER_TRY_TIMEOUT_MS);
        if (timeout < 50)
            timeout = 50;
        /* The listener starts before the bus is open: until then, answer "unavailable". */
        eg_bus_t *bus = atomic_load(&api->bus_ready) ? api->bus : NULL;
        st = bus ? eg_bus_request(bus, subject, data, len, corr_id, timeout, reply, reply_len)
                 : EG_EUNAVAIL;
        if (st == EG_OK || (st != EG_EUNAVAIL && st != EG_ETIMEOUT))
            break;
        if (eg_mono_ms() + 100 >= deadline)
            break;
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (st != EG_OK) {
        eg_counter_inc(api->sched_unavailable);
        eg_log_warn("scheduler did not answer %s: %s", subject, eg_status_str(st));
        st = EG_EUNAVAIL;
    }
    return st;
}
