/* services/api/validate.c: create bodies and id bodies of the Engagement API v3. Every refusal
 * is EG_EINVAL with a message naming the field; accepted bodies fill the CreateRequest. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage/json.h"
#include "engage/userdata.h"
#include "leakcheck.h"
#include "validate.h"

#define PHONE "\"phoneNumber\":\"+15551234567\""
#define SVC "\"serviceName\":\"sales\""
#define NAME_64                                                                                    \
    "abcdefghij"                                                                                   \
    "abcdefghij"                                                                                   \
    "abcdefghij"                                                                                   \
    "abcdefghij"                                                                                   \
    "abcdefghij"                                                                                   \
    "abcdefghij"                                                                                   \
    "abcd"

/* 2026-11-28T19:00:00.000Z */
#define T_2026_11_28_19 1795892400000LL

typedef enum { GEN_NONE, GEN_BIG_USER_DATA, GEN_DEPTH_17 } gen_t;

typedef struct {
    const char *name;
    const char *body; /* NULL: built by gen */
    const char *field;
    gen_t gen;
} bad_case_t;

/* A create body whose userData nests so that the whole body has the given depth. */
static char *body_of_depth(size_t depth)
{
    size_t inner = depth - 1; /* the root object is one level */
    char *s = malloc(128 + 7 * inner);
    size_t p = 0;

    cr_assert_not_null(s);
    p += (size_t)sprintf(s, "{" SVC "," PHONE ",\"userData\":");
    for (size_t i = 0; i + 1 < inner; i++)
        p += (size_t)sprintf(s + p, "{\"a\":");
    s[p++] = '{';
    for (size_t i = 0; i < inner; i++)
        s[p++] = '}';
    s[p++] = '}';
    s[p] = '\0';
    return s;
}

/* A create body whose userData is `size` bytes of JSON or a little more. */
static char *body_with_user_data(size_t size)
{
    char *s = malloc(size + 128);
    int p;

    cr_assert_not_null(s);
    p = sprintf(s, "{" SVC "," PHONE ",\"userData\":{\"blob\":\"");
    /* {"blob":"<n x's>"} is n + 11 bytes */
    memset(s + p, 'x', size - 11);
    strcpy(s + p + size - 11, "\"}}");
    return s;
}

/* The table lives at file scope and the parameters are indices into it: Criterion may run a
 * test in a re-executed process, where pointers made by the parent mean nothing. */
