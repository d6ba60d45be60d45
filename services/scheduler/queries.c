/* Read-only queries. Availability walks the service's open slots (hours.c) and reads their
 * booked counts with one HMGET; open-for and queue status come from the hours; the estimated
 * wait time (EWT mode1) comes from the throughput of the last 32 callbacks an agent took in the
 * virtual queue (eg:{t:T}:served:<vq>, kept by callback_store.c) times the callbacks waiting:
 *
 *   interval = (newest serve - oldest serve) / (serves - 1)
 *   EWT      = position x interval
 *
 * where position is 1 for the next callback an agent takes: a callback already in the queue
 * has its rank (retrieve), a new caller comes after all who wait (estimated-wait-time,
 * queue-status).
 *
 * Modes 2 and 3 use the voice platform's figures for the virtual queue (queue.stats, kept by
 * queue_stats.c): mode2 counts the callbacks waiting plus the platform's calls waiting over the
 * agents logged in, mode3 the platform's own calls over its ready agents (queue_stats.h has the
 * formulas). Without figures, or with no agent logged in, they answer -1 with resultCode -2. */
#include "queries.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "callback_store.h"
#include "engage.pb-c.h"
#include "engage/log.h"
#include "engage/mem.h"
#include "engage/timeutil.h"
#include "hours.h"
#include "queue_stats.h"
#include "services.h"
#include "stats_store.h"

#define MAX_AVAILABILITY_SLOTS 5000
#define WEEK_MS (7LL * 86400000)

/* Fill a Status for the reply; message copied into buf. */
static Eg__Status *status_of(Eg__Status *s, eg_status_t st, char *buf, size_t len, const char *fmt,
                             const char *arg)
{
    eg__status__init(s);
    s->code = (int32_t)st;
    if (fmt) {
        snprintf(buf, len, fmt, arg);
        s->message = buf;
    }
    return s;
}

int q_ewt_for(worker_t *w, const char *tenant, const char *vq, int ahead)
{
    int64_t times[32];
    size_t n = 0;
    if (stats_store_served(w->store, tenant, vq, times, 32, &n) != EG_OK || n < 2)
        return -1;
    /* The mean interval between the last serves, times the callers ahead. */
    int64_t interval = (times[0] - times[n - 1]) / (int64_t)(n - 1);
    return (int)((interval * ahead + 500) / 1000);
}

