/* End to end: GDPR export and erase by phone number through the admin API (and engagectl).
 *
 * A number gets three callbacks: one answered by voice-sim and completed by an agent, two
 * scheduled an hour or two ahead. The export returns all three with their events and user data;
 * the erase cancels the two active ones (the voice platform gets a `cancel` for each), deletes
 * every Redis key and PostgreSQL row of the three, and writes an audit row that holds a keyed
 * hash of the number, never the number. Afterwards nothing of them can be found, and nothing
 * comes back when the cancel events reach the archiver. */
#define _DEFAULT_SOURCE
#include <time.h>
#include <unistd.h>

#include "e2e.h"
#include "engage/bus.h"
#include "engage/ids.h"
#include "engage/keys.h"
#include "engage/pg.h"
#include "engage/store.h"
#include "engage/subjects.h"
#include "engage/timeutil.h"

#define ERASE "/ges/api/v1/gdpr/erase"
#define EXPORT "/ges/api/v1/gdpr/export"

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A number voice-sim answers (not ending in 91..96), unique per call. */
static void answered_phone(char out[20])
{
    unsigned r;
    eg_random_bytes(&r, sizeof r);
    snprintf(out, 20, "+1666%05u%02u", r % 100000u, 10 + (r >> 20) % 80);
}

static char *create(const char *phone, const char *desired, const char *user_data)
{
    char body[512];
    snprintf(body, sizeof body, "{\"serviceName\":\"%s\",\"phoneNumber\":\"%s\"%s%s%s%s%s}",
             e2e_env("ENGAGE_DEMO_SERVICE"), phone, desired ? ",\"desiredTime\":\"" : "",
             desired ? desired : "", desired ? "\"" : "", user_data ? ",\"userData\":" : "",
             user_data ? user_data : "");
    e2e_resp_t r = e2e_post("/engagement/v3/callbacks/create", e2e_env("ENGAGE_API_KEY"), body);
    cr_assert_eq(r.status, 200, "create: %d %s", r.status, e2e_message(&r));
    char *id = strdup(e2e_data_str(&r, "id"));
    e2e_free(&r);
    return id;
}

static char *in_hours(int h, char iso[EG_ISO_LEN + 1])
{
    eg_time_format_iso(eg_now_ms() + (int64_t)h * 3600000, iso);
    return iso;
}

static int retrieve_status(const char *id, char *state, size_t len)
{
    char body[96];
    snprintf(body, sizeof body, "{\"id\":\"%s\"}", id);
    e2e_resp_t r = e2e_post("/engagement/v3/callbacks/retrieve", e2e_env("ENGAGE_API_KEY"), body);
    const char *v = e2e_data_str(&r, "callbackState");
    if (state)
        snprintf(state, len, "%s", v ? v : "");
    int status = r.status;
    e2e_free(&r);
    return status;
}

static e2e_resp_t gdpr(const char *path, const char *key, const char *phone)
{
    char body[96];
    snprintf(body, sizeof body, "{\"phoneNumber\":\"%s\"}", phone);
    return e2e_post(path, key, body);
}

static eg_pg_t *pg_open(void)
{
    eg_pg_t *pg = NULL;
    cr_assert_eq(eg_pg_open(&pg, e2e_env("ENGAGE_PG_DSN")), EG_OK);
    return pg;
}

static long pg_long(eg_pg_t *pg, const char *sql, const char *p1)
{
    const char *params[1] = {p1};
    eg_pg_res_t *res = NULL;
    cr_assert_eq(eg_pg_exec(pg, sql, 1, params, &res), EG_OK, "%s: %s", sql, eg_pg_error(pg));
    long v = eg_pg_rows(res) > 0 && eg_pg_value(res, 0, 0) ? atol(eg_pg_value(res, 0, 0)) : -1;
    eg_pg_res_free(res);
    return v;
}

/* Rows of a callback in the three history tables. */
static long pg_rows(eg_pg_t *pg, const char *id)
{
    return pg_long(pg,
                   "SELECT (SELECT count(*) FROM callbacks WHERE id = $1::uuid) + "
                   "(SELECT count(*) FROM callback_data WHERE callback_id = $1::uuid) + "
                   "(SELECT count(*) FROM callback_events WHERE callback_id = $1::uuid)",
                   id);
}

static bool wait_pg(eg_pg_t *pg, const char *sql, const char *id, long want, int64_t ms)
{
    int64_t deadline = eg_mono_ms() + ms;
    while (pg_long(pg, sql, id) != want && eg_mono_ms() < deadline)
        sleep_ms(100);
    return pg_long(pg, sql, id) == want;
}

