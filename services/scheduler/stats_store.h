/* The live figures the scripts keep per service and virtual queue, as the queries read them
 * (key layout in store_keys.h): queue lengths, agents' serve times, the day's counters. */
#ifndef SCHED_STATS_STORE_H
#define SCHED_STATS_STORE_H
#include <stddef.h>
#include <stdint.h>

#include "engage/status.h"
#include "engage/store.h"

/** The figures of one service. */
typedef struct {
    int scheduled;       /**< SCHEDULED callbacks */
    int queued;          /**< QUEUED or ROUTING callbacks */
    int processing;      /**< callbacks with an agent now */
    int created_today;   /**< creates on the UTC day of now */
    int completed_today; /**< completions on the UTC day of now */
} stats_service_t;

/** The figures of a tenant's service at now (one round trip). */
eg_status_t stats_store_service(eg_store_t *store, const char *tenant, const char *service,
                                int64_t now_ms, stats_service_t *out);

/** QUEUED or ROUTING callbacks of a service into *n. */
eg_status_t stats_store_waiting(eg_store_t *store, const char *tenant, const char *service, int *n);

/** The last times (ms, newest first, at most max, up to 32 kept) an agent took a callback of the
 *  virtual queue vq into times; *n is how many. */
eg_status_t stats_store_served(eg_store_t *store, const char *tenant, const char *vq,
                               int64_t *times, size_t max, size_t *n);

#endif
