/* Booking, reading and cancelling callbacks.
 *
 * Create checks what can be checked without Redis (service exists and takes this kind of
 * callback, time inside the horizon), then runs one Lua step that takes the slot place, writes
 * the record and its index entry and appends the event to the outbox. Cancel is a
 * compare-and-set: read the record, build the next version, and write it only if the record
 * did not change meanwhile (retried a few times when it did). */
#include "callbacks.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "due_store.h"
#include "engage/ids.h"
#include "engage/log.h"
#include "engage/mem.h"
#include "engage/states.h"
#include "engage/timeutil.h"
#include "lifecycle.h"
#include "queries.h"
#include "relay.h"
#include "services.h"
#include "engage/subjects.h"

#define CAS_RETRIES 8
#define PROPOSALS_EACH_SIDE 4

const char *cb_state_name(Eg__State s)
{
    return eg_state_name((int)s);
}

static void set_status(Eg__CallbackReply *reply, eg_status_t st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_status(Eg__CallbackReply *reply, eg_status_t st, const char *fmt, ...)
{
    reply->status = eg_xmalloc(sizeof *reply->status);
    eg__status__init(reply->status);
    reply->status->code = (int32_t)st;
    if (fmt) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        reply->status->message = eg_xstrdup(msg);
    }
}

void cb_reply_clear(Eg__CallbackReply *reply)
{
    if (reply->status) {
        if (reply->status->message != protobuf_c_empty_string)
            free(reply->status->message);
        free(reply->status);
    }
    if (reply->callback)
        eg__callback__free_unpacked(reply->callback, NULL);
    for (size_t i = 0; i < reply->n_proposals; i++)
        free(reply->proposals[i]);
    free(reply->proposals);
}

/* A deep copy through pack/unpack: the copy is owned by protobuf-c's allocator. */
static Eg__Callback *clone_cb(const Eg__Callback *cb)
{
    size_t n = eg__callback__get_packed_size(cb);
    uint8_t *b = eg_xmalloc(n ? n : 1);
    eg__callback__pack(cb, b);
    Eg__Callback *c = eg__callback__unpack(NULL, n, b);
    free(b);
    return c;
}

/* A record already read (and its blob), handed to apply_read for its first try. */
typedef struct {
    Eg__Callback *cb;
    char *blob;
    size_t len;
    bool cached; /* from the blob cache: may be stale */
} cb_read_t;

/* Remember the record as stored now (the next change of it skips its read). */
static void remember(worker_t *w, const Eg__Callback *cb)
{
    size_t n = 0;
    uint8_t *b = cb_store_pack(cb, &n); /* exactly the stored form */
    blob_cache_put(w->s->blobs, cb->tenant_id, cb->id, b, n);
    free(b);
}

/* The record as last written by this scheduler when it remembers it, else read from Redis. */
static eg_status_t read_record(worker_t *w, const char *tenant, const char *id, cb_read_t *out)
{
    memset(out, 0, sizeof *out);
    out->blob = blob_cache_get(w->s->blobs, tenant, id, &out->len);
    if (out->blob) {
        out->cb = cb_store_unpack(tenant, id, out->blob, out->len);
        if (out->cb) {
            out->cached = true;
            return EG_OK;
        }
        free(out->blob);
        out->blob = NULL;
    }
    return cb_store_get(w->store, tenant, id, &out->cb, &out->blob, &out->len);
}

static void init_event(Eg__Event *ev, char *event_id, Eg__Callback *cb, Eg__State from)
{
    eg__event__init(ev);
    eg_uuid_v7_str(event_id);
    ev->event_id = event_id;
    ev->at_ms = cb->updated_ms;
    ev->corr_id = (char *)eg_log_corr();
    ev->callback = cb;
    ev->from_state = from;
    /* Entering QUEUED hands the callback to the voice platform; a cancel tells it to stop. */
    ev->dispatch = cb->state == EG__STATE__STATE_QUEUED && from != EG__STATE__STATE_QUEUED;
    ev->cancel_voice = (cb->state == EG__STATE__STATE_COMPLETED &&
                        (cb->reason == EG__REASON__REASON_CANCELLED ||
                         cb->reason == EG__REASON__REASON_CUSTOMER_CONTACTED)) ||
                       lc_gave_up(from, cb); /* an attempt given up: stop what is left of it */
}

