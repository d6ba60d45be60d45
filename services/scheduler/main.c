/* engage-scheduler: the one writer of callback state and the owner of configuration.
 *
 * Threading model: the main thread starts everything and then waits for SIGTERM. Each of
 * ENGAGE_WORKERS workers owns one Redis connection and one PostgreSQL connection and has its own
 * queue subscription to engage.sched.>, so NATS delivers requests to the workers in parallel and
 * no connection is ever shared between threads. One more subscription (broadcast, not queued)
 * receives configuration changes and only touches the thread-safe caches. Readiness checks run
 * on HTTP threads and use their own short-lived connections. */
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "callback_store.h"
#include "callin.h"
#include "callin_store.h"
#include "engage/bus.h"
#include "engage/config.h"
#include "engage/httpclient.h"
#include "engage/log.h"
#include "engage/mem.h"
#include "engage/service.h"
#include "engage/subjects.h"
#include "dispatcher.h"
#include "engage/events.h"
#include "relay.h"
#include "rpc.h"
#include "scheduler.h"
#include "services.h"

static eg_status_t ready_nats(void *arg, char *why, size_t whylen)
{
    sched_t *s = arg;
    if (eg_bus_connected(s->bus))
        return EG_OK;
    snprintf(why, whylen, "not connected to NATS");
    return EG_EUNAVAIL;
}

static eg_status_t open_worker(sched_t *s, worker_t *w)
{
    w->s = s;
    eg_status_t st = eg_store_open(&w->store, s->cfg->redis_url, 2000);
    if (st == EG_OK)
        st = cb_store_init(w->store, &w->scripts);
    if (st == EG_OK)
        st = callin_store_init(w->store, &w->callin_script);
    if (st == EG_OK)
        st = eg_pg_open(&w->pg, s->cfg->pg_dsn);
    return st;
}

static void close_worker(worker_t *w)
{
    eg_store_close(w->store);
    eg_pg_close(w->pg);
}

/* The blob cache: 4,096 records of up to 4 kB (those with large user data are not kept). */
#define BLOB_CACHE_SLOTS 4096
#define BLOB_CACHE_MAX_BLOB 4096

static void register_metrics(sched_t *s, eg_metrics_t *m)
{
    static const double bounds[] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1};
    s->requests = eg_metrics_counter(m, "engage_scheduler_requests_total",
                                     "Requests handled by the scheduler", NULL);
    s->errors = eg_metrics_counter(m, "engage_scheduler_errors_total",
                                   "Requests that failed on a dependency", NULL);
    s->created = eg_metrics_counter(m, "engage_callbacks_created_total", "Callbacks booked", NULL);
    s->cancelled =
        eg_metrics_counter(m, "engage_callbacks_cancelled_total", "Callbacks cancelled", NULL);
    s->dispatched = eg_metrics_counter(m, "engage_callbacks_dispatched_total",
                                       "Scheduled callbacks handed to the voice platform", NULL);
    s->completed =
        eg_metrics_counter(m, "engage_callbacks_completed_total", "Callbacks completed", NULL);
    s->relayed = eg_metrics_counter(m, "engage_outbox_relayed_total",
                                    "Outbox events published to JetStream", NULL);
    s->progress = eg_metrics_counter(m, "engage_call_progress_applied_total",
                                     "Voice platform results that changed a callback", NULL);
    s->gave_up = eg_metrics_counter(m, "engage_attempts_timed_out_total",
                                    "Attempts given up: no word from the voice platform for "
                                    "the service's retry.attemptTimeoutSeconds",
                                    NULL);
    s->latency =
        eg_metrics_histogram(m, "engage_scheduler_request_seconds", "Time to handle one request",
                             NULL, bounds, sizeof bounds / sizeof bounds[0]);
}

static void on_due_wake(eg_bus_t *bus, eg_bus_msg_t *msg, void *arg)
{
    (void)bus;
    (void)msg;
    sched_t *s = arg;
    wake_signal(&s->dispatch_wake);
}

