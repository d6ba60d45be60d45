/* End to end through the voice platform: a callback booked over HTTP is dialled by voice-sim,
 * answered, handled by an agent, and its whole history lands in PostgreSQL. */
#define _DEFAULT_SOURCE
#include <time.h>
#include <unistd.h>

#include "e2e.h"
#include "engage/ids.h"
#include "engage/pg.h"
#include "engage/store.h"
#include "engage/timeutil.h"

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

static char *create_in(const char *service, const char *phone, const char *desired)
{
    char body[512];
    snprintf(body, sizeof body, "{\"serviceName\":\"%s\",\"phoneNumber\":\"%s\"%s%s%s}", service,
             phone, desired ? ",\"desiredTime\":\"" : "", desired ? desired : "",
             desired ? "\"" : "");
    e2e_resp_t r = e2e_post("/engagement/v3/callbacks/create", e2e_env("ENGAGE_API_KEY"), body);
    cr_assert_eq(r.status, 200, "create: %d %s", r.status, e2e_message(&r));
    char *id = strdup(e2e_data_str(&r, "id"));
    e2e_free(&r);
    return id;
}

static char *create(const char *phone, const char *desired)
{
    return create_in(e2e_env("ENGAGE_DEMO_SERVICE"), phone, desired);
}

/* The states of a callback's events in PostgreSQL, in order, joined by spaces. */
static void pg_states(eg_pg_t *pg, const char *id, char *out, size_t outlen, char *reason,
                      size_t reasonlen)
{
    const char *params[] = {id};
    eg_pg_res_t *res = NULL;
    out[0] = reason[0] = '\0';
    eg_status_t st = eg_pg_exec(pg,
                                "SELECT state, coalesce(reason, '') FROM callback_events "
                                "WHERE callback_id = $1::uuid ORDER BY at, event_id",
                                1, params, &res);
    cr_assert_eq(st, EG_OK, "query: %s", eg_pg_error(pg));
    size_t pos = 0;
    for (int i = 0; i < eg_pg_rows(res); i++) {
        pos +=
            (size_t)snprintf(out + pos, outlen - pos, "%s%s", i ? " " : "", eg_pg_value(res, i, 0));
        snprintf(reason, reasonlen, "%s", eg_pg_value(res, i, 1));
    }
    eg_pg_res_free(res);
}

Test(lifecycle, immediate_callback_reaches_agent_and_postgres_within_10s, .timeout = 30)
{
    char phone[20], states[256], reason[64];
    answered_phone(phone);
    char *id = create(phone, NULL);
    eg_pg_t *pg = NULL;
    cr_assert_eq(eg_pg_open(&pg, e2e_env("ENGAGE_PG_DSN")), EG_OK);
    int64_t deadline = eg_mono_ms() + 10000;
    do {
        pg_states(pg, id, states, sizeof states, reason, sizeof reason);
        if (strstr(states, "COMPLETED"))
            break;
        sleep_ms(100);
    } while (eg_mono_ms() < deadline);
    cr_expect_str_eq(states, "QUEUED ROUTING ROUTING PROCESSING COMPLETED",
                     "events in PostgreSQL: %s", states);
    cr_expect_str_eq(reason, "AGENT_CONNECTED");

    const char *params[] = {id};
    eg_pg_res_t *res = NULL;
    cr_assert_eq(eg_pg_exec(pg,
                            "SELECT state, reason, attempts, phone FROM callbacks WHERE id = "
                            "$1::uuid",
                            1, params, &res),
                 EG_OK);
    cr_assert_eq(eg_pg_rows(res), 1, "one row in callbacks");
    cr_expect_str_eq(eg_pg_value(res, 0, 0), "COMPLETED");
    cr_expect_str_eq(eg_pg_value(res, 0, 1), "AGENT_CONNECTED");
    cr_expect_str_eq(eg_pg_value(res, 0, 2), "1");
    cr_expect_str_eq(eg_pg_value(res, 0, 3), phone);
    eg_pg_res_free(res);

    char body[128];
    snprintf(body, sizeof body, "{\"id\":\"%s\"}", id);
    e2e_resp_t r = e2e_post("/engagement/v3/callbacks/retrieve", e2e_env("ENGAGE_API_KEY"), body);
    cr_expect_str_eq(e2e_data_str(&r, "callbackState"), "COMPLETED");
    cr_expect_str_eq(e2e_data_str(&r, "callbackReason"), "AGENT_CONNECTED");
    e2e_free(&r);
    eg_pg_close(pg);
    free(id);
}

