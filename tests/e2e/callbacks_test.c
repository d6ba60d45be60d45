/* End to end: book, read and cancel callbacks over HTTP against the running suite (api,
 * scheduler, NATS, Redis, PostgreSQL), as an integrator's GES client would. */
#define _DEFAULT_SOURCE
#include <time.h>
#include <unistd.h>

#include "e2e.h"
#include "engage/ids.h"
#include "engage/timeutil.h"

#define CREATE "/engagement/v3/callbacks/create"
#define RETRIEVE "/engagement/v3/callbacks/retrieve"
#define CANCEL "/engagement/v3/callbacks/cancel"

static const char *api_key(void)
{
    return e2e_env("ENGAGE_API_KEY");
}

/* A number unlikely to be used by another test running in parallel. */
static void phone(char out[20])
{
    unsigned r;
    eg_random_bytes(&r, sizeof r);
    snprintf(out, 20, "+1555%07u", r % 10000000u);
}

static char *create(const char *body_fmt_extra)
{
    char body[512], ph[20];
    phone(ph);
    snprintf(body, sizeof body, "{\"serviceName\":\"%s\",\"phoneNumber\":\"%s\"%s}",
             e2e_env("ENGAGE_DEMO_SERVICE"), ph, body_fmt_extra ? body_fmt_extra : "");
    e2e_resp_t r = e2e_post(CREATE, api_key(), body);
    cr_assert_eq(r.status, 200, "create answered %d: %s", r.status, e2e_message(&r));
    const char *id = e2e_data_str(&r, "id");
    cr_assert(eg_uuid_valid(id), "create returned no id");
    char *copy = strdup(id);
    e2e_free(&r);
    return copy;
}

static e2e_resp_t retrieve(const char *key, const char *id)
{
    char body[128];
    snprintf(body, sizeof body, "{\"id\":\"%s\"}", id);
    return e2e_post(RETRIEVE, key, body);
}

Test(callbacks, immediate_create_reads_queued)
{
    char *id = create(NULL);
    e2e_resp_t r = retrieve(api_key(), id);
    cr_assert_eq(r.status, 200);
    cr_expect_str_eq(e2e_data_str(&r, "id"), id);
    cr_expect_str_eq(e2e_data_str(&r, "callbackState"), "QUEUED");
    cr_expect_null(e2e_data_str(&r, "callbackReason"), "reason only for COMPLETED");
    eg_json_t *data = eg_json_get(r.body, "data");
    cr_expect(eg_json_int(eg_json_get(data, "positionInQueue")) >= 1, "QUEUED has a position");
    cr_expect(eg_json_is_integer(eg_json_get(data, "estimatedWaitTime")));
    e2e_free(&r);
    free(id);
}

Test(callbacks, scheduled_create_reads_scheduled_with_its_desired_time)
{
    /* An odd minute and milliseconds: the answer must be exactly what was booked, not the
     * slot's start. */
    char iso[EG_ISO_LEN + 1], extra[96];
    int64_t when = (eg_now_ms() / 60000 + 127) * 60000 + 7 * 60000 + 123;
    eg_time_format_iso(when, iso);
    snprintf(extra, sizeof extra, ",\"desiredTime\":\"%s\"", iso);
    char *id = create(extra);
    e2e_resp_t r = retrieve(api_key(), id);
    cr_assert_eq(r.status, 200);
    cr_expect_str_eq(e2e_data_str(&r, "callbackState"), "SCHEDULED");
    cr_expect_str_eq(e2e_data_str(&r, "desiredTime"), iso);
    cr_expect_null(eg_json_get(eg_json_get(r.body, "data"), "positionInQueue"));
    e2e_free(&r);
    free(id);
}

Test(callbacks, desired_time_with_offset_is_converted_to_utc)
{
    int64_t when = (eg_now_ms() / 3600000 + 5) * 3600000; /* a whole hour, 5 h ahead */
    time_t local = (time_t)(when / 1000) + 5 * 3600 + 30 * 60;
    struct tm tm;
    gmtime_r(&local, &tm);
    char extra[96], expect[EG_ISO_LEN + 1];
    snprintf(extra, sizeof extra, ",\"desiredTime\":\"%04d-%02d-%02dT%02d:%02d:00+05:30\"",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min);
    char *id = create(extra);
    e2e_resp_t r = retrieve(api_key(), id);
    eg_time_format_iso(when, expect);
    cr_expect_str_eq(e2e_data_str(&r, "desiredTime"), expect);
    e2e_free(&r);
    free(id);
}

