/* Fixtures of the integration tests of the callback store's scripts
 * (tests/integration/scheduler/{create,transition,reschedule}_script_test.c), run against the
 * suite's redis-server (ENGAGE_REDIS_URL):
 *
 *  - a_tenant_store: a connection with the scripts loaded, and a tenant of the test's own (every
 *    key of a tenant carries its hash tag, so tests running in parallel never share a key);
 *  - a_callback / a_change_of: a callback and its event built from what a test needs of them,
 *    the way the scheduler fills them in, and the next version of one;
 *  - the create options, named for what they set up (a_service_slot_of(2), no_slot(), ...);
 *  - one-line reads of Redis (ask_int, ask_nil, outbox_last_event, stored_blob).
 *
 * Key names are not built here: each test file has its own key_of at the top, the one place
 * to change when the scheduler's key builder replaces it. */
#ifndef TESTS_CALLBACK_FIXTURES_H
#define TESTS_CALLBACK_FIXTURES_H
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "callback_store.h"
#include "engage.pb-c.h"
#include "engage/ids.h"
#include "engage/mem.h"
#include "engage/store.h"
#include "engage/timeutil.h"

#define HOUR_MS 3600000LL
#define DAY_MS (24 * HOUR_MS)
/* Slot starts of the test callbacks: 2029-11-22 from 10:00 UTC, one hour apart. */
#define SLOT_10H 1890036000000LL
#define SLOT_11H (SLOT_10H + HOUR_MS)
#define SLOT_12H (SLOT_10H + 2 * HOUR_MS)

#define PHONE_ANA "+15550001001"
#define PHONE_BEN "+15550001002"
#define SERVICE "support"
#define VQUEUE "vq-support"

typedef struct {
    eg_store_t *store;
    cb_scripts_t scripts;
    char tenant[EG_UUID_STR_LEN + 1];
} tenant_store_t;

/* A connection to the suite's Redis with the callback scripts loaded, and a fresh tenant. */
static inline void a_tenant_store(tenant_store_t *t)
{
    const char *url = getenv("ENGAGE_REDIS_URL");
    cr_assert(url && *url, "ENGAGE_REDIS_URL is not set: run through `make test`");
    memset(t, 0, sizeof *t);
    cr_assert_eq(eg_store_open(&t->store, url, 2000), EG_OK, "redis at %s", url);
    cr_assert_eq(cb_store_init(t->store, &t->scripts), EG_OK, "loading the scripts");
    eg_uuid_v7_str(t->tenant);
}

static inline void close_tenant_store(tenant_store_t *t)
{
    eg_store_close(t->store);
    t->store = NULL;
}

/* A callback and the event of its last change. The record's strings point into the struct:
 * build one in place with a_callback or a_change_of and do not copy it by assignment. */
typedef struct {
    char id[EG_UUID_STR_LEN + 1], tenant[EG_UUID_STR_LEN + 1], event_id[EG_UUID_STR_LEN + 1];
    char phone[20], service[40], vq[40];
    Eg__Callback cb;
    Eg__Event ev;
} booking_t;

/* Points the record's strings and the event's callback back into b (after a copy). */
static inline void repoint(booking_t *b)
{
    b->cb.id = b->id;
    b->cb.tenant_id = b->tenant;
    b->cb.phone = b->phone;
    b->cb.service = b->service;
    b->cb.virtual_queue = b->vq;
    b->ev.event_id = b->event_id;
    b->ev.callback = &b->cb;
}

/* A new SCHEDULED callback of tenant for phone, booked into the slot starting at slot_ms (its
 * desired and due time), created now, with its create event. */
static inline void a_callback(booking_t *b, const char *tenant, const char *phone, int64_t slot_ms)
{
    memset(b, 0, sizeof *b);
    eg_uuid_v7_str(b->id);
    eg_uuid_v7_str(b->event_id);
    snprintf(b->tenant, sizeof b->tenant, "%s", tenant);
    snprintf(b->phone, sizeof b->phone, "%s", phone);
    snprintf(b->service, sizeof b->service, "%s", SERVICE);
    snprintf(b->vq, sizeof b->vq, "%s", VQUEUE);
    eg__callback__init(&b->cb);
    eg__event__init(&b->ev);
    int64_t now = eg_now_ms();
    b->cb.state = EG__STATE__STATE_SCHEDULED;
    b->cb.desired_time_ms = slot_ms;
    b->cb.due_ms = slot_ms;
    b->cb.slot_start_ms = slot_ms;
    b->cb.created_ms = now;
    b->cb.updated_ms = now;
    b->cb.version = 1;
    b->cb.user_data_json = "{\"order\":\"A-17\"}";
    b->ev.at_ms = now;
    b->ev.corr_id = "test";
    b->ev.from_state = EG__STATE__STATE_UNSPECIFIED;
    repoint(b);
}

/* The next version of prev in state `state` (a millisecond later), with its own event. */
static inline void a_change_of(booking_t *next, const booking_t *prev, Eg__State state)
{
    *next = *prev;
    eg_uuid_v7_str(next->event_id);
    next->cb.state = state;
    next->cb.updated_ms = prev->cb.updated_ms + 1;
    next->cb.version = prev->cb.version + 1;
    next->ev.at_ms = next->cb.updated_ms;
    next->ev.from_state = prev->cb.state;
    repoint(next);
}

