/* End to end: availability, open-for, queue-status, estimated-wait-time, statistics, and the
 * business hours a create must respect. */
#define _DEFAULT_SOURCE
#include <time.h>

#include "e2e.h"
#include "engage/ids.h"
#include "engage/timeutil.h"

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

static e2e_resp_t get(const char *path)
{
    return e2e_call("GET", path, e2e_env("ENGAGE_API_KEY"), NULL, NULL);
}

/* "YYYY-MM-DD" of a UTC instant. */
static void date_of(int64_t ms, char out[11])
{
    char iso[EG_ISO_LEN + 1];
    eg_time_format_iso(ms, iso);
    memcpy(out, iso, 10);
    out[10] = '\0';
}

Test(availability, lists_open_slots_with_utc_and_local_times)
{
    char service[48], path[320], day[11];
    unique(service, sizeof service, "avail");
    put_service(service, "{\"timezone\":\"America/Mexico_City\",\"slotMinutes\":60,"
                         "\"capacity\":{\"default\":3}}");
    int64_t tomorrow = (eg_now_ms() / 86400000 + 1) * 86400000;
    date_of(tomorrow, day);
    /* 10:00 to 14:00 UTC tomorrow: four 60-minute slots; Mexico City is -06:00 all year. */
    snprintf(path, sizeof path,
             "/engagement/v3/callbacks/availability/%s?start=%sT10:00:00Z&end=%sT14:00:00Z"
             "&timezone=America/Mexico_City",
             service, day, day);
    e2e_resp_t r = get(path);
    cr_assert_eq(r.status, 200, "%d %s", r.status, e2e_message(&r));
    eg_json_t *data = eg_json_get(r.body, "data");
    eg_json_t *slots = eg_json_get(data, "slots");
    cr_assert_eq(eg_json_array_size(slots), 4);
    eg_json_t *first = eg_json_array_get(slots, 0);
    char expect_utc[40], expect_local[40];
    snprintf(expect_utc, sizeof expect_utc, "%sT10:00:00.000Z", day);
    snprintf(expect_local, sizeof expect_local, "%sT04:00:00.000-06:00", day);
    cr_expect_str_eq(eg_json_str(eg_json_get(first, "utcTime")), expect_utc);
    cr_expect_str_eq(eg_json_str(eg_json_get(first, "localTime")), expect_local);
    cr_expect_eq(eg_json_int(eg_json_get(first, "capacity")), 3);
    cr_expect_eq(eg_json_int(eg_json_get(first, "total")), 3);
    cr_expect_eq(eg_json_int(eg_json_get(data, "durationMin")), 60);
    cr_expect_str_eq(eg_json_str(eg_json_get(data, "timezone")), "America/Mexico_City");
    e2e_free(&r);

    /* Book one place: capacity (free) drops, total stays; maxTimeSlots limits. */
    char body[256];
    snprintf(body, sizeof body,
             "{\"serviceName\":\"%s\",\"phoneNumber\":\"+15550007001\","
             "\"desiredTime\":\"%sT10:20:00Z\"}",
             service, day);
    r = e2e_post("/engagement/v3/callbacks/create", e2e_env("ENGAGE_API_KEY"), body);
    cr_assert_eq(r.status, 200, "%s", e2e_message(&r));
    e2e_free(&r);
    snprintf(path, sizeof path,
             "/engagement/v3/callbacks/availability/%s?startMS=%lld&numberOfDays=1&maxTimeSlots=2",
             service, (long long)(tomorrow + 10 * 3600000LL));
    r = get(path);
    slots = eg_json_get(eg_json_get(r.body, "data"), "slots");
    cr_assert_eq(eg_json_array_size(slots), 2);
    cr_expect_eq(eg_json_int(eg_json_get(eg_json_array_get(slots, 0), "capacity")), 2);
    cr_expect_eq(eg_json_int(eg_json_get(eg_json_array_get(slots, 0), "total")), 3);
    e2e_free(&r);
}

