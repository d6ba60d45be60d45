/* services/scheduler/service_config.c: a callback service's configuration, parsed from the
 * admin API's JSON (API.md, "Callback service configuration"): defaults, ranges, shapes. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage/json.h"
#include "leakcheck.h"
#include "service_config.h"

/* The example of API.md, verbatim. */
static const char example[] =
    "{\n"
    "  \"timezone\": \"America/New_York\",\n"
    "  \"slotMinutes\": 30,\n"
    "  \"capacity\": { \"default\": 10, \"weekly\": { \"mon\": { \"09:00\": 20, \"09:30\": 20 } } "
    "},\n"
    "  \"businessHours\": { \"mon\": [[\"09:00\", \"17:00\"]], \"tue\": [[\"09:00\", "
    "\"17:00\"]],\n"
    "                     \"wed\": [[\"09:00\", \"17:00\"]], \"thu\": [[\"09:00\", "
    "\"17:00\"]],\n"
    "                     \"fri\": [[\"09:00\", \"12:00\"], [\"13:00\", \"17:00\"]], \"sat\": "
    "[], \"sun\": [] },\n"
    "  \"holidays\": [\"2026-12-25\"],\n"
    "  \"specialDays\": { \"2026-12-24\": [[\"09:00\", \"12:00\"]] },\n"
    "  \"horizonDays\": 14,\n"
    "  \"immediateEnabled\": true,\n"
    "  \"scheduledEnabled\": true,\n"
    "  \"maxActivePerNumber\": 2,\n"
    "  \"maxPerNumberPerDay\": 6,\n"
    "  \"retry\": { \"maxAttempts\": 3, \"delaySeconds\": 300 },\n"
    "  \"virtualQueue\": \"VQ_Sales\",\n"
    "  \"priority\": 0,\n"
    "  \"numbers\": { \"permittedPrefixes\": [\"+1\"], \"blockedPatterns\": [\"^\\\\+1900\"] }\n"
    "}\n";

static eg_status_t parse(const char *name, const char *text, svc_config_t *cfg, char *err)
{
    return svc_config_parse(name, text, strlen(text), cfg, err, 256);
}

Test(service_config, empty_object_gives_the_documented_defaults)
{
    svc_config_t cfg;
    char err[256] = "";

    cr_assert_eq(parse("sales", "{}", &cfg, err), EG_OK, "%s", err);
    cr_assert_str_eq(cfg.name, "sales");
    cr_assert_eq(cfg.slot_minutes, 30);
    cr_assert_eq(cfg.capacity_default, 10);
    cr_assert_eq(cfg.horizon_days, 14);
    cr_assert(cfg.immediate_enabled);
    cr_assert(cfg.scheduled_enabled);
    cr_assert_eq(cfg.max_active_per_number, 2);
    cr_assert_eq(cfg.max_per_number_per_day, 6);
    cr_assert_eq(cfg.retry_max_attempts, 3);
    cr_assert_eq(cfg.retry_delay_s, 300);
    cr_assert_eq(cfg.retry_timeout_s, 14400, "an attempt is given up after 4 hours by default");
    cr_assert_not(cfg.complete_when_closed, "a callback due while closed waits by default");
    cr_assert_str_eq(cfg.virtual_queue, "sales", "virtualQueue defaults to the service's name");
    cr_assert_eq(cfg.priority, 0);
    cr_assert_str_eq(cfg.dial_mode, "customer-first");
    cr_assert(cfg.open_24x7, "no businessHours must mean open 24x7");
    svc_config_free(&cfg);
    eg_assert_no_leaks();
}