/* After a successful write: its follow-up (the second step: outbox marked pending, due index
 * lowered, sent behind the script) is checked, and the relay and dispatchers woken. A follow-up
 * that did not run loses nothing: the service is noted for repair (repair.h) and the dispatcher
 * redoes the step within a second, so it is logged, not returned. */
static void after_write(worker_t *w, const cb_followup_t *f, const Eg__Callback *cb)
{
    if (f->st != EG_OK) {
        eg_log_warn("callback %s: outbox/due index update failed (%s); the dispatcher will redo it",
                    cb->id, eg_status_str(f->st));
        repair_note(&w->s->repair, cb->tenant_id, cb->service);
        wake_signal(&w->s->dispatch_wake);
    }
    relay_hint(w->s, cb->tenant_id); /* after the SADD: the relay reads this tenant's outbox */
    if (f->lowered) {
        char due[32];
        int n = snprintf(due, sizeof due, "%" PRId64, f->due_ms);
        wake_signal(&w->s->dispatch_wake);
        eg_bus_publish(w->s->bus, EG_SUBJ_DUE_WAKE, due, (size_t)n, eg_log_corr());
    }
}

/* Free open slots on both sides of a full one, nearest first, inside [now, horizon]: up to
 * PROPOSALS_EACH_SIDE before and after. */
static void propose_slots(worker_t *w, const svc_config_t *svc, const char *tenant,
                          int64_t slot_start, int64_t now, int64_t horizon_end,
                          Eg__CallbackReply *reply)
{
    const hours_t *hours = svc_registry_hours(svc);
    int64_t slot_ms = (int64_t)svc->slot_minutes * 60000;
    /* Look at most 96 slot lengths each way (a day of 15-minute slots), open slots only. */
    hours_slot_t before[96], after[96];
    int64_t span = 96 * slot_ms;
    int64_t from = slot_start - span > now - slot_ms ? slot_start - span : now - slot_ms;
    int64_t to = slot_start + span < horizon_end ? slot_start + span : horizon_end;
    size_t nb = from < slot_start ? hours_slots(hours, from, slot_start, before, 96) : 0;
    size_t na = slot_start + 1 < to ? hours_slots(hours, slot_start + 1, to, after, 96) : 0;
    int64_t starts[2 * PROPOSALS_EACH_SIDE];
    int caps[2 * PROPOSALS_EACH_SIDE], used[2 * PROPOSALS_EACH_SIDE];
    size_t n = 0;
    /* The nearest PROPOSALS_EACH_SIDE open slots on each side; one HMGET for their counts. */
    for (size_t i = 0; i < nb && i < PROPOSALS_EACH_SIDE; i++) {
        const hours_slot_t *sl = &before[nb - 1 - i];
        if (sl->start_ms + slot_ms <= now)
            break; /* over */
        starts[n] = sl->start_ms;
        caps[n++] = sl->capacity;
    }
    for (size_t i = 0; i < na && i < PROPOSALS_EACH_SIDE; i++) {
        starts[n] = after[i].start_ms;
        caps[n++] = after[i].capacity;
    }
    if (n == 0 || cb_store_slot_counts(w->store, tenant, svc->name, starts, n, used) != EG_OK)
        return;
    reply->proposals = eg_xcalloc(n, sizeof *reply->proposals);
    for (size_t i = 0; i < n; i++) {
        int free_places = caps[i] - used[i];
        if (free_places <= 0)
            continue;
        Eg__SlotProposal *p = eg_xmalloc(sizeof *p);
        eg__slot_proposal__init(p);
        p->start_ms = starts[i];
        p->free = free_places;
        reply->proposals[reply->n_proposals++] = p;
    }
}

/* The rules a desired time must meet (scheduled callbacks on, not past, inside the horizon);
 * on success the slot it falls in and that slot's capacity. Sets the reply's error otherwise. */
