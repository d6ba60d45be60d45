/* engage-archiver: the PostgreSQL history of every callback. It consumes the lifecycle events
 * of the ENGAGE_EVENTS JetStream stream (engage.events.>) with a durable pull consumer
 * (ENGAGE_ARCHIVER_DURABLE, default "archiver"; a new name replays the whole stream) and writes
 * them into callbacks, callback_data and callback_events (archive.c holds the rules that make
 * the writes idempotent and keep state from moving backwards).
 *
 * Delivery: a batch of up to BATCH_MAX messages is written in one transaction, and its
 * messages are acknowledged only after the commit, so an event is never lost between
 * JetStream and PostgreSQL: a crash before the ack means a redelivery, which the idempotent
 * writes absorb. A message that is not an Event, or an Event that can never be written (bad
 * ids, data the database refuses), is logged and terminated, so it never holds back the stream.
 * When PostgreSQL fails the batch for another reason, its messages are negatively acknowledged
 * with a delay of NAK_DELAY_MS and come back; eg_pg reconnects on the next statement.
 * A batch costs about the same few statements and one commit whatever its size (archive.c), so
 * after a batch that was not full the consumer waits LINGER_MS before it fetches again: at a
 * steady trickle of events it writes one larger batch rather than many of one or two events,
 * for at most LINGER_MS more lag; a backlog is read at once, in full batches.
 *
 * Besides the writes it keeps the tables' day partitions and retention (partitions.c: at start
 * and every hour) and answers history requests on engage.archive.> in queue group "archiver"
 * (requests.c: search, GDPR erase and export). Searches read on ENGAGE_PG_READ_DSN (default
 * ENGAGE_PG_DSN), which may point at a streaming standby; every write, retention and GDPR stay on
 * ENGAGE_PG_DSN. Both may list several hosts: eg_pg follows a promotion (lib/pg.c).
 *
 * Test hook: ENGAGE_CLOCK_OFFSET_MS (default 0) is added to "now" for retention decisions only
 * (which partitions and rows are old enough to drop), so a test can see history of "20 days
 * ago" dropped without waiting 20 days. Never set it in production: a positive offset drops
 * history early. ENGAGE_ARCHIVER_REQUESTS=0 (default 1) makes an archiver answer no requests,
 * for tests that run one against a schema of their own.
 *
 * Threading model: the main thread starts everything (frame, migrations, bus, consumer), then
 * waits for SIGTERM/SIGINT. One consumer thread owns the pull consumer and its own PostgreSQL
 * connection; nothing else touches either (the main thread closes them after joining it). One
 * maintenance thread owns another PostgreSQL connection for partitions and retention, and checks
 * the stop flag every MAINT_TICK_MS between runs. ENGAGE_WORKERS request workers each own a
 * queue subscription (its own NATS delivery thread) and a PostgreSQL connection (two when
 * ENGAGE_PG_READ_DSN differs: the second for searches); a GDPR request
 * makes nested requests to the scheduler on the shared, thread-safe bus. When a fetch fails (the
 * durable was deleted, the server restarted) the thread binds the consumer again; readiness
 * reports it unbound meanwhile. After RECHECK_IDLE_MS without a message it binds afresh too (a
 * durable deleted between two fetches only makes fetches time out). It fetches with a
 * FETCH_WAIT_MS wait, so it sees the stop flag at least that often; on stop it finishes (commits
 * and acknowledges) the batch in hand and returns, and the main thread joins it, then closes the
 * consumer, the connection and the bus. Readiness checks run on HTTP threads: they read the
 * bus's thread-safe connection state and an atomic flag, and open a short-lived PostgreSQL
 * connection of their own. Metrics are atomics, safe from any thread. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "archive.h"
#include "engage.pb-c.h"
#include "engage/bus.h"
#include "engage/config.h"
#include "engage/events.h"
#include "engage/log.h"
#include "engage/mem.h"
#include "engage/pg.h"
#include "engage/service.h"
#include "engage/subjects.h"
#include "engage/timeutil.h"
#include "partitions.h"
#include "requests.h"

#define BATCH_MAX 200
#define FETCH_WAIT_MS 200
#define LINGER_MS 20         /* after a batch that was not full: let the next one fill */
#define RECHECK_IDLE_MS 5000 /* without messages this long: bind afresh (see consume) */
#define ACK_WAIT_S 30
#define NAK_DELAY_MS 1000
#define REBIND_MS 1000
#define MAINT_INTERVAL_MS (3600 * 1000) /* partitions and retention: hourly */
#define MAINT_RETRY_MS (60 * 1000)      /* after a run that failed somewhere */
#define MAINT_TICK_MS 200
#define STOP_REQUESTS_MS 60000 /* how long a stop waits for history requests in flight */
#define CLOCK_OFFSET_MAX_MS (3650LL * 86400000)