Test(lifecycle, cancelled_scheduled_callback_gets_cancel_and_never_dial, .timeout = 30)
{
    char phone[20], iso[EG_ISO_LEN + 1];
    answered_phone(phone);
    /* Due in 4 s: had the cancel not worked, the dispatcher would dial it before we look. */
    eg_time_format_iso(eg_now_ms() + 4000, iso);
    char *id = create(phone, iso), body[128];
    snprintf(body, sizeof body, "{\"id\":\"%s\"}", id);
    e2e_resp_t r = e2e_post("/engagement/v3/callbacks/cancel", e2e_env("ENGAGE_API_KEY"), body);
    cr_assert_eq(r.status, 200);
    e2e_free(&r);
    eg_store_t *voice = NULL;
    cr_assert_eq(eg_store_open(&voice, e2e_env("ENGAGE_VOICE_REDIS_URL"), 2000), EG_OK);
    int64_t deadline = eg_mono_ms() + 10000;
    while (e2e_voice_commands(voice, id, "cancel") == 0 && eg_mono_ms() < deadline)
        sleep_ms(100);
    cr_expect_eq(e2e_voice_commands(voice, id, "cancel"), 1, "one cancel command");
    sleep_ms(5000); /* past its desired time */
    cr_expect_eq(e2e_voice_commands(voice, id, "dial"), 0, "never dialled");
    eg_store_close(voice);
    free(id);
}

Test(lifecycle, scheduled_callback_is_dialled_at_its_time, .timeout = 30)
{
    char phone[20], iso[EG_ISO_LEN + 1];
    answered_phone(phone);
    int64_t when = eg_now_ms() + 2000;
    eg_time_format_iso(when, iso);
    char *id = create(phone, iso);
    eg_store_t *voice = NULL;
    cr_assert_eq(eg_store_open(&voice, e2e_env("ENGAGE_VOICE_REDIS_URL"), 2000), EG_OK);
    sleep_ms(1000);
    cr_expect_eq(e2e_voice_commands(voice, id, "dial"), 0, "not dialled before its time");
    int64_t deadline = eg_now_ms() + 8000;
    while (e2e_voice_commands(voice, id, "dial") == 0 && eg_now_ms() < deadline)
        sleep_ms(50);
    int64_t late = eg_now_ms() - when;
    cr_expect_eq(e2e_voice_commands(voice, id, "dial"), 1, "dialled once");
    cr_expect(late < 2000, "dialled %lld ms after its time", (long long)late);
    eg_store_close(voice);
    free(id);
}

/* A new service of its own (service_json as its PUT body), and an immediate callback on it for
 * a number ending in the two digits `ending` (one of voice-sim's outcomes). */
static char *book_on_new_service(const char *prefix, const char *ending, const char *service_json)
{
    char phone[20], service[48], path[96];
    unsigned r;
    eg_random_bytes(&r, sizeof r);
    snprintf(phone, sizeof phone, "+1777%05u%s", r % 100000u, ending);
    snprintf(service, sizeof service, "%s-%u", prefix, r);
    snprintf(path, sizeof path, "/ges/api/v1/services/%s", service);
    e2e_resp_t put = e2e_call("PUT", path, e2e_env("ENGAGE_ADMIN_KEY"), NULL, service_json);
    cr_assert_eq(put.status, 201, "service: %d %s", put.status, e2e_message(&put));
    e2e_free(&put);
    return create_in(service, phone, NULL);
}

