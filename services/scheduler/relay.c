/* The outbox relay. Every state change appends its event to the tenant's outbox stream in the
 * same Lua step as the change (callback_store.c); the writer then adds the tenant to
 * eg:outbox:pending (a second step, since that key is in no tenant's hash slot) and hints this
 * thread with the tenant (relay_hint). This thread moves the events to JetStream.
 *
 * A pass relays the tenants it was hinted; every RELAY_POLL_MS (and after a plain wake_signal,
 * or when hints overflowed) it also lists eg:outbox:pending, the safety net for writes of other
 * schedulers, failed hints and restarts. Per tenant, one round trip per batch:
 *
 *   XRANGE outbox - + COUNT 256                        the batch (oldest first)
 *   publish it to JetStream asynchronously             event id = Nats-Msg-Id; plus a Dispatch
 *                                                      when the change hands the callback to, or
 *                                                      takes it back from, the voice platform
 *   pipeline: [SREM pending tenant]                    listed tenant, batch looks like the last
 *             XDEL outbox <ids JetStream acknowledged>
 *             [XRANGE outbox - + COUNT 256]            the next batch (and the re-check after
 *                                                      an SREM); not after a hinted tenant's
 *                                                      last batch: a new write hints again
 *
 * (lib/stream.c builds the XRANGE and XDEL commands and parses the entries; the pipeline is ours.)
 *
 * Leaving the pending set: a writer XADDs to the outbox before it SADDs the tenant. Our SREM
 * precedes our XRANGE on one connection, so when that XRANGE finds the outbox empty every
 * writer's XADD came after it, and its SADD after our SREM: the tenant is back in the set. When
 * the XRANGE finds entries, we relay them and SADD the tenant back unless a later SREM + empty
 * read ends the drain. (A Lua script cannot do this: the pending set and the outbox live in
 * different hash slots on Redis Cluster; XDEL and XRANGE need no atomicity, only order.) Only
 * listed tenants leave the set: a hinted tenant stays in it after its pass and the next listing
 * (within RELAY_POLL_MS) removes it once its outbox is empty, so a quiet hinted pass is two round
 * trips (read, acknowledge) and a tenant that goes quiet costs one removal. While a tenant is
 * out of the set with entries left (one publish long), a crash leaves them to the next write of
 * the tenant or to the dispatcher's outbox check (dispatcher_recover), which puts every
 * non-empty outbox back in the set.
 *
 * Order and loss: an entry is XDELed only once JetStream acknowledged it (a duplicate inside the
 * window counts). A batch is published in waves of at most one event per callback, and the next
 * wave starts only when every message of the previous one was acknowledged, so the events of one
 * callback reach JetStream in outbox order even when a publish fails midway (a failed entry and
 * the entries of later waves stay in the outbox and go again, oldest first). A crash between
 * publish and XDEL publishes the event again after restart: JetStream drops it inside its
 * duplicate window and every consumer is idempotent beyond it. Several schedulers may relay one
 * tenant at once with the same effect.
 *
 * Pacing: a pass started by writers starts at most every RELAY_MIN_INTERVAL_MS after the
 * previous one, so under load one pass takes every event written meanwhile; a tenant gets
 * RELAY_ROUNDS batches per pass, then the others get their turn and it continues in the next
 * pass at once. A failed tenant (or all of them, when Redis or NATS is unreachable) is retried
 * after a backoff of 50 ms doubling to 2 s, never in a tight loop. */
#include "relay.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engage.pb-c.h"
#include "engage/log.h"
#include "engage/mem.h"
#include "engage/stream.h"
#include "engage/subjects.h"
#include "engage/timeutil.h"
#include "outbox_store.h"
#include "store_keys.h"

#define RELAY_POLL_MS 2000
#define RELAY_ROUNDS 16
#define RELAY_MIN_INTERVAL_MS 5
#define RELAY_BACKOFF_MIN_MS 50
#define RELAY_BACKOFF_MAX_MS 2000
#define PUBLISH_TIMEOUT_MS 15000 /* covers a JetStream leader election (4-7 s) */

struct relay {
    sched_t *s;
    eg_store_t *store;
    eg_bus_js_batch_t *batch;
    pthread_t thread;
    /* The relay thread's own state. */
    wake_names_t todo;  /* tenants for the next pass (all: list the pending set too) */
    wake_names_t carry; /* tenants with entries left after their RELAY_ROUNDS batches */
    wake_names_t retry; /* tenants that failed (all: everything waits), retried at retry_at */
    int64_t retry_at, backoff_ms, last_full;
};

/* One outbox entry of the batch in hand. */
typedef struct {
    const char *id;   /* stream entry id, borrowed from the batch read with XRANGE */
    const char *data; /* the packed Event, borrowed likewise */
    size_t data_len;
    Eg__Event *ev; /* NULL: no data or undecodable, dropped (XDELed unpublished) */
    size_t first_slot, nslots;
} entry_t;