typedef struct {
    const eg_config_t *cfg;
    const char *durable;
    eg_bus_t *bus;
    eg_bus_consumer_t *consumer;
    eg_pg_t *pg;          /* the consumer thread's */
    atomic_bool bus_open; /* a->bus may be read (set once it is open) */
    atomic_bool bound;
    atomic_bool stop;
    eg_counter_t *events;
    eg_counter_t *batches;
    eg_counter_t *errors;
    eg_counter_t *rejected;
    eg_gauge_t *lag;
    eg_histogram_t *commit_time;
    eg_pg_t *maint_pg;       /* the maintenance thread's */
    int64_t clock_offset_ms; /* ENGAGE_CLOCK_OFFSET_MS: test hook, retention only */
    eg_counter_t *maint_runs, *maint_errors, *parts_created, *parts_dropped, *rows_moved,
        *rows_purged;
    arch_worker_t *workers; /* cfg->workers request workers */
    arch_gate_t gate;       /* lets main wait for requests in flight before freeing metrics */
    eg_counter_t *requests, *request_errors;
} archiver_t;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static eg_status_t ready_nats(void *arg, char *why, size_t whylen)
{
    archiver_t *a = arg;
    /* a->bus is set before bus_open, and closed only after the HTTP threads stopped. */
    if (atomic_load(&a->bus_open) && eg_bus_connected(a->bus))
        return EG_OK;
    snprintf(why, whylen, "not connected to NATS");
    return EG_EUNAVAIL;
}

static eg_status_t ready_consumer(void *arg, char *why, size_t whylen)
{
    archiver_t *a = arg;
    if (atomic_load(&a->bound))
        return EG_OK;
    snprintf(why, whylen, "not bound to consumer %s", a->durable);
    return EG_EUNAVAIL;
}

static void register_metrics(archiver_t *a, eg_metrics_t *m)
{
    static const double bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                    0.1,   0.25,   0.5,   1,    2.5,   5};
    a->events = eg_metrics_counter(m, "engage_archiver_events_total",
                                   "Lifecycle events written to PostgreSQL", NULL);
    a->batches = eg_metrics_counter(m, "engage_archiver_batches_total",
                                    "Batches of events committed to PostgreSQL", NULL);
    a->errors = eg_metrics_counter(m, "engage_archiver_errors_total",
                                   "Batches that PostgreSQL failed (their events are redelivered "
                                   "or, when refused, dropped)",
                                   NULL);
    a->rejected =
        eg_metrics_counter(m, "engage_archiver_rejected_total",
                           "Messages dropped: not an event, or data PostgreSQL refuses", NULL);
    a->lag =
        eg_metrics_gauge(m, "engage_archiver_lag_seconds",
                         "Now minus the time of the newest event of the last batch written", NULL);
    a->commit_time = eg_metrics_histogram(m, "engage_archiver_batch_seconds",
                                          "Time to write and commit one batch", NULL, bounds,
                                          sizeof bounds / sizeof bounds[0]);
    a->maint_runs = eg_metrics_counter(m, "engage_archiver_maintenance_runs_total",
                                       "Partition maintenance and retention runs completed", NULL);
    a->maint_errors = eg_metrics_counter(
        m, "engage_archiver_maintenance_errors_total",
        "Maintenance runs in which a step failed (retried a minute later)", NULL);
    a->parts_created = eg_metrics_counter(m, "engage_archiver_partitions_created_total",
                                          "Day partitions created", NULL);
    a->parts_dropped = eg_metrics_counter(m, "engage_archiver_partitions_dropped_total",
                                          "Day partitions dropped by retention", NULL);
    a->rows_moved =
        eg_metrics_counter(m, "engage_archiver_default_rows_moved_total",
                           "Rows moved out of DEFAULT partitions into new day partitions", NULL);
    a->rows_purged = eg_metrics_counter(m, "engage_archiver_retention_rows_deleted_total",
                                        "Rows deleted from DEFAULT partitions by retention", NULL);
    a->requests = eg_metrics_counter(m, "engage_archiver_requests_total",
                                     "History requests answered (search, GDPR)", NULL);
    a->request_errors = eg_metrics_counter(m, "engage_archiver_request_errors_total",
                                           "History requests that failed on a dependency", NULL);
}