static const bad_case_t bad_cases[] = {
    /* serviceName */
    {"serviceName missing", "{" PHONE "}", "serviceName", GEN_NONE},
    {"serviceName null", "{\"serviceName\":null," PHONE "}", "serviceName", GEN_NONE},
    {"serviceName number", "{\"serviceName\":42," PHONE "}", "serviceName", GEN_NONE},
    {"serviceName object", "{\"serviceName\":{}," PHONE "}", "serviceName", GEN_NONE},
    {"serviceName empty", "{\"serviceName\":\"\"," PHONE "}", "serviceName", GEN_NONE},
    {"serviceName 65 chars", "{\"serviceName\":\"" NAME_64 "x\"," PHONE "}", "serviceName",
     GEN_NONE},
    {"serviceName space", "{\"serviceName\":\"sales team\"," PHONE "}", "serviceName", GEN_NONE},
    {"serviceName slash", "{\"serviceName\":\"a/b\"," PHONE "}", "serviceName", GEN_NONE},
    {"serviceName non-ASCII", "{\"serviceName\":\"caf\\u00e9\"," PHONE "}", "serviceName",
     GEN_NONE},
    /* phoneNumber */
    {"phoneNumber missing", "{" SVC "}", "phoneNumber", GEN_NONE},
    {"phoneNumber number", "{" SVC ",\"phoneNumber\":15551234567}", "phoneNumber", GEN_NONE},
    {"phoneNumber no plus", "{" SVC ",\"phoneNumber\":\"15551234567\"}", "phoneNumber", GEN_NONE},
    {"phoneNumber letters", "{" SVC ",\"phoneNumber\":\"+1555CALLME\"}", "phoneNumber", GEN_NONE},
    {"phoneNumber 7 digits", "{" SVC ",\"phoneNumber\":\"+1234567\"}", "phoneNumber", GEN_NONE},
    {"phoneNumber 16 digits", "{" SVC ",\"phoneNumber\":\"+1234567890123456\"}", "phoneNumber",
     GEN_NONE},
    {"phoneNumber leading 0", "{" SVC ",\"phoneNumber\":\"+05551234567\"}", "phoneNumber",
     GEN_NONE},
    {"phoneNumber spaces", "{" SVC ",\"phoneNumber\":\"+1 555 123 4567\"}", "phoneNumber",
     GEN_NONE},
    /* desiredTime */
    {"desiredTime number", "{" SVC "," PHONE ",\"desiredTime\":1795892400000}", "desiredTime",
     GEN_NONE},
    {"desiredTime no offset", "{" SVC "," PHONE ",\"desiredTime\":\"2026-11-28T19:00:00\"}",
     "desiredTime", GEN_NONE},
    {"desiredTime bad date", "{" SVC "," PHONE ",\"desiredTime\":\"2026-02-30T19:00:00Z\"}",
     "desiredTime", GEN_NONE},
    {"desiredTime not a time", "{" SVC "," PHONE ",\"desiredTime\":\"tomorrow\"}", "desiredTime",
     GEN_NONE},
    /* userData */
    {"userData string", "{" SVC "," PHONE ",\"userData\":\"x=1\"}", "userData", GEN_NONE},
    {"userData array", "{" SVC "," PHONE ",\"userData\":[1,2]}", "userData", GEN_NONE},
    {"userData over 100 KB", NULL, "userData", GEN_BIG_USER_DATA},
    /* priority */
    {"priority string", "{" SVC "," PHONE ",\"priority\":\"5\"}", "priority", GEN_NONE},
    {"priority float", "{" SVC "," PHONE ",\"priority\":1.5}", "priority", GEN_NONE},
    {"priority too big", "{" SVC "," PHONE ",\"priority\":1000001}", "priority", GEN_NONE},
    {"priority too small", "{" SVC "," PHONE ",\"priority\":-1000001}", "priority", GEN_NONE},
    {"priority huge", "{" SVC "," PHONE ",\"priority\":9223372036854775807}", "priority", GEN_NONE},
    /* alwaysCheckCapacity */
    {"alwaysCheckCapacity string", "{" SVC "," PHONE ",\"alwaysCheckCapacity\":\"true\"}",
     "alwaysCheckCapacity", GEN_NONE},
    {"alwaysCheckCapacity number", "{" SVC "," PHONE ",\"alwaysCheckCapacity\":1}",
     "alwaysCheckCapacity", GEN_NONE},
    /* the body itself */
    {"body not JSON", "serviceName=sales", "body", GEN_NONE},
    {"body truncated", "{" SVC "," PHONE, "body", GEN_NONE},
    {"body array", "[{" SVC "," PHONE "}]", "body", GEN_NONE},
    {"body string", "\"hello\"", "body", GEN_NONE},
    {"body null", "null", "body", GEN_NONE},
    {"body empty", "", "body", GEN_NONE},
    {"body duplicate key", "{" SVC "," SVC "," PHONE "}", "body", GEN_NONE},
    {"body trailing garbage", "{" SVC "," PHONE "} x", "body", GEN_NONE},
    {"body nested 17 deep", NULL, "body", GEN_DEPTH_17},
    /* reporting fields */
    {"language object", "{" SVC "," PHONE ",\"language\":{\"code\":\"en\"}}", "language", GEN_NONE},
    {"routePoint array", "{" SVC "," PHONE ",\"routePoint\":[\"RP\"]}", "routePoint", GEN_NONE},
    {"channel object", "{" SVC "," PHONE ",\"channel\":{}}", "channel", GEN_NONE},
};

#define N_BAD (sizeof bad_cases / sizeof *bad_cases)

ParameterizedTestParameters(validate, malformed_create_bodies)
{
    static size_t idx[N_BAD];
    for (size_t i = 0; i < N_BAD; i++)
        idx[i] = i;
    return cr_make_param_array(size_t, idx, N_BAD);
}

ParameterizedTest(size_t *i, validate, malformed_create_bodies)
{
    const bad_case_t *c = &bad_cases[*i];
    Eg__CreateRequest req;
    char err[512] = "";
    char *body = NULL;
    const char *text = c->body;

    if (c->gen == GEN_BIG_USER_DATA)
        text = body = body_with_user_data(EG_USER_DATA_MAX + 1);
    else if (c->gen == GEN_DEPTH_17)
        text = body = body_of_depth(API_MAX_JSON_DEPTH + 1);
    eg_status_t st = api_parse_create(text, strlen(text), &req, err, sizeof err);
    cr_assert_eq(st, EG_EINVAL, "%s: accepted (status %s)", c->name, eg_status_str(st));
    cr_assert(strstr(err, c->field) != NULL, "%s: message does not name %s: '%s'", c->name,
              c->field, err);
    /* A refusal leaves nothing to free; clearing again is harmless. */
    api_create_request_clear(&req);
    free(body);
    eg_assert_no_leaks();
}