static long redis_exists(eg_store_t *s, const char *kind, const char *rest)
{
    char key[256];
    snprintf(key, sizeof key, "eg:{t:%s}:%s:%s", e2e_env("ENGAGE_TENANT_ID"), kind, rest);
    const char *argv[] = {"EXISTS", key};
    eg_reply_t *r = NULL;
    cr_assert_eq(eg_store_command(s, 2, argv, NULL, &r), EG_OK);
    long n = (long)r->integer;
    eg_reply_free(r);
    return n;
}

/* Wait (up to ms) until the suite's archiver has nothing pending or unacknowledged on its
 * durable consumer: every event published so far has been written (or dropped). */
static bool archiver_caught_up(int64_t ms)
{
    eg_bus_t *bus = NULL;
    char subject[160], err[128];
    bool done = false;
    cr_assert_eq(eg_bus_open(&bus, e2e_env("ENGAGE_NATS_URL"), "gdpr-test", 5000), EG_OK);
    snprintf(subject, sizeof subject, "$JS.API.CONSUMER.INFO.%s.%s", EG_STREAM_EVENTS,
             EG_DURABLE_ARCHIVER);
    int64_t deadline = eg_mono_ms() + ms;
    while (!done && eg_mono_ms() < deadline) {
        void *raw = NULL;
        size_t len = 0;
        if (eg_bus_request(bus, subject, "", 0, NULL, 2000, &raw, &len) == EG_OK) {
            eg_json_t *j = eg_json_parse(raw, len, 0, err, sizeof err);
            eg_json_t *pending = eg_json_get(j, "num_pending");
            eg_json_t *unacked = eg_json_get(j, "num_ack_pending");
            done = pending && unacked && eg_json_int(pending) == 0 && eg_json_int(unacked) == 0;
            eg_json_free(j);
            free(raw);
        }
        if (!done)
            sleep_ms(50);
    }
    eg_bus_close(bus);
    eg_bus_shutdown();
    return done;
}

static e2e_resp_t find(const char *phone)
{
    char path[160];
    snprintf(path, sizeof path, "/engagement/v3/callbacks/find?phoneNumber=%%2B%s", phone + 1);
    return e2e_call("GET", path, e2e_env("ENGAGE_API_KEY"), NULL, NULL);
}

/* The export's entry for an id, or NULL. */
static eg_json_t *exported(const e2e_resp_t *r, const char *id)
{
    eg_json_t *list = eg_json_get(eg_json_get(r->body, "data"), "callbacks");
    for (size_t i = 0; i < eg_json_array_size(list); i++) {
        eg_json_t *c = eg_json_array_get(list, i);
        if (strcmp(eg_json_str(eg_json_get(c, "id")), id) == 0)
            return c;
    }
    return NULL;
}