static bool check_desired(const svc_config_t *svc, int64_t t, int64_t now, Eg__CallbackReply *reply,
                          int64_t *slot_start, int *capacity)
{
    int64_t horizon_end = now + (int64_t)svc->horizon_days * 86400000LL;
    if (!svc->scheduled_enabled) {
        set_status(reply, EG_ECLOSED,
                   "desiredTime: service '%s' does not accept scheduled callbacks", svc->name);
        return false;
    }
    if (t < now - 60000) {
        set_status(reply, EG_EINVAL, "desiredTime: must not be in the past");
        return false;
    }
    if (t > horizon_end) {
        set_status(reply, EG_EINVAL,
                   "desiredTime: outside the booking horizon of %d days for service '%s'",
                   svc->horizon_days, svc->name);
        return false;
    }
    const hours_t *hours = svc_registry_hours(svc);
    if (!hours_is_open(hours, t)) {
        char iso[EG_ISO_LEN + 1], when[EG_ISO_LEN + 1];
        eg_time_format_iso(t, iso);
        int64_t next = hours_next_open(hours, t, (int64_t)svc->horizon_days * 86400000LL);
        if (next >= 0) {
            eg_time_format_iso(next, when);
            set_status(reply, EG_ECLOSED,
                       "desiredTime: service '%s' is closed at %s; it next opens at %s", svc->name,
                       iso, when);
        } else {
            set_status(reply, EG_ECLOSED, "desiredTime: service '%s' is closed at %s", svc->name,
                       iso);
        }
        return false;
    }
    *slot_start = hours_slot_start(hours, t);
    *capacity = hours_slot_capacity(hours, *slot_start);
    return true;
}

void cb_create(worker_t *w, const Eg__CreateRequest *req, Eg__CallbackReply *reply)
{
    const svc_config_t *svc = NULL;
    eg_status_t st = svc_registry_get(w->s->services, w->pg, req->tenant_id, req->service, &svc);
    if (st == EG_ENOTFOUND) {
        set_status(reply, st, "serviceName: callback service '%s' does not exist", req->service);
        return;
    }
    if (st != EG_OK) {
        set_status(reply, st, "configuration store unavailable");
        return;
    }

    int64_t now = eg_now_ms();
    int64_t horizon_end = now + (int64_t)svc->horizon_days * 86400000LL;
    char id[EG_UUID_STR_LEN + 1], event_id[EG_UUID_STR_LEN + 1];
    if (req->id[0])
        snprintf(id, sizeof id, "%s", req->id);
    else
        eg_uuid_v7_str(id);

    Eg__Callback cb = EG__CALLBACK__INIT;
    cb.id = id;
    cb.tenant_id = req->tenant_id;
    cb.service = req->service;
    cb.phone = req->phone;
    cb.created_ms = now;
    cb.updated_ms = now;
    cb.priority = req->has_priority ? req->priority : svc->priority;
    cb.virtual_queue = (char *)svc->virtual_queue;
    cb.user_data_json = req->user_data_json;
    cb.extra_json = req->extra_json;
    cb.origin = req->origin;
    cb.version = 1;
    int capacity = -1;
    if (!svc_config_number_allowed(svc, req->phone)) {
        set_status(reply, EG_EINVAL, "phoneNumber: not permitted by the rules of service '%s'",
                   req->service);
        goto out;
    }
    if (req->has_desired_time) {
        if (!check_desired(svc, req->desired_time_ms, now, reply, &cb.slot_start_ms, &capacity))
            goto out;
        cb.state = EG__STATE__STATE_SCHEDULED;
        cb.desired_time_ms = req->desired_time_ms;
        cb.due_ms = req->desired_time_ms;
    } else {
        if (!svc->immediate_enabled) {
            set_status(reply, EG_ECLOSED,
                       "service '%s' does not accept immediate callbacks; give a desiredTime",
                       req->service);
            goto out;
        }
        const hours_t *hours = svc_registry_hours(svc);
        if (!hours_is_open(hours, now)) {
            int64_t next = hours_next_open(hours, now, 14LL * 86400000);
            char when[EG_ISO_LEN + 1];
            if (next >= 0) {
                eg_time_format_iso(next, when);
                set_status(reply, EG_ECLOSED,
                           "service '%s' is closed now; it opens at %s (book a desiredTime)",
                           req->service, when);
            } else {
                set_status(reply, EG_ECLOSED,
                           "service '%s' is closed now and does not open in the next 14 days",
                           req->service);
            }
            goto out;
        }
        cb.immediate = true;
        cb.desired_time_ms = now;
        cb.version = 0;
        lc_dispatch(&cb, now); /* QUEUED, attempt 1, version 1 */
        lc_watch(NULL, &cb, (int64_t)svc->retry_timeout_s * 1000);
    }
    cb.expiry_ms = cb.desired_time_ms + CB_RETENTION_MS;

    Eg__Event ev;
    init_event(&ev, event_id, &cb, EG__STATE__STATE_UNSPECIFIED);
    cb_create_opts_t opts = {.slot_capacity = capacity,
                             .max_active = svc->max_active_per_number,
                             .max_per_day = svc->max_per_number_per_day,
                             .idem_key = req->idempotency_key};
    cb_create_result_t res;
    cb_followup_t follow;
    cb_followup_init(&follow, EG__STATE__STATE_UNSPECIFIED, &cb);
    st = cb_store_create(w->store, &w->scripts, &cb, &ev, &opts, &res, &follow);
    if (st == EG_OK && res.replayed) {
        /* The Idempotency-Key was used before: answer with that first callback. */
        Eg__Callback *first = NULL;
        st = cb_store_get(w->store, req->tenant_id, res.existing_id, &first, NULL, NULL);
        if (st == EG_OK) {
            reply->callback = first;
            set_status(reply, EG_OK, NULL);
        } else {
            set_status(reply, EG_ECONFLICT,
                       "Idempotency-Key: already used for callback %s, which no longer exists",
                       res.existing_id);
        }
        goto out;
    }
    if (st == EG_ELIMIT) {
        if (res.limit_kind == CB_LIMIT_ACTIVE)
            set_status(reply, st,
                       "phoneNumber: this number already has %d active callbacks in service '%s' "
                       "(maxActivePerNumber)",
                       res.count, req->service);
        else
            set_status(reply, st,
                       "phoneNumber: this number already booked %d callbacks in service '%s' in "
                       "the last 24 hours (maxPerNumberPerDay)",
                       res.count, req->service);
        goto out;
    }
    if (st == EG_EFULL) {
        char iso[EG_ISO_LEN + 1];
        eg_time_format_iso(cb.slot_start_ms, iso);
        set_status(reply, st, "desiredTime: the slot starting %s is full (%d of %d booked)", iso,
                   res.count, capacity);
        propose_slots(w, svc, req->tenant_id, cb.slot_start_ms, now, horizon_end, reply);
        goto out;
    }
    if (st == EG_ECONFLICT) {
        /* The id exists: this is a retry of a create whose answer was lost. Answer with the
         * record as it stands; the id space is per tenant, so this never crosses tenants. */
        Eg__Callback *existing = NULL;
        st = cb_store_get(w->store, req->tenant_id, id, &existing, NULL, NULL);
        if (st == EG_OK) {
            reply->callback = existing;
            set_status(reply, EG_OK, NULL);
            goto out;
        }
    }
    if (st != EG_OK) {
        eg_log_error("create for service %s failed: %s", req->service, eg_status_str(st));
        set_status(reply, st, "callback store unavailable");
        goto out;
    }
    remember(w, &cb);
    after_write(w, &follow, &cb);
    reply->callback = clone_cb(&cb);
    set_status(reply, EG_OK, NULL);
    eg_counter_inc(w->s->created);
    eg_log_info("callback %s created for service %s in state %s", id, req->service,
                cb_state_name(cb.state));
out:
    lc_free_attempts(&cb);
    svc_registry_release(w->s->services, svc);
}