/* One maintenance run: partitions ahead (real time), then retention (real time plus the test
 * hook's offset). True when every step succeeded. */
static bool maintain_once(archiver_t *a)
{
    part_report_t rep = {0};
    int64_t now = eg_now_ms();
    eg_status_t st = part_ensure(a->maint_pg, now, &rep);
    eg_status_t st2 = part_retain(a->maint_pg, now + a->clock_offset_ms, &rep);
    eg_counter_add(a->parts_created, (uint64_t)rep.created);
    eg_counter_add(a->parts_dropped, (uint64_t)rep.dropped);
    eg_counter_add(a->rows_moved, (uint64_t)rep.moved);
    eg_counter_add(a->rows_purged, (uint64_t)rep.purged);
    if (st != EG_OK || st2 != EG_OK)
        eg_counter_inc(a->maint_errors);
    eg_counter_inc(a->maint_runs);
    if (rep.created || rep.dropped || rep.purged || rep.tombstones)
        eg_log_info("maintenance: %d partition(s) created (%ld row(s) moved from DEFAULT), %d "
                    "dropped, %ld DEFAULT row(s) and %ld GDPR tombstone(s) past retention deleted",
                    rep.created, rep.moved, rep.dropped, rep.purged, rep.tombstones);
    return st == EG_OK && st2 == EG_OK;
}

static void *maintain(void *arg)
{
    archiver_t *a = arg;
    int64_t next = 0;
    while (!atomic_load(&a->stop)) {
        if (eg_mono_ms() >= next)
            next = eg_mono_ms() + (maintain_once(a) ? MAINT_INTERVAL_MS : MAINT_RETRY_MS);
        sleep_ms(MAINT_TICK_MS);
    }
    return NULL;
}

/* Drop a message for good (never redelivered). */
static void reject(archiver_t *a, eg_bus_jsmsg_t *m)
{
    eg_status_t st = eg_bus_jsmsg_term(m);
    if (st != EG_OK)
        eg_log_warn("cannot terminate message %" PRIu64 ": %s", eg_bus_jsmsg_seq(m),
                    eg_status_str(st));
    eg_counter_inc(a->rejected);
}

/* Decode msgs[0..count), drop what cannot be written, write the rest, and settle each message.
 * Takes ownership of the messages. */