Test(gdpr, export_then_erase_leaves_nothing, .timeout = 90)
{
    char phone[20], iso[EG_ISO_LEN + 1], state[24] = "";
    const char *admin = e2e_env("ENGAGE_ADMIN_KEY");
    answered_phone(phone);
    eg_pg_t *pg = pg_open();
    eg_store_t *redis = NULL, *voice = NULL;
    cr_assert_eq(eg_store_open(&redis, e2e_env("ENGAGE_REDIS_URL"), 2000), EG_OK);
    cr_assert_eq(eg_store_open(&voice, e2e_env("ENGAGE_VOICE_REDIS_URL"), 2000), EG_OK);

    /* One completed by an agent, two scheduled. */
    char *done = create(phone, NULL, "{\"orderId\":\"G-0\"}");
    int64_t deadline = eg_mono_ms() + 20000;
    while (retrieve_status(done, state, sizeof state) == 200 && strcmp(state, "COMPLETED") != 0 &&
           eg_mono_ms() < deadline)
        sleep_ms(100);
    cr_assert_str_eq(state, "COMPLETED", "voice-sim did not complete %s", done);
    char *later = create(phone, in_hours(1, iso), "{\"orderId\":\"G-1\"}");
    char *latest = create(phone, in_hours(2, iso), NULL);
    const char *ids[3] = {done, later, latest};
    cr_assert(wait_pg(pg,
                      "SELECT count(*) FROM callbacks WHERE id = $1::uuid AND state = 'COMPLETED'",
                      done, 1, 15000),
              "the completed callback was not archived");
    for (int i = 1; i < 3; i++)
        cr_assert(
            wait_pg(pg, "SELECT count(*) FROM callbacks WHERE id = $1::uuid", ids[i], 1, 15000),
            "%s was not archived", ids[i]);

    /* Export: every callback of the number, newest first, with events and user data. */
    e2e_resp_t ex = gdpr(EXPORT, admin, phone);
    cr_assert_eq(ex.status, 200, "export: %d %s", ex.status, e2e_message(&ex));
    eg_json_t *list = eg_json_get(eg_json_get(ex.body, "data"), "callbacks");
    cr_assert_eq(eg_json_array_size(list), 3);
    cr_assert_str_eq(eg_json_str(eg_json_get(eg_json_array_get(list, 0), "id")), latest);
    cr_assert_str_eq(eg_json_str(eg_json_get(eg_json_array_get(list, 2), "id")), done);
    eg_json_t *c = exported(&ex, done);
    cr_assert_str_eq(eg_json_str(eg_json_get(c, "callbackState")), "COMPLETED");
    cr_assert_str_eq(eg_json_str(eg_json_get(c, "phoneNumber")), phone);
    eg_json_t *events = eg_json_get(c, "events");
    cr_assert_geq(eg_json_array_size(events), 4, "the completed callback's history");
    eg_json_t *last = eg_json_array_get(events, eg_json_array_size(events) - 1);
    cr_assert_str_eq(eg_json_str(eg_json_get(last, "state")), "COMPLETED");
    cr_assert_str_eq(eg_json_str(eg_json_get(eg_json_get(c, "userData"), "orderId")), "G-0");
    c = exported(&ex, later);
    cr_assert_str_eq(eg_json_str(eg_json_get(eg_json_get(c, "userData"), "orderId")), "G-1");
    cr_assert_str_eq(eg_json_str(eg_json_get(c, "callbackState")), "SCHEDULED");
    cr_assert(eg_json_true(eg_json_get(c, "live")));
    cr_assert_geq(eg_json_array_size(eg_json_get(c, "events")), 1);
    e2e_free(&ex);

    /* Not for an api key, and only a valid number. */
    e2e_resp_t no = gdpr(ERASE, e2e_env("ENGAGE_API_KEY"), phone);
    cr_assert_eq(no.status, 403);
    e2e_free(&no);
    no = gdpr(ERASE, admin, "12345");
    cr_assert_eq(no.status, 400);
    e2e_free(&no);

    /* Erase. */
    e2e_resp_t er = gdpr(ERASE, admin, phone);
    cr_assert_eq(er.status, 200, "erase: %d %s", er.status, e2e_message(&er));
    eg_json_t *data = eg_json_get(er.body, "data");
    cr_assert_eq(eg_json_int(eg_json_get(data, "callbacks")), 3);
    cr_assert_eq(eg_json_int(eg_json_get(data, "cancelled")), 2);
    cr_assert_eq(eg_json_int(eg_json_get(data, "redisDeleted")), 3);
    cr_assert_eq(eg_json_int(eg_json_get(eg_json_get(data, "rows"), "callbacks")), 3);
    e2e_free(&er);

    for (int i = 0; i < 3; i++) {
        cr_assert_eq(retrieve_status(ids[i], NULL, 0), 404, "%s still retrievable", ids[i]);
        cr_assert_eq(pg_rows(pg, ids[i]), 0, "%s still has rows in PostgreSQL", ids[i]);
        cr_assert_eq(redis_exists(redis, "cb", ids[i]), 0);
    }
    e2e_resp_t f = find(phone);
    cr_assert_eq(f.status, 200);
    cr_assert_eq(eg_json_int(eg_json_get(eg_json_get(f.body, "data"), "total")), 0,
                 "find still returns the number's callbacks");
    e2e_free(&f);
    cr_assert_eq(redis_exists(redis, "n", phone), 0, "the number's hash is left");

    /* The voice platform was told to cancel the two active ones (and only them). */
    deadline = eg_mono_ms() + 10000;
    while ((e2e_voice_commands(voice, later, "cancel") == 0 ||
            e2e_voice_commands(voice, latest, "cancel") == 0) &&
           eg_mono_ms() < deadline)
        sleep_ms(100);
    cr_assert_eq(e2e_voice_commands(voice, later, "cancel"), 1);
    cr_assert_eq(e2e_voice_commands(voice, latest, "cancel"), 1);
    cr_assert_eq(e2e_voice_commands(voice, done, "cancel"), 0);

    /* The audit row: the keyed hash of the number and the counts, never the number. */
    char hash[EG_KEY_HASH_HEX_LEN + 1];
    cr_assert_eq(eg_key_hash_hex(e2e_env("ENGAGE_KEY_PEPPER"), phone, hash), EG_OK);
    const char *pa[2] = {hash, e2e_env("ENGAGE_TENANT_ID")};
    eg_pg_res_t *res = NULL;
    cr_assert_eq(eg_pg_exec(pg,
                            "SELECT detail::text, coalesce(actor, '') FROM audit_log WHERE "
                            "action = 'gdpr.erase' AND tenant_id = $2::uuid AND "
                            "detail->>'phoneHash' = $1",
                            2, pa, &res),
                 EG_OK, "%s", eg_pg_error(pg));
    cr_assert_eq(eg_pg_rows(res), 1, "one audit row for the erase");
    const char *detail = eg_pg_value(res, 0, 0);
    cr_assert_null(strstr(detail, phone + 1), "the audit row holds the number: %s", detail);
    cr_assert_null(strstr(detail, phone + 5), "the audit row holds part of the number");
    cr_assert(strstr(detail, "\"cancelled\": 2") != NULL, "%s", detail);
    /* The actor is the admin key's id (its first part), never the key. */
    const char *actor = eg_pg_value(res, 0, 1);
    cr_assert_eq(strlen(actor), EG_KEY_ID_LEN, "actor %s", actor);
    cr_assert_eq(strncmp(actor, admin, EG_KEY_ID_LEN), 0);
    eg_pg_res_free(res);

    /* The cancel events reach the archiver after the erase: they must not bring rows back.
     * (Under load from other tests the consumer may never be idle; then wait a while.) */
    if (!archiver_caught_up(10000))
        sleep_ms(2000);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(pg_rows(pg, ids[i]), 0, "%s came back in PostgreSQL", ids[i]);
    cr_assert_eq(
        pg_long(pg, "SELECT count(*) FROM gdpr_erased WHERE callback_id = $1::uuid", later), 1);

    /* Idempotent: again, nothing left to do. */
    er = gdpr(ERASE, admin, phone);
    cr_assert_eq(er.status, 200);
    cr_assert_eq(eg_json_int(eg_json_get(eg_json_get(er.body, "data"), "callbacks")), 0);
    e2e_free(&er);
    ex = gdpr(EXPORT, admin, phone);
    cr_assert_eq(ex.status, 200);
    cr_assert_eq(eg_json_array_size(eg_json_get(eg_json_get(ex.body, "data"), "callbacks")), 0);
    e2e_free(&ex);

    for (int i = 0; i < 3; i++)
        free((char *)ids[i]);
    eg_store_close(redis);
    eg_store_close(voice);
    eg_pg_close(pg);
}