void cb_retrieve(worker_t *w, const Eg__IdRequest *req, Eg__CallbackReply *reply)
{
    Eg__Callback *cb = NULL;
    eg_status_t st = cb_store_get(w->store, req->tenant_id, req->id, &cb, NULL, NULL);
    if (st == EG_ENOTFOUND) {
        set_status(reply, st, "id: callback %s not found", req->id);
        return;
    }
    if (st != EG_OK) {
        set_status(reply, st, "callback store unavailable");
        return;
    }
    reply->callback = cb;
    reply->position_in_queue = cb_store_queue_position(w->store, cb);
    reply->estimated_wait_s = -1;
    if (cb->state == EG__STATE__STATE_PROCESSING)
        reply->estimated_wait_s = 0;
    else if (reply->position_in_queue > 0)
        reply->estimated_wait_s =
            q_ewt_for(w, req->tenant_id, cb->virtual_queue, reply->position_in_queue);
    set_status(reply, EG_OK, NULL);
}

/* What a change does to a record: fill next (a copy of prev) and say whether to write it. */
typedef lc_verdict_t (*mutate_fn)(const Eg__Callback *prev, Eg__Callback *next, void *arg,
                                  eg_status_t *st);

/* Read, change, compare-and-set; again when the record changed meanwhile. On EG_OK with a write,
 * *written (when non-NULL) receives the new record (caller frees). LC_IGNORE is EG_OK with
 * *written NULL. */
