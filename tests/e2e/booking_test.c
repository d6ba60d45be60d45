/* End to end: the booking rules — slot capacity under concurrency, cancel and reschedule giving
 * capacity back, per-number limits, number rules, Idempotency-Key, find by phone. */
#define _DEFAULT_SOURCE
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "e2e.h"
#include "engage/ids.h"
#include "engage/timeutil.h"

#define CREATE "/engagement/v3/callbacks/create"

static void unique(char *out, size_t n, const char *prefix)
{
    unsigned r;
    eg_random_bytes(&r, sizeof r);
    snprintf(out, n, "%s-%u", prefix, r);
}

static void put_service(const char *name, const char *json)
{
    char path[160];
    snprintf(path, sizeof path, "/ges/api/v1/services/%s", name);
    e2e_resp_t r = e2e_call("PUT", path, e2e_env("ENGAGE_ADMIN_KEY"), NULL, json);
    cr_assert(r.status == 201 || r.status == 200, "service %s: %d %s", name, r.status,
              e2e_message(&r));
    e2e_free(&r);
}

static e2e_resp_t book(const char *service, const char *phone, const char *iso)
{
    char body[384];
    if (iso)
        snprintf(body, sizeof body,
                 "{\"serviceName\":\"%s\",\"phoneNumber\":\"%s\",\"desiredTime\":\"%s\"}", service,
                 phone, iso);
    else
        snprintf(body, sizeof body, "{\"serviceName\":\"%s\",\"phoneNumber\":\"%s\"}", service,
                 phone);
    return e2e_post(CREATE, e2e_env("ENGAGE_API_KEY"), body);
}

typedef struct {
    const char *service;
    const char *iso;
    int index;
    int status;
    bool proposals;
    char id[40];
} job_t;

static void *book_one(void *arg)
{
    job_t *j = arg;
    char phone[20];
    snprintf(phone, sizeof phone, "+1444555%04d", j->index);
    e2e_resp_t r = book(j->service, phone, j->iso);
    j->status = r.status;
    if (r.status == 200)
        snprintf(j->id, sizeof j->id, "%s", e2e_data_str(&r, "id"));
    eg_json_t *slots = eg_json_get(eg_json_get(r.body, "data"), "slots");
    j->proposals = eg_json_object_size(slots) > 0;
    e2e_free(&r);
    return NULL;
}

/* n concurrent bookings; returns how many got 200 (ids of those in jobs). */
static int book_many(job_t *jobs, int n, const char *service, const char *iso, int first)
{
    pthread_t t[200];
    for (int i = 0; i < n; i++) {
        jobs[i] = (job_t){.service = service, .iso = iso, .index = first + i};
        pthread_create(&t[i], NULL, book_one, &jobs[i]);
    }
    int ok = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
        ok += jobs[i].status == 200;
    }
    return ok;
}

Test(booking, concurrent_creates_fill_a_slot_exactly, .timeout = 120)
{
    char service[48], iso[EG_ISO_LEN + 1];
    unique(service, sizeof service, "cap50");
    put_service(service, "{\"slotMinutes\":60,\"capacity\":{\"default\":50}}");
    int64_t slot = (eg_now_ms() / 3600000 + 5) * 3600000;
    eg_time_format_iso(slot + 15 * 60000, iso);

    static job_t jobs[200];
    int ok = book_many(jobs, 200, service, iso, 0);
    cr_expect_eq(ok, 50, "exactly the capacity is booked (%d)", ok);
    int full = 0, with_proposals = 0;
    for (int i = 0; i < 200; i++) {
        if (jobs[i].status == 429) {
            full++;
            with_proposals += jobs[i].proposals;
        }
    }
    cr_expect_eq(full, 150, "the rest are 429 (%d)", full);
    cr_expect_eq(with_proposals, 150, "every 429 proposes slots");

    /* 10 cancels give back exactly 10 places. */
    int cancelled = 0;
    for (int i = 0; i < 200 && cancelled < 10; i++) {
        if (jobs[i].status != 200)
            continue;
        char body[96];
        snprintf(body, sizeof body, "{\"id\":\"%s\"}", jobs[i].id);
        e2e_resp_t c = e2e_post("/engagement/v3/callbacks/cancel", e2e_env("ENGAGE_API_KEY"), body);
        cancelled += c.status == 200;
        e2e_free(&c);
    }
    cr_assert_eq(cancelled, 10);
    static job_t again[40];
    ok = book_many(again, 40, service, iso, 1000);
    cr_expect_eq(ok, 10, "after 10 cancels exactly 10 more succeed (%d)", ok);
}