static void handle_batch(archiver_t *a, eg_bus_jsmsg_t **msgs, int count)
{
    eg_bus_jsmsg_t *kept[BATCH_MAX];
    Eg__Event *events[BATCH_MAX];
    archive_outcome_t outcomes[BATCH_MAX];
    size_t n = 0;
    char why[128];

    for (int i = 0; i < count; i++) {
        eg_bus_jsmsg_t *m = msgs[i];
        Eg__Event *ev = eg__event__unpack(NULL, eg_bus_jsmsg_len(m), eg_bus_jsmsg_data(m));
        if (ev == NULL || !archive_event_check(ev, why, sizeof why)) {
            eg_log_set_corr(eg_bus_jsmsg_corr_id(m));
            eg_log_error("dropping message %" PRIu64 " on %s (msg id %s): %s", eg_bus_jsmsg_seq(m),
                         eg_bus_jsmsg_subject(m), eg_bus_jsmsg_id(m) ? eg_bus_jsmsg_id(m) : "none",
                         ev == NULL ? "not an Event protobuf" : why);
            eg_log_set_corr(NULL);
            reject(a, m);
            eg__event__free_unpacked(ev, NULL);
            eg_bus_jsmsg_free(m);
            continue;
        }
        kept[n] = m;
        events[n] = ev;
        n++;
    }
    if (n == 0)
        return;

    int64_t t0 = eg_mono_ms();
    eg_status_t st = archive_write(a->pg, (const Eg__Event *const *)events, n, outcomes);
    if (st == EG_OK) {
        eg_histogram_observe(a->commit_time, (double)(eg_mono_ms() - t0) / 1000.0);
        eg_counter_inc(a->batches);
    } else {
        eg_counter_inc(a->errors);
    }

    int64_t newest = 0;
    uint64_t done = 0;
    for (size_t i = 0; i < n; i++) {
        eg_status_t ack = EG_OK;
        switch (outcomes[i]) {
        case ARCHIVE_DONE:
            done++;
            if (events[i]->at_ms > newest)
                newest = events[i]->at_ms;
            ack = eg_bus_jsmsg_ack(kept[i]);
            break;
        case ARCHIVE_RETRY:
            ack = eg_bus_jsmsg_nak(kept[i], NAK_DELAY_MS);
            break;
        case ARCHIVE_REJECT:
            reject(a, kept[i]);
            break;
        }
        if (ack != EG_OK)
            /* Not fatal: the message comes back after the ack wait and rewrites nothing. */
            eg_log_warn("cannot settle message %" PRIu64 ": %s", eg_bus_jsmsg_seq(kept[i]),
                        eg_status_str(ack));
        eg__event__free_unpacked(events[i], NULL);
        eg_bus_jsmsg_free(kept[i]);
    }
    eg_counter_add(a->events, done);
    if (done > 0)
        eg_gauge_set(a->lag, (double)(eg_now_ms() - newest) / 1000.0);
}

/* Ensure the stream and bind the durable consumer (one attempt). */
static eg_status_t bind_once(archiver_t *a)
{
    eg_status_t st = eg_events_stream_ensure(a->bus);
    if (st == EG_OK)
        st = eg_bus_js_consumer_open(a->bus, EG_STREAM_EVENTS, a->durable, EG_SUBJ_EVENTS_ALL,
                                     ACK_WAIT_S, &a->consumer);
    atomic_store(&a->bound, st == EG_OK);
    return st;
}