Test(service_config, api_md_example_parses)
{
    svc_config_t cfg;
    char err[256] = "";

    cr_assert_eq(parse("Sales", example, &cfg, err), EG_OK, "%s", err);
    cr_assert_str_eq(cfg.timezone, "America/New_York");
    cr_assert_eq(cfg.slot_minutes, 30);
    cr_assert_eq(cfg.capacity_default, 10);
    cr_assert_eq(cfg.horizon_days, 14);
    cr_assert_eq(cfg.max_active_per_number, 2);
    cr_assert_eq(cfg.max_per_number_per_day, 6);
    cr_assert_eq(cfg.retry_max_attempts, 3);
    cr_assert_eq(cfg.retry_delay_s, 300);
    cr_assert_str_eq(cfg.virtual_queue, "VQ_Sales");
    cr_assert_not(cfg.open_24x7);
    cr_assert_not_null(cfg.raw);
    svc_config_free(&cfg);
    cr_assert_null(cfg.raw);
    svc_config_free(&cfg);
    svc_config_free(NULL);
    eg_assert_no_leaks();
}

Test(service_config, every_field_set_to_a_non_default)
{
    const char *text = "{\"timezone\":\"Europe/Paris\",\"slotMinutes\":15,"
                       "\"capacity\":{\"default\":0},\"horizonDays\":1,"
                       "\"immediateEnabled\":false,\"scheduledEnabled\":false,"
                       "\"maxActivePerNumber\":1000,\"maxPerNumberPerDay\":10000,"
                       "\"retry\":{\"maxAttempts\":10,\"delaySeconds\":86400},"
                       "\"virtualQueue\":\"VQ\",\"priority\":-7,\"dialMode\":\"agent-first\","
                       "\"businessHours\":{\"sat\":[[\"22:00\",\"02:00\"]]}}";
    svc_config_t cfg;
    char err[256] = "";

    cr_assert_eq(parse("x", text, &cfg, err), EG_OK, "%s", err);
    cr_assert_str_eq(cfg.timezone, "Europe/Paris");
    cr_assert_eq(cfg.slot_minutes, 15);
    cr_assert_eq(cfg.capacity_default, 0);
    cr_assert_eq(cfg.horizon_days, 1);
    cr_assert_not(cfg.immediate_enabled);
    cr_assert_not(cfg.scheduled_enabled);
    cr_assert_eq(cfg.max_active_per_number, 1000);
    cr_assert_eq(cfg.max_per_number_per_day, 10000);
    cr_assert_eq(cfg.retry_max_attempts, 10);
    cr_assert_eq(cfg.retry_delay_s, 86400);
    cr_assert_str_eq(cfg.virtual_queue, "VQ");
    cr_assert_eq(cfg.priority, -7);
    cr_assert_str_eq(cfg.dial_mode, "agent-first");
    cr_assert_not(cfg.open_24x7);
    svc_config_free(&cfg);
    eg_assert_no_leaks();
}

Test(service_config, slot_lengths_that_divide_a_day_are_accepted)
{
    const int ok[] = {5,  6,  8,  10, 12, 15, 16, 18, 20,  24,  30,  32,  36,
                      40, 45, 48, 60, 72, 80, 90, 96, 120, 144, 160, 180, 240};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        char text[64], err[256] = "";
        svc_config_t cfg;

        snprintf(text, sizeof text, "{\"slotMinutes\":%d}", ok[i]);
        cr_assert_eq(parse("s", text, &cfg, err), EG_OK, "%d refused: %s", ok[i], err);
        cr_assert_eq(cfg.slot_minutes, ok[i]);
        svc_config_free(&cfg);
    }
    eg_assert_no_leaks();
}

Test(service_config, empty_business_hours_is_closed_not_24x7)
{
    svc_config_t cfg;
    char err[256] = "";

    cr_assert_eq(parse("s", "{\"businessHours\":{}}", &cfg, err), EG_OK, "%s", err);
    cr_assert_not(cfg.open_24x7);
    svc_config_free(&cfg);
    cr_assert_eq(parse("s", "{\"businessHours\":{\"mon\":[[\"00:00\",\"24:00\"]]}}", &cfg, err),
                 EG_OK, "%s", err);
    svc_config_free(&cfg);
    eg_assert_no_leaks();
}

/* ---- refusals, table-driven ---- */

typedef struct {
    const char *name;
    const char *body;
    const char *field; /* the message must contain this */
} bad_case_t;