void relay_hint(sched_t *s, const char *tenant)
{
    wake_signal_name(&s->relay_wake, tenant);
}

static void names_clear(wake_names_t *set)
{
    set->n = 0;
    set->all = false;
}

/* Decode one outbox entry (field d = the packed Event). Returns false when the entry could not
 * be read as one (then the batch stops before it). */
static bool decode_entry(const char *tenant, const eg_stream_entry_t *entry, entry_t *e)
{
    if (entry->status != EG_OK)
        return false;
    e->id = entry->id;
    e->data = eg_stream_entry_field(entry, "d", &e->data_len);
    if (!e->data) {
        eg_log_error("outbox of tenant %s holds entry %s without data; dropping it", tenant, e->id);
        return true;
    }
    e->ev = eg__event__unpack(NULL, e->data_len, (const uint8_t *)e->data);
    if (e->ev && (!e->ev->callback || !e->ev->callback->id || !e->ev->event_id)) {
        eg__event__free_unpacked(e->ev, NULL);
        e->ev = NULL;
    }
    if (!e->ev)
        eg_log_error("outbox of tenant %s holds an undecodable event (entry %s); dropping it",
                     tenant, e->id);
    return true;
}

/* Send an entry's messages without waiting: the event to engage.events.<tenant>, and the
 * dispatch command it implies to engage.dispatch.<tenant>. Each takes the next slot. */
static eg_status_t send_entry(relay_t *r, const char *tenant, entry_t *e, size_t *slot)
{
    const Eg__Event *ev = e->ev;
    char subject[128];
    snprintf(subject, sizeof subject, "%s%s", EG_SUBJ_EVENTS_PREFIX, tenant);
    e->first_slot = *slot;
    e->nslots = 1;
    (*slot)++;
    eg_status_t st =
        eg_bus_js_batch_add(r->batch, subject, e->data, e->data_len, ev->event_id, ev->corr_id);
    if (st != EG_OK || !(ev->dispatch || ev->cancel_voice))
        return st;

    Eg__Dispatch d = EG__DISPATCH__INIT;
    char id[64];
    snprintf(id, sizeof id, "d-%s", ev->event_id);
    d.dispatch_id = id;
    d.kind = ev->dispatch ? EG__DISPATCH_KIND__DISPATCH_DIAL : EG__DISPATCH_KIND__DISPATCH_CANCEL;
    d.callback = ev->callback;
    d.attempt = ev->callback->attempts;
    size_t n = eg__dispatch__get_packed_size(&d);
    uint8_t *buf = eg_xmalloc(n ? n : 1);
    eg__dispatch__pack(&d, buf);
    snprintf(subject, sizeof subject, "%s%s", EG_SUBJ_DISPATCH_PREFIX, ev->callback->tenant_id);
    e->nslots = 2;
    (*slot)++;
    st = eg_bus_js_batch_add(r->batch, subject, buf, n, id, ev->corr_id);
    free(buf);
    return st;
}

/* True when an entry in [from, to) carries an event of callback id. */
static bool callback_in(const entry_t *e, size_t from, size_t to, const char *id)
{
    for (size_t i = from; i < to; i++)
        if (e[i].ev && strcmp(e[i].ev->callback->id, id) == 0)
            return true;
    return false;
}

/* Publish a batch (read with XRANGE) in waves of at most one event per callback, each wave
 * acknowledged before the next starts. acked[i] tells which entries JetStream stored (or which
 * were dropped as undecodable). Returns the first failure; the waves stop there. */
static eg_status_t publish_batch(relay_t *r, const char *tenant, const eg_stream_batch_t *rep,
                                 bool *acked)
{
    size_t n = rep->n;
    entry_t *e = eg_xcalloc(n, sizeof *e);
    bool *slot_ok = eg_xcalloc(2 * n, sizeof *slot_ok);
    eg_status_t st = EG_OK;
    size_t i = 0;
    while (i < n && st == EG_OK) {
        size_t start = i, slots = 0;
        for (; i < n && st == EG_OK; i++) {
            if (!e[i].id && !decode_entry(tenant, &rep->entries[i], &e[i])) {
                eg_log_error("outbox of tenant %s: unexpected XRANGE reply", tenant);
                st = EG_EPROTO;
                break;
            }
            if (!e[i].ev)
                continue;
            if (callback_in(e, start, i, e[i].ev->callback->id))
                break; /* its earlier event is in flight: next wave */
            st = send_entry(r, tenant, &e[i], &slots);
        }
        eg_status_t wst = eg_bus_js_batch_wait(r->batch, PUBLISH_TIMEOUT_MS, slot_ok, slots);
        if (st == EG_OK)
            st = wst;
        for (size_t k = start; k < i; k++) {
            bool ok = e[k].id != NULL;
            for (size_t s = 0; s < e[k].nslots; s++)
                ok = ok && slot_ok[e[k].first_slot + s];
            acked[k] = ok;
        }
    }
    for (size_t k = 0; k < n; k++)
        if (e[k].ev)
            eg__event__free_unpacked(e[k].ev, NULL);
    free(slot_ok);
    free(e);
    return st;
}