/* apply, starting from a record the caller read (owned by apply_read from then on) instead of
 * reading it again; NULL reads it. */
static eg_status_t apply_read(worker_t *w, const char *tenant, const char *id, mutate_fn mutate,
                              void *arg, Eg__Callback **written, Eg__State *from, cb_read_t *read)
{
    if (written)
        *written = NULL;
    for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
        Eg__Callback *prev = NULL, *next = NULL;
        char *blob = NULL, event_id[EG_UUID_STR_LEN + 1];
        size_t blob_len = 0;
        eg_status_t st = EG_OK;
        bool cached = false;
        cb_read_t first = {0};
        if (attempt == 0 && !(read && read->cb)) {
            st = read_record(w, tenant, id, &first);
            read = &first;
        }
        if (attempt == 0 && st == EG_OK) {
            prev = read->cb;
            blob = read->blob;
            blob_len = read->len;
            cached = read->cached;
        } else if (attempt > 0) {
            st = cb_store_get(w->store, tenant, id, &prev, &blob, &blob_len);
        }
        if (st != EG_OK)
            return st;
        if (from)
            *from = prev->state;
        next = clone_cb(prev);
        lc_verdict_t v = mutate(prev, next, arg, &st);
        if (v == LC_APPLY && !lc_live(next->state))
            next->watch_ms = 0; /* the live ones are set by their mutate (lc_watch) */
        if (v != LC_APPLY) {
            eg__callback__free_unpacked(prev, NULL);
            eg__callback__free_unpacked(next, NULL);
            free(blob);
            if (cached) { /* decided on a remembered record: decide again on the stored one */
                blob_cache_forget(w->s->blobs, tenant, id);
                continue;
            }
            return st;
        }
        Eg__Event ev;
        init_event(&ev, event_id, next, prev->state);
        /* A never-dispatched SCHEDULED callback holds a place in its slot; give it back. */
        int release = prev->state == EG__STATE__STATE_SCHEDULED && prev->attempts == 0 &&
                      next->state != EG__STATE__STATE_SCHEDULED;
        cb_followup_t follow;
        cb_followup_init(&follow, prev->state, next);
        st = cb_store_transition(w->store, &w->scripts, blob, blob_len, prev, next, &ev, release,
                                 &follow);
        free(blob);
        eg__callback__free_unpacked(prev, NULL);
        if (st == EG_OK) {
            remember(w, next);
            after_write(w, &follow, next);
            if (next->state == EG__STATE__STATE_COMPLETED)
                eg_counter_inc(w->s->completed);
            if (written)
                *written = next;
            else
                eg__callback__free_unpacked(next, NULL);
            return EG_OK;
        }
        eg__callback__free_unpacked(next, NULL);
        if (cached)
            blob_cache_forget(w->s->blobs, tenant, id);
        if (st != EG_ECONFLICT)
            return st;
    }
    return EG_ECONFLICT;
}

static eg_status_t apply(worker_t *w, const char *tenant, const char *id, mutate_fn mutate,
                         void *arg, Eg__Callback **written, Eg__State *from)
{
    return apply_read(w, tenant, id, mutate, arg, written, from, NULL);
}

static lc_verdict_t mutate_cancel(const Eg__Callback *prev, Eg__Callback *next, void *arg,
                                  eg_status_t *st)
{
    *st = lc_cancel(prev, *(const int64_t *)arg, next);
    return *st == EG_OK ? LC_APPLY : LC_IGNORE;
}

void cb_cancel(worker_t *w, const Eg__IdRequest *req, Eg__CallbackReply *reply)
{
    int64_t now = eg_now_ms();
    Eg__Callback *done = NULL;
    Eg__State from = EG__STATE__STATE_UNSPECIFIED;
    eg_status_t st = apply(w, req->tenant_id, req->id, mutate_cancel, &now, &done, &from);
    if (st == EG_OK && done) {
        reply->callback = done;
        set_status(reply, EG_OK, NULL);
        eg_counter_inc(w->s->cancelled);
        eg_log_info("callback %s cancelled (was %s)", req->id, cb_state_name(from));
    } else if (st == EG_ENOTFOUND) {
        set_status(reply, st, "id: callback %s not found", req->id);
    } else if (st == EG_ESTATE) {
        set_status(reply, st, "id: callback %s cannot be cancelled in state %s", req->id,
                   cb_state_name(from));
    } else if (st == EG_ECONFLICT) {
        set_status(reply, st, "id: callback %s is changing; try again", req->id);
    } else {
        set_status(reply, st, "callback store unavailable");
    }
}

