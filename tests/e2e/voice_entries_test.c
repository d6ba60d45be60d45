/* End to end: every entry type of the voice stream contract (docs/voice-stream.md) written to the
 * events stream the way a voice platform writes them, and what Engage answers:
 *   - callback.request books a callback (immediate or scheduled, origin IVR) and answers on the
 *     entry's reply stream; a refused one is answered with its code; a repeated request_id books
 *     nothing new;
 *   - call.inbound is matched to its Click-to-Call-In request (route with a destination), or not
 *     (wrong access code, expired: an empty destination), and completes the caller's pending
 *     callback with CUSTOMER_CONTACTED (a cancel command follows);
 *   - queue.stats feeds EWT mode2 and mode3;
 *   - malformed entries land in the dead-letter stream with a reason, and the bridge stays ready
 *     and keeps working.
 * Tests run in parallel: each uses its own numbers, streams, services and request ids. */
#define _DEFAULT_SOURCE
#include <time.h>
#include <unistd.h>

#include "e2e.h"
#include "engage.pb-c.h"
#include "engage/ids.h"
#include "engage/store.h"
#include "engage/timeutil.h"

#define WAIT_MS 15000

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static unsigned rnd(void)
{
    unsigned r;
    eg_random_bytes(&r, sizeof r);
    return r;
}

/* A number voice-sim answers (not ending in 91..97), unique per call. */
static void answered_phone(char out[20])
{
    unsigned r = rnd();
    snprintf(out, 20, "+1668%05u%02u", r % 100000u, 10 + (r >> 20) % 80);
}

static eg_store_t *voice(void)
{
    eg_store_t *v = NULL;
    cr_assert_eq(eg_store_open(&v, e2e_env("ENGAGE_VOICE_REDIS_URL"), 5000), EG_OK);
    return v;
}

/* ---- stream entries ---- */

typedef struct {
    char id[64];
    int n;
    char *names[128];
    char *values[128];
    size_t lens[128];
} entry_t;

static void entry_free(entry_t *e)
{
    for (int i = 0; i < e->n; i++) {
        free(e->names[i]);
        free(e->values[i]);
    }
    e->n = 0;
}

static const char *get(const entry_t *e, const char *name)
{
    for (int i = 0; i < e->n; i++)
        if (strcmp(e->names[i], name) == 0)
            return e->values[i];
    return NULL;
}

static void entry_from(const eg_reply_t *r, entry_t *e)
{
    memset(e, 0, sizeof *e);
    snprintf(e->id, sizeof e->id, "%s", r->element[0]->str);
    const eg_reply_t *f = r->element[1];
    for (size_t i = 0; i + 1 < f->elements && e->n < 128; i += 2) {
        e->names[e->n] = strndup(f->element[i]->str, f->element[i]->len);
        e->values[e->n] = malloc(f->element[i + 1]->len + 1);
        memcpy(e->values[e->n], f->element[i + 1]->str, f->element[i + 1]->len + 1);
        e->lens[e->n] = f->element[i + 1]->len;
        e->n++;
    }
}

/* XADD to a stream: n name/value pairs (binary-safe with lens when given). Returns the id. */
static void xadd(eg_store_t *v, const char *stream, const char *const *fv, const size_t *lens,
                 size_t n, char id[64])
{
    const char **argv = calloc(3 + 2 * n, sizeof *argv);
    size_t *alens = calloc(3 + 2 * n, sizeof *alens);
    argv[0] = "XADD";
    argv[1] = stream;
    argv[2] = "*";
    for (size_t i = 0; i < 3; i++)
        alens[i] = strlen(argv[i]);
    for (size_t i = 0; i < 2 * n; i++) {
        argv[3 + i] = fv[i];
        alens[3 + i] = lens ? lens[i] : strlen(fv[i]);
    }
    eg_reply_t *r = NULL;
    cr_assert_eq(eg_store_command(v, (int)(3 + 2 * n), argv, alens, &r), EG_OK, "XADD %s", stream);
    cr_assert_eq(r->type, EG_REPLY_STRING);
    snprintf(id, 64, "%s", r->str);
    eg_reply_free(r);
    free(argv);
    free(alens);
}

static void event(eg_store_t *v, const char *const *fv, size_t n, char id[64])
{
    xadd(v, e2e_env("ENGAGE_VOICE_EVENTS_STREAM"), fv, NULL, n, id);
}

/* The first entry of stream whose field `key` is `value`, other than skip (may be NULL), among
 * those written from the millisecond of entry id `since` on (an id of any stream of the voice
 * Redis, which share one clock; NULL for all), waiting up to timeout_ms. false when none came. */