Test(availability, full_slots_only_with_report_busy)
{
    char service[48], path[320], day[11], body[256];
    unique(service, sizeof service, "busy");
    put_service(service, "{\"slotMinutes\":60,\"capacity\":{\"default\":1}}");
    int64_t tomorrow = (eg_now_ms() / 86400000 + 1) * 86400000;
    date_of(tomorrow, day);
    snprintf(body, sizeof body,
             "{\"serviceName\":\"%s\",\"phoneNumber\":\"+15550007002\","
             "\"desiredTime\":\"%sT08:00:00Z\"}",
             service, day);
    e2e_resp_t r = e2e_post("/engagement/v3/callbacks/create", e2e_env("ENGAGE_API_KEY"), body);
    cr_assert_eq(r.status, 200);
    e2e_free(&r);
    snprintf(path, sizeof path,
             "/engagement/v3/callbacks/availability/%s?start=%sT08:00:00Z&end=%sT10:00:00Z",
             service, day, day);
    r = get(path);
    cr_expect_eq(eg_json_array_size(eg_json_get(eg_json_get(r.body, "data"), "slots")), 1,
                 "the full 08:00 slot is left out");
    e2e_free(&r);
    strcat(path, "&reportBusy=true");
    r = get(path);
    eg_json_t *slots = eg_json_get(eg_json_get(r.body, "data"), "slots");
    cr_expect_eq(eg_json_array_size(slots), 2);
    cr_expect_eq(eg_json_int(eg_json_get(eg_json_array_get(slots, 0), "capacity")), 0);
    e2e_free(&r);
}

Test(availability, bad_parameters_are_400_and_unknown_service_404)
{
    struct {
        const char *query, *field;
    } cases[] = {
        {"start=yesterday", "start"},
        {"startMS=abc", "startMS"},
        {"numberOfDays=0", "numberOfDays"},
        {"numberOfDays=99", "numberOfDays"},
        {"maxTimeSlots=-1", "maxTimeSlots"},
        {"reportBusy=maybe", "reportBusy"},
        {"timezone=Mars/Olympus", "timezone"},
        {"start=2026-12-01T10:00:00Z&end=2026-12-01T09:00:00Z", "end"},
    };
    char path[256];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(path, sizeof path, "/engagement/v3/callbacks/availability/%s?%s",
                 e2e_env("ENGAGE_DEMO_SERVICE"), cases[i].query);
        e2e_resp_t r = get(path);
        cr_expect_eq(r.status, 400, "%s: %d", cases[i].query, r.status);
        cr_expect(strstr(e2e_message(&r), cases[i].field) != NULL, "%s: %s", cases[i].query,
                  e2e_message(&r));
        e2e_free(&r);
    }
    e2e_resp_t r = get("/engagement/v3/callbacks/availability/no-such-service");
    cr_expect_eq(r.status, 404);
    e2e_free(&r);
}