typedef struct {
    const Eg__ProgressRequest *req;
    lc_retry_t retry;
    int64_t now;
} progress_arg_t;

static lc_verdict_t mutate_progress(const Eg__Callback *prev, Eg__Callback *next, void *arg,
                                    eg_status_t *st)
{
    progress_arg_t *p = arg;
    lc_verdict_t v =
        lc_on_progress(prev, p->req->attempt, p->req->result, &p->retry, p->now, next, st);
    if (v == LC_APPLY)
        lc_watch(prev, next, (int64_t)p->retry.timeout_s * 1000);
    return v;
}

void cb_progress(worker_t *w, const Eg__ProgressRequest *req, Eg__CallbackReply *reply)
{
    progress_arg_t p = {.req = req, .now = eg_now_ms(), .retry = {3, 300, 14400}};
    if (!lc_result_known(req->result)) {
        set_status(reply, EG_EINVAL, "result: '%.40s' is not a call.progress result", req->result);
        return;
    }
    /* Retry settings come from the callback's service: the record read for them is the one the
     * first compare-and-set starts from. */
    cb_read_t cur;
    eg_status_t st = read_record(w, req->tenant_id, req->callback_id, &cur);
    if (st == EG_OK) {
        const svc_config_t *svc = NULL;
        if (svc_registry_get(w->s->services, w->pg, cur.cb->tenant_id, cur.cb->service, &svc) ==
            EG_OK) {
            p.retry.max_attempts = svc->retry_max_attempts;
            p.retry.delay_s = svc->retry_delay_s;
            p.retry.timeout_s = svc->retry_timeout_s;
            svc_registry_release(w->s->services, svc);
        }
        Eg__Callback *done = NULL;
        st =
            apply_read(w, req->tenant_id, req->callback_id, mutate_progress, &p, &done, NULL, &cur);
        if (st == EG_OK && done) {
            eg_counter_inc(w->s->progress);
            eg_log_info("callback %s attempt %u: %s -> %s%s%s", req->callback_id, req->attempt,
                        req->result, cb_state_name(done->state), done->reason ? " " : "",
                        eg_reason_name((int)done->reason));
            reply->callback = done;
        }
    }
    if (st == EG_ENOTFOUND)
        set_status(reply, st, "callback_id: callback %s not found", req->callback_id);
    else if (st != EG_OK)
        set_status(reply, st, "could not apply %s", req->result);
    else
        set_status(reply, EG_OK, NULL);
}

typedef struct {
    int64_t now;
    lc_retry_t retry;
    const hours_t *hours;      /* NULL when the service is gone: dispatch anyway */
    bool complete_when_closed; /* closedAtDispatch "complete" */
    const char *outcome;       /* for the log: "dispatched", "deferred", "expired" */
} dispatch_arg_t;

/* A due callback is handed to the voice platform, unless it expired (FAIL_TIMEOUT_TTL) or its
 * service is closed now: then it waits for the next opening (or expires if none comes before
 * its expiry). Business hours are checked again here because they may have changed since the
 * booking, and a retry's due time may fall outside them. */
static lc_verdict_t mutate_dispatch(const Eg__Callback *prev, Eg__Callback *next, void *arg,
                                    eg_status_t *st)
{
    dispatch_arg_t *d = arg;
    *st = EG_OK;
    if (lc_live(prev->state)) { /* a dialled callback at its watch time */
        lc_verdict_t v = lc_attempt_timeout(prev, &d->retry, d->now, next);
        d->outcome = v == LC_APPLY ? "attempt given up (no progress)" : "not yet";
        return v;
    }
    if (prev->state != EG__STATE__STATE_SCHEDULED || prev->due_ms > d->now)
        return LC_IGNORE; /* another dispatcher was first, or it moved */
    if (prev->expiry_ms && d->now >= prev->expiry_ms) {
        lc_expire(prev, d->now, next);
        d->outcome = "expired";
        return LC_APPLY;
    }
    if (d->hours && !hours_is_open(d->hours, d->now)) {
        int64_t limit = prev->expiry_ms ? prev->expiry_ms - d->now : 14LL * 86400000;
        int64_t open = hours_next_open(d->hours, d->now, limit);
        if (d->complete_when_closed) {
            lc_closed(prev, d->now, next);
            d->outcome = "completed: the service is closed";
        } else if (open < 0) {
            lc_expire(prev, d->now, next);
            d->outcome = "expired";
        } else {
            lc_defer(prev, open, d->now, next);
            d->outcome = "deferred to the next opening";
        }
        return LC_APPLY;
    }
    lc_dispatch(next, d->now);
    lc_watch(prev, next, (int64_t)d->retry.timeout_s * 1000);
    d->outcome = "dispatched";
    return LC_APPLY;
}

