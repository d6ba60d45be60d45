/* The archiver's request handlers on the bus (engage.archive.*, queue group "archiver"):
 * history search and GDPR erase and export. */
#ifndef ARCHIVER_REQUESTS_H
#define ARCHIVER_REQUESTS_H
#include <stdatomic.h>
#include <stdbool.h>

#include "engage/bus.h"
#include "engage/metrics.h"
#include "engage/pg.h"
#include "gdpr.h"

/** What the workers share to stop cleanly: main sets stopping, then waits until inflight is 0
 *  before it frees the metrics; a request that arrives after stopping is answered EG_EUNAVAIL
 *  and touches nothing else. */
typedef struct {
    atomic_bool stopping;
    atomic_int inflight;
} arch_gate_t;

/** One per request thread: its own PostgreSQL connections (nothing else uses them). */
typedef struct {
    gdpr_ctx_t gdpr;
    eg_pg_t *pg;            /**< ENGAGE_PG_DSN, the primary: GDPR erase and export */
    eg_pg_t *read_pg;       /**< ENGAGE_PG_READ_DSN, may be a standby: searches; NULL = use pg */
    arch_gate_t *gate;      /**< shared */
    eg_counter_t *requests; /**< shared, atomic */
    eg_counter_t *errors;   /**< shared, atomic */
} arch_worker_t;

/** Bus handler; arg is the arch_worker_t of the delivering subscription. Every request gets an
 *  answer whose field 1 is a Status, even one that cannot be decoded (EG_EPROTO). */
void requests_handle(eg_bus_t *bus, eg_bus_msg_t *msg, void *arg);

#endif