eg_status_t q_availability(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    Eg__AvailabilityRequest *req =
        eg__availability_request__unpack(NULL, eg_bus_msg_len(msg), eg_bus_msg_data(msg));
    if (!req)
        return EG_EPROTO;
    char text[256];
    Eg__Status status;
    Eg__AvailabilityReply r = EG__AVAILABILITY_REPLY__INIT;
    const svc_config_t *svc = NULL;
    hours_slot_t *slots = NULL;
    int *used = NULL;
    int64_t *starts = NULL;
    eg_status_t st = svc_registry_get(w->s->services, w->pg, req->tenant_id, req->service, &svc);
    if (st != EG_OK) {
        r.status = status_of(&status, st, text, sizeof text,
                             st == EG_ENOTFOUND ? "service: callback service '%s' does not exist"
                                                : "configuration unavailable (%s)",
                             req->service);
        goto out;
    }
    /* Only the bookable part of the range: from now to the horizon. */
    int64_t now = eg_now_ms(), horizon = now + (int64_t)svc->horizon_days * 86400000LL;
    int64_t from = req->start_ms, to = req->end_ms < horizon ? req->end_ms : horizon;
    slots = eg_xcalloc(MAX_AVAILABILITY_SLOTS, sizeof *slots);
    size_t n = from < to
                   ? hours_slots(svc_registry_hours(svc), from, to, slots, MAX_AVAILABILITY_SLOTS)
                   : 0;
    used = eg_xcalloc(n ? n : 1, sizeof *used);
    starts = eg_xcalloc(n ? n : 1, sizeof *starts);
    for (size_t i = 0; i < n; i++)
        starts[i] = slots[i].start_ms;
    if (n && (st = cb_store_slot_counts(w->store, req->tenant_id, req->service, starts, n, used)) !=
                 EG_OK) {
        r.status = status_of(&status, st, text, sizeof text, "callback store unavailable%s", "");
        goto out;
    }
    r.slots = eg_xcalloc(n ? n : 1, sizeof *r.slots);
    for (size_t i = 0; i < n; i++) {
        int free_places = slots[i].capacity - used[i];
        if (free_places < 0)
            free_places = 0;
        if (slots[i].start_ms + (int64_t)svc->slot_minutes * 60000 <= now)
            continue; /* already over */
        if (free_places == 0 && !req->report_busy)
            continue;
        if (req->max_slots > 0 && (int)r.n_slots >= req->max_slots)
            break;
        Eg__SlotInfo *si = eg_xmalloc(sizeof *si);
        eg__slot_info__init(si);
        si->start_ms = slots[i].start_ms;
        si->total = slots[i].capacity;
        si->free = free_places;
        r.slots[r.n_slots++] = si;
    }
    r.duration_min = svc->slot_minutes;
    r.timezone = (char *)hours_timezone(svc_registry_hours(svc));
    r.status = status_of(&status, EG_OK, text, sizeof text, NULL, NULL);
out:
    eg_bus_reply(bus, msg, &r.base);
    for (size_t i = 0; i < r.n_slots; i++)
        free(r.slots[i]);
    free(r.slots);
    free(slots);
    free(used);
    free(starts);
    if (svc)
        svc_registry_release(w->s->services, svc);
    eg__availability_request__free_unpacked(req, NULL);
    return (eg_status_t)status.code;
}

/* Waiting callbacks of a service: those QUEUED or ROUTING. */
static int waiting(worker_t *w, const char *tenant, const char *service)
{
    int n = 0;
    stats_store_waiting(w->store, tenant, service, &n);
    return n;
}

/* open-for and queue-status share the request and the reply. */
static eg_status_t open_for_or_status(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg,
                                      bool status_query)
{
    Eg__OpenForRequest *req =
        eg__open_for_request__unpack(NULL, eg_bus_msg_len(msg), eg_bus_msg_data(msg));
    if (!req)
        return EG_EPROTO;
    char text[256];
    Eg__Status status;
    Eg__QueueStatusReply r = EG__QUEUE_STATUS_REPLY__INIT;
    const svc_config_t *svc = NULL;
    eg_status_t st = svc_registry_get(w->s->services, w->pg, req->tenant_id, req->service, &svc);
    if (st != EG_OK) {
        r.status = status_of(&status, st, text, sizeof text,
                             st == EG_ENOTFOUND ? "service: callback service '%s' does not exist"
                                                : "configuration unavailable (%s)",
                             req->service);
        goto out;
    }
    const hours_t *hours = svc_registry_hours(svc);
    int64_t start = req->start_ms ? req->start_ms : eg_now_ms();
    int64_t until = hours_open_until(hours, start, WEEK_MS);
    r.open_for_s = (until - start) / 1000;
    if (status_query) {
        /* A caller asking now would come after everyone waiting. */
        r.ewt_s = q_ewt_for(w, req->tenant_id, svc->virtual_queue,
                            waiting(w, req->tenant_id, req->service) + 1);
        int64_t ewt_ms = r.ewt_s > 0 ? (int64_t)r.ewt_s * 1000 : 0;
        r.offer_immediate = svc->immediate_enabled && r.open_for_s > 0 && start + ewt_ms < until;
        r.offer_scheduled = svc->scheduled_enabled;
    }
    r.status = status_of(&status, EG_OK, text, sizeof text, NULL, NULL);
out:
    eg_bus_reply(bus, msg, &r.base);
    if (svc)
        svc_registry_release(w->s->services, svc);
    eg__open_for_request__free_unpacked(req, NULL);
    return (eg_status_t)status.code;
}