eg_status_t cb_dispatch_due(worker_t *w, const char *tenant, const char *service, const char *id,
                            bool *dispatched)
{
    dispatch_arg_t d = {.now = eg_now_ms(), .retry = {3, 300, 14400}, .outcome = "unchanged"};
    const svc_config_t *svc = NULL;
    if (svc_registry_get(w->s->services, w->pg, tenant, service, &svc) == EG_OK) {
        d.hours = svc_registry_hours(svc);
        d.retry.max_attempts = svc->retry_max_attempts;
        d.retry.delay_s = svc->retry_delay_s;
        d.retry.timeout_s = svc->retry_timeout_s;
        d.complete_when_closed = svc->complete_when_closed;
    }
    Eg__Callback *done = NULL;
    eg_status_t st = apply(w, tenant, id, mutate_dispatch, &d, &done, NULL);
    if (svc)
        svc_registry_release(w->s->services, svc);
    if (st == EG_ENOTFOUND) /* expired or erased: nothing left to dispatch */
        due_store_forget(w->store, tenant, service, id);
    *dispatched = st == EG_OK && done && done->state == EG__STATE__STATE_QUEUED;
    if (done) {
        if (*dispatched)
            eg_counter_inc(w->s->dispatched);
        else if (lc_gave_up(EG__STATE__STATE_QUEUED, done))
            eg_counter_inc(w->s->gave_up);
        eg_log_info("callback %s due: %s (attempt %u)", id, d.outcome, done->attempts);
        eg__callback__free_unpacked(done, NULL);
    }
    return st == EG_ENOTFOUND ? EG_OK : st;
}

void cb_reschedule(worker_t *w, const Eg__RescheduleRequest *req, Eg__CallbackReply *reply)
{
    for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
        Eg__Callback *prev = NULL, *next = NULL;
        char *blob = NULL, event_id[EG_UUID_STR_LEN + 1];
        size_t blob_len = 0;
        const svc_config_t *svc = NULL;
        eg_status_t st = cb_store_get(w->store, req->tenant_id, req->id, &prev, &blob, &blob_len);
        if (st == EG_ENOTFOUND) {
            set_status(reply, st, "id: callback %s not found", req->id);
            return;
        }
        if (st != EG_OK) {
            set_status(reply, st, "callback store unavailable");
            return;
        }
        if (prev->state != EG__STATE__STATE_SCHEDULED) {
            set_status(reply, EG_ESTATE, "id: callback %s is %s; only SCHEDULED callbacks move",
                       req->id, cb_state_name(prev->state));
            goto next_try_done;
        }
        st = svc_registry_get(w->s->services, w->pg, req->tenant_id, prev->service, &svc);
        if (st != EG_OK) {
            set_status(reply, st == EG_ENOTFOUND ? EG_ESTATE : st,
                       "id: the callback's service '%s' is unavailable", prev->service);
            goto next_try_done;
        }
        int64_t now = eg_now_ms(), slot_start = 0;
        int capacity = 0, used = 0;
        if (!check_desired(svc, req->desired_time_ms, now, reply, &slot_start, &capacity))
            goto next_try_done;
        next = clone_cb(prev);
        next->desired_time_ms = req->desired_time_ms;
        next->due_ms = req->desired_time_ms;
        next->slot_start_ms = slot_start;
        next->expiry_ms = req->desired_time_ms + CB_RETENTION_MS;
        next->updated_ms = now;
        next->version = prev->version + 1;
        Eg__Event ev;
        init_event(&ev, event_id, next, prev->state);
        cb_followup_t follow;
        cb_followup_init(&follow, prev->state, next);
        st = cb_store_reschedule(w->store, &w->scripts, blob, blob_len, prev, next, capacity, &ev,
                                 &used, &follow);
        if (st == EG_OK) {
            after_write(w, &follow, next);
            eg_log_info("callback %s rescheduled", req->id);
            reply->callback = next;
            next = NULL;
            set_status(reply, EG_OK, NULL);
        } else if (st == EG_EFULL) {
            char iso[EG_ISO_LEN + 1];
            eg_time_format_iso(slot_start, iso);
            set_status(reply, st, "desiredTime: the slot starting %s is full (%d of %d booked)",
                       iso, used, capacity);
            propose_slots(w, svc, req->tenant_id, slot_start, now,
                          now + (int64_t)svc->horizon_days * 86400000LL, reply);
        } else if (st != EG_ECONFLICT) {
            set_status(reply, st, "callback store unavailable");
        }
    next_try_done:
        if (svc)
            svc_registry_release(w->s->services, svc);
        if (next)
            eg__callback__free_unpacked(next, NULL);
        eg__callback__free_unpacked(prev, NULL);
        free(blob);
        if (reply->status)
            return;
    }
    set_status(reply, EG_ECONFLICT, "id: callback %s is changing; try again", req->id);
}