Test(callbacks, cancel_reads_completed_cancelled_and_cannot_repeat)
{
    char iso[EG_ISO_LEN + 1], extra[96], body[128];
    eg_time_format_iso(eg_now_ms() + 3 * 3600000, iso);
    snprintf(extra, sizeof extra, ",\"desiredTime\":\"%s\"", iso);
    char *id = create(extra);
    snprintf(body, sizeof body, "{\"id\":\"%s\"}", id);
    e2e_resp_t c = e2e_post(CANCEL, api_key(), body);
    cr_assert_eq(c.status, 200, "cancel answered %d: %s", c.status, e2e_message(&c));
    cr_expect_str_eq(e2e_data_str(&c, "id"), id);
    e2e_free(&c);

    e2e_resp_t r = retrieve(api_key(), id);
    cr_expect_str_eq(e2e_data_str(&r, "callbackState"), "COMPLETED");
    cr_expect_str_eq(e2e_data_str(&r, "callbackReason"), "CANCELLED");
    e2e_free(&r);

    c = e2e_post(CANCEL, api_key(), body);
    cr_expect_eq(c.status, 400, "a completed callback is not cancellable (got %d)", c.status);
    cr_expect(strstr(e2e_message(&c), "COMPLETED") != NULL, "message: %s", e2e_message(&c));
    e2e_free(&c);
    free(id);
}

Test(callbacks, cancel_immediate_callback)
{
    char *id = create(NULL), body[128];
    snprintf(body, sizeof body, "{\"id\":\"%s\"}", id);
    e2e_resp_t c = e2e_post(CANCEL, api_key(), body);
    cr_expect_eq(c.status, 200);
    e2e_free(&c);
    e2e_resp_t r = retrieve(api_key(), id);
    cr_expect_str_eq(e2e_data_str(&r, "callbackReason"), "CANCELLED");
    e2e_free(&r);
    free(id);
}

Test(auth, wrong_or_missing_key_is_401)
{
    char *id = create(NULL);
    /* Same shape as a real key, wrong secret. */
    char bad[128];
    snprintf(bad, sizeof bad, "%s", api_key());
    bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == '0' ? '1' : '0';
    e2e_resp_t r = retrieve(bad, id);
    cr_expect_eq(r.status, 401);
    cr_expect_eq(eg_json_int(eg_json_get(eg_json_get(r.body, "status"), "code")), 401);
    e2e_free(&r);
    r = retrieve("not-a-key", id);
    cr_expect_eq(r.status, 401);
    e2e_free(&r);
    r = retrieve(NULL, id);
    cr_expect_eq(r.status, 401);
    cr_expect(strstr(e2e_message(&r), "x-api-key") != NULL);
    e2e_free(&r);
    free(id);
}

Test(callbacks, unknown_id_is_404_and_non_uuid_is_400)
{
    e2e_resp_t r = retrieve(api_key(), "3f2c1a0e-8b7d-4c6e-9f1a-2b3c4d5e6f70");
    cr_expect_eq(r.status, 404);
    e2e_free(&r);
    r = e2e_post(CANCEL, api_key(), "{\"id\":\"3F2C1A0E-8B7D-4C6E-9F1A-2B3C4D5E6F70\"}");
    cr_expect_eq(r.status, 404);
    e2e_free(&r);
    r = retrieve(api_key(), "12345");
    cr_expect_eq(r.status, 400);
    cr_expect(strstr(e2e_message(&r), "id") != NULL);
    e2e_free(&r);
}