static bool find_entry(eg_store_t *v, const char *stream, const char *since, const char *key,
                       const char *value, const char *skip, int timeout_ms, entry_t *out)
{
    char start[80] = "-";
    if (since)
        snprintf(start, sizeof start, "%.*s-0", (int)strcspn(since, "-"), since);
    int64_t deadline = eg_mono_ms() + timeout_ms;
    do {
        const char *argv[] = {"XRANGE", stream, start, "+", "COUNT", "5000"};
        eg_reply_t *r = NULL;
        cr_assert_eq(eg_store_command(v, 6, argv, NULL, &r), EG_OK);
        for (size_t i = 0; r->type == EG_REPLY_ARRAY && i < r->elements; i++) {
            entry_t e;
            entry_from(r->element[i], &e);
            const char *got = get(&e, key);
            if (got && strcmp(got, value) == 0 && (!skip || strcmp(e.id, skip) != 0)) {
                *out = e;
                eg_reply_free(r);
                return true;
            }
            entry_free(&e);
        }
        eg_reply_free(r);
        sleep_ms(50);
    } while (eg_mono_ms() < deadline);
    return false;
}

/* The dead-letter copy of the event entry source_id. */
static void deadlettered(eg_store_t *v, const char *source_id, entry_t *out)
{
    cr_assert(find_entry(v, e2e_env("ENGAGE_VOICE_DEADLETTER_STREAM"), source_id, "source_id",
                         source_id, NULL, WAIT_MS, out),
              "entry %s was not dead-lettered", source_id);
}

/* ---- HTTP helpers ---- */

static e2e_resp_t retrieve(const char *id)
{
    char body[128];
    snprintf(body, sizeof body, "{\"id\":\"%s\"}", id);
    return e2e_post("/engagement/v3/callbacks/retrieve", e2e_env("ENGAGE_API_KEY"), body);
}

static void put(const char *path, const char *json)
{
    e2e_resp_t r = e2e_call("PUT", path, e2e_env("ENGAGE_ADMIN_KEY"), NULL, json);
    cr_assert(r.status == 200 || r.status == 201, "PUT %s: %d %s", path, r.status, e2e_message(&r));
    e2e_free(&r);
}

/* A callback service whose virtual queue is vq. */
static void put_service(const char *name, const char *vq)
{
    char path[160], json[256];
    snprintf(path, sizeof path, "/ges/api/v1/services/%s", name);
    snprintf(json, sizeof json, "{\"virtualQueue\":\"%s\"}", vq);
    put(path, json);
}

/* The callback as stored in Redis (for what the API does not show, such as its origin). */
static Eg__Callback *stored(const char *id)
{
    eg_store_t *s = NULL;
    cr_assert_eq(eg_store_open(&s, e2e_env("ENGAGE_REDIS_URL"), 5000), EG_OK);
    char key[200];
    snprintf(key, sizeof key, "eg:{t:%s}:cb:%s", e2e_env("ENGAGE_TENANT_ID"), id);
    const char *argv[] = {"GET", key};
    eg_reply_t *r = NULL;
    cr_assert_eq(eg_store_command(s, 2, argv, NULL, &r), EG_OK);
    cr_assert_eq(r->type, EG_REPLY_STRING, "no record for %s", id);
    Eg__Callback *cb = eg__callback__unpack(NULL, r->len, (const uint8_t *)r->str);
    cr_assert(cb);
    eg_reply_free(r);
    eg_store_close(s);
    return cb;
}

/* ---- callback.request ---- */

typedef struct {
    char request_id[40];
    char stream[80];
    char source[64];
} request_t;

/* Write a callback.request; desired and user_data may be NULL. */
static void send_request(eg_store_t *v, request_t *q, const char *service, const char *phone,
                         const char *desired, const char *user_data)
{
    if (!q->request_id[0])
        eg_uuid_v7_str(q->request_id);
    if (!q->stream[0])
        snprintf(q->stream, sizeof q->stream, "vos:replies:e2e-%u", rnd());
    const char *fv[16] = {"type",         "callback.request",
                          "tenant",       e2e_env("ENGAGE_TENANT_ID"),
                          "service",      service,
                          "phone",        phone,
                          "request_id",   q->request_id,
                          "reply_stream", q->stream};
    size_t n = 6;
    if (desired) {
        fv[2 * n] = "desired_time";
        fv[2 * n + 1] = desired;
        n++;
    }
    if (user_data) {
        fv[2 * n] = "user_data";
        fv[2 * n + 1] = user_data;
        n++;
    }
    event(v, fv, n, q->source);
}

static void wait_reply(eg_store_t *v, const request_t *q, entry_t *out)
{
    cr_assert(find_entry(v, q->stream, NULL, "request_id", q->request_id, NULL, WAIT_MS, out),
              "no callback.reply for request %s on %s", q->request_id, q->stream);
    cr_expect_str_eq(get(out, "type"), "callback.reply");
}

