/* The scheduler's shared state and its per-thread workers. */
#ifndef SCHED_SCHEDULER_H
#define SCHED_SCHEDULER_H
#include <stdatomic.h>
#include <stdbool.h>

#include "blob_cache.h"
#include "callback_store.h"
#include "engage/bus.h"
#include "engage/cache.h"
#include "engage/config.h"
#include "engage/metrics.h"
#include "engage/pg.h"
#include "engage/store.h"
#include "repair.h"
#include "service_config.h"
#include "wake.h"

typedef struct svc_registry svc_registry_t;
typedef struct callin_registry callin_registry_t;

/** Shared by every worker; everything in it is thread-safe. */
typedef struct {
    const eg_config_t *cfg;
    eg_bus_t *bus;
    eg_cache_t *keys;         /**< key id -> key_record_t */
    atomic_ulong keys_gen;    /**< bumped by every key change (see auth_forget) */
    svc_registry_t *services; /**< (tenant, name) -> svc_config_t */
    /** (tenant, name) -> callin_config_t: the call-in groups in use (callin.c) */
    callin_registry_t *callin;
    eg_counter_t *created, *cancelled, *requests, *errors;
    eg_histogram_t *latency;
    eg_counter_t *dispatched, *completed, *relayed, *progress, *gave_up;
    wake_t relay_wake;    /**< outbox has entries */
    wake_t dispatch_wake; /**< a callback falls due earlier than planned */
    repair_t repair;      /**< services whose second write step failed (repair.h) */
    blob_cache_t *blobs;  /**< the last blob written of recent callbacks (blob_cache.h) */
    /** ENGAGE_RECOVERY_INTERVAL_S: how often the dispatcher re-checks every service's outbox and
     *  due index (dispatcher_recover) */
    int64_t recovery_interval_ms;
    atomic_bool stopping; /**< set by main at shutdown; the dispatcher and relay loops read it */
} sched_t;

/** One per request-handling thread: its own Redis and PostgreSQL connections. */
typedef struct {
    sched_t *s;
    eg_store_t *store;
    cb_scripts_t scripts;
    int callin_script; /**< call-in allocation script (callin.c) */
    eg_pg_t *pg;
} worker_t;

#endif