Test(validate, user_data_of_exactly_100_kb_is_accepted)
{
    Eg__CreateRequest req;
    char err[512] = "";
    char *body = body_with_user_data(EG_USER_DATA_MAX);

    cr_assert_eq(api_parse_create(body, strlen(body), &req, err, sizeof err), EG_OK, "%s", err);
    cr_assert_eq(strlen(req.user_data_json), EG_USER_DATA_MAX);
    api_create_request_clear(&req);
    free(body);
    eg_assert_no_leaks();
}

Test(validate, body_nested_16_deep_is_accepted)
{
    Eg__CreateRequest req;
    char err[512] = "";
    char *body = body_of_depth(API_MAX_JSON_DEPTH);

    cr_assert_eq(api_parse_create(body, strlen(body), &req, err, sizeof err), EG_OK, "%s", err);
    api_create_request_clear(&req);
    free(body);
    eg_assert_no_leaks();
}

Test(validate, full_create_body_fills_the_request)
{
    const char *body = "{\"serviceName\":\"Sales_1.x-y\",\"phoneNumber\":\"+15551234567\","
                       "\"desiredTime\":\"2026-11-28T14:00:00.000-05:00\","
                       "\"userData\":{ \"a\" : 1,\n \"b\" : {\"c\" : \"d\"} },"
                       "\"priority\":-5,\"alwaysCheckCapacity\":true,"
                       "\"language\":\"en-US\",\"routePoint\":\"RP_1\",\"surveyRP\":7,"
                       "\"pushTargets\":[\"t1\"],\"unknownField\":{\"x\":[1,2]},\"_\":\"123\"}";
    Eg__CreateRequest req;
    char err[512] = "";

    cr_assert_eq(api_parse_create(body, strlen(body), &req, err, sizeof err), EG_OK, "%s", err);
    cr_assert_str_eq(req.service, "Sales_1.x-y");
    cr_assert_str_eq(req.phone, "+15551234567");
    cr_assert(req.has_desired_time);
    cr_assert_eq(req.desired_time_ms, T_2026_11_28_19);
    cr_assert_str_eq(req.user_data_json, "{\"a\":1,\"b\":{\"c\":\"d\"}}");
    cr_assert(req.has_priority);
    cr_assert_eq(req.priority, -5);
    cr_assert(req.always_check_capacity);

    eg_json_t *extra = eg_json_parse(req.extra_json, strlen(req.extra_json), 0, err, sizeof err);
    cr_assert_not_null(extra, "extra_json is not JSON: %s", req.extra_json);
    cr_assert_str_eq(eg_json_str(eg_json_get(extra, "language")), "en-US");
    cr_assert_str_eq(eg_json_str(eg_json_get(extra, "routePoint")), "RP_1");
    cr_assert_eq(eg_json_int(eg_json_get(extra, "surveyRP")), 7);
    cr_assert_eq(eg_json_array_size(eg_json_get(extra, "pushTargets")), 1);
    cr_assert_null(eg_json_get(extra, "unknownField"), "unknown field kept: %s", req.extra_json);
    cr_assert_null(eg_json_get(extra, "_"));
    cr_assert_null(eg_json_get(extra, "serviceName"), "core field copied: %s", req.extra_json);
    cr_assert_null(eg_json_get(extra, "userData"));
    eg_json_free(extra);
    api_create_request_clear(&req);
    cr_assert_str_eq(req.service, "");
    eg_assert_no_leaks();
}

Test(validate, minimal_create_body_is_immediate_with_no_extras)
{
    const char *body = "{\"serviceName\":\"s\",\"phoneNumber\":\"+4930123456\"}";
    Eg__CreateRequest req;
    char err[512] = "";

    cr_assert_eq(api_parse_create(body, strlen(body), &req, err, sizeof err), EG_OK, "%s", err);
    cr_assert_str_eq(req.service, "s");
    cr_assert_str_eq(req.phone, "+4930123456");
    cr_assert_not(req.has_desired_time);
    cr_assert_not(req.has_priority);
    cr_assert_not(req.always_check_capacity);
    cr_assert_str_eq(req.user_data_json, "");
    cr_assert_str_eq(req.extra_json, "");
    api_create_request_clear(&req);
    eg_assert_no_leaks();
}