Test(voice_request, immediate_request_is_booked_and_answered_on_the_reply_stream, .timeout = 60)
{
    eg_store_t *v = voice();
    char phone[20];
    answered_phone(phone);
    request_t q = {0};
    send_request(v, &q, e2e_env("ENGAGE_DEMO_SERVICE"), phone, NULL,
                 "{\"orderId\":\"A-1042\",\"language\":\"en\"}");
    entry_t rep;
    wait_reply(v, &q, &rep);
    cr_assert_str_eq(get(&rep, "code"), "200", "message: %s", get(&rep, "message"));
    cr_expect_str_eq(get(&rep, "message"), "OK");
    const char *id = get(&rep, "callback_id");
    cr_assert(id && eg_uuid_valid(id), "callback_id %s", id ? id : "(none)");

    e2e_resp_t r = retrieve(id);
    cr_assert_eq(r.status, 200, "retrieve: %d %s", r.status, e2e_message(&r));
    cr_expect_str_eq(e2e_data_str(&r, "phoneNumber"), phone);
    cr_expect_str_eq(e2e_data_str(&r, "serviceName"), e2e_env("ENGAGE_DEMO_SERVICE"));
    e2e_free(&r);
    Eg__Callback *cb = stored(id);
    cr_expect_eq(cb->origin, EG__ORIGIN__ORIGIN_IVR, "origin IVR");
    cr_expect(cb->immediate, "no desired_time: an immediate callback");
    cr_expect(strstr(cb->user_data_json, "A-1042") != NULL, "user data kept: %s",
              cb->user_data_json);
    eg__callback__free_unpacked(cb, NULL);
    entry_free(&rep);
    eg_store_close(v);
}

Test(voice_request, scheduled_request_with_an_offset_is_booked_for_that_instant, .timeout = 60)
{
    eg_store_t *v = voice();
    char phone[20], desired[40];
    answered_phone(phone);
    /* An hour from now, on the minute, written in UTC-05:00. */
    int64_t when = (eg_now_ms() / 60000 + 60) * 60000;
    time_t local = (time_t)(when / 1000) - 5 * 3600;
    struct tm tm;
    gmtime_r(&local, &tm);
    strftime(desired, sizeof desired, "%Y-%m-%dT%H:%M:%S-05:00", &tm);
    request_t q = {0};
    send_request(v, &q, e2e_env("ENGAGE_DEMO_SERVICE"), phone, desired, NULL);
    entry_t rep;
    wait_reply(v, &q, &rep);
    cr_assert_str_eq(get(&rep, "code"), "200", "message: %s", get(&rep, "message"));
    const char *id = get(&rep, "callback_id");
    cr_assert(id && eg_uuid_valid(id));
    e2e_resp_t r = retrieve(id);
    cr_assert_eq(r.status, 200, "retrieve: %d %s", r.status, e2e_message(&r));
    char iso[EG_ISO_LEN + 1];
    eg_time_format_iso(when, iso);
    cr_expect_str_eq(e2e_data_str(&r, "desiredTime"), iso, "%s is %s", desired, iso);
    cr_expect_str_eq(e2e_data_str(&r, "callbackState"), "SCHEDULED");
    e2e_free(&r);
    Eg__Callback *cb = stored(id);
    cr_expect_eq(cb->origin, EG__ORIGIN__ORIGIN_IVR);
    eg__callback__free_unpacked(cb, NULL);
    /* Tidy: cancel it, so it is never dialled. */
    char body[128];
    snprintf(body, sizeof body, "{\"id\":\"%s\"}", id);
    r = e2e_post("/engagement/v3/callbacks/cancel", e2e_env("ENGAGE_API_KEY"), body);
    e2e_free(&r);
    entry_free(&rep);
    eg_store_close(v);
}