typedef enum { DRAIN_DONE, DRAIN_MORE, DRAIN_FAILED } drain_t;

/* Relay one tenant's outbox: up to RELAY_ROUNDS batches, then DRAIN_MORE when entries may be
 * left. listed: the tenant came from listing the pending set, so an empty outbox leaves it. */
static drain_t drain_tenant(relay_t *r, const char *tenant, bool listed, eg_status_t *why)
{
    char *k_out = store_key(STORE_OUTBOX, tenant, NULL);
    outbox_step_t step = {.tenant = tenant, .k_out = k_out, .read = true};
    eg_stream_batch_t rep = {0};
    bool checked = false; /* rep was read right after our SREM */
    bool removed = false; /* our SREM took the tenant out of the set, and entries were left */
    drain_t result = DRAIN_DONE;
    eg_status_t st = outbox_store_step(r->store, &step, &rep);
    for (int round = 0; st == EG_OK; round++) {
        if (rep.n == 0) {
            if (checked || !listed)
                break;
            /* Listed but empty: leave the pending set, and look once more after the SREM. */
            eg_stream_batch_clear(&rep);
            step = (outbox_step_t){.tenant = tenant, .k_out = k_out, .srem = true, .read = true};
            st = outbox_store_step(r->store, &step, &rep);
            checked = true;
            removed = st == EG_OK && rep.n > 0;
            continue;
        }
        size_t n = rep.n, ndel = 0;
        bool *acked = eg_xcalloc(n, sizeof *acked);
        const char **del = eg_xcalloc(n, sizeof *del);
        eg_status_t pst = publish_batch(r, tenant, &rep, acked);
        for (size_t i = 0; i < n; i++)
            if (acked[i])
                del[ndel++] = rep.entries[i].id;
        bool go_on = pst == EG_OK && round + 1 < RELAY_ROUNDS;
        /* A short batch and no newer hint for the tenant: probably the last one. A listed tenant
         * leaves the pending set in this round trip, its read being the re-check; a hinted one
         * only acknowledges (it stays in the set until the next listing, and a write meanwhile
         * brings its own hint). */
        bool last = go_on && n < OUTBOX_BATCH && !wake_has_name(&r->s->relay_wake, tenant);
        step = (outbox_step_t){.tenant = tenant,
                               .k_out = k_out,
                               .sadd = removed && !(last && listed),
                               .srem = last && listed,
                               .read = go_on && !(last && !listed),
                               .del = del,
                               .ndel = ndel};
        eg_stream_batch_t next = {0};
        st = outbox_store_step(r->store, &step, &next);
        if (st == EG_OK)
            eg_counter_add(r->s->relayed, ndel);
        free(del);
        free(acked);
        eg_stream_batch_clear(&rep);
        rep = next; /* the batch's arrays move with it */
        if (st == EG_OK)
            st = pst;
        if (st != EG_OK)
            break;
        if (!go_on) {
            result = DRAIN_MORE;
            break;
        }
        if (!step.read)
            break; /* a hinted tenant's last batch: done */
        checked = step.srem;
        removed = step.srem && rep.n > 0;
    }
    eg_stream_batch_clear(&rep);
    free(k_out);
    if (st != EG_OK) {
        *why = st;
        return DRAIN_FAILED;
    }
    return result;
}

/* Redis or NATS unreachable (or too slow): every tenant would fail the same way. */
static bool unreachable(eg_status_t st)
{
    return st == EG_EUNAVAIL || st == EG_ETIMEOUT;
}

/* Relay one tenant and file it by the outcome. Returns false when everything must wait. */
static bool relay_one(relay_t *r, const char *tenant, bool listed, bool *failed)
{
    eg_status_t why = EG_OK;
    drain_t d = drain_tenant(r, tenant, listed, &why);
    if (d == DRAIN_MORE)
        wake_names_add(&r->carry, tenant);
    if (d != DRAIN_FAILED)
        return true;
    *failed = true;
    wake_names_add(&r->retry, tenant);
    eg_log_warn("relay of tenant %s paused: %s", tenant, eg_status_str(why));
    if (!unreachable(why))
        return true;
    r->retry.all = true;
    return false;
}

/* One pass over the tenants in r->todo (and, when due, every tenant in the pending set and
 * those waiting for a retry). final_pass: at stop, everything once more, no waiting. */
