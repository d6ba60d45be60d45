/* The outbox relay. Every state change appends its event to the tenant's outbox stream in the
 * same Lua step as the change (callback_store.c). This thread moves those events to JetStream:
 *
 *   for each tenant in eg:outbox:pending:
 *     XRANGE the outbox (oldest first), publish each event to engage.events.<tenant> with the
 *     event id as Nats-Msg-Id (plus a Dispatch to engage.dispatch.<tenant> when the change hands
 *     the callback to, or takes it back from, the voice platform), and XDEL it only once
 *     JetStream acknowledged it;
 *     an empty outbox leaves the pending set, with a re-check against a concurrent append.
 *
 * A crash between publish and XDEL publishes the event again after restart: JetStream drops it
 * inside its duplicate window and every consumer is idempotent beyond it. Several schedulers may
 * relay the same tenant at once with the same effect. The thread sleeps until a worker wakes it
 * and polls every RELAY_POLL_MS as a safety net. */
#include "relay.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage.pb-c.h"
#include "engage/log.h"
#include "engage/mem.h"
#include "engage/subjects.h"

#define RELAY_POLL_MS 2000
#define RELAY_BATCH "256"
#define PUBLISH_TIMEOUT_MS 5000

struct relay {
    sched_t *s;
    eg_store_t *store;
    pthread_t thread;
};

/* Publish the dispatch command an event implies. */
static eg_status_t publish_dispatch(relay_t *r, const Eg__Event *ev)
{
    Eg__Dispatch d = EG__DISPATCH__INIT;
    char id[64], subject[128];
    snprintf(id, sizeof id, "d-%s", ev->event_id);
    d.dispatch_id = id;
    d.kind = ev->dispatch ? EG__DISPATCH_KIND__DISPATCH_DIAL : EG__DISPATCH_KIND__DISPATCH_CANCEL;
    d.callback = ev->callback;
    d.attempt = ev->callback->attempts;
    size_t n = eg__dispatch__get_packed_size(&d);
    uint8_t *buf = eg_xmalloc(n ? n : 1);
    eg__dispatch__pack(&d, buf);
    snprintf(subject, sizeof subject, "%s%s", EG_SUBJ_DISPATCH_PREFIX, ev->callback->tenant_id);
    eg_status_t st =
        eg_bus_js_publish(r->s->bus, subject, buf, n, id, ev->corr_id, PUBLISH_TIMEOUT_MS, NULL);
    free(buf);
    return st;
}

/* Publish one outbox entry (fields e = event id, d = packed Event). */
static eg_status_t publish_entry(relay_t *r, const char *tenant, const eg_reply_t *fields)
{
    const eg_reply_t *data = NULL;
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (strcmp(fields->element[i]->str, "d") == 0)
            data = fields->element[i + 1];
    if (!data) {
        eg_log_error("outbox of tenant %s holds an entry without data; dropping it", tenant);
        return EG_OK;
    }
    Eg__Event *ev = eg__event__unpack(NULL, data->len, (const uint8_t *)data->str);
    if (!ev || !ev->callback) {
        eg_log_error("outbox of tenant %s holds an undecodable event; dropping it", tenant);
        if (ev)
            eg__event__free_unpacked(ev, NULL);
        return EG_OK;
    }
    char subject[128];
    snprintf(subject, sizeof subject, "%s%s", EG_SUBJ_EVENTS_PREFIX, tenant);
    eg_status_t st = eg_bus_js_publish(r->s->bus, subject, data->str, data->len, ev->event_id,
                                       ev->corr_id, PUBLISH_TIMEOUT_MS, NULL);
    if (st == EG_OK && (ev->dispatch || ev->cancel_voice))
        st = publish_dispatch(r, ev);
    eg__event__free_unpacked(ev, NULL);
    return st;
}

/* Relay one tenant's outbox until it is empty. Returns EG_OK when drained. */
static eg_status_t drain_tenant(relay_t *r, const char *tenant)
{
    char k_out[120];
    cb_key(k_out, sizeof k_out, tenant, "outbox", NULL);
    for (;;) {
        const char *range[] = {"XRANGE", k_out, "-", "+", "COUNT", RELAY_BATCH};
        eg_reply_t *rep = NULL;
        eg_status_t st = eg_store_command(r->store, 6, range, NULL, &rep);
        if (st != EG_OK)
            return st;
        if (rep->type != EG_REPLY_ARRAY || rep->elements == 0) {
            eg_reply_free(rep);
            break;
        }
        size_t done = 0;
        for (size_t i = 0; i < rep->elements && st == EG_OK; i++) {
            const eg_reply_t *entry = rep->element[i];
            st = publish_entry(r, tenant, entry->element[1]);
            if (st == EG_OK)
                done++;
        }
        if (done) {
            const char **del = eg_xcalloc(done + 2, sizeof *del);
            del[0] = "XDEL";
            del[1] = k_out;
            for (size_t i = 0; i < done; i++)
                del[i + 2] = rep->element[i]->element[0]->str;
            eg_reply_t *dr = NULL;
            eg_status_t dst = eg_store_command(r->store, (int)done + 2, del, NULL, &dr);
            eg_reply_free(dr);
            free(del);
            eg_counter_add(r->s->relayed, done);
            if (st == EG_OK)
                st = dst;
        }
        eg_reply_free(rep);
        if (st != EG_OK)
            return st;
    }
    /* Empty: leave the pending set, then look again in case a write slipped in between. */
    const char *srem[] = {"SREM", CB_KEY_OUTBOX_PENDING, tenant};
    const char *xlen[] = {"XLEN", k_out};
    eg_reply_t *a = NULL, *b = NULL;
    eg_status_t st = eg_store_command(r->store, 3, srem, NULL, &a);
    if (st == EG_OK)
        st = eg_store_command(r->store, 2, xlen, NULL, &b);
    if (st == EG_OK && b->type == EG_REPLY_INTEGER && b->integer > 0) {
        const char *sadd[] = {"SADD", CB_KEY_OUTBOX_PENDING, tenant};
        eg_reply_t *c = NULL;
        st = eg_store_command(r->store, 3, sadd, NULL, &c);
        eg_reply_free(c);
        wake_signal(&r->s->relay_wake);
    }
    eg_reply_free(a);
    eg_reply_free(b);
    return st;
}

static void relay_pass(relay_t *r)
{
    const char *members[] = {"SMEMBERS", CB_KEY_OUTBOX_PENDING};
    eg_reply_t *rep = NULL;
    if (eg_store_command(r->store, 2, members, NULL, &rep) != EG_OK)
        return;
    for (size_t i = 0; rep->type == EG_REPLY_ARRAY && i < rep->elements; i++) {
        eg_status_t st = drain_tenant(r, rep->element[i]->str);
        if (st != EG_OK) {
            eg_log_warn("relay of tenant %s paused: %s", rep->element[i]->str, eg_status_str(st));
            break;
        }
    }
    eg_reply_free(rep);
}

static void *run(void *arg)
{
    relay_t *r = arg;
    while (!r->s->stopping) {
        relay_pass(r);
        wake_wait(&r->s->relay_wake, RELAY_POLL_MS);
    }
    relay_pass(r); /* publish what the last requests wrote */
    return NULL;
}

eg_status_t relay_start(relay_t **out, sched_t *s)
{
    relay_t *r = eg_xcalloc(1, sizeof *r);
    r->s = s;
    eg_status_t st = eg_store_open(&r->store, s->cfg->redis_url, 5000);
    if (st != EG_OK) {
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
    eg_store_close(r->store);
    free(r);
}