static void *consume(void *arg)
{
    archiver_t *a = arg;
    eg_bus_jsmsg_t *msgs[BATCH_MAX];
    int64_t idle_since = eg_mono_ms();

    while (!atomic_load(&a->stop)) {
        int count = 0;
        eg_status_t st;
        if (a->consumer == NULL) {
            /* Lost it (see below): bind again, at most every REBIND_MS. Not while NATS is
             * down: the JetStream API calls would wait out their timeouts and delay a stop. */
            if (eg_bus_connected(a->bus) && bind_once(a) == EG_OK)
                eg_log_info("bound to consumer %s again", a->durable);
            else
                sleep_ms(REBIND_MS);
            continue;
        }
        st = eg_bus_js_fetch(a->consumer, BATCH_MAX, FETCH_WAIT_MS, msgs, &count);
        if (count > 0) {
            handle_batch(a, msgs, count);
            idle_since = eg_mono_ms();
            if (count < BATCH_MAX)
                sleep_ms(LINGER_MS);
        } else if (st == EG_ETIMEOUT && eg_mono_ms() - idle_since >= RECHECK_IDLE_MS &&
                   eg_bus_connected(a->bus)) {
            /* Only a fetch waiting at the server when the durable is deleted fails; one sent
             * after (the deletion came during a batch or the linger) just times out, forever.
             * So after a while without messages, bind afresh, which re-creates a deleted
             * durable and changes nothing otherwise, and only then let go of the old binding
             * (readiness never sees it unbound). */
            eg_bus_consumer_t *fresh = NULL;
            if (eg_bus_js_consumer_open(a->bus, EG_STREAM_EVENTS, a->durable, EG_SUBJ_EVENTS_ALL,
                                        ACK_WAIT_S, &fresh) == EG_OK) {
                eg_bus_consumer_close(a->consumer);
                a->consumer = fresh;
            }
            idle_since = eg_mono_ms();
        } else if (st != EG_OK && st != EG_ETIMEOUT) {
            /* A failed fetch (the consumer was deleted, or the connection is down) does not
             * repeat itself: later fetches just time out, and the archiver would idle for good.
             * So drop the subscription and bind anew, which also re-creates a deleted durable
             * (it then starts from the beginning of the stream; the writes are idempotent). */
            eg_log_warn("fetch from consumer %s failed (%s); binding again", a->durable,
                        eg_status_str(st));
            atomic_store(&a->bound, false);
            eg_bus_consumer_close(a->consumer);
            a->consumer = NULL;
            sleep_ms(FETCH_WAIT_MS);
        }
    }
    return NULL;
}

/* Bind at start; retried while JetStream comes up. */
static eg_status_t bind_consumer(archiver_t *a)
{
    eg_status_t st = EG_EUNAVAIL;
    for (int i = 0; i < 20 && st != EG_OK; i++) {
        st = bind_once(a);
        if (st != EG_OK) {
            eg_log_warn("cannot bind consumer %s (%s); retrying", a->durable, eg_status_str(st));
            sleep_ms(500);
        }
    }
    return st;
}