static void relay_pass(relay_t *r, bool final_pass)
{
    int64_t now = eg_mono_ms();
    bool waiting = r->retry.n || r->retry.all;
    if (waiting && (final_pass || now >= r->retry_at)) {
        wake_names_merge(&r->todo, &r->retry);
        names_clear(&r->retry);
    } else if (r->retry.all) {
        /* Everything waits for the retry time: keep what came meanwhile for then. */
        wake_names_merge(&r->retry, &r->todo);
        names_clear(&r->todo);
        return;
    }
    bool full = final_pass || r->todo.all || now - r->last_full >= RELAY_POLL_MS;
    outbox_tenants_t members = {0};
    bool failed = false, go_on = true;
    if (full) {
        eg_status_t st = outbox_store_pending(r->store, &members);
        r->last_full = now;
        if (st != EG_OK) {
            eg_log_warn("relay: cannot list %s: %s", STORE_KEY_OUTBOX_PENDING, eg_status_str(st));
            wake_names_merge(&r->retry, &r->todo);
            r->retry.all = true;
            failed = true;
            go_on = false;
        }
    }
    for (size_t i = 0; go_on && i < members.n; i++) {
        const char *t = members.name[i];
        if (wake_names_has(&r->retry, t))
            continue;
        go_on = relay_one(r, t, true, &failed);
    }
    for (size_t i = 0; go_on && i < r->todo.n; i++) {
        const char *t = r->todo.name[i];
        bool done = false;
        for (size_t k = 0; k < members.n && !done; k++)
            done = strcmp(members.name[k], t) == 0;
        if (done || wake_names_has(&r->retry, t))
            continue; /* relayed above, or waiting for its retry */
        go_on = relay_one(r, t, false, &failed);
    }
    if (!go_on) /* the tenants not reached wait too */
        for (size_t i = 0; i < r->todo.n; i++)
            wake_names_add(&r->retry, r->todo.name[i]);
    outbox_tenants_free(&members);
    names_clear(&r->todo);

    if (!r->retry.n && !r->retry.all) {
        r->backoff_ms = 0;
    } else if (failed) {
        r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : RELAY_BACKOFF_MIN_MS;
        if (r->backoff_ms > RELAY_BACKOFF_MAX_MS)
            r->backoff_ms = RELAY_BACKOFF_MAX_MS;
        r->retry_at = eg_mono_ms() + r->backoff_ms;
    }
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void *run(void *arg)
{
    relay_t *r = arg;
    wake_t *w = &r->s->relay_wake;
    wake_names_t *got = eg_xmalloc(sizeof *got);
    r->todo.all = true; /* the first pass looks at every tenant */
    while (!atomic_load(&r->s->stopping)) {
        int64_t started = eg_mono_ms();
        relay_pass(r, false);
        int64_t now = eg_mono_ms(), timeout = r->last_full + RELAY_POLL_MS - now;
        if (r->retry.all || (r->retry.n && r->retry_at - now < timeout))
            timeout = r->retry_at - now; /* with everything waiting, the listing waits too */
        if (r->carry.n || r->carry.all)
            timeout = 0; /* work left: go on at once */
        bool woken = wake_wait_names(w, timeout, got);
        wake_names_merge(&r->todo, got);
        wake_names_merge(&r->todo, &r->carry);
        names_clear(&r->carry);
        /* Woken by writers right after a pass: let them write a little more, so that the next
         * pass relays many events in one round trip per batch instead of one each. */
        int64_t since = eg_mono_ms() - started;
        if (woken && since < RELAY_MIN_INTERVAL_MS && !atomic_load(&r->s->stopping)) {
            sleep_ms(RELAY_MIN_INTERVAL_MS - since);
            wake_wait_names(w, 0, got);
            wake_names_merge(&r->todo, got);
        }
    }
    wake_wait_names(w, 0, got);
    wake_names_merge(&r->todo, got);
    wake_names_merge(&r->todo, &r->carry);
    relay_pass(r, true); /* publish what the last requests wrote */
    free(got);
    return NULL;
}

eg_status_t relay_start(relay_t **out, sched_t *s)
{
    relay_t *r = eg_xcalloc(1, sizeof *r);
    r->s = s;
    eg_status_t st = eg_store_open(&r->store, s->cfg->redis_url, 5000);
    if (st == EG_OK)
        st = eg_bus_js_batch_open(s->bus, &r->batch);
    if (st != EG_OK) {
        eg_store_close(r->store);
        free(r);
        return st;
    }
    pthread_create(&r->thread, NULL, run, r);
    *out = r;
    return EG_OK;
}

void relay_stop(relay_t *r)
{
    if (!r)
        return;
    wake_signal(&r->s->relay_wake);
    pthread_join(r->thread, NULL);
    eg_bus_js_batch_close(r->batch);
    eg_store_close(r->store);
    free(r);
}