/* Indices are the parameters: Criterion may run a test in a re-executed process. */
static const bad_case_t bad_cases[] = {
    {"slotMinutes 7 (does not divide 1440)", "{\"slotMinutes\":7}", "slotMinutes"},
    {"slotMinutes 4", "{\"slotMinutes\":4}", "slotMinutes"},
    {"slotMinutes 241", "{\"slotMinutes\":241}", "slotMinutes"},
    {"slotMinutes 0", "{\"slotMinutes\":0}", "slotMinutes"},
    {"slotMinutes string", "{\"slotMinutes\":\"30\"}", "slotMinutes"},
    {"slotMinutes float", "{\"slotMinutes\":30.5}", "slotMinutes"},
    {"horizonDays 0", "{\"horizonDays\":0}", "horizonDays"},
    {"horizonDays 15", "{\"horizonDays\":15}", "horizonDays"},
    {"capacity.default -1", "{\"capacity\":{\"default\":-1}}", "capacity.default"},
    {"capacity.default 100001", "{\"capacity\":{\"default\":100001}}", "capacity.default"},
    {"capacity not an object", "{\"capacity\":10}", "capacity"},
    {"capacity.weekly.mon 25:00", "{\"capacity\":{\"weekly\":{\"mon\":{\"25:00\":1}}}}",
     "capacity.weekly"},
    {"capacity.weekly.mon 09:00 negative", "{\"capacity\":{\"weekly\":{\"mon\":{\"09:00\":-1}}}}",
     "capacity.weekly"},
    {"capacity.weekly.mon 9:00", "{\"capacity\":{\"weekly\":{\"mon\":{\"9:00\":1}}}}",
     "capacity.weekly"},
    {"capacity.weekly.xyz", "{\"capacity\":{\"weekly\":{\"xyz\":{\"09:00\":1}}}}",
     "capacity.weekly"},
    {"capacity.weekly array", "{\"capacity\":{\"weekly\":[]}}", "capacity.weekly"},
    {"businessHours.xyz", "{\"businessHours\":{\"xyz\":[]}}", "businessHours.xyz"},
    {"businessHours.mon 9:00", "{\"businessHours\":{\"mon\":[[\"9:00\",\"17:00\"]]}}",
     "businessHours.mon"},
    {"businessHours.mon 25:00", "{\"businessHours\":{\"mon\":[[\"09:00\",\"25:00\"]]}}",
     "businessHours.mon"},
    {"businessHours.tue 09:60", "{\"businessHours\":{\"tue\":[[\"09:60\",\"17:00\"]]}}",
     "businessHours.tue"},
    {"businessHours.mon one time", "{\"businessHours\":{\"mon\":[[\"09:00\"]]}}",
     "businessHours.mon"},
    {"businessHours.mon flat", "{\"businessHours\":{\"mon\":[\"09:00\",\"17:00\"]}}",
     "businessHours.mon"},
    {"businessHours.mon object", "{\"businessHours\":{\"mon\":{}}}", "businessHours.mon"},
    {"businessHours array", "{\"businessHours\":[]}", "businessHours"},
    {"retry.maxAttempts 11", "{\"retry\":{\"maxAttempts\":11}}", "retry.maxAttempts"},
    {"retry.maxAttempts 0", "{\"retry\":{\"maxAttempts\":0}}", "retry.maxAttempts"},
    {"retry.delaySeconds 0", "{\"retry\":{\"delaySeconds\":0}}", "retry.delaySeconds"},
    {"retry.delaySeconds 86401", "{\"retry\":{\"delaySeconds\":86401}}", "retry.delaySeconds"},
    {"closedAtDispatch other", "{\"closedAtDispatch\":\"drop\"}", "closedAtDispatch"},
    {"retry.attemptTimeoutSeconds 4", "{\"retry\":{\"attemptTimeoutSeconds\":4}}",
     "retry.attemptTimeoutSeconds"},
    {"retry.attemptTimeoutSeconds text", "{\"retry\":{\"attemptTimeoutSeconds\":\"1h\"}}",
     "retry.attemptTimeoutSeconds"},
    {"retry not an object", "{\"retry\":3}", "retry"},
    {"dialMode x", "{\"dialMode\":\"x\"}", "dialMode"},
    {"dialMode number", "{\"dialMode\":1}", "dialMode"},
    {"maxActivePerNumber 0", "{\"maxActivePerNumber\":0}", "maxActivePerNumber"},
    {"maxActivePerNumber 1001", "{\"maxActivePerNumber\":1001}", "maxActivePerNumber"},
    {"maxPerNumberPerDay 0", "{\"maxPerNumberPerDay\":0}", "maxPerNumberPerDay"},
    {"maxPerNumberPerDay 10001", "{\"maxPerNumberPerDay\":10001}", "maxPerNumberPerDay"},
    {"immediateEnabled string", "{\"immediateEnabled\":\"yes\"}", "immediateEnabled"},
    {"scheduledEnabled number", "{\"scheduledEnabled\":1}", "scheduledEnabled"},
    {"virtualQueue empty", "{\"virtualQueue\":\"\"}", "virtualQueue"},
    {"virtualQueue number", "{\"virtualQueue\":5}", "virtualQueue"},
    {"priority float", "{\"priority\":0.5}", "priority"},
    {"priority too big", "{\"priority\":1000001}", "priority"},
    {"timezone number", "{\"timezone\":5}", "timezone"},
    {"timezone empty", "{\"timezone\":\"\"}", "timezone"},
    {"body not JSON", "slotMinutes=30", "body"},
    {"body array", "[]", "body"},
    {"body empty", "", "body"},
    {"body duplicate key", "{\"slotMinutes\":30,\"slotMinutes\":15}", "body"},
};

