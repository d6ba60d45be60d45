/* services/scheduler/callin.c: a call-in group's configuration (API.md, call-in groups):
 * defaults, ranges, and a message naming the field for every rejection. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "callin.h"
#include "engage/json.h"
#include "leakcheck.h"

static eg_status_t parse(const char *text, callin_config_t *cfg, char *err, size_t errlen)
{
    err[0] = '\0';
    return callin_config_parse("sales", text, strlen(text), cfg, err, errlen);
}

Test(callin_config, defaults_are_filled_in)
{
    callin_config_t cfg;
    char err[256];
    cr_assert_eq(parse("{\"numbers\":[\"+18005550100\",\"+18005550101\"]}", &cfg, err, sizeof err),
                 EG_OK, "%s", err);
    cr_expect_str_eq(cfg.name, "sales");
    cr_expect_eq(cfg.n_numbers, 2);
    cr_expect_str_eq(cfg.numbers[0], "+18005550100");
    cr_expect_str_eq(cfg.numbers[1], "+18005550101");
    cr_expect(cfg.use_access_codes, "access codes are on by default");
    cr_expect_eq(cfg.access_code_digits, 4);
    cr_expect_eq(cfg.expiry_s, 300);
    cr_expect_str_eq(cfg.callback_service, "");
    callin_config_free(&cfg);
    eg_assert_no_leaks();
}

Test(callin_config, every_field_is_read)
{
    callin_config_t cfg;
    char err[256];
    cr_assert_eq(parse("{\"numbers\":[\"+442071234567\"],\"useAccessCodes\":false,"
                       "\"accessCodeDigits\":8,\"expirySeconds\":86400,"
                       "\"callbackService\":\"Sales.EU-1\"}",
                       &cfg, err, sizeof err),
                 EG_OK, "%s", err);
    cr_expect(!cfg.use_access_codes);
    cr_expect_eq(cfg.access_code_digits, 8);
    cr_expect_eq(cfg.expiry_s, 86400);
    cr_expect_str_eq(cfg.callback_service, "Sales.EU-1");
    callin_config_free(&cfg);
}

Test(callin_config, null_optional_fields_mean_defaults)
{
    callin_config_t cfg;
    char err[256];
    cr_assert_eq(parse("{\"numbers\":[\"+18005550100\"],\"useAccessCodes\":null,"
                       "\"accessCodeDigits\":null,\"expirySeconds\":null,\"callbackService\":null,"
                       "\"somethingElse\":[1,2]}",
                       &cfg, err, sizeof err),
                 EG_OK, "%s", err);
    cr_expect(cfg.use_access_codes);
    cr_expect_eq(cfg.expiry_s, 300);
    callin_config_free(&cfg);
}

Test(callin_config, the_minimum_expiry_is_one_second)
{
    callin_config_t cfg;
    char err[256];
    cr_assert_eq(
        parse("{\"numbers\":[\"+18005550100\"],\"expirySeconds\":1}", &cfg, err, sizeof err), EG_OK,
        "%s", err);
    cr_expect_eq(cfg.expiry_s, 1);
    callin_config_free(&cfg);
}

Test(callin_config, a_thousand_numbers_are_accepted_and_one_more_is_not)
{
    size_t cap = 1002 * 20 + 64;
    char *text = malloc(cap);
    size_t n = (size_t)snprintf(text, cap, "{\"numbers\":[");
    for (int i = 0; i < 1001; i++)
        n += (size_t)snprintf(text + n, cap - n, "%s\"+1800555%04d\"", i ? "," : "", i);
    snprintf(text + n, cap - n, "]}");
    callin_config_t cfg;
    char err[256];
    cr_expect_eq(parse(text, &cfg, err, sizeof err), EG_EINVAL);
    cr_expect(strstr(err, "numbers") != NULL, "%s", err);
    /* Drop the last number: exactly 1,000. */
    char *last = strrchr(text, ',');
    snprintf(last, cap - (size_t)(last - text), "]}");
    cr_assert_eq(parse(text, &cfg, err, sizeof err), EG_OK, "%s", err);
    cr_expect_eq(cfg.n_numbers, 1000);
    callin_config_free(&cfg);
    free(text);
}

/* A bad configuration and the field its message must name. */
typedef struct {
    const char *json;
    const char *field;
} bad_t;