Test(validate, null_optional_fields_are_absent)
{
    const char *body = "{" SVC "," PHONE ",\"desiredTime\":null,\"userData\":null,"
                       "\"priority\":null,\"alwaysCheckCapacity\":null,\"language\":null}";
    Eg__CreateRequest req;
    char err[512] = "";

    cr_assert_eq(api_parse_create(body, strlen(body), &req, err, sizeof err), EG_OK, "%s", err);
    cr_assert_not(req.has_desired_time);
    cr_assert_not(req.has_priority);
    cr_assert_str_eq(req.user_data_json, "");
    cr_assert_str_eq(req.extra_json, "");
    api_create_request_clear(&req);
    eg_assert_no_leaks();
}

Test(validate, boundary_values_are_accepted)
{
    const char *body = "{\"serviceName\":\"" NAME_64 "\",\"phoneNumber\":\"+123456789012345\","
                       "\"desiredTime\":\"2028-02-29T23:59Z\",\"priority\":1000000,"
                       "\"alwaysCheckCapacity\":false,\"userData\":{}}";
    Eg__CreateRequest req;
    char err[512] = "";

    cr_assert_eq(api_parse_create(body, strlen(body), &req, err, sizeof err), EG_OK, "%s", err);
    cr_assert_eq(strlen(req.service), 64);
    cr_assert_eq(req.priority, 1000000);
    cr_assert_not(req.always_check_capacity);
    cr_assert_str_eq(req.user_data_json, "{}");
    api_create_request_clear(&req);
    eg_assert_no_leaks();
}

Test(validate, clear_is_safe_on_an_initialised_request)
{
    Eg__CreateRequest req = EG__CREATE_REQUEST__INIT;

    api_create_request_clear(&req);
    api_create_request_clear(&req);
    cr_assert_str_eq(req.service, "");
}

/* ---- api_parse_id ---- */

static eg_status_t parse_id(const char *body, char id[37], char *err)
{
    return api_parse_id(body, strlen(body), id, err, 256);
}

Test(validate, parse_id_accepts_v4_and_v7)
{
    char id[37], err[256] = "";

    cr_assert_eq(parse_id("{\"id\":\"f47ac10b-58cc-4372-a567-0e02b2c3d479\"}", id, err), EG_OK,
                 "%s", err);
    cr_assert_str_eq(id, "f47ac10b-58cc-4372-a567-0e02b2c3d479");
    cr_assert_eq(parse_id("{\"id\":\"0192f0a3-7b2c-7def-8123-456789abcdef\",\"x\":1}", id, err),
                 EG_OK, "%s", err);
    cr_assert_str_eq(id, "0192f0a3-7b2c-7def-8123-456789abcdef");
    eg_assert_no_leaks();
}

Test(validate, parse_id_normalises_to_lower_case)
{
    char id[37], err[256] = "";

    cr_assert_eq(parse_id("{\"id\":\"F47AC10B-58CC-4372-A567-0E02B2C3D479\"}", id, err), EG_OK);
    cr_assert_str_eq(id, "f47ac10b-58cc-4372-a567-0e02b2c3d479");
}

Test(validate, parse_id_refusals_name_the_field)
{
    const struct {
        const char *body, *field;
    } bad[] = {
        {"{}", "id"},
        {"{\"ID\":\"f47ac10b-58cc-4372-a567-0e02b2c3d479\"}", "id"},
        {"{\"id\":null}", "id"},
        {"{\"id\":42}", "id"},
        {"{\"id\":[\"f47ac10b-58cc-4372-a567-0e02b2c3d479\"]}", "id"},
        {"{\"id\":\"\"}", "id"},
        {"{\"id\":\"not-a-uuid\"}", "id"},
        {"{\"id\":\"f47ac10b58cc4372a5670e02b2c3d479\"}", "id"},
        {"{\"id\":\"f47ac10b-58cc-4372-a567-0e02b2c3d479 \"}", "id"},
        {"{\"id\":\"g47ac10b-58cc-4372-a567-0e02b2c3d479\"}", "id"},
        {"", "body"},
        {"not json", "body"},
        {"[\"f47ac10b-58cc-4372-a567-0e02b2c3d479\"]", "body"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char id[37], err[256] = "";
        cr_assert_eq(parse_id(bad[i].body, id, err), EG_EINVAL, "'%s' accepted", bad[i].body);
        cr_assert(strstr(err, bad[i].field) != NULL, "'%s': message does not name %s: '%s'",
                  bad[i].body, bad[i].field, err);
    }
    eg_assert_no_leaks();
}