#define N_BAD (sizeof bad_cases / sizeof *bad_cases)

ParameterizedTestParameters(service_config, bad_fields_are_refused_and_named)
{
    static size_t idx[N_BAD];
    for (size_t i = 0; i < N_BAD; i++)
        idx[i] = i;
    return cr_make_param_array(size_t, idx, N_BAD);
}

ParameterizedTest(size_t *i, service_config, bad_fields_are_refused_and_named)
{
    const bad_case_t *c = &bad_cases[*i];
    svc_config_t cfg;
    char err[256] = "";

    eg_status_t st = parse("sales", c->body, &cfg, err);
    cr_assert_eq(st, EG_EINVAL, "%s: accepted (%s)", c->name, eg_status_str(st));
    cr_assert(strstr(err, c->field) != NULL, "%s: message does not name %s: '%s'", c->name,
              c->field, err);
    cr_assert_null(cfg.raw, "%s: raw kept after a refusal", c->name);
    eg_assert_no_leaks();
}

/* API.md: holidays and special days are part of the configuration; checking their shape is
 * this module's job (its header comment says so), not a crash later in the hours module. */
Test(service_config, holidays_and_special_days_are_checked)
{
    const struct {
        const char *body, *field;
    } bad[] = {
        {"{\"holidays\":\"2026-12-25\"}", "holidays"},
        {"{\"holidays\":[\"25/12/2026\"]}", "holidays"},
        {"{\"holidays\":[\"2026-02-30\"]}", "holidays"},
        {"{\"holidays\":[20261225]}", "holidays"},
        {"{\"specialDays\":[]}", "specialDays"},
        {"{\"specialDays\":{\"tomorrow\":[[\"09:00\",\"12:00\"]]}}", "specialDays"},
        {"{\"specialDays\":{\"2026-12-24\":[[\"9:00\",\"12:00\"]]}}", "specialDays"},
        {"{\"specialDays\":{\"2026-12-24\":\"09:00-12:00\"}}", "specialDays"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        svc_config_t cfg;
        char err[256] = "";
        eg_status_t st = parse("s", bad[i].body, &cfg, err);
        if (st == EG_OK)
            svc_config_free(&cfg);
        cr_expect_eq(st, EG_EINVAL, "%s accepted", bad[i].body);
        cr_expect(st == EG_OK || strstr(err, bad[i].field) != NULL,
                  "%s: message does not name %s: '%s'", bad[i].body, bad[i].field, err);
    }
}

Test(service_config, interval_may_not_start_at_24_00)
{
    /* "HH:MM with HH 00-24 (24:00 only as an end)", as service_config.c itself says. */
    svc_config_t cfg;
    char err[256] = "";
    eg_status_t st = parse("s", "{\"businessHours\":{\"mon\":[[\"24:00\",\"02:00\"]]}}", &cfg, err);

    if (st == EG_OK)
        svc_config_free(&cfg);
    cr_assert_eq(st, EG_EINVAL, "an interval starting at 24:00 was accepted");
    cr_assert(strstr(err, "businessHours.mon") != NULL, "%s", err);
}

Test(service_config, too_deep_body_is_refused)
{
    svc_config_t cfg;
    char err[256] = "";
    const char *deep = "{\"numbers\":{\"a\":[[[[[[[[1]]]]]]]]}}";

    cr_assert_eq(parse("s", deep, &cfg, err), EG_EINVAL);
    cr_assert(strstr(err, "body") != NULL, "%s", err);
    eg_assert_no_leaks();
}

Test(service_config, unknown_fields_are_ignored)
{
    svc_config_t cfg;
    char err[256] = "";

    cr_assert_eq(parse("s", "{\"comment\":\"hello\",\"slotMinutes\":60}", &cfg, err), EG_OK, "%s",
                 err);
    cr_assert_eq(cfg.slot_minutes, 60);
    svc_config_free(&cfg);
    eg_assert_no_leaks();
}

/* ---- names ---- */

Test(service_config, parse_refuses_an_invalid_service_name)
{
    const char *bad[] = {"", "sales team", "../etc", "a*"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        svc_config_t cfg;
        char err[256] = "";
        cr_assert_eq(parse(bad[i], "{}", &cfg, err), EG_EINVAL, "'%s' accepted", bad[i]);
        cr_assert(strstr(err, "name") != NULL, "'%s': %s", bad[i], err);
    }
    svc_config_t cfg;
    char err[256] = "";
    cr_assert_eq(svc_config_parse(NULL, "{}", 2, &cfg, err, sizeof err), EG_EINVAL);
    eg_assert_no_leaks();
}

/* ---- svc_config_to_json ---- */

Test(service_config, to_json_holds_the_effective_defaults)
{
    svc_config_t cfg;
    char err[256] = "";

    cr_assert_eq(parse("support", "{}", &cfg, err), EG_OK, "%s", err);
    char *text = svc_config_to_json(&cfg);
    cr_assert_not_null(text);
    eg_json_t *v = eg_json_parse(text, strlen(text), 0, err, sizeof err);
    cr_assert_not_null(v, "not JSON (%s): %s", err, text);

    cr_assert_str_eq(eg_json_str(eg_json_get(v, "name")), "support");
    cr_assert_str_eq(eg_json_str(eg_json_get(v, "timezone")), "UTC");
    cr_assert_eq(eg_json_int(eg_json_get(v, "slotMinutes")), 30);
    cr_assert_eq(eg_json_int(eg_json_get(eg_json_get(v, "capacity"), "default")), 10);
    cr_assert_eq(eg_json_int(eg_json_get(v, "horizonDays")), 14);
    cr_assert(eg_json_true(eg_json_get(v, "immediateEnabled")));
    cr_assert(eg_json_true(eg_json_get(v, "scheduledEnabled")));
    cr_assert_eq(eg_json_int(eg_json_get(v, "maxActivePerNumber")), 2);
    cr_assert_eq(eg_json_int(eg_json_get(v, "maxPerNumberPerDay")), 6);
    cr_assert_eq(eg_json_int(eg_json_get(eg_json_get(v, "retry"), "maxAttempts")), 3);
    cr_assert_eq(eg_json_int(eg_json_get(eg_json_get(v, "retry"), "delaySeconds")), 300);
    cr_assert_str_eq(eg_json_str(eg_json_get(v, "virtualQueue")), "support");
    cr_assert(eg_json_is_integer(eg_json_get(v, "priority")));
    cr_assert_eq(eg_json_int(eg_json_get(v, "priority")), 0);
    cr_assert_str_eq(eg_json_str(eg_json_get(v, "dialMode")), "customer-first");
    cr_assert_null(eg_json_get(v, "businessHours"), "24x7 service shows business hours: %s", text);
    eg_json_free(v);
    free(text);
    svc_config_free(&cfg);
    eg_assert_no_leaks();
}

Test(service_config, to_json_of_the_example_round_trips)
{
    svc_config_t cfg, again;
    char err[256] = "";

    cr_assert_eq(parse("Sales", example, &cfg, err), EG_OK, "%s", err);
    char *text = svc_config_to_json(&cfg);
    eg_json_t *v = eg_json_parse(text, strlen(text), 0, err, sizeof err);
    cr_assert_not_null(v, "not JSON (%s): %s", err, text);

    cr_assert_str_eq(eg_json_str(eg_json_get(v, "timezone")), "America/New_York");
    cr_assert_str_eq(eg_json_str(eg_json_get(v, "virtualQueue")), "VQ_Sales");
    eg_json_t *weekly = eg_json_get(eg_json_get(v, "capacity"), "weekly");
    cr_assert_eq(eg_json_int(eg_json_get(eg_json_get(weekly, "mon"), "09:30")), 20);
    eg_json_t *fri = eg_json_get(eg_json_get(v, "businessHours"), "fri");
    cr_assert_eq(eg_json_array_size(fri), 2);
    cr_assert_str_eq(eg_json_str(eg_json_array_get(eg_json_array_get(fri, 1), 0)), "13:00");
    cr_assert_eq(eg_json_array_size(eg_json_get(v, "holidays")), 1);
    cr_assert_not_null(eg_json_get(eg_json_get(v, "specialDays"), "2026-12-24"));
    cr_assert_str_eq(eg_json_str(eg_json_array_get(
                         eg_json_get(eg_json_get(v, "numbers"), "blockedPatterns"), 0)),
                     "^\\+1900");

    /* What to_json prints is itself a valid configuration with the same values. */
    cr_assert_eq(parse("Sales", text, &again, err), EG_OK, "%s", err);
    cr_assert_str_eq(again.timezone, cfg.timezone);
    cr_assert_eq(again.slot_minutes, cfg.slot_minutes);
    cr_assert_eq(again.capacity_default, cfg.capacity_default);
    cr_assert_eq(again.retry_delay_s, cfg.retry_delay_s);
    cr_assert_str_eq(again.virtual_queue, cfg.virtual_queue);
    cr_assert_str_eq(again.dial_mode, cfg.dial_mode);
    cr_assert_eq(again.open_24x7, cfg.open_24x7);
    char *text2 = svc_config_to_json(&again);
    cr_assert_str_eq(text2, text);

    free(text2);
    svc_config_free(&again);
    eg_json_free(v);
    free(text);
    svc_config_free(&cfg);
    eg_assert_no_leaks();
}

Test(service_config, to_json_reflects_non_defaults)
{
    svc_config_t cfg;
    char err[256] = "";

    cr_assert_eq(parse("s",
                       "{\"slotMinutes\":15,\"dialMode\":\"agent-first\",\"priority\":9,"
                       "\"immediateEnabled\":false,\"retry\":{\"maxAttempts\":1}}",
                       &cfg, err),
                 EG_OK, "%s", err);
    char *text = svc_config_to_json(&cfg);
    eg_json_t *v = eg_json_parse(text, strlen(text), 0, err, sizeof err);
    cr_assert_not_null(v);
    cr_assert_eq(eg_json_int(eg_json_get(v, "slotMinutes")), 15);
    cr_assert_str_eq(eg_json_str(eg_json_get(v, "dialMode")), "agent-first");
    cr_assert_eq(eg_json_int(eg_json_get(v, "priority")), 9);
    cr_assert(eg_json_is_bool(eg_json_get(v, "immediateEnabled")));
    cr_assert_not(eg_json_true(eg_json_get(v, "immediateEnabled")));
    cr_assert_eq(eg_json_int(eg_json_get(eg_json_get(v, "retry"), "maxAttempts")), 1);
    cr_assert_eq(eg_json_int(eg_json_get(eg_json_get(v, "retry"), "delaySeconds")), 300);
    eg_json_free(v);
    free(text);
    svc_config_free(&cfg);
    eg_assert_no_leaks();
}