static bad_t bad_cases[] = {
    {"", "body"},
    {"[1]", "body"},
    {"{\"numbers\":", "body"},
    {"{}", "numbers"},
    {"{\"numbers\":null}", "numbers"},
    {"{\"numbers\":[]}", "numbers"},
    {"{\"numbers\":\"+18005550100\"}", "numbers"},
    {"{\"numbers\":[\"18005550100\"]}", "numbers[0]"},
    {"{\"numbers\":[\"+18005550100\",\"+0800555010\"]}", "numbers[1]"},
    {"{\"numbers\":[\"+1800555\"]}", "numbers[0]"},
    {"{\"numbers\":[\"+1234567890123456\"]}", "numbers[0]"},
    {"{\"numbers\":[\"+1800555010x\"]}", "numbers[0]"},
    {"{\"numbers\":[18005550100]}", "numbers[0]"},
    {"{\"numbers\":[\"+18005550100\",\"+18005550101\",\"+18005550100\"]}", "numbers[2]"},
    {"{\"numbers\":[\"+18005550100\"],\"useAccessCodes\":\"yes\"}", "useAccessCodes"},
    {"{\"numbers\":[\"+18005550100\"],\"useAccessCodes\":1}", "useAccessCodes"},
    {"{\"numbers\":[\"+18005550100\"],\"accessCodeDigits\":3}", "accessCodeDigits"},
    {"{\"numbers\":[\"+18005550100\"],\"accessCodeDigits\":9}", "accessCodeDigits"},
    {"{\"numbers\":[\"+18005550100\"],\"accessCodeDigits\":4.5}", "accessCodeDigits"},
    {"{\"numbers\":[\"+18005550100\"],\"accessCodeDigits\":\"4\"}", "accessCodeDigits"},
    {"{\"numbers\":[\"+18005550100\"],\"expirySeconds\":0}", "expirySeconds"},
    {"{\"numbers\":[\"+18005550100\"],\"expirySeconds\":86401}", "expirySeconds"},
    {"{\"numbers\":[\"+18005550100\"],\"expirySeconds\":-5}", "expirySeconds"},
    {"{\"numbers\":[\"+18005550100\"],\"callbackService\":\"\"}", "callbackService"},
    {"{\"numbers\":[\"+18005550100\"],\"callbackService\":\"no spaces\"}", "callbackService"},
    {"{\"numbers\":[\"+18005550100\"],\"callbackService\":42}", "callbackService"},
};

/* Criterion runs each parameter in a new process: pass indices, not pointers. */
#define N_BAD (sizeof bad_cases / sizeof bad_cases[0])

ParameterizedTestParameters(callin_config, bad_input_is_rejected_naming_the_field)
{
    static size_t idx[N_BAD];
    for (size_t i = 0; i < N_BAD; i++)
        idx[i] = i;
    return cr_make_param_array(size_t, idx, N_BAD);
}

ParameterizedTest(size_t *i, callin_config, bad_input_is_rejected_naming_the_field)
{
    const bad_t *c = &bad_cases[*i];
    callin_config_t cfg;
    char err[256];
    cr_assert_eq(parse(c->json, &cfg, err, sizeof err), EG_EINVAL, "accepted: %s", c->json);
    size_t n = strlen(c->field);
    cr_expect(strncmp(err, c->field, n) == 0 && err[n] == ':',
              "message for %s should start with \"%s:\": %s", c->json, c->field, err);
    cr_expect_null(cfg.numbers, "nothing is left allocated on failure");
    eg_assert_no_leaks();
}

Test(callin_config, bad_group_names_are_rejected)
{
    callin_config_t cfg;
    char err[256];
    const char *names[] = {"", "a b", "x/y", "ü",
                           "0123456789012345678901234567890123456789012345678901234567890123456"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        cr_expect_eq(callin_config_parse(names[i], "{\"numbers\":[\"+18005550100\"]}", 28, &cfg,
                                         err, sizeof err),
                     EG_EINVAL, "name '%s' accepted", names[i]);
        cr_expect(strncmp(err, "name:", 5) == 0, "%s", err);
    }
}

Test(callin_config, effective_json_round_trips)
{
    callin_config_t cfg, again;
    char err[256];
    cr_assert_eq(parse("{\"numbers\":[\"+18005550100\",\"+18005550199\"],\"useAccessCodes\":false,"
                       "\"expirySeconds\":45,\"callbackService\":\"svc\"}",
                       &cfg, err, sizeof err),
                 EG_OK, "%s", err);
    char *text = callin_config_to_json(&cfg);
    eg_json_t *j = eg_json_parse(text, strlen(text), 0, err, sizeof err);
    cr_assert_not_null(j, "%s", text);
    cr_expect_eq(eg_json_array_size(eg_json_get(j, "numbers")), 2);
    cr_expect(eg_json_is_bool(eg_json_get(j, "useAccessCodes")) &&
              !eg_json_true(eg_json_get(j, "useAccessCodes")));
    cr_expect_eq(eg_json_int(eg_json_get(j, "accessCodeDigits")), 4, "default shown");
    cr_expect_eq(eg_json_int(eg_json_get(j, "expirySeconds")), 45);
    cr_expect_str_eq(eg_json_str(eg_json_get(j, "callbackService")), "svc");
    cr_assert_eq(parse(text, &again, err, sizeof err), EG_OK, "%s", err);
    cr_expect_eq(again.n_numbers, 2);
    cr_expect_str_eq(again.numbers[1], "+18005550199");
    cr_expect_eq(again.expiry_s, 45);
    eg_json_free(j);
    free(text);
    callin_config_free(&cfg);
    callin_config_free(&again);
    eg_assert_no_leaks();
}

Test(callin_config, no_callback_service_means_no_member)
{
    callin_config_t cfg;
    char err[256];
    cr_assert_eq(parse("{\"numbers\":[\"+18005550100\"]}", &cfg, err, sizeof err), EG_OK);
    char *text = callin_config_to_json(&cfg);
    cr_expect(strstr(text, "callbackService") == NULL, "%s", text);
    free(text);
    callin_config_free(&cfg);
}