eg_status_t q_open_for(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    return open_for_or_status(w, bus, msg, false);
}

eg_status_t q_queue_status(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    return open_for_or_status(w, bus, msg, true);
}

/* The services of a tenant whose virtual queue is vq (a service's name stands for its own
 * queue). Names malloc'd into names[], at most max. */
static int services_of_queue(worker_t *w, const char *tenant, const char *vq, char **names, int max,
                             char *vq_out, size_t vq_len)
{
    const char *params[] = {tenant, vq};
    eg_pg_res_t *res = NULL;
    int n = 0;
    snprintf(vq_out, vq_len, "%s", vq);
    if (eg_pg_exec(w->pg,
                   "SELECT name, coalesce(config->>'virtualQueue', name) FROM services WHERE "
                   "tenant_id = $1::uuid AND (name = $2 OR coalesce(config->>'virtualQueue', "
                   "name) = $2) ORDER BY name = $2 DESC",
                   2, params, &res) == EG_OK) {
        for (int i = 0; i < eg_pg_rows(res) && n < max; i++) {
            /* A service named like the queue stands for its own virtual queue. */
            if (i == 0 && strcmp(eg_pg_value(res, 0, 0), vq) == 0)
                snprintf(vq_out, vq_len, "%s", eg_pg_value(res, 0, 1));
            names[n++] = eg_xstrdup(eg_pg_value(res, i, 0));
        }
    }
    eg_pg_res_free(res);
    return n;
}

eg_status_t q_ewt(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    Eg__EwtRequest *req = eg__ewt_request__unpack(NULL, eg_bus_msg_len(msg), eg_bus_msg_data(msg));
    if (!req)
        return EG_EPROTO;
    Eg__Status status;
    char text[8];
    Eg__EwtReply r = EG__EWT_REPLY__INIT;
    r.items = eg_xcalloc(req->n_queues ? req->n_queues : 1, sizeof *r.items);
    for (size_t i = 0; i < req->n_queues; i++) {
        Eg__EwtItem *it = eg_xmalloc(sizeof *it);
        eg__ewt_item__init(it);
        it->virtual_queue = req->queues[i];
        it->ewt_s = -1;
        char *names[64], vq[160];
        int n = services_of_queue(w, req->tenant_id, req->queues[i], names, 64, vq, sizeof vq);
        int ahead = 0;
        for (int k = 0; k < n; k++) {
            ahead += waiting(w, req->tenant_id, names[k]);
            free(names[k]);
        }
        if (req->mode == 2 || req->mode == 3) {
            /* The voice platform's figures (queue.stats), by the queue's virtual queue name. */
            qstats_t qs;
            const char *why = NULL;
            bool have = qstats_load(w->store, req->tenant_id, vq, &qs) == EG_OK;
            it->ewt_s = qstats_ewt(req->mode, ahead, have ? &qs : NULL, &it->result_code, &why);
            it->message = (char *)why;
        } else {
            it->ewt_s = q_ewt_for(w, req->tenant_id, vq, ahead + 1); /* a new caller's wait */
            if (n == 0) {
                it->result_code = -1;
                it->message = (char *)"unknown virtual queue";
            } else if (it->ewt_s < 0) {
                it->result_code = -1;
                it->message = (char *)"no interactions yet";
            } else {
                it->message = (char *)"OK";
            }
        }
        r.items[r.n_items++] = it;
    }
    r.status = status_of(&status, EG_OK, text, sizeof text, NULL, NULL);
    eg_bus_reply(bus, msg, &r.base);
    for (size_t i = 0; i < r.n_items; i++)
        free(r.items[i]);
    free(r.items);
    eg__ewt_request__free_unpacked(req, NULL);
    return EG_OK;
}

