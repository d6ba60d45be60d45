/* The dispatcher. It sleeps until the earliest entry of eg:due:index (one ZRANGE) or until a
 * wake-up (a local write or engage.due.wake from another scheduler announces an earlier due
 * time), so its idle cost is one Redis command per DISPATCH_MAX_SLEEP_MS whatever the number of
 * callbacks or tenants. When entries are due it takes each "<tenant>|<service>" in turn, reads
 * that service's due ids and dispatches each with a compare-and-set (callbacks.c): when several
 * schedulers race for one callback exactly one write wins, so a callback is dispatched once.
 * Then it recomputes the index entry (callback_store.c explains why that is race-free). */
#include "dispatcher.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "callbacks.h"
#include "due_store.h"
#include "outbox_store.h"
#include "engage/log.h"
#include "engage/mem.h"
#include "engage/timeutil.h"

#define DISPATCH_MAX_SLEEP_MS 30000
#define DISPATCH_BATCH 100
#define REPAIR_RETRY_MS 1000

struct dispatcher {
    sched_t *s;
    worker_t w;
    pthread_t thread;
};

/* Dispatch everything due in one tenant's service. */
static void dispatch_service(dispatcher_t *d, const char *tenant, const char *service)
{
    char *ids[DISPATCH_BATCH];
    int n;
    do {
        n = 0;
        if (due_store_ids(d->w.store, tenant, service, eg_now_ms(), DISPATCH_BATCH, ids, &n) !=
            EG_OK)
            return;
        for (int i = 0; i < n; i++) {
            bool dispatched = false;
            eg_status_t st = cb_dispatch_due(&d->w, tenant, service, ids[i], &dispatched);
            if (st != EG_OK)
                eg_log_warn("dispatch of callback %s failed: %s", ids[i], eg_status_str(st));
            free(ids[i]);
        }
    } while (n == DISPATCH_BATCH && !atomic_load(&d->s->stopping));
    due_store_refresh(d->w.store, tenant, service);
}

/* One look at the index; returns how long to sleep. */
static int64_t dispatch_pass(dispatcher_t *d)
{
    due_service_t due[16];
    size_t n = 0;
    if (due_store_next_batch(d->w.store, eg_now_ms(), 16, due, &n) != EG_OK)
        return 500;
    for (size_t i = 0; i < n && !atomic_load(&d->s->stopping); i++)
        dispatch_service(d, due[i].tenant, due[i].service);
    if (n)
        return 0;
    /* Nothing due: sleep until the earliest entry. */
    int64_t sleep_ms = DISPATCH_MAX_SLEEP_MS, next = 0;
    bool has = false;
    if (due_store_earliest(d->w.store, &has, &next) == EG_OK && has) {
        int64_t wait = next - eg_now_ms();
        sleep_ms = wait < 0 ? 0 : (wait < sleep_ms ? wait : sleep_ms);
    }
    return sleep_ms;
}

/* Redo failed second write steps (repair.h) and, every recovery interval, check every service.
 * Returns the longest the dispatcher may sleep before looking again. */
static int64_t repair_pass(dispatcher_t *d, int64_t *last_full)
{
    sched_t *s = d->s;
    bool everything = false, worked = false;
    if (repair_pending(&s->repair)) {
        repair_run(&s->repair, d->w.store, &everything);
        worked = true;
    }
    int64_t now = eg_mono_ms();
    if (everything || now - *last_full >= s->recovery_interval_ms) {
        if (dispatcher_recover(s, d->w.store, d->w.pg) == EG_OK)
            *last_full = now;
        else
            repair_note_all(&s->repair);
        worked = true;
    }
    if (repair_pending(&s->repair))
        return REPAIR_RETRY_MS;
    /* A repaired index may hold an earlier entry than the pass before saw: look again now. */
    return worked ? 0 : DISPATCH_MAX_SLEEP_MS;
}

static void *run(void *arg)
{
    dispatcher_t *d = arg;
    int64_t last_full = eg_mono_ms();
    while (!atomic_load(&d->s->stopping)) {
        int64_t sleep_ms = dispatch_pass(d);
        int64_t repair_ms = repair_pass(d, &last_full);
        if (repair_ms < sleep_ms)
            sleep_ms = repair_ms;
        if (sleep_ms > 0)
            wake_wait(&d->s->dispatch_wake, sleep_ms);
    }
    return NULL;
}

eg_status_t dispatcher_recover(sched_t *s, eg_store_t *store, eg_pg_t *pg)
{
    (void)s;
    eg_pg_res_t *res = NULL;
    int64_t t0 = eg_mono_ms();
    eg_status_t st = eg_pg_exec(pg, "SELECT tenant_id::text, name FROM services", 0, NULL, &res);
    if (st != EG_OK)
        return st;
    int rows = eg_pg_rows(res);
    for (int i = 0; i < rows && st == EG_OK; i++) {
        const char *tenant = eg_pg_value(res, i, 0), *service = eg_pg_value(res, i, 1);
        bool marked = false;
        st = outbox_store_mark_if_nonempty(store, tenant, &marked);
        if (st == EG_OK)
            st = due_store_refresh(store, tenant, service);
    }
    eg_pg_res_free(res);
    if (st == EG_OK)
        eg_log_info("recovery: checked outboxes and due indexes of %d services in %lld ms", rows,
                    (long long)(eg_mono_ms() - t0));
    return st;
}

eg_status_t dispatcher_start(dispatcher_t **out, sched_t *s)
{
    dispatcher_t *d = eg_xcalloc(1, sizeof *d);
    d->s = s;
    d->w.s = s;
    eg_status_t st = eg_store_open(&d->w.store, s->cfg->redis_url, 5000);
    if (st == EG_OK)
        st = cb_store_init(d->w.store, &d->w.scripts);
    if (st == EG_OK)
        st = eg_pg_open(&d->w.pg, s->cfg->pg_dsn);
    if (st == EG_OK)
        st = dispatcher_recover(s, d->w.store, d->w.pg);
    if (st != EG_OK) {
        eg_store_close(d->w.store);
        eg_pg_close(d->w.pg);
        free(d);
        return st;
    }
    pthread_create(&d->thread, NULL, run, d);
    *out = d;
    return EG_OK;
}

void dispatcher_stop(dispatcher_t *d)
{
    if (!d)
        return;
    wake_signal(&d->s->dispatch_wake);
    pthread_join(d->thread, NULL);
    eg_store_close(d->w.store);
    eg_pg_close(d->w.pg);
    free(d);
}