Test(hours, closed_service_refuses_immediate_saying_when_it_opens)
{
    char service[48], json[512], today[11], tomorrow[11];
    unique(service, sizeof service, "closed");
    int64_t now = eg_now_ms();
    date_of(now, today);
    date_of(now + 86400000, tomorrow);
    /* Open every day all day, but today is a special day with no hours. */
    snprintf(json, sizeof json,
             "{\"businessHours\":{\"mon\":[[\"00:00\",\"24:00\"]],\"tue\":[[\"00:00\",\"24:00\"]],"
             "\"wed\":[[\"00:00\",\"24:00\"]],\"thu\":[[\"00:00\",\"24:00\"]],"
             "\"fri\":[[\"00:00\",\"24:00\"]],\"sat\":[[\"00:00\",\"24:00\"]],"
             "\"sun\":[[\"00:00\",\"24:00\"]]},\"specialDays\":{\"%s\":[]}}",
             today);
    put_service(service, json);
    char body[256];
    snprintf(body, sizeof body, "{\"serviceName\":\"%s\",\"phoneNumber\":\"+15550008001\"}",
             service);
    e2e_resp_t r = e2e_post("/engagement/v3/callbacks/create", e2e_env("ENGAGE_API_KEY"), body);
    cr_expect_eq(r.status, 400);
    char opens[40];
    snprintf(opens, sizeof opens, "%sT00:00:00.000Z", tomorrow);
    cr_expect(strstr(e2e_message(&r), opens) != NULL, "says when it opens: %s", e2e_message(&r));
    e2e_free(&r);

    char path[256];
    snprintf(path, sizeof path, "/engagement/v3/callbacks/open-for/%s", service);
    r = get(path);
    cr_expect_eq(r.status, 200);
    cr_expect_eq(eg_json_int(eg_json_get(eg_json_get(r.body, "data"), "openFor")), 0);
    e2e_free(&r);
    /* From tomorrow 00:00 it stays open: capped at 7 days. */
    snprintf(path, sizeof path, "/engagement/v3/callbacks/open-for/%s?start=%sT00:00:00Z", service,
             tomorrow);
    r = get(path);
    cr_expect_eq(eg_json_int(eg_json_get(eg_json_get(r.body, "data"), "openFor")), 604800);
    e2e_free(&r);

    snprintf(path, sizeof path, "/engagement/v3/callbacks/queue-status/%s", service);
    r = get(path);
    cr_expect_eq(r.status, 200);
    eg_json_t *d = eg_json_get(r.body, "data");
    cr_expect(!eg_json_true(eg_json_get(d, "offerImmediateCallback")), "closed: no immediate");
    cr_expect(eg_json_true(eg_json_get(d, "offerScheduledCallback")));
    e2e_free(&r);

    /* A scheduled create into the closed day is refused too. */
    char iso[EG_ISO_LEN + 1];
    eg_time_format_iso(now + 60000, iso);
    if (strncmp(iso, today, 10) == 0) {
        snprintf(body, sizeof body,
                 "{\"serviceName\":\"%s\",\"phoneNumber\":\"+15550008002\",\"desiredTime\":\"%s\"}",
                 service, iso);
        r = e2e_post("/engagement/v3/callbacks/create", e2e_env("ENGAGE_API_KEY"), body);
        cr_expect_eq(r.status, 400);
        cr_expect(strstr(e2e_message(&r), "closed") != NULL, "%s", e2e_message(&r));
        e2e_free(&r);
    }
}

Test(queries, open_for_24x7_is_capped_at_a_week_and_queue_status_offers)
{
    char path[256];
    snprintf(path, sizeof path, "/engagement/v3/callbacks/open-for/%s",
             e2e_env("ENGAGE_DEMO_SERVICE"));
    e2e_resp_t r = get(path);
    cr_assert_eq(r.status, 200);
    cr_expect_eq(eg_json_int(eg_json_get(eg_json_get(r.body, "data"), "openFor")), 604800);
    e2e_free(&r);
    snprintf(path, sizeof path, "/engagement/v3/callbacks/queue-status/%s",
             e2e_env("ENGAGE_DEMO_SERVICE"));
    r = get(path);
    cr_assert_eq(r.status, 200);
    eg_json_t *d = eg_json_get(r.body, "data");
    cr_expect(eg_json_is_integer(eg_json_get(d, "ewt")));
    cr_expect(eg_json_true(eg_json_get(d, "offerImmediateCallback")));
    cr_expect(eg_json_true(eg_json_get(d, "offerScheduledCallback")));
    e2e_free(&r);
    r = get("/engagement/v3/callbacks/queue-status/no-such-service");
    cr_expect_eq(r.status, 404);
    e2e_free(&r);
}

