/* End to end: a table of malformed requests, each answered with a 4xx whose message names the
 * field (or header, or parameter) at fault — never a 500, never a crash — and the server stays
 * healthy afterwards. */
#define _DEFAULT_SOURCE
#include "e2e.h"
#include "engage/ids.h"

typedef struct {
    const char *method, *path, *header, *body;
    int status;        /* expected HTTP status */
    const char *names; /* text the message must contain */
} bad_t;

#define C "/engagement/v3/callbacks/create"
#define R "/engagement/v3/callbacks/retrieve"
#define X "/engagement/v3/callbacks/cancel"
#define S "/engagement/v3/callbacks/reschedule"
#define P "+15551230000"

static const bad_t cases[] = {
    {"POST", C, NULL, "", 400, "body"},
    {"POST", C, NULL, "not json", 400, "body"},
    {"POST", C, NULL, "[]", 400, "body"},
    {"POST", C, NULL, "\"text\"", 400, "body"},
    {"POST", C, NULL, "{\"serviceName\":\"demo\",", 400, "body"},
    {"POST", C, NULL, "{}", 400, "serviceName"},
    {"POST", C, NULL, "{\"phoneNumber\":\"" P "\"}", 400, "serviceName"},
    {"POST", C, NULL, "{\"serviceName\":5,\"phoneNumber\":\"" P "\"}", 400, "serviceName"},
    {"POST", C, NULL, "{\"serviceName\":\"\",\"phoneNumber\":\"" P "\"}", 400, "serviceName"},
    {"POST", C, NULL, "{\"serviceName\":\"a b\",\"phoneNumber\":\"" P "\"}", 400, "serviceName"},
    {"POST", C, NULL, "{\"serviceName\":\"demo\"}", 400, "phoneNumber"},
    {"POST", C, NULL, "{\"serviceName\":\"demo\",\"phoneNumber\":15551230000}", 400, "phoneNumber"},
    {"POST", C, NULL, "{\"serviceName\":\"demo\",\"phoneNumber\":\"5551230000\"}", 400,
     "phoneNumber"},
    {"POST", C, NULL, "{\"serviceName\":\"demo\",\"phoneNumber\":\"+1555\"}", 400, "phoneNumber"},
    {"POST", C, NULL, "{\"serviceName\":\"demo\",\"phoneNumber\":\"+1555123000012345\"}", 400,
     "phoneNumber"},
    {"POST", C, NULL, "{\"serviceName\":\"demo\",\"phoneNumber\":\"+0555123000\"}", 400,
     "phoneNumber"},
    {"POST", C, NULL, "{\"serviceName\":\"demo\",\"phoneNumber\":\"+1555abc0000\"}", 400,
     "phoneNumber"},
    {"POST", C, NULL,
     "{\"serviceName\":\"demo\",\"phoneNumber\":\"" P
     "\",\"desiredTime\":\"2026-13-01T00:00:00Z\"}",
     400, "desiredTime"},
    {"POST", C, NULL,
     "{\"serviceName\":\"demo\",\"phoneNumber\":\"" P "\",\"desiredTime\":\"2026-12-01T10:00:00\"}",
     400, "desiredTime"},
    {"POST", C, NULL, "{\"serviceName\":\"demo\",\"phoneNumber\":\"" P "\",\"desiredTime\":12}",
     400, "desiredTime"},
    {"POST", C, NULL,
     "{\"serviceName\":\"demo\",\"phoneNumber\":\"" P
     "\",\"desiredTime\":\"2020-01-01T00:00:00Z\"}",
     400, "desiredTime"},
    {"POST", C, NULL,
     "{\"serviceName\":\"demo\",\"phoneNumber\":\"" P
     "\",\"desiredTime\":\"2099-01-01T00:00:00Z\"}",
     400, "desiredTime"},
    {"POST", C, NULL, "{\"serviceName\":\"demo\",\"phoneNumber\":\"" P "\",\"userData\":\"x\"}",
     400, "userData"},
    {"POST", C, NULL, "{\"serviceName\":\"demo\",\"phoneNumber\":\"" P "\",\"userData\":[]}", 400,
     "userData"},
    {"POST", C, NULL, "{\"serviceName\":\"demo\",\"phoneNumber\":\"" P "\",\"priority\":\"1\"}",
     400, "priority"},
    {"POST", C, NULL, "{\"serviceName\":\"demo\",\"phoneNumber\":\"" P "\",\"priority\":1.5}", 400,
     "priority"},
    {"POST", C, NULL,
     "{\"serviceName\":\"demo\",\"phoneNumber\":\"" P "\",\"alwaysCheckCapacity\":\"yes\"}", 400,
     "alwaysCheckCapacity"},
    {"POST", C, NULL, "{\"serviceName\":\"demo\",\"phoneNumber\":\"" P "\",\"language\":{}}", 400,
     "language"},
    {"POST", C, NULL,
     "{\"serviceName\":\"demo\",\"serviceName\":\"demo\",\"phoneNumber\":\"" P "\"}", 400, "body"},
    {"POST", C,
     "Idempotency-Key: 0123456789012345678901234567890123456789012345678901234567890123456789"
     "012345678901234567890123456789012345678901234567890123456789",
     "{\"serviceName\":\"demo\",\"phoneNumber\":\"" P "\"}", 400, "Idempotency-Key"},
    {"POST", C, "ContactCenterID: abc", "{\"serviceName\":\"demo\",\"phoneNumber\":\"" P "\"}", 400,
     "ContactCenterID"},
    {"POST", R, NULL, "{}", 400, "id"},
    {"POST", R, NULL, "{\"id\":42}", 400, "id"},
    {"POST", R, NULL, "{\"id\":\"not-a-uuid\"}", 400, "id"},
    {"POST", R, NULL, "{\"id\":\"01a22404-8377-7001-a6a4-6be2396d778\"}", 400, "id"},
    {"POST", X, NULL, "{\"id\":\"zz\"}", 400, "id"},
    {"POST", X, NULL, "", 400, "body"},
    {"POST", S, NULL, "{\"id\":\"01a22404-8377-7001-a6a4-6be2396d7787\"}", 400, "desiredTime"},
    {"POST", S, NULL, "{\"desiredTime\":\"2026-12-01T10:00:00Z\"}", 400, "id"},
    {"GET", "/engagement/v3/callbacks/find", NULL, NULL, 400, "phoneNumber"},
    {"GET", "/engagement/v3/callbacks/find?phoneNumber=%2B15551230000&state=DONE", NULL, NULL, 400,
     "state"},
    {"GET", "/engagement/v3/callbacks/find?phoneNumber=%2B15551230000&limit=0", NULL, NULL, 400,
     "limit"},
    {"GET", "/engagement/v3/callbacks/availability/demo?timezone=Nowhere", NULL, NULL, 400,
     "timezone"},
    {"GET", "/engagement/v3/callbacks/availability/demo?maxTimeSlots=x", NULL, NULL, 400,
     "maxTimeSlots"},
    {"GET", "/engagement/v3/callbacks/open-for/demo?start=noon", NULL, NULL, 400, "start"},
    {"GET", "/engagement/v3/estimated-wait-time?virtual-queues=demo&mode=fast", NULL, NULL, 400,
     "mode"},
    {"POST", "/engagement/v3/statistics/operations/get-statistic-ex", NULL,
     "{\"serviceNames\":\"demo\"}", 400, "serviceNames"},
    {"GET", C, NULL, NULL, 405, "POST"},
};