Test(callbacks, malformed_bodies_are_400_naming_the_problem)
{
    struct {
        const char *body, *field;
    } cases[] = {
        {"{\"serviceName\":\"demo\"}", "phoneNumber"},
        {"{\"phoneNumber\":\"+15551234567\"}", "serviceName"},
        {"{\"serviceName\":\"demo\",\"phoneNumber\":\"555-CALL-ME\"}", "phoneNumber"},
        {"{\"serviceName\":\"demo\",\"phoneNumber\":\"+15551234567\",\"desiredTime\":\"tomorrow\"}",
         "desiredTime"},
        {"{\"serviceName\":\"demo\",\"phoneNumber\":\"+15551234567\",\"userData\":[1]}",
         "userData"},
        {"{\"serviceName\":\"demo\",\"phoneNumber\":\"+15551234567\",\"priority\":\"high\"}",
         "priority"},
        {"{\"serviceName\":\"demo\",", "body"},
        {"[]", "body"},
        {"", "body"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        e2e_resp_t r = e2e_post(CREATE, api_key(), cases[i].body);
        cr_expect_eq(r.status, 400, "case %zu answered %d", i, r.status);
        cr_expect(strstr(e2e_message(&r), cases[i].field) != NULL,
                  "case %zu: message \"%s\" does not name %s", i, e2e_message(&r), cases[i].field);
        e2e_free(&r);
    }
}

Test(callbacks, past_desired_time_is_400)
{
    char body[256];
    snprintf(body, sizeof body,
             "{\"serviceName\":\"%s\",\"phoneNumber\":\"+15551230000\","
             "\"desiredTime\":\"2020-01-01T00:00:00Z\"}",
             e2e_env("ENGAGE_DEMO_SERVICE"));
    e2e_resp_t r = e2e_post(CREATE, api_key(), body);
    cr_expect_eq(r.status, 400);
    cr_expect(strstr(e2e_message(&r), "desiredTime") != NULL);
    e2e_free(&r);
}

Test(callbacks, unknown_service_is_404)
{
    e2e_resp_t r =
        e2e_post(CREATE, api_key(),
                 "{\"serviceName\":\"no-such-service\",\"phoneNumber\":\"+15551234567\"}");
    cr_expect_eq(r.status, 404);
    cr_expect(strstr(e2e_message(&r), "no-such-service") != NULL);
    e2e_free(&r);
}

Test(envelope, corr_id_in_body_and_header)
{
    e2e_resp_t r = retrieve(api_key(), "3f2c1a0e-8b7d-4c6e-9f1a-2b3c4d5e6f70");
    const char *corr = eg_json_str(eg_json_get(eg_json_get(r.body, "status"), "corrId"));
    cr_assert(eg_uuid_valid(corr), "status.corrId is a UUID");
    cr_expect_str_eq(r.corr_header, corr);
    e2e_free(&r);
}

Test(envelope, ccid_header_is_refused)
{
    e2e_resp_t r = e2e_call("POST", CREATE, api_key(), "ContactCenterID: 1234",
                            "{\"serviceName\":\"demo\",\"phoneNumber\":\"+15551234567\"}");
    cr_expect_eq(r.status, 400);
    cr_expect(strstr(e2e_message(&r), "ContactCenterID") != NULL);
    e2e_free(&r);
    r = e2e_call("POST", CREATE, api_key(), "ccid: 1234",
                 "{\"serviceName\":\"demo\",\"phoneNumber\":\"+15551234567\"}");
    cr_expect_eq(r.status, 400);
    e2e_free(&r);
}

Test(envelope, wrong_method_and_unknown_endpoint)
{
    e2e_resp_t r = e2e_call("GET", CREATE, api_key(), NULL, NULL);
    cr_expect_eq(r.status, 405);
    e2e_free(&r);
    r = e2e_post("/engagement/v3/callbacks/frobnicate", api_key(), "{}");
    cr_expect_eq(r.status, 404);
    cr_expect(eg_json_get(r.body, "status") != NULL, "404 in the envelope");
    e2e_free(&r);
}

/* A second tenant, made with engagectl, sees nothing of the first. */
Test(tenants, another_tenants_key_gets_404)
{
    /* Scheduled hours ahead, so nothing but a cancel could change it meanwhile. */
    char iso[EG_ISO_LEN + 1], extra[96], cmd[512];
    eg_time_format_iso(eg_now_ms() + 5 * 3600000, iso);
    snprintf(extra, sizeof extra, ",\"desiredTime\":\"%s\"", iso);
    char *id = create(extra);
    snprintf(cmd, sizeof cmd, "'%s/engagectl' tenant create e2e-other-%d-%ld --json",
             e2e_env("ENGAGE_BIN_DIR"), getpid(), (long)eg_now_ms());
    char *line = e2e_run(cmd);
    cr_assert(line, "engagectl tenant create failed");
    char err[64];
    eg_json_t *t = eg_json_parse(line, strlen(line), 0, err, sizeof err);
    const char *other = eg_json_str(eg_json_get(t, "apiKey"));
    cr_assert(other);
    e2e_resp_t r = retrieve(other, id);
    cr_expect_eq(r.status, 404, "tenant B read tenant A's callback (%d)", r.status);
    e2e_free(&r);
    char body[128];
    snprintf(body, sizeof body, "{\"id\":\"%s\"}", id);
    r = e2e_post(CANCEL, other, body);
    cr_expect_eq(r.status, 404);
    e2e_free(&r);
    char rbody[160], later[EG_ISO_LEN + 1];
    eg_time_format_iso(eg_now_ms() + 6 * 3600000, later);
    snprintf(rbody, sizeof rbody, "{\"id\":\"%s\",\"desiredTime\":\"%s\"}", id, later);
    r = e2e_post("/engagement/v3/callbacks/reschedule", other, rbody);
    cr_expect_eq(r.status, 404, "tenant B cannot reschedule tenant A's callback");
    e2e_free(&r);
    r = retrieve(api_key(), id);
    cr_expect_str_eq(e2e_data_str(&r, "callbackState"), "SCHEDULED", "still untouched");
    e2e_free(&r);
    eg_json_free(t);
    free(line);
    free(id);
}