Test(gdpr, engagectl_exports_and_erases, .timeout = 60)
{
    char phone[20], iso[EG_ISO_LEN + 1], cmd[512], state[24];
    answered_phone(phone);
    char *id = create(phone, in_hours(3, iso), NULL);
    const char *bin = e2e_env("ENGAGE_BIN_DIR");

    snprintf(cmd, sizeof cmd, "%s/engagectl --json gdpr export --phone '%s'", bin, phone);
    char *out = e2e_run(cmd);
    cr_assert_not_null(out, "%s failed", cmd);
    cr_assert_not_null(strstr(out, id), "the export lacks %s: %s", id, out);
    free(out);

    snprintf(cmd, sizeof cmd, "%s/engagectl gdpr erase --phone '%s'", bin, phone);
    out = e2e_run(cmd);
    cr_assert_not_null(out, "%s failed", cmd);
    cr_assert_not_null(strstr(out, "erased 1 callback(s): 1 cancelled"), "%s", out);
    free(out);
    cr_assert_eq(retrieve_status(id, state, sizeof state), 404);

    snprintf(cmd, sizeof cmd, "%s/engagectl gdpr erase 2>/dev/null", bin);
    cr_assert_null(e2e_run(cmd), "no --phone is a usage error");
    free(id);
}