Test(booking, reschedule_moves_capacity)
{
    char service[48], a[EG_ISO_LEN + 1], b[EG_ISO_LEN + 1], body[256];
    unique(service, sizeof service, "resch");
    put_service(service, "{\"slotMinutes\":60,\"capacity\":{\"default\":1}}");
    int64_t slot = (eg_now_ms() / 3600000 + 4) * 3600000;
    eg_time_format_iso(slot + 60000, a);
    eg_time_format_iso(slot + 3600000 + 60000, b);
    e2e_resp_t r = book(service, "+15550001001", a);
    cr_assert_eq(r.status, 200);
    char id[40];
    snprintf(id, sizeof id, "%s", e2e_data_str(&r, "id"));
    e2e_free(&r);
    r = book(service, "+15550001002", a);
    cr_expect_eq(r.status, 429, "slot A is full");
    e2e_free(&r);

    snprintf(body, sizeof body, "{\"id\":\"%s\",\"desiredTime\":\"%s\"}", id, b);
    r = e2e_post("/engagement/v3/callbacks/reschedule", e2e_env("ENGAGE_API_KEY"), body);
    cr_assert_eq(r.status, 200, "reschedule: %d %s", r.status, e2e_message(&r));
    cr_expect_str_eq(e2e_data_str(&r, "desiredTime"), b);
    e2e_free(&r);

    r = book(service, "+15550001003", a);
    cr_expect_eq(r.status, 200, "slot A has its place back");
    e2e_free(&r);
    r = book(service, "+15550001004", b);
    cr_expect_eq(r.status, 429, "slot B is now full");
    e2e_free(&r);

    snprintf(body, sizeof body, "{\"id\":\"%s\"}", id);
    r = e2e_post("/engagement/v3/callbacks/retrieve", e2e_env("ENGAGE_API_KEY"), body);
    cr_expect_str_eq(e2e_data_str(&r, "desiredTime"), b);
    cr_expect_str_eq(e2e_data_str(&r, "callbackState"), "SCHEDULED");
    e2e_free(&r);

    /* Into a full slot: 429 with proposals, nothing moves. */
    snprintf(body, sizeof body, "{\"id\":\"%s\",\"desiredTime\":\"%s\"}", id, a);
    r = e2e_post("/engagement/v3/callbacks/reschedule", e2e_env("ENGAGE_API_KEY"), body);
    cr_expect_eq(r.status, 429);
    e2e_free(&r);
    /* Bad input names the field. */
    snprintf(body, sizeof body, "{\"id\":\"%s\",\"desiredTime\":\"soon\"}", id);
    r = e2e_post("/engagement/v3/callbacks/reschedule", e2e_env("ENGAGE_API_KEY"), body);
    cr_expect_eq(r.status, 400);
    cr_expect(strstr(e2e_message(&r), "desiredTime") != NULL);
    e2e_free(&r);
}

Test(booking, per_number_limits)
{
    char service[48], iso[EG_ISO_LEN + 1];
    unique(service, sizeof service, "limits");
    put_service(service, "{\"maxActivePerNumber\":2,\"maxPerNumberPerDay\":3}");
    eg_time_format_iso(eg_now_ms() + 6 * 3600000, iso);
    e2e_resp_t r;
    for (int i = 0; i < 2; i++) {
        r = book(service, "+15550002001", iso);
        cr_assert_eq(r.status, 200);
        if (i == 0) {
            char body[96];
            snprintf(body, sizeof body, "{\"id\":\"%s\"}", e2e_data_str(&r, "id"));
            e2e_free(&r);
            r = e2e_post("/engagement/v3/callbacks/cancel", e2e_env("ENGAGE_API_KEY"), body);
            cr_assert_eq(r.status, 200);
        }
        e2e_free(&r);
    }
    r = book(service, "+15550002001", iso); /* 2 active now (one was cancelled) */
    cr_expect_eq(r.status, 200, "the cancelled one is no longer active (%d %s)", r.status,
                 e2e_message(&r));
    e2e_free(&r);
    r = book(service, "+15550002001", iso);
    cr_expect_eq(r.status, 400, "third create in 24 h beyond the daily limit of 3? (%d)", r.status);
    cr_expect(strstr(e2e_message(&r), "phoneNumber") != NULL, "%s", e2e_message(&r));
    e2e_free(&r);
    /* Another number is not affected. */
    r = book(service, "+15550002002", iso);
    cr_expect_eq(r.status, 200);
    e2e_free(&r);
}

Test(booking, active_limit_is_distinct_from_daily_limit)
{
    char service[48], iso[EG_ISO_LEN + 1];
    unique(service, sizeof service, "active");
    put_service(service, "{\"maxActivePerNumber\":1,\"maxPerNumberPerDay\":100}");
    eg_time_format_iso(eg_now_ms() + 6 * 3600000, iso);
    e2e_resp_t r = book(service, "+15550003001", iso);
    cr_assert_eq(r.status, 200);
    e2e_free(&r);
    r = book(service, "+15550003001", iso);
    cr_expect_eq(r.status, 400);
    cr_expect(strstr(e2e_message(&r), "maxActivePerNumber") != NULL, "%s", e2e_message(&r));
    e2e_free(&r);
}