Test(voice_request, refused_requests_are_answered_with_their_code_not_dead_lettered, .timeout = 60)
{
    eg_store_t *v = voice();
    char phone[20], service[48];
    answered_phone(phone);
    snprintf(service, sizeof service, "no-such-service-%u", rnd());
    request_t q = {0};
    send_request(v, &q, service, phone, NULL, NULL);
    entry_t rep;
    wait_reply(v, &q, &rep);
    cr_expect_str_eq(get(&rep, "code"), "404");
    cr_expect(strstr(get(&rep, "message"), service) != NULL, "message names the service: %s",
              get(&rep, "message"));
    cr_expect_null(get(&rep, "callback_id"));
    entry_free(&rep);

    /* Invalid fields: 400 naming the field. */
    struct {
        const char *phone, *desired, *user_data, *field;
    } bad[] = {
        {"5551234567", NULL, NULL, "phone:"},
        {phone, "2026-11-28T19:00:00", NULL, "desired_time:"},
        {phone, NULL, "[1,2]", "user_data:"},
        {phone, NULL, "{\"a\":", "user_data:"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        request_t b = {0};
        send_request(v, &b, e2e_env("ENGAGE_DEMO_SERVICE"), bad[i].phone, bad[i].desired,
                     bad[i].user_data);
        wait_reply(v, &b, &rep);
        cr_expect_str_eq(get(&rep, "code"), "400", "case %zu", i);
        cr_expect(strncmp(get(&rep, "message"), bad[i].field, strlen(bad[i].field)) == 0,
                  "case %zu: %s", i, get(&rep, "message"));
        entry_free(&rep);
        entry_t dl;
        cr_expect(!find_entry(v, e2e_env("ENGAGE_VOICE_DEADLETTER_STREAM"), b.source, "source_id",
                              b.source, NULL, 300, &dl),
                  "an answered request is not dead-lettered");
    }
    eg_store_close(v);
}

Test(voice_request, a_repeated_request_id_books_nothing_new, .timeout = 60)
{
    eg_store_t *v = voice();
    char phone[20];
    answered_phone(phone);
    request_t q = {0};
    send_request(v, &q, e2e_env("ENGAGE_DEMO_SERVICE"), phone, NULL, NULL);
    entry_t first;
    wait_reply(v, &q, &first);
    cr_assert_str_eq(get(&first, "code"), "200", "%s", get(&first, "message"));
    /* The same request again (a platform retry, or a redelivery): a second entry. */
    char again[64];
    snprintf(again, sizeof again, "%s", q.source);
    send_request(v, &q, e2e_env("ENGAGE_DEMO_SERVICE"), phone, NULL, NULL);
    cr_assert_str_neq(q.source, again);
    entry_t second;
    cr_assert(find_entry(v, q.stream, NULL, "request_id", q.request_id, first.id, WAIT_MS, &second),
              "second reply");
    cr_expect_str_eq(get(&second, "code"), "200");
    cr_expect_str_eq(get(&second, "callback_id"), get(&first, "callback_id"),
                     "the first callback, not a new one");
    char path[160];
    snprintf(path, sizeof path, "/engagement/v3/callbacks/find?phoneNumber=%%2B%s", phone + 1);
    e2e_resp_t r = e2e_call("GET", path, e2e_env("ENGAGE_API_KEY"), NULL, NULL);
    cr_assert_eq(r.status, 200, "find: %d %s", r.status, e2e_message(&r));
    cr_expect_eq(eg_json_int(eg_json_get(eg_json_get(r.body, "data"), "total")), 1,
                 "one callback for the number");
    e2e_free(&r);
    entry_free(&first);
    entry_free(&second);
    eg_store_close(v);
}

/* ---- call.inbound ---- */

typedef struct {
    char group[48], number[20], service[48], vq[48];
} callin_t;

/* A service with its own virtual queue and a one-number call-in group routing to it. */
static void make_callin(callin_t *c, const char *extra)
{
    unsigned r = rnd();
    snprintf(c->group, sizeof c->group, "vci-%u", r);
    snprintf(c->service, sizeof c->service, "vci-svc-%u", r);
    snprintf(c->vq, sizeof c->vq, "VQ_ci_%u", r);
    snprintf(c->number, sizeof c->number, "+1800%07u", rnd() % 10000000u);
    put_service(c->service, c->vq);
    char path[160], json[512];
    snprintf(path, sizeof path, "/ges/api/v1/call-in-groups/%s", c->group);
    snprintf(json, sizeof json, "{\"numbers\":[\"%s\"],\"callbackService\":\"%s\"%s%s}", c->number,
             c->service, *extra ? "," : "", extra);
    put(path, json);
}

typedef struct {
    char id[40], number[20], code[12];
} lent_t;

static void lend(const callin_t *c, const char *body_extra, lent_t *out)
{
    char body[512];
    snprintf(body, sizeof body, "{\"groupName\":\"%s\"%s%s}", c->group, *body_extra ? "," : "",
             body_extra);
    e2e_resp_t r =
        e2e_post("/engagement/v3/call-in/requests/create", e2e_env("ENGAGE_API_KEY"), body);
    cr_assert_eq(r.status, 200, "call-in create: %d %s", r.status, e2e_message(&r));
    snprintf(out->id, sizeof out->id, "%s", e2e_data_str(&r, "id"));
    snprintf(out->number, sizeof out->number, "%s", e2e_data_str(&r, "toPhoneNumber"));
    const char *code = e2e_data_str(&r, "accessCode");
    snprintf(out->code, sizeof out->code, "%s", code ? code : "");
    e2e_free(&r);
}

/* Write a call.inbound and wait for its route. code may be NULL. */
static void inbound(eg_store_t *v, const char *dialed, const char *caller, const char *code,
                    entry_t *route)
{
    char call_id[48], source[64];
    snprintf(call_id, sizeof call_id, "vos-e2e-%u-%u", rnd(), rnd());
    const char *fv[] = {
        "type",          "call.inbound", "tenant",        e2e_env("ENGAGE_TENANT_ID"),
        "dialed_number", dialed,         "caller_number", caller,
        "call_id",       call_id,        "access_code",   code ? code : ""};
    event(v, fv, code ? 6 : 5, source);
    cr_assert(find_entry(v, e2e_env("ENGAGE_VOICE_COMMANDS_STREAM"), source, "call_id", call_id,
                         NULL, WAIT_MS, route),
              "no route for call %s", call_id);
    cr_expect_str_eq(get(route, "type"), "route");
    cr_expect_str_eq(get(route, "tenant"), e2e_env("ENGAGE_TENANT_ID"));
}

Test(voice_inbound, the_right_access_code_routes_to_the_services_queue_once, .timeout = 60)
{
    eg_store_t *v = voice();
    callin_t c;
    make_callin(&c, "\"expirySeconds\":120");
    lent_t l;
    lend(&c, "\"userData\":{\"ticket\":\"T-77\"}", &l);
    cr_assert_str_eq(l.number, c.number);
    cr_assert(strlen(l.code) == 4, "code %s", l.code);
    char caller[20];
    answered_phone(caller);
    entry_t route;
    inbound(v, l.number, caller, l.code, &route);
    cr_expect_str_eq(get(&route, "destination"), c.vq, "reason: %s",
                     get(&route, "reason") ? get(&route, "reason") : "");
    cr_expect_str_eq(get(&route, "callin_request_id"), l.id);
    cr_expect(get(&route, "user_data") && strstr(get(&route, "user_data"), "T-77"),
              "user data goes with the call");
    entry_free(&route);
    /* One request routes one call: the same number and code again match nothing. */
    inbound(v, l.number, caller, l.code, &route);
    cr_expect_str_eq(get(&route, "destination"), "", "a used request");
    cr_expect(get(&route, "reason") && strlen(get(&route, "reason")) > 0);
    entry_free(&route);
    eg_store_close(v);
}

Test(voice_inbound, a_group_without_codes_matches_by_number_and_caller, .timeout = 60)
{
    eg_store_t *v = voice();
    callin_t c;
    make_callin(&c, "\"useAccessCodes\":false,\"expirySeconds\":120");
    char caller[20], other[20], body[96];
    answered_phone(caller);
    answered_phone(other);
    snprintf(body, sizeof body, "\"fromPhoneNumber\":\"%s\"", caller);
    lent_t l;
    lend(&c, body, &l);
    entry_t route;
    inbound(v, l.number, other, NULL, &route);
    cr_expect_str_eq(get(&route, "destination"), "", "another caller");
    cr_expect(strstr(get(&route, "reason"), "fromPhoneNumber") != NULL, "%s",
              get(&route, "reason"));
    entry_free(&route);
    inbound(v, l.number, caller, NULL, &route);
    cr_expect_str_eq(get(&route, "destination"), c.vq, "the caller: %s",
                     get(&route, "reason") ? get(&route, "reason") : "");
    cr_expect_str_eq(get(&route, "callin_request_id"), l.id);
    entry_free(&route);
    eg_store_close(v);
}

Test(voice_inbound, a_wrong_access_code_matches_nothing_and_uses_nothing, .timeout = 60)
{
    eg_store_t *v = voice();
    callin_t c;
    make_callin(&c, "\"expirySeconds\":120");
    lent_t l;
    lend(&c, "", &l);
    char caller[20];
    answered_phone(caller);
    const char *wrong = strcmp(l.code, "0000") == 0 ? "1111" : "0000";
    entry_t route;
    inbound(v, l.number, caller, wrong, &route);
    cr_expect_str_eq(get(&route, "destination"), "");
    cr_expect(strstr(get(&route, "reason"), "access code") != NULL, "%s", get(&route, "reason"));
    cr_expect_null(get(&route, "callin_request_id"));
    entry_free(&route);
    inbound(v, l.number, caller, NULL, &route);
    cr_expect_str_eq(get(&route, "destination"), "", "no code entered");
    cr_expect(strstr(get(&route, "reason"), "access code") != NULL, "%s", get(&route, "reason"));
    entry_free(&route);
    /* The request is still there for the right code. */
    inbound(v, l.number, caller, l.code, &route);
    cr_expect_str_eq(get(&route, "destination"), c.vq);
    entry_free(&route);
    eg_store_close(v);
}

Test(voice_inbound, an_expired_request_or_unknown_number_matches_nothing, .timeout = 60)
{
    eg_store_t *v = voice();
    callin_t c;
    make_callin(&c, "\"expirySeconds\":1");
    lent_t l;
    lend(&c, "", &l);
    sleep_ms(2500);
    char caller[20], unknown[20];
    answered_phone(caller);
    entry_t route;
    inbound(v, l.number, caller, l.code, &route);
    cr_expect_str_eq(get(&route, "destination"), "", "expired");
    cr_expect(strstr(get(&route, "reason"), "no live call-in request") != NULL, "%s",
              get(&route, "reason"));
    entry_free(&route);
    snprintf(unknown, sizeof unknown, "+1801%07u", rnd() % 10000000u);
    inbound(v, unknown, caller, "1234", &route);
    cr_expect_str_eq(get(&route, "destination"), "", "unknown number");
    entry_free(&route);
    eg_store_close(v);
}

/* How many commands of a type the commands stream holds for a callback, after `after`. */
static int commands_for(eg_store_t *v, const char *after, const char *id, const char *type)
{
    char start[80];
    snprintf(start, sizeof start, "(%s", after);
    const char *argv[] = {"XRANGE", e2e_env("ENGAGE_VOICE_COMMANDS_STREAM"), start, "+"};
    eg_reply_t *r = NULL;
    cr_assert_eq(eg_store_command(v, 4, argv, NULL, &r), EG_OK);
    int n = 0;
    for (size_t i = 0; i < r->elements; i++) {
        entry_t e;
        entry_from(r->element[i], &e);
        const char *t = get(&e, "type"), *cb = get(&e, "callback_id");
        n += t && cb && strcmp(t, type) == 0 && strcmp(cb, id) == 0;
        entry_free(&e);
    }
    eg_reply_free(r);
    return n;
}

Test(voice_inbound, a_call_from_a_customer_completes_their_pending_callback, .timeout = 60)
{
    eg_store_t *v = voice();
    char phone[20], body[256], iso[EG_ISO_LEN + 1], start[64];
    answered_phone(phone);
    /* Where the commands stream stands before. */
    const char *argv[] = {"XREVRANGE", e2e_env("ENGAGE_VOICE_COMMANDS_STREAM"), "+", "-", "COUNT",
                          "1"};
    eg_reply_t *last = NULL;
    cr_assert_eq(eg_store_command(v, 6, argv, NULL, &last), EG_OK);
    snprintf(start, sizeof start, "%s", last->elements ? last->element[0]->element[0]->str : "0-0");
    eg_reply_free(last);

    eg_time_format_iso(eg_now_ms() + 3600000, iso);
    snprintf(body, sizeof body,
             "{\"serviceName\":\"%s\",\"phoneNumber\":\"%s\",\"desiredTime\":\"%s\"}",
             e2e_env("ENGAGE_DEMO_SERVICE"), phone, iso);
    e2e_resp_t r = e2e_post("/engagement/v3/callbacks/create", e2e_env("ENGAGE_API_KEY"), body);
    cr_assert_eq(r.status, 200, "create: %d %s", r.status, e2e_message(&r));
    char id[40];
    snprintf(id, sizeof id, "%s", e2e_data_str(&r, "id"));
    e2e_free(&r);

    char dialed[20];
    snprintf(dialed, sizeof dialed, "+1802%07u", rnd() % 10000000u);
    entry_t route;
    inbound(v, dialed, phone, NULL, &route);
    cr_expect_str_eq(get(&route, "destination"), "", "no call-in request for that number");
    entry_free(&route);

    const char *state = NULL, *reason = NULL;
    int64_t deadline = eg_mono_ms() + WAIT_MS;
    do {
        e2e_free(&r);
        r = retrieve(id);
        state = e2e_data_str(&r, "callbackState");
        reason = e2e_data_str(&r, "callbackReason");
        if (state && strcmp(state, "COMPLETED") == 0)
            break;
        sleep_ms(100);
    } while (eg_mono_ms() < deadline);
    cr_expect_str_eq(state, "COMPLETED");
    cr_expect_str_eq(reason, "CUSTOMER_CONTACTED");
    e2e_free(&r);
    deadline = eg_mono_ms() + WAIT_MS;
    while (commands_for(v, start, id, "cancel") == 0 && eg_mono_ms() < deadline)
        sleep_ms(100);
    cr_expect_eq(commands_for(v, start, id, "cancel"), 1, "the platform is told to cancel it");
    cr_expect_eq(commands_for(v, start, id, "dial"), 0, "never dialled");
    eg_store_close(v);
}

/* ---- queue.stats ---- */

static void stats(eg_store_t *v, const char *vq, const char *in, const char *ready,
                  const char *waiting, const char *aht, int64_t at_ms)
{
    char at[EG_ISO_LEN + 1], id[64];
    eg_time_format_iso(at_ms, at);
    const char *fv[] = {"type",
                        "queue.stats",
                        "tenant",
                        e2e_env("ENGAGE_TENANT_ID"),
                        "virtual_queue",
                        vq,
                        "agents_logged_in",
                        in,
                        "agents_ready",
                        ready,
                        "calls_waiting",
                        waiting,
                        "avg_handle_time_s",
                        aht,
                        "at",
                        at};
    event(v, fv, 8, id);
}

/* The EWT item of vq in a mode, polled until its resultCode is `want` (or the time is up). */
static void ewt(const char *vq, int mode, int want, int *est, int *code, char *msg, size_t msglen)
{
    char path[256];
    snprintf(path, sizeof path, "/engagement/v3/estimated-wait-time?virtual-queues=%s&mode=mode%d",
             vq, mode);
    int64_t deadline = eg_mono_ms() + WAIT_MS;
    do {
        e2e_resp_t r = e2e_call("GET", path, e2e_env("ENGAGE_API_KEY"), NULL, NULL);
        cr_assert_eq(r.status, 200, "%d %s", r.status, e2e_message(&r));
        eg_json_t *it = eg_json_array_get(eg_json_get(r.body, "data"), 0);
        *est = (int)eg_json_int(eg_json_get(it, "estimatedWaitTime"));
        *code = (int)eg_json_int(eg_json_get(it, "resultCode"));
        const char *m = eg_json_str(eg_json_get(it, "message"));
        snprintf(msg, msglen, "%s", m ? m : "");
        e2e_free(&r);
        if (*code == want)
            return;
        sleep_ms(100);
    } while (eg_mono_ms() < deadline);
}

Test(voice_stats, queue_stats_feed_ewt_mode2_and_mode3, .timeout = 60)
{
    eg_store_t *v = voice();
    char service[48], vq[48], msg[200];
    unsigned r = rnd();
    snprintf(service, sizeof service, "ewt-svc-%u", r);
    snprintf(vq, sizeof vq, "VQ_ewt_%u", r);
    put_service(service, vq);
    int est = 0, code = 0;
    ewt(vq, 2, -2, &est, &code, msg, sizeof msg);
    cr_expect_eq(est, -1, "no figures yet");
    cr_expect_eq(code, -2);

    int64_t now = eg_now_ms();
    stats(v, vq, "4", "1", "6", "120", now);
    /* mode2: (0 callbacks + 6 calls) x 120 s / 4 agents = 180 s. */
    ewt(vq, 2, 0, &est, &code, msg, sizeof msg);
    cr_expect_eq(code, 0, "%s", msg);
    cr_expect_eq(est, 180);
    /* mode3: 6 calls x 120 s / 1 ready agent = 720 s. */
    ewt(vq, 3, 0, &est, &code, msg, sizeof msg);
    cr_expect_eq(code, 0, "%s", msg);
    cr_expect_eq(est, 720);
    /* The service's name stands for its virtual queue. */
    ewt(service, 2, 0, &est, &code, msg, sizeof msg);
    cr_expect_eq(est, 180, "by service name");

    /* Nobody logged in any more: -1, resultCode -2. */
    stats(v, vq, "0", "0", "6", "120", now + 1000);
    ewt(vq, 2, -2, &est, &code, msg, sizeof msg);
    cr_expect_eq(code, -2);
    cr_expect_eq(est, -1);
    cr_expect(strstr(msg, "no agents logged in") != NULL, "%s", msg);
    /* Older figures arriving late change nothing. The bridge handles entries in order: once a
     * request written after them is answered, they have been handled. */
    stats(v, vq, "9", "9", "1", "60", now + 500);
    char phone[20];
    answered_phone(phone);
    request_t q = {0};
    send_request(v, &q, "no-such-service", phone, NULL, NULL);
    entry_t rep;
    wait_reply(v, &q, &rep);
    entry_free(&rep);
    ewt(vq, 2, -2, &est, &code, msg, sizeof msg);
    cr_expect_eq(code, -2, "stale figures ignored");
    eg_store_close(v);
}

/* ---- dead letters ---- */

static void expect_reason(const entry_t *dl, const char *text)
{
    const char *reason = get(dl, "reason");
    cr_expect(reason && strstr(reason, text) != NULL, "reason '%s' should say '%s'",
              reason ? reason : "(none)", text);
}

Test(voice_deadletter, malformed_entries_are_dead_lettered_with_the_reason, .timeout = 90)
{
    eg_store_t *v = voice();
    const char *tenant = e2e_env("ENGAGE_TENANT_ID");
    char id[64];
    entry_t dl;

    const char *unknown[] = {"type", "call.progres", "tenant", tenant};
    event(v, unknown, 2, id);
    deadlettered(v, id, &dl);
    expect_reason(&dl, "type: unknown type 'call.progres'");
    cr_expect_str_eq(get(&dl, "tenant"), tenant, "the original fields are kept");
    entry_free(&dl);

    const char *no_type[] = {"tenant", tenant, "callback_id", "x"};
    event(v, no_type, 2, id);
    deadlettered(v, id, &dl);
    expect_reason(&dl, "type: missing");
    entry_free(&dl);

    const char *no_cb[] = {"type", "call.progress", "tenant", tenant, "attempt",
                           "1",    "result",        "BUSY"};
    event(v, no_cb, 4, id);
    deadlettered(v, id, &dl);
    expect_reason(&dl, "callback_id: missing");
    entry_free(&dl);

    const char *bad_attempt[] = {"type",    "call.progress", "tenant",
                                 tenant,    "callback_id",   "0193e1c2-7a4b-7c3e-9f00-4b6f0e1d2a3c",
                                 "attempt", "first",         "result",
                                 "BUSY"};
    event(v, bad_attempt, 5, id);
    deadlettered(v, id, &dl);
    expect_reason(&dl, "attempt: must be an integer");
    entry_free(&dl);

    char unknown_cb[40];
    eg_uuid_v7_str(unknown_cb);
    const char *no_such[] = {"type",     "call.progress", "tenant", tenant,   "callback_id",
                             unknown_cb, "attempt",       "1",      "result", "BUSY"};
    event(v, no_such, 5, id);
    deadlettered(v, id, &dl);
    expect_reason(&dl, "not found");
    entry_free(&dl);

    /* A callback.request that cannot be answered: no reply_stream, or one of Engage's own. */
    const char *no_reply[] = {"type",  "callback.request", "tenant",     tenant, "service", "demo",
                              "phone", "+15551234567",     "request_id", "r-1"};
    event(v, no_reply, 5, id);
    deadlettered(v, id, &dl);
    expect_reason(&dl, "reply_stream: missing");
    entry_free(&dl);
    const char *own[] = {"type",  "callback.request", "tenant",
                         tenant,  "service",          "demo",
                         "phone", "+15551234567",     "request_id",
                         "r-2",   "reply_stream",     e2e_env("ENGAGE_VOICE_COMMANDS_STREAM")};
    event(v, own, 6, id);
    deadlettered(v, id, &dl);
    expect_reason(&dl, "reply_stream:");
    entry_free(&dl);

    /* A call.inbound without a call id cannot be routed. */
    const char *no_call[] = {"type",          "call.inbound", "tenant",        tenant,
                             "dialed_number", "+18005550100", "caller_number", "+15551234567"};
    event(v, no_call, 4, id);
    deadlettered(v, id, &dl);
    expect_reason(&dl, "call_id: missing");
    entry_free(&dl);

    const char *bad_stats[] = {"type",          "queue.stats", "tenant",           tenant,
                               "virtual_queue", "VQ",          "agents_logged_in", "-3"};
    event(v, bad_stats, 4, id);
    deadlettered(v, id, &dl);
    expect_reason(&dl, "agents_logged_in: must be an integer from 0");
    entry_free(&dl);
    eg_store_close(v);
}

Test(voice_deadletter, huge_many_and_binary_fields_never_stop_the_bridge, .timeout = 90)
{
    eg_store_t *v = voice();
    const char *tenant = e2e_env("ENGAGE_TENANT_ID");
    char id[64];
    entry_t dl;

    /* A 1 MB value. */
    size_t big = 1024 * 1024;
    char *blob = malloc(big);
    memset(blob, 'x', big);
    const char *huge[] = {"type",        "call.progress",
                          "tenant",      tenant,
                          "callback_id", "0193e1c2-7a4b-7c3e-9f00-4b6f0e1d2a3c",
                          "attempt",     "1",
                          "result",      "BUSY",
                          "note",        blob};
    size_t huge_lens[12];
    for (int i = 0; i < 11; i++)
        huge_lens[i] = strlen(huge[i]);
    huge_lens[11] = big;
    xadd(v, e2e_env("ENGAGE_VOICE_EVENTS_STREAM"), huge, huge_lens, 6, id);
    deadlettered(v, id, &dl);
    expect_reason(&dl, "note: value of 1048576 bytes");
    for (int i = 0; i < dl.n; i++)
        if (strcmp(dl.names[i], "note") == 0)
            cr_expect_eq(dl.lens[i], 1024, "the copy keeps 1 KB of a huge value");
    entry_free(&dl);
    free(blob);

    /* 100 fields. */
    const char *many[200];
    char names[100][16];
    many[0] = "type";
    many[1] = "call.progress";
    for (int i = 1; i < 100; i++) {
        snprintf(names[i], sizeof names[i], "f%d", i);
        many[2 * i] = names[i];
        many[2 * i + 1] = "v";
    }
    event(v, many, 100, id);
    deadlettered(v, id, &dl);
    expect_reason(&dl, "entry: 100 fields; at most 32");
    cr_expect_str_eq(get(&dl, "f99"), "v", "the fields are copied");
    entry_free(&dl);

    /* Binary garbage: NUL bytes, invalid UTF-8, control characters, in names and values. */
    const char garbage_type[] = {'\xff', '\0', '\xfe', 'q', '\x01'};
    const char garbage_name[] = {'\0', '\x80', 'z'};
    const char garbage_value[] = {'\xc3', '\x28', '\0', '\n', '\x7f'};
    const char *bin[] = {"type", garbage_type, garbage_name, garbage_value, "tenant", tenant};
    size_t bin_lens[] = {4, sizeof garbage_type, sizeof garbage_name, sizeof garbage_value,
                         6, strlen(tenant)};
    xadd(v, e2e_env("ENGAGE_VOICE_EVENTS_STREAM"), bin, bin_lens, 3, id);
    deadlettered(v, id, &dl);
    expect_reason(&dl, "type: unknown type '\\xff\\x00\\xfeq\\x01'");
    entry_free(&dl);

    /* A type with a NUL inside is not the type it starts with. */
    const char nul_type[] = "call.progress\0junk";
    const char *sneaky[] = {"type", nul_type, "tenant", tenant};
    size_t sneaky_lens[] = {4, sizeof nul_type - 1, 6, strlen(tenant)};
    xadd(v, e2e_env("ENGAGE_VOICE_EVENTS_STREAM"), sneaky, sneaky_lens, 2, id);
    deadlettered(v, id, &dl);
    expect_reason(&dl, "type: unknown type 'call.progress\\x00junk'");
    entry_free(&dl);

    /* A field named twice. */
    const char *twice[] = {"type", "queue.stats", "tenant", tenant, "type", "call.progress"};
    event(v, twice, 3, id);
    deadlettered(v, id, &dl);
    expect_reason(&dl, "type: appears more than once");
    entry_free(&dl);

    /* The bridge is still ready... */
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%s/readyz", e2e_env("ENGAGE_ORS_BRIDGE_HTTP_PORT"));
    eg_http_resp_t resp;
    cr_assert_eq(eg_http_fetch("GET", url, NULL, NULL, 0, 5000, &resp), EG_OK);
    cr_expect_eq(resp.status, 200, "ors-bridge /readyz");
    eg_http_resp_free(&resp);
    /* ...and handles a good entry written after all that. */
    char phone[20];
    answered_phone(phone);
    request_t q = {0};
    send_request(v, &q, e2e_env("ENGAGE_DEMO_SERVICE"), phone, NULL, NULL);
    entry_t rep;
    wait_reply(v, &q, &rep);
    cr_expect_str_eq(get(&rep, "code"), "200", "%s", get(&rep, "message"));
    entry_free(&rep);
    eg_store_close(v);
}