Test(malformed, every_bad_request_is_4xx_naming_the_field, .timeout = 60)
{
    size_t n = sizeof cases / sizeof *cases;
    cr_assert_geq(n, 40, "at least 40 cases");
    for (size_t i = 0; i < n; i++) {
        const bad_t *c = &cases[i];
        e2e_resp_t r = e2e_call(c->method, c->path, e2e_env("ENGAGE_API_KEY"), c->header, c->body);
        cr_expect_eq(r.status, c->status, "case %zu (%s %s %s): %d %s", i, c->method, c->path,
                     c->body ? c->body : "", r.status, e2e_message(&r));
        cr_expect(strstr(e2e_message(&r), c->names) != NULL,
                  "case %zu: message \"%s\" does not name %s", i, e2e_message(&r), c->names);
        cr_expect(eg_json_get(r.body, "status") != NULL, "case %zu: answer in the envelope", i);
        e2e_free(&r);
    }
    /* Deep nesting and an oversized body. */
    char *deep = malloc(20000);
    size_t p = 0;
    p += (size_t)sprintf(deep, "{\"serviceName\":\"demo\",\"phoneNumber\":\"" P "\",\"userData\":");
    for (int i = 0; i < 5000; i++)
        deep[p++] = '[';
    for (int i = 0; i < 5000; i++)
        deep[p++] = ']';
    deep[p++] = '}';
    deep[p] = '\0';
    e2e_resp_t r = e2e_post(C, e2e_env("ENGAGE_API_KEY"), deep);
    cr_expect_eq(r.status, 400, "deep nesting: %d", r.status);
    e2e_free(&r);
    free(deep);
    size_t big = 300 * 1024;
    char *huge = malloc(big + 1);
    memset(huge, ' ', big);
    huge[0] = '{';
    huge[big - 1] = '}';
    huge[big] = '\0';
    r = e2e_post(C, e2e_env("ENGAGE_API_KEY"), huge);
    cr_expect_eq(r.status, 413, "over 256 KiB: %d", r.status);
    cr_expect(strstr(e2e_message(&r), "body") != NULL);
    e2e_free(&r);
    free(huge);
    /* userData over 100 KB. */
    size_t ud = 110 * 1024;
    char *large = malloc(ud + 200);
    int k = sprintf(large,
                    "{\"serviceName\":\"demo\",\"phoneNumber\":\"" P "\",\"userData\":{\"x\":\"");
    memset(large + k, 'a', ud);
    strcpy(large + k + ud, "\"}}");
    r = e2e_post(C, e2e_env("ENGAGE_API_KEY"), large);
    cr_expect_eq(r.status, 400);
    cr_expect(strstr(e2e_message(&r), "userData") != NULL, "%s", e2e_message(&r));
    e2e_free(&r);
    free(large);

    /* Still healthy, still booking. */
    r = e2e_call("GET", "/healthz", NULL, NULL, NULL);
    cr_expect_eq(r.status, 200);
    e2e_free(&r);
    r = e2e_post(C, e2e_env("ENGAGE_API_KEY"),
                 "{\"serviceName\":\"demo\",\"phoneNumber\":\"+15551239999\"}");
    cr_expect_eq(r.status, 200, "the server still books after all that: %d", r.status);
    e2e_free(&r);
}