int main(void)
{
    eg_config_t cfg;
    eg_config_load(&cfg, "scheduler");
    eg_service_t *svc = NULL;
    sched_t s = {.cfg = &cfg};
    worker_t *workers = NULL;
    relay_t *relay = NULL;
    dispatcher_t *dispatcher = NULL;
    int rc = 1;
    wake_init(&s.relay_wake);
    wake_init(&s.dispatch_wake);
    repair_init(&s.repair);
    s.blobs = blob_cache_new(BLOB_CACHE_SLOTS, BLOB_CACHE_MAX_BLOB);
    s.recovery_interval_ms =
        eg_config_int("ENGAGE_RECOVERY_INTERVAL_S", 1800, 1, 7 * 86400) * 1000LL;

    if (eg_service_start(&svc, &cfg, false) != EG_OK)
        goto out;
    eg_httpc_global_init();
    if (!cfg.key_pepper)
        eg_log_warn("ENGAGE_KEY_PEPPER is not set: every API key check will fail");
    register_metrics(&s, eg_service_metrics(svc));
    s.keys = auth_cache_new();
    s.services = svc_registry_new();
    s.callin = callin_registry_new();

    /* Retried for half a minute, so the service may start before PostgreSQL. */
    if (eg_pg_migrate_retry(cfg.pg_dsn, 60, 500) != EG_OK) {
        eg_log_error("cannot apply schema migrations; giving up");
        goto out;
    }
    if (eg_bus_open(&s.bus, cfg.nats_url, cfg.instance_id, 10000) != EG_OK) {
        eg_log_error("cannot connect to NATS");
        goto out;
    }
    if (eg_events_stream_ensure(s.bus) != EG_OK) {
        eg_log_error("cannot create the JetStream stream");
        goto out;
    }
    workers = eg_xcalloc((size_t)cfg.workers, sizeof *workers);
    for (int i = 0; i < cfg.workers; i++) {
        if (open_worker(&s, &workers[i]) != EG_OK) {
            eg_log_error("worker %d cannot reach Redis or PostgreSQL", i);
            goto out;
        }
    }
    if (eg_bus_subscribe(s.bus, EG_SUBJ_CONFIG_CHANGED, NULL, rpc_config_changed, &s) != EG_OK)
        goto out;
    for (int i = 0; i < cfg.workers; i++) {
        if (eg_bus_subscribe(s.bus, EG_SUBJ_SCHED_ALL, EG_SCHED_QUEUE, rpc_handle, &workers[i]) !=
            EG_OK)
            goto out;
    }
    if (eg_bus_subscribe(s.bus, EG_SUBJ_DUE_WAKE, NULL, on_due_wake, &s) != EG_OK ||
        relay_start(&relay, &s) != EG_OK || dispatcher_start(&dispatcher, &s) != EG_OK) {
        eg_log_error("cannot start the outbox relay or the dispatcher");
        goto out;
    }
    eg_health_add_check(eg_service_health(svc), "nats", ready_nats, &s);
    eg_health_add_check(eg_service_health(svc), "redis", eg_ready_redis, cfg.redis_url);
    eg_health_add_check(eg_service_health(svc), "postgres", eg_ready_pg, cfg.pg_dsn);
    eg_service_register(svc);
    eg_log_info("scheduler ready with %d workers", cfg.workers);
    eg_service_wait(svc);
    rc = 0;
out:
    eg_service_quiesce(svc); /* no more HTTP; metrics stay until the threads are gone */
    atomic_store(&s.stopping, true);
    dispatcher_stop(dispatcher);
    relay_stop(relay);   /* a last pass; what in-flight requests still write is relayed later */
    eg_bus_close(s.bus); /* drains: in-flight requests finish before connections close */
    for (int i = 0; workers && i < cfg.workers; i++)
        close_worker(&workers[i]);
    free(workers);
    svc_registry_free(s.services);
    callin_registry_free(s.callin);
    eg_cache_free(s.keys);
    wake_destroy(&s.relay_wake);
    wake_destroy(&s.dispatch_wake);
    repair_destroy(&s.repair);
    blob_cache_free(s.blobs);
    eg_service_stop(svc);
    eg_bus_shutdown();
    eg_httpc_global_cleanup();
    eg_log_info("scheduler stopped");
    eg_config_free(&cfg);
    return rc;
}