/* ---- create options, named for what they set up ---- */

/* The callback takes a place in a slot of this capacity. */
static inline cb_create_opts_t a_service_slot_of(int capacity)
{
    return (cb_create_opts_t){.slot_capacity = capacity};
}

/* The callback takes no slot place (an immediate one, or a service without slots). */
static inline cb_create_opts_t no_slot(void)
{
    return (cb_create_opts_t){.slot_capacity = -1};
}

static inline cb_create_opts_t at_most_active_per_number(cb_create_opts_t o, int n)
{
    o.max_active = n;
    return o;
}

static inline cb_create_opts_t at_most_per_number_per_day(cb_create_opts_t o, int n)
{
    o.max_per_day = n;
    return o;
}

static inline cb_create_opts_t with_idempotency_key(cb_create_opts_t o, const char *key)
{
    o.idem_key = key;
    return o;
}

/* b created with opts, which must succeed. */
static inline void booked(tenant_store_t *t, booking_t *b, cb_create_opts_t opts)
{
    cb_create_result_t res;
    eg_status_t st = cb_store_create(t->store, &t->scripts, &b->cb, &b->ev, &opts, &res, NULL);
    cr_assert_eq(st, EG_OK, "create %s: %s", b->id, eg_status_str(st));
    cr_assert(!res.replayed, "create %s was a replay", b->id);
}

/* ---- reads of Redis ---- */

/* The reply to "cmd key [arg]" (caller frees). */
static inline eg_reply_t *ask(eg_store_t *s, const char *cmd, const char *key, const char *arg)
{
    const char *argv[] = {cmd, key, arg};
    eg_reply_t *r = NULL;
    eg_status_t st = eg_store_command(s, arg ? 3 : 2, argv, NULL, &r);
    cr_assert_eq(st, EG_OK, "%s %s: %s", cmd, key, eg_status_str(st));
    return r;
}

/* "cmd key [arg]" as a number: an integer reply, a numeric string, or 0 for nil. */
static inline long long ask_int(eg_store_t *s, const char *cmd, const char *key, const char *arg)
{
    eg_reply_t *r = ask(s, cmd, key, arg);
    long long v = 0;
    if (r->type == EG_REPLY_INTEGER)
        v = r->integer;
    else if (r->type == EG_REPLY_STRING)
        v = strtoll(r->str, NULL, 10);
    else
        cr_assert_eq(r->type, EG_REPLY_NIL, "%s %s: unexpected reply type %d", cmd, key, r->type);
    eg_reply_free(r);
    return v;
}

/* True when "cmd key [arg]" answers nil (an absent key or field). */
static inline bool ask_nil(eg_store_t *s, const char *cmd, const char *key, const char *arg)
{
    eg_reply_t *r = ask(s, cmd, key, arg);
    bool nil = r->type == EG_REPLY_NIL;
    eg_reply_free(r);
    return nil;
}

/* The event of the newest entry of an outbox stream, decoded (free with
 * eg__event__free_unpacked), with the entry's "e" field (the event id) into event_id. */
static inline Eg__Event *outbox_last_event(eg_store_t *s, const char *outbox, char *event_id,
                                           size_t idlen)
{
    const char *argv[] = {"XREVRANGE", outbox, "+", "-", "COUNT", "1"};
    eg_reply_t *r = NULL;
    cr_assert_eq(eg_store_command(s, 6, argv, NULL, &r), EG_OK);
    cr_assert(r->type == EG_REPLY_ARRAY && r->elements == 1, "the outbox %s has an entry", outbox);
    const eg_reply_t *fields = r->element[0]->element[1];
    Eg__Event *ev = NULL;
    event_id[0] = '\0';
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const eg_reply_t *k = fields->element[i], *v = fields->element[i + 1];
        if (strcmp(k->str, "e") == 0)
            snprintf(event_id, idlen, "%s", v->str);
        else if (strcmp(k->str, "d") == 0)
            ev = eg__event__unpack(NULL, v->len, (const uint8_t *)v->str);
    }
    eg_reply_free(r);
    cr_assert_not_null(ev, "the outbox entry's event decodes");
    return ev;
}

/* The stored blob of tenant's callback id (malloc'd, *len bytes), or NULL when there is none. */
static inline char *stored_blob(tenant_store_t *t, const char *id, size_t *len)
{
    Eg__Callback *cb = NULL;
    char *blob = NULL;
    *len = 0;
    eg_status_t st = cb_store_get(t->store, t->tenant, id, &cb, &blob, len);
    if (st == EG_ENOTFOUND)
        return NULL;
    cr_assert_eq(st, EG_OK, "get %s: %s", id, eg_status_str(st));
    eg__callback__free_unpacked(cb, NULL);
    return blob;
}

/* Places booked in one slot of the tenant's service, as cb_store_slot_counts reads them. */
static inline int slot_used(tenant_store_t *t, int64_t slot_ms)
{
    int used = -1;
    cr_assert_eq(cb_store_slot_counts(t->store, t->tenant, SERVICE, &slot_ms, 1, &used), EG_OK);
    return used;
}

#endif