Test(queries, estimated_wait_time_one_item_per_queue_in_order)
{
    char path[256];
    snprintf(path, sizeof path,
             "/engagement/v3/estimated-wait-time?virtual-queues=nope,%s&mode=mode1&_=123",
             e2e_env("ENGAGE_DEMO_SERVICE"));
    e2e_resp_t r = get(path);
    cr_assert_eq(r.status, 200, "%d %s", r.status, e2e_message(&r));
    eg_json_t *d = eg_json_get(r.body, "data");
    cr_assert_eq(eg_json_array_size(d), 2);
    eg_json_t *unknown = eg_json_array_get(d, 0), *demo = eg_json_array_get(d, 1);
    cr_expect_str_eq(eg_json_str(eg_json_get(unknown, "virtualQueue")), "nope");
    cr_expect_eq(eg_json_int(eg_json_get(unknown, "estimatedWaitTime")), -1);
    cr_expect_str_eq(eg_json_str(eg_json_get(demo, "virtualQueue")),
                     e2e_env("ENGAGE_DEMO_SERVICE"));
    cr_expect(eg_json_is_integer(eg_json_get(demo, "resultCode")));
    e2e_free(&r);
    /* mode2 needs agent statistics: -1 with resultCode -2 and a reason. */
    snprintf(path, sizeof path, "/engagement/v3/estimated-wait-time?virtualQueues=%s",
             e2e_env("ENGAGE_DEMO_SERVICE"));
    r = get(path);
    d = eg_json_array_get(eg_json_get(r.body, "data"), 0);
    cr_expect_eq(eg_json_int(eg_json_get(d, "estimatedWaitTime")), -1);
    cr_expect_eq(eg_json_int(eg_json_get(d, "resultCode")), -2);
    cr_expect(strlen(eg_json_str(eg_json_get(d, "message"))) > 0);
    e2e_free(&r);
    r = get("/engagement/v3/estimated-wait-time?mode=mode1");
    cr_expect_eq(r.status, 400);
    cr_expect(strstr(e2e_message(&r), "virtual-queues") != NULL);
    e2e_free(&r);
    r = get("/engagement/v3/estimated-wait-time?virtual-queues=a&mode=mode9");
    cr_expect_eq(r.status, 400);
    e2e_free(&r);
}

Test(queries, statistics_summary_and_per_service)
{
    char service[48], body[160];
    unique(service, sizeof service, "stats");
    put_service(service, "{}");
    snprintf(body, sizeof body, "{\"serviceName\":\"%s\",\"phoneNumber\":\"+15550009001\"}",
             service);
    e2e_resp_t r = e2e_post("/engagement/v3/callbacks/create", e2e_env("ENGAGE_API_KEY"), body);
    cr_assert_eq(r.status, 200);
    e2e_free(&r);
    snprintf(body, sizeof body, "{\"serviceNames\":[\"%s\"]}", service);
    r = e2e_post("/engagement/v3/statistics/operations/get-statistic-ex", e2e_env("ENGAGE_API_KEY"),
                 body);
    cr_assert_eq(r.status, 200, "%d %s", r.status, e2e_message(&r));
    eg_json_t *s = eg_json_array_get(eg_json_get(eg_json_get(r.body, "data"), "statistics"), 0);
    cr_expect_str_eq(eg_json_str(eg_json_get(s, "serviceName")), service);
    cr_expect_eq(eg_json_int(eg_json_get(s, "createdToday")), 1);
    cr_expect(eg_json_is_number(eg_json_get(s, "slotUtilisation")));
    e2e_free(&r);
    /* GES clients send no body: the tenant-wide summary. */
    r = e2e_post("/engagement/v3/statistics/operations/get-statistic-ex", e2e_env("ENGAGE_API_KEY"),
                 NULL);
    cr_assert_eq(r.status, 200);
    eg_json_t *sum = eg_json_get(eg_json_get(r.body, "data"), "summary");
    cr_expect(eg_json_int(eg_json_get(sum, "createdToday")) >= 1);
    cr_expect(eg_json_int(eg_json_get(sum, "services")) >= 2);
    e2e_free(&r);
    r = e2e_post("/engagement/v3/statistics/operations/get-statistic-ex", e2e_env("ENGAGE_API_KEY"),
                 "{\"serviceNames\":[\"nope\"]}");
    cr_expect_eq(r.status, 404);
    e2e_free(&r);
}