Test(gdpr, erase_waits_while_an_agent_has_the_call, .timeout = 90)
{
    /* voice-sim keeps an answered call with its agent for a second (PROCESSING): an erase then is
     * refused with 409 and changes nothing; once the call ended it goes through. The call may end
     * between our look and the erase, so up to three calls are tried. */
    const char *admin = e2e_env("ENGAGE_ADMIN_KEY");
    bool refused = false;
    for (int round = 0; round < 3 && !refused; round++) {
        char phone[20], state[24] = "";
        answered_phone(phone);
        char *id = create(phone, NULL, NULL);
        int64_t deadline = eg_mono_ms() + 15000;
        while (retrieve_status(id, state, sizeof state) == 200 &&
               strcmp(state, "PROCESSING") != 0 && strcmp(state, "COMPLETED") != 0 &&
               eg_mono_ms() < deadline)
            sleep_ms(20);
        cr_assert_str_eq(state, "PROCESSING", "voice-sim never connected %s to an agent", id);
        e2e_resp_t er = gdpr(ERASE, admin, phone);
        if (er.status == 409) {
            refused = true;
            cr_assert(strstr(e2e_message(&er), "with an agent") != NULL, "%s", e2e_message(&er));
            cr_assert_eq(retrieve_status(id, NULL, 0), 200, "a refused erase changed something");
            /* After the call: erased. */
            deadline = eg_mono_ms() + 15000;
            while (retrieve_status(id, state, sizeof state) == 200 &&
                   strcmp(state, "COMPLETED") != 0 && eg_mono_ms() < deadline)
                sleep_ms(100);
            e2e_free(&er);
            er = gdpr(ERASE, admin, phone);
            cr_assert_eq(er.status, 200, "%d %s", er.status, e2e_message(&er));
            cr_assert_eq(retrieve_status(id, NULL, 0), 404);
        } else {
            cr_assert_eq(er.status, 200, "%d %s", er.status, e2e_message(&er));
        }
        e2e_free(&er);
        free(id);
    }
    cr_assert(refused, "three erases during a call were never refused");
}

Test(gdpr, erase_deletes_call_in_requests_of_the_number, .timeout = 30)
{
    /* A call-in request names the customer's number as its caller: the erase deletes it and
     * frees its (number, code) pair, and leaves another caller's request alone. */
    const char *admin = e2e_env("ENGAGE_ADMIN_KEY");
    char phone[20], other[20], group[48], path[96], body[256];
    answered_phone(phone);
    answered_phone(other);
    unsigned r;
    eg_random_bytes(&r, sizeof r);
    snprintf(group, sizeof group, "gdpr-ci-%u", r);
    snprintf(path, sizeof path, "/ges/api/v1/call-in-groups/%s", group);
    snprintf(body, sizeof body, "{\"numbers\":[\"+1555%07u\"]}", r % 10000000u);
    e2e_resp_t g = e2e_call("PUT", path, admin, NULL, body);
    cr_assert_eq(g.status, 201, "group: %d %s", g.status, e2e_message(&g));
    e2e_free(&g);
    char *ids[2];
    const char *callers[2] = {phone, other};
    for (int i = 0; i < 2; i++) {
        snprintf(body, sizeof body, "{\"groupName\":\"%s\",\"fromPhoneNumber\":\"%s\"}", group,
                 callers[i]);
        e2e_resp_t c =
            e2e_post("/engagement/v3/call-in/requests/create", e2e_env("ENGAGE_API_KEY"), body);
        cr_assert_eq(c.status, 200, "call-in: %d %s", c.status, e2e_message(&c));
        ids[i] = strdup(e2e_data_str(&c, "id"));
        e2e_free(&c);
    }
    eg_store_t *store = NULL;
    cr_assert_eq(eg_store_open(&store, e2e_env("ENGAGE_REDIS_URL"), 2000), EG_OK);
    char keys[2][200];
    for (int i = 0; i < 2; i++) {
        snprintf(keys[i], sizeof keys[i], "eg:{t:%s}:ci:req:%s", e2e_env("ENGAGE_TENANT_ID"),
                 ids[i]);
        const char *ex[] = {"EXISTS", keys[i]};
        eg_reply_t *x = NULL;
        cr_assert_eq(eg_store_command(store, 2, ex, NULL, &x), EG_OK);
        cr_assert_eq(x->integer, 1, "request %d stored", i);
        eg_reply_free(x);
    }
    e2e_resp_t er = gdpr(ERASE, admin, phone);
    cr_assert_eq(er.status, 200, "erase: %d %s", er.status, e2e_message(&er));
    e2e_free(&er);
    for (int i = 0; i < 2; i++) {
        const char *ex[] = {"EXISTS", keys[i]};
        eg_reply_t *x = NULL;
        cr_assert_eq(eg_store_command(store, 2, ex, NULL, &x), EG_OK);
        cr_expect_eq(x->integer, i == 0 ? 0 : 1, "%s",
                     i == 0 ? "the number's call-in request is erased"
                            : "another caller's request stays");
        eg_reply_free(x);
        free(ids[i]);
    }
    eg_store_close(store);
}