Test(booking, number_rules)
{
    char service[48];
    unique(service, sizeof service, "rules");
    put_service(service, "{\"numbers\":{\"permittedPrefixes\":[\"+1\"],"
                         "\"blockedPatterns\":[\"^\\\\+1900\"]}}");
    e2e_resp_t r = book(service, "+15550004001", NULL);
    cr_expect_eq(r.status, 200);
    e2e_free(&r);
    r = book(service, "+19005550000", NULL);
    cr_expect_eq(r.status, 400, "blocked pattern");
    cr_expect(strstr(e2e_message(&r), "phoneNumber") != NULL);
    e2e_free(&r);
    r = book(service, "+445550004001", NULL);
    cr_expect_eq(r.status, 400, "not a permitted prefix");
    e2e_free(&r);
}

Test(booking, idempotency_key_returns_the_first_result)
{
    char key[64], hdr[96];
    unique(key, sizeof key, "idem");
    snprintf(hdr, sizeof hdr, "Idempotency-Key: %s", key);
    const char *body = "{\"serviceName\":\"demo\",\"phoneNumber\":\"+15550005001\","
                       "\"desiredTime\":\"2099-01-01T00:00:00Z\"}";
    /* The far future is outside the horizon: the first answer is an error, and not remembered. */
    e2e_resp_t r = e2e_call("POST", CREATE, e2e_env("ENGAGE_API_KEY"), hdr, body);
    cr_expect_eq(r.status, 400);
    e2e_free(&r);
    const char *ok_body = "{\"serviceName\":\"demo\",\"phoneNumber\":\"+15550005001\"}";
    r = e2e_call("POST", CREATE, e2e_env("ENGAGE_API_KEY"), hdr, ok_body);
    cr_assert_eq(r.status, 200);
    char first[40];
    snprintf(first, sizeof first, "%s", e2e_data_str(&r, "id"));
    e2e_free(&r);
    r = e2e_call("POST", CREATE, e2e_env("ENGAGE_API_KEY"), hdr, ok_body);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(e2e_data_str(&r, "id"), first, "a retry returns the first callback");
    e2e_free(&r);
}

Test(booking, find_by_phone_newest_first_and_filtered)
{
    char service[48], phone[20], path[256];
    unique(service, sizeof service, "find");
    put_service(service, "{\"maxActivePerNumber\":10}");
    unsigned rnd;
    eg_random_bytes(&rnd, sizeof rnd);
    snprintf(phone, sizeof phone, "+1555%07u", rnd % 10000000u);
    char ids[3][40];
    for (int i = 0; i < 3; i++) {
        e2e_resp_t r = book(service, phone, NULL);
        cr_assert_eq(r.status, 200);
        snprintf(ids[i], sizeof ids[i], "%s", e2e_data_str(&r, "id"));
        e2e_free(&r);
    }
    snprintf(path, sizeof path, "/engagement/v3/callbacks/find?phoneNumber=%%2B%s&serviceName=%s",
             phone + 1, service);
    e2e_resp_t r = e2e_call("GET", path, e2e_env("ENGAGE_API_KEY"), NULL, NULL);
    cr_assert_eq(r.status, 200, "find: %d %s", r.status, e2e_message(&r));
    eg_json_t *list = eg_json_get(eg_json_get(r.body, "data"), "callbacks");
    cr_assert_eq(eg_json_array_size(list), 3);
    cr_expect_str_eq(eg_json_str(eg_json_get(eg_json_array_get(list, 0), "id")), ids[2],
                     "newest first");
    e2e_free(&r);
    snprintf(path, sizeof path,
             "/engagement/v3/callbacks/find?phoneNumber=%%2B%s&serviceName=%s&limit=1&offset=1",
             phone + 1, service);
    r = e2e_call("GET", path, e2e_env("ENGAGE_API_KEY"), NULL, NULL);
    list = eg_json_get(eg_json_get(r.body, "data"), "callbacks");
    cr_expect_eq(eg_json_array_size(list), 1, "paged");
    cr_expect_str_eq(eg_json_str(eg_json_get(eg_json_array_get(list, 0), "id")), ids[1]);
    cr_expect_eq(eg_json_int(eg_json_get(eg_json_get(r.body, "data"), "total")), 3);
    e2e_free(&r);
    /* Another tenant sees none of them. */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "'%s/engagectl' tenant create find-other-%u --json",
             e2e_env("ENGAGE_BIN_DIR"), rnd);
    char *line = e2e_run(cmd);
    cr_assert(line);
    eg_json_t *t = eg_json_parse(line, strlen(line), 0, NULL, 0);
    snprintf(path, sizeof path, "/engagement/v3/callbacks/find?phoneNumber=%%2B%s", phone + 1);
    r = e2e_call("GET", path, eg_json_str(eg_json_get(t, "apiKey")), NULL, NULL);
    cr_expect_eq(r.status, 200);
    cr_expect_eq(eg_json_array_size(eg_json_get(eg_json_get(r.body, "data"), "callbacks")), 0);
    e2e_free(&r);
    r = e2e_call("GET", "/engagement/v3/callbacks/find?phoneNumber=12", e2e_env("ENGAGE_API_KEY"),
                 NULL, NULL);
    cr_expect_eq(r.status, 400);
    e2e_free(&r);
    eg_json_free(t);
    free(line);
}