#define FIND_SCAN_MAX 1000

void cb_find(worker_t *w, const Eg__FindRequest *req, Eg__FindReply *reply)
{
    char *ids[FIND_SCAN_MAX];
    int n = 0, matched = 0;
    int limit = req->limit > 0 && req->limit <= 100 ? req->limit : 20;
    int offset = req->offset > 0 ? req->offset : 0;
    eg_status_t st =
        cb_store_phone_ids(w->store, req->tenant_id, req->phone, FIND_SCAN_MAX, ids, &n);
    reply->callbacks = eg_xcalloc((size_t)limit, sizeof *reply->callbacks);
    for (int i = 0; i < n; i++) {
        Eg__Callback *cb = NULL;
        if (st == EG_OK &&
            cb_store_get(w->store, req->tenant_id, ids[i], &cb, NULL, NULL) == EG_OK &&
            (!req->service[0] || strcmp(cb->service, req->service) == 0) &&
            (req->state == 0 || (int)cb->state == req->state)) {
            if (matched >= offset && (int)reply->n_callbacks < limit) {
                reply->callbacks[reply->n_callbacks++] = cb;
                cb = NULL;
            }
            matched++;
        }
        if (cb)
            eg__callback__free_unpacked(cb, NULL);
        free(ids[i]);
    }
    reply->total = matched;
    reply->status = eg_xmalloc(sizeof *reply->status);
    eg__status__init(reply->status);
    reply->status->code = (int32_t)st;
    if (st != EG_OK)
        reply->status->message = eg_xstrdup("callback store unavailable");
}

/* ---- the customer called in on their own (call.inbound; see callin.c) ---- */

static lc_verdict_t mutate_contacted(const Eg__Callback *prev, Eg__Callback *next, void *arg,
                                     eg_status_t *st)
{
    *st = lc_customer_contacted(prev, *(const int64_t *)arg, next);
    if (*st == EG_OK)
        return LC_APPLY;
    *st = EG_OK; /* an agent has it, or it is over: nothing to do */
    return LC_IGNORE;
}

#define CONTACT_SCAN_MAX 100

eg_status_t cb_customer_contacted(worker_t *w, const char *tenant, const char *phone,
                                  char ***ids_out, size_t *n_out)
{
    char *ids[CONTACT_SCAN_MAX];
    int n = 0;
    *ids_out = NULL;
    *n_out = 0;
    eg_status_t st = cb_store_phone_ids(w->store, tenant, phone, CONTACT_SCAN_MAX, ids, &n);
    if (st != EG_OK)
        return st;
    int64_t now = eg_now_ms();
    for (int i = 0; i < n; i++) {
        Eg__Callback *done = NULL;
        Eg__State from = EG__STATE__STATE_UNSPECIFIED;
        eg_status_t one = apply(w, tenant, ids[i], mutate_contacted, &now, &done, &from);
        if (one == EG_OK && done) {
            eg_log_info("callback %s completed: the customer called in (was %s)", ids[i],
                        cb_state_name(from));
            *ids_out = eg_xrealloc(*ids_out, (*n_out + 1) * sizeof **ids_out);
            (*ids_out)[(*n_out)++] = ids[i];
            ids[i] = NULL;
            eg__callback__free_unpacked(done, NULL);
        } else if (one != EG_OK && one != EG_ENOTFOUND && st == EG_OK) {
            st = one; /* a later call.inbound with the same call_id retries the rest */
        }
        free(ids[i]);
    }
    return st;
}