/* Retrieve id until it is COMPLETED (asserted) or timeout_ms passed; the last answer. */
static e2e_resp_t wait_completed(const char *id, int64_t timeout_ms)
{
    char body[128];
    snprintf(body, sizeof body, "{\"id\":\"%s\"}", id);
    const char *state = NULL;
    e2e_resp_t resp = {0};
    int64_t deadline = eg_mono_ms() + timeout_ms;
    while (eg_mono_ms() < deadline) {
        e2e_free(&resp);
        resp = e2e_post("/engagement/v3/callbacks/retrieve", e2e_env("ENGAGE_API_KEY"), body);
        state = e2e_data_str(&resp, "callbackState");
        if (state && strcmp(state, "COMPLETED") == 0)
            break;
        sleep_ms(200);
    }
    cr_assert_str_eq(state, "COMPLETED");
    return resp;
}

Test(lifecycle, busy_number_is_retried_then_fails, .timeout = 40)
{
    /* Numbers ending in 91 are busy on every attempt: a service with 3 attempts 1 s apart
     * retries twice, then completes with FAIL_CALL_TO_CUSTOMER. */
    char *id =
        book_on_new_service("retry", "91", "{\"retry\":{\"maxAttempts\":3,\"delaySeconds\":1}}");
    e2e_resp_t resp = wait_completed(id, 35000);
    cr_expect_str_eq(e2e_data_str(&resp, "callbackReason"), "FAIL_CALL_TO_CUSTOMER");
    int attempts = (int)eg_json_int(eg_json_get(eg_json_get(resp.body, "data"), "attempts"));
    cr_expect_eq(attempts, 3, "three attempts (%d)", attempts);
    eg_json_t *log = eg_json_get(eg_json_get(resp.body, "data"), "attemptLog");
    cr_expect_eq(eg_json_array_size(log), 3, "each attempt is kept");
    for (size_t i = 0; i < eg_json_array_size(log); i++)
        cr_expect_str_eq(eg_json_str(eg_json_get(eg_json_array_get(log, i), "result")), "BUSY",
                         "attempt %zu result", i + 1);
    e2e_free(&resp);
    free(id);
}

Test(lifecycle, a_lost_call_is_given_up_cancelled_and_retried, .timeout = 40)
{
    /* Numbers ending in 98: voice-sim takes attempt 1 and never says a word about it (the
     * platform lost the call). With retry.attemptTimeoutSeconds 5 the scheduler gives the
     * attempt up after 5 s, tells the platform to cancel it and dials attempt 2 at once, which
     * is answered. */
    int64_t t0 = eg_mono_ms();
    char *id = book_on_new_service(
        "lost", "98",
        "{\"retry\":{\"maxAttempts\":2,\"delaySeconds\":60,\"attemptTimeoutSeconds\":5}}");
    e2e_resp_t resp = wait_completed(id, 30000);
    int64_t took = eg_mono_ms() - t0;
    cr_expect_str_eq(e2e_data_str(&resp, "callbackReason"), "AGENT_CONNECTED");
    cr_expect(took >= 5000, "not given up before its timeout (%lld ms)", (long long)took);
    cr_expect(took < 20000, "retried at once, not after the 60 s retry delay (%lld ms)",
              (long long)took);
    eg_json_t *log = eg_json_get(eg_json_get(resp.body, "data"), "attemptLog");
    cr_assert_eq(eg_json_array_size(log), 2, "two attempts kept");
    cr_expect_str_eq(eg_json_str(eg_json_get(eg_json_array_get(log, 0), "result")), "TIMEOUT");
    cr_expect_str_eq(eg_json_str(eg_json_get(eg_json_array_get(log, 1), "result")), "CALL_ENDED");
    e2e_free(&resp);
    eg_store_t *voice = NULL;
    cr_assert_eq(eg_store_open(&voice, e2e_env("ENGAGE_VOICE_REDIS_URL"), 2000), EG_OK);
    cr_expect_eq(e2e_voice_commands(voice, id, "dial"), 2, "one dial per attempt");
    cr_expect_eq(e2e_voice_commands(voice, id, "cancel"), 1, "the lost attempt is cancelled");
    eg_store_close(voice);
    free(id);
}