/* Booked share of the capacity of the open slots in the next 24 h. */
static double utilisation(worker_t *w, const svc_config_t *svc, const char *tenant, int64_t now)
{
    hours_slot_t slots[1500];
    size_t n = hours_slots(svc_registry_hours(svc), now, now + 86400000, slots, 1500);
    if (n == 0)
        return 0.0;
    int64_t *starts = eg_xcalloc(n, sizeof *starts);
    int *used = eg_xcalloc(n, sizeof *used);
    for (size_t i = 0; i < n; i++)
        starts[i] = slots[i].start_ms;
    double booked = 0, capacity = 0;
    if (cb_store_slot_counts(w->store, tenant, svc->name, starts, n, used) == EG_OK) {
        for (size_t i = 0; i < n; i++) {
            booked += used[i];
            capacity += slots[i].capacity;
        }
    }
    free(starts);
    free(used);
    return capacity > 0 ? booked / capacity : 0.0;
}

eg_status_t q_stats(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    Eg__StatsRequest *req =
        eg__stats_request__unpack(NULL, eg_bus_msg_len(msg), eg_bus_msg_data(msg));
    if (!req)
        return EG_EPROTO;
    Eg__Status status;
    char text[256];
    Eg__StatsReply r = EG__STATS_REPLY__INIT;
    char **names = NULL;
    size_t nnames = 0;
    eg_status_t st = EG_OK;
    char why[256] = "statistics unavailable";
    if (req->n_services) {
        names = eg_xcalloc(req->n_services, sizeof *names);
        for (size_t i = 0; i < req->n_services; i++)
            names[nnames++] = eg_xstrdup(req->services[i]);
    } else {
        const char *params[] = {req->tenant_id};
        eg_pg_res_t *res = NULL;
        st = eg_pg_exec(w->pg, "SELECT name FROM services WHERE tenant_id = $1::uuid ORDER BY name",
                        1, params, &res);
        int rows = st == EG_OK ? eg_pg_rows(res) : 0;
        names = eg_xcalloc(rows ? (size_t)rows : 1, sizeof *names);
        for (int i = 0; i < rows; i++)
            names[nnames++] = eg_xstrdup(eg_pg_value(res, i, 0));
        eg_pg_res_free(res);
    }
    int64_t now = eg_now_ms();
    r.services = eg_xcalloc(nnames ? nnames : 1, sizeof *r.services);
    for (size_t i = 0; st == EG_OK && i < nnames; i++) {
        const svc_config_t *svc = NULL;
        st = svc_registry_get(w->s->services, w->pg, req->tenant_id, names[i], &svc);
        if (st != EG_OK) {
            snprintf(why, sizeof why, "serviceName: callback service '%.100s' does not exist",
                     names[i]);
            break;
        }
        stats_service_t figures = {0};
        st = stats_store_service(w->store, req->tenant_id, names[i], now, &figures);
        if (st != EG_OK) {
            svc_registry_release(w->s->services, svc);
            snprintf(why, sizeof why, "statistics unavailable (%s)", eg_status_str(st));
            break;
        }
        Eg__ServiceStats *ss = eg_xmalloc(sizeof *ss);
        eg__service_stats__init(ss);
        ss->service = names[i];
        ss->scheduled = figures.scheduled;
        ss->queued = figures.queued;
        ss->processing = figures.processing;
        ss->created_today = figures.created_today;
        ss->completed_today = figures.completed_today;
        ss->ewt_s = q_ewt_for(w, req->tenant_id, svc->virtual_queue, ss->queued + 1);
        ss->slot_utilisation = utilisation(w, svc, req->tenant_id, now);
        r.services[r.n_services++] = ss;
        svc_registry_release(w->s->services, svc);
    }
    if (st == EG_OK)
        r.status = status_of(&status, EG_OK, text, sizeof text, NULL, NULL);
    else
        r.status = status_of(&status, st, text, sizeof text, "%s", why);
    eg_bus_reply(bus, msg, &r.base);
    for (size_t i = 0; i < r.n_services; i++)
        free(r.services[i]);
    free(r.services);
    for (size_t i = 0; i < nnames; i++)
        free(names[i]);
    free(names);
    eg__stats_request__free_unpacked(req, NULL);
    return st;
}