int main(void)
{
    eg_config_t cfg;
    eg_config_load(&cfg, "archiver");
    eg_service_t *svc = NULL;
    archiver_t a = {.cfg = &cfg,
                    .durable = eg_config_str("ENGAGE_ARCHIVER_DURABLE", EG_DURABLE_ARCHIVER)};
    pthread_t consumer_thread, maint_thread;
    bool started = false, maint_started = false;
    int rc = 1;

    atomic_init(&a.bus_open, false);
    atomic_init(&a.bound, false);
    atomic_init(&a.stop, false);
    atomic_init(&a.gate.stopping, false);
    atomic_init(&a.gate.inflight, 0);
    if (eg_service_start(&svc, &cfg, false) != EG_OK)
        goto out;
    register_metrics(&a, eg_service_metrics(svc));
    eg_health_add_check(eg_service_health(svc), "nats", ready_nats, &a);
    eg_health_add_check(eg_service_health(svc), "postgres", eg_ready_pg, cfg.pg_dsn);
    eg_health_add_check(eg_service_health(svc), "consumer", ready_consumer, &a);

    /* Retried for half a minute, so the service may start before PostgreSQL. */
    if (eg_pg_migrate_retry(cfg.pg_dsn, 60, 500) != EG_OK) {
        eg_log_error("cannot apply schema migrations; giving up");
        goto out;
    }
    if (eg_pg_open(&a.pg, cfg.pg_dsn) != EG_OK || eg_pg_open(&a.maint_pg, cfg.pg_dsn) != EG_OK) {
        eg_log_error("cannot connect to PostgreSQL");
        goto out;
    }
    a.clock_offset_ms =
        eg_config_int("ENGAGE_CLOCK_OFFSET_MS", 0, -CLOCK_OFFSET_MAX_MS, CLOCK_OFFSET_MAX_MS);
    if (a.clock_offset_ms != 0)
        eg_log_warn("ENGAGE_CLOCK_OFFSET_MS=%" PRId64 " (a test hook): retention decides as of "
                    "now %+" PRId64 " ms",
                    a.clock_offset_ms, a.clock_offset_ms);
    if (pthread_create(&maint_thread, NULL, maintain, &a) != 0) {
        eg_log_error("cannot start the maintenance thread");
        goto out;
    }
    maint_started = true;
    if (eg_bus_open(&a.bus, cfg.nats_url, cfg.instance_id, 10000) != EG_OK) {
        eg_log_error("cannot connect to NATS");
        goto out;
    }
    atomic_store(&a.bus_open, true);
    if (bind_consumer(&a) != EG_OK) {
        eg_log_error("cannot bind the durable consumer %s on %s; giving up", a.durable,
                     EG_STREAM_EVENTS);
        goto out;
    }
    if (pthread_create(&consumer_thread, NULL, consume, &a) != 0) {
        eg_log_error("cannot start the consumer thread");
        goto out;
    }
    started = true;
    /* ENGAGE_ARCHIVER_REQUESTS=0: write history, answer no requests (tests run archivers on
     * schemas of their own, which must not answer the suite's searches). */
    int nworkers = eg_config_bool("ENGAGE_ARCHIVER_REQUESTS", true) ? cfg.workers : 0;
    a.workers = eg_xcalloc((size_t)cfg.workers, sizeof *a.workers);
    for (int i = 0; i < nworkers; i++) {
        arch_worker_t *w = &a.workers[i];
        w->gdpr.bus = a.bus;
        w->gdpr.pepper = cfg.key_pepper;
        w->gate = &a.gate;
        w->requests = a.requests;
        w->errors = a.request_errors;
        /* Searches read on ENGAGE_PG_READ_DSN; a connection of their own only when it is
         * another DSN than the primary's. */
        bool own_reader = strcmp(cfg.pg_read_dsn, cfg.pg_dsn) != 0;
        if (eg_pg_open(&w->pg, cfg.pg_dsn) != EG_OK ||
            (own_reader && eg_pg_open(&w->read_pg, cfg.pg_read_dsn) != EG_OK) ||
            eg_bus_subscribe(a.bus, EG_SUBJ_ARCHIVE_ALL, EG_ARCHIVE_QUEUE, requests_handle, w) !=
                EG_OK) {
            eg_log_error("cannot start request worker %d", i);
            goto out;
        }
    }
    if (!cfg.key_pepper)
        eg_log_warn("ENGAGE_KEY_PEPPER is not set: GDPR audit rows hash numbers without a key");
    eg_service_register(svc);
    eg_log_info("archiver ready: consumer %s on %s", a.durable, EG_SUBJ_EVENTS_ALL);
    eg_service_wait(svc);
    rc = 0;
out:
    atomic_store(&a.stop, true);
    if (started)
        pthread_join(consumer_thread, NULL);
    if (maint_started)
        pthread_join(maint_thread, NULL);
    /* Requests still running use the metrics eg_service_stop frees: let them finish (a GDPR
     * erase may take a while; each of its steps has a bounded wait). */
    atomic_store(&a.gate.stopping, true);
    for (int i = 0; atomic_load(&a.gate.inflight) > 0 && i < STOP_REQUESTS_MS / 50; i++)
        sleep_ms(50);
    if (atomic_load(&a.gate.inflight) > 0)
        eg_log_warn("stopping with %d history request(s) still running",
                    atomic_load(&a.gate.inflight));
    atomic_store(&a.bound, false);
    eg_service_stop(svc);
    eg_bus_consumer_close(a.consumer);
    eg_bus_close(a.bus); /* drains the request subscriptions: no handler runs after this */
    for (int i = 0; a.workers && i < cfg.workers; i++) {
        eg_pg_close(a.workers[i].pg);
        eg_pg_close(a.workers[i].read_pg);
    }
    free(a.workers);
    eg_pg_close(a.pg);
    eg_pg_close(a.maint_pg);
    eg_bus_shutdown();
    eg_log_info("archiver stopped");
    eg_config_free(&cfg);
    return rc;
}