/* Book a callback due in 3 s on a fresh open service, then close the service for today (a
 * special day with no hours) with extra settings (JSON members, may be ""), and wait past the
 * due time. Returns the callback id (free it); *dialled tells whether voice-sim got a dial. */
static char *book_then_close(const char *extra, bool *dialled)
{
    char service[48], path[96], json[700], today[11], iso[EG_ISO_LEN + 1], phone[20];
    unsigned r;
    eg_random_bytes(&r, sizeof r);
    snprintf(service, sizeof service, "closes-%u", r);
    snprintf(path, sizeof path, "/ges/api/v1/services/%s", service);
    e2e_resp_t put = e2e_call("PUT", path, e2e_env("ENGAGE_ADMIN_KEY"), NULL, "{}");
    cr_assert_eq(put.status, 201);
    e2e_free(&put);
    int64_t now = eg_now_ms();
    if ((now % 86400000) > 86400000 - 60000)
        cr_skip_test("too close to midnight UTC for this test");
    eg_time_format_iso(now + 3000, iso);
    memcpy(today, iso, 10);
    today[10] = '\0';
    answered_phone(phone);
    char *id = create_in(service, phone, iso);
    snprintf(json, sizeof json,
             "{\"businessHours\":{\"mon\":[[\"00:00\",\"24:00\"]],\"tue\":[[\"00:00\",\"24:00\"]],"
             "\"wed\":[[\"00:00\",\"24:00\"]],\"thu\":[[\"00:00\",\"24:00\"]],"
             "\"fri\":[[\"00:00\",\"24:00\"]],\"sat\":[[\"00:00\",\"24:00\"]],"
             "\"sun\":[[\"00:00\",\"24:00\"]]},\"specialDays\":{\"%s\":[]}%s%s}",
             today, *extra ? "," : "", extra);
    put = e2e_call("PUT", path, e2e_env("ENGAGE_ADMIN_KEY"), NULL, json);
    cr_assert_eq(put.status, 200, "%d %s", put.status, e2e_message(&put));
    e2e_free(&put);
    sleep_ms(6000);
    eg_store_t *voice = NULL;
    cr_assert_eq(eg_store_open(&voice, e2e_env("ENGAGE_VOICE_REDIS_URL"), 2000), EG_OK);
    *dialled = e2e_voice_commands(voice, id, "dial") > 0;
    eg_store_close(voice);
    return id;
}

static e2e_resp_t retrieve(const char *id)
{
    char body[128];
    snprintf(body, sizeof body, "{\"id\":\"%s\"}", id);
    return e2e_post("/engagement/v3/callbacks/retrieve", e2e_env("ENGAGE_API_KEY"), body);
}

Test(lifecycle, due_while_closed_waits_for_the_next_opening, .timeout = 30)
{
    /* The service closes for today after the booking: at its time the dispatcher must not dial
     * it but defer it to the next opening. */
    bool dialled = true;
    char *id = book_then_close("", &dialled);
    cr_expect_not(dialled, "not dialled while closed");
    e2e_resp_t got = retrieve(id);
    cr_expect_str_eq(e2e_data_str(&got, "callbackState"), "SCHEDULED", "still waiting");
    e2e_free(&got);
    free(id);
}

Test(lifecycle, due_while_closed_completes_when_the_service_says_so, .timeout = 30)
{
    /* closedAtDispatch "complete": the same callback completes at its time, never dialled. */
    bool dialled = true;
    char *id = book_then_close("\"closedAtDispatch\":\"complete\"", &dialled);
    cr_expect_not(dialled, "not dialled while closed");
    e2e_resp_t got = retrieve(id);
    cr_expect_str_eq(e2e_data_str(&got, "callbackState"), "COMPLETED");
    cr_expect_str_eq(e2e_data_str(&got, "callbackReason"), "FAIL_ERROR");
    e2e_free(&got);
    free(id);
}
