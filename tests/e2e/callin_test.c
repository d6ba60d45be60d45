/* End to end: Click-to-Call-In. Groups through the admin API and engagectl; requests that lend
 * a (number, access code) pair never share one, a group without codes lends each number once,
 * a full group is 503, expired requests free their pairs, and another tenant cannot use the
 * group. Every test uses its own random numbers: pairs are per tenant and number, and the tests
 * of one binary run in parallel. */
#define _DEFAULT_SOURCE
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "e2e.h"
#include "engage/ids.h"
#include "engage/timeutil.h"

#define CREATE "/engagement/v3/call-in/requests/create"
#define MAX_NUMBERS 8

typedef struct {
    char name[48];
    char numbers[MAX_NUMBERS][20];
    int n;
} group_t;

/* A group with n fresh random numbers; extra is more JSON members (may be ""). */
static e2e_resp_t put_group(group_t *g, int n, const char *extra)
{
    unsigned r;
    eg_random_bytes(&r, sizeof r);
    if (!g->name[0])
        snprintf(g->name, sizeof g->name, "ci-%u", r);
    char body[1024], path[160];
    size_t len = (size_t)snprintf(body, sizeof body, "{\"numbers\":[");
    g->n = n;
    for (int i = 0; i < n; i++) {
        uint32_t d;
        eg_random_bytes(&d, sizeof d);
        snprintf(g->numbers[i], sizeof g->numbers[i], "+1555%07u", (unsigned)(d % 10000000u));
        len += (size_t)snprintf(body + len, sizeof body - len, "%s\"%s\"", i ? "," : "",
                                g->numbers[i]);
    }
    snprintf(body + len, sizeof body - len, "]%s%s}", *extra ? "," : "", extra);
    snprintf(path, sizeof path, "/ges/api/v1/call-in-groups/%s", g->name);
    return e2e_call("PUT", path, e2e_env("ENGAGE_ADMIN_KEY"), NULL, body);
}

static void make_group(group_t *g, int n, const char *extra)
{
    memset(g, 0, sizeof *g);
    e2e_resp_t r = put_group(g, n, extra);
    cr_assert_eq(r.status, 201, "group %s: %d %s", g->name, r.status, e2e_message(&r));
    e2e_free(&r);
}

static e2e_resp_t call_in(const char *key, const char *group)
{
    char body[256];
    snprintf(body, sizeof body, "{\"groupName\":\"%s\"}", group);
    return e2e_post(CREATE, key, body);
}

static bool in_group(const group_t *g, const char *number)
{
    for (int i = 0; number && i < g->n; i++)
        if (strcmp(g->numbers[i], number) == 0)
            return true;
    return false;
}

/* ---- admin ---- */

Test(callin_admin, put_creates_then_updates_and_get_shows_defaults)
{
    group_t g = {0};
    e2e_resp_t r = put_group(&g, 2, "");
    cr_expect_eq(r.status, 201, "first PUT creates (%d %s)", r.status, e2e_message(&r));
    e2e_free(&r);
    r = put_group(&g, 3, "\"useAccessCodes\":false,\"expirySeconds\":60");
    cr_expect_eq(r.status, 200, "second PUT updates (%d %s)", r.status, e2e_message(&r));
    e2e_free(&r);
    char path[160];
    snprintf(path, sizeof path, "/ges/api/v1/call-in-groups/%s", g.name);
    r = e2e_call("GET", path, e2e_env("ENGAGE_ADMIN_KEY"), NULL, NULL);
    cr_assert_eq(r.status, 200, "%s", e2e_message(&r));
    eg_json_t *d = eg_json_get(r.body, "data");
    cr_expect_eq(eg_json_array_size(eg_json_get(d, "numbers")), 3);
    cr_expect_str_eq(eg_json_str(eg_json_array_get(eg_json_get(d, "numbers"), 2)), g.numbers[2]);
    cr_expect(!eg_json_true(eg_json_get(d, "useAccessCodes")));
    cr_expect_eq(eg_json_int(eg_json_get(d, "expirySeconds")), 60);
    cr_expect_eq(eg_json_int(eg_json_get(d, "accessCodeDigits")), 4, "default filled in");
    e2e_free(&r);
}

Test(callin_admin, invalid_configuration_is_400_naming_the_field)
{
    const char *admin = e2e_env("ENGAGE_ADMIN_KEY");
    struct {
        const char *body, *field;
    } cases[] = {
        {"{}", "numbers"},
        {"{\"numbers\":[\"12345\"]}", "numbers[0]"},
        {"{\"numbers\":[\"+15550000001\",\"+15550000001\"]}", "numbers[1]"},
        {"{\"numbers\":[\"+15550000001\"],\"accessCodeDigits\":12}", "accessCodeDigits"},
        {"{\"numbers\":[\"+15550000001\"],\"expirySeconds\":0}", "expirySeconds"},
        {"{\"numbers\":[\"+15550000001\"],\"useAccessCodes\":\"no\"}", "useAccessCodes"},
        {"not json", "body"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        e2e_resp_t r =
            e2e_call("PUT", "/ges/api/v1/call-in-groups/bad-group", admin, NULL, cases[i].body);
        cr_expect_eq(r.status, 400, "%s: %d", cases[i].body, r.status);
        cr_expect(strstr(e2e_message(&r), cases[i].field) != NULL, "%s: %s", cases[i].body,
                  e2e_message(&r));
        e2e_free(&r);
    }
    e2e_resp_t r = e2e_call("GET", "/ges/api/v1/call-in-groups/bad-group", admin, NULL, NULL);
    cr_expect_eq(r.status, 404, "nothing was stored");
    e2e_free(&r);
}

Test(callin_admin, api_key_is_403_and_no_key_401)
{
    e2e_resp_t r =
        e2e_call("GET", "/ges/api/v1/call-in-groups/x", e2e_env("ENGAGE_API_KEY"), NULL, NULL);
    cr_expect_eq(r.status, 403);
    e2e_free(&r);
    r = e2e_call("PUT", "/ges/api/v1/call-in-groups/x", NULL, NULL, "{}");
    cr_expect_eq(r.status, 401);
    e2e_free(&r);
}

Test(callin_admin, delete_makes_the_group_unknown)
{
    group_t g;
    make_group(&g, 1, "");
    char path[160];
    snprintf(path, sizeof path, "/ges/api/v1/call-in-groups/%s", g.name);
    e2e_resp_t r = e2e_call("DELETE", path, e2e_env("ENGAGE_ADMIN_KEY"), NULL, NULL);
    cr_expect_eq(r.status, 200, "%s", e2e_message(&r));
    e2e_free(&r);
    r = call_in(e2e_env("ENGAGE_API_KEY"), g.name);
    cr_expect_eq(r.status, 404, "a deleted group lends nothing (%d)", r.status);
    e2e_free(&r);
    r = e2e_call("DELETE", path, e2e_env("ENGAGE_ADMIN_KEY"), NULL, NULL);
    cr_expect_eq(r.status, 404, "deleting twice");
    e2e_free(&r);
}

Test(callin_admin, engagectl_puts_and_gets_a_group)
{
    char name[48], file[] = "/tmp/callin-e2e-XXXXXX", cmd[1024];
    unsigned rnd;
    eg_random_bytes(&rnd, sizeof rnd);
    snprintf(name, sizeof name, "cli-%u", rnd);
    int fd = mkstemp(file);
    cr_assert(fd >= 0);
    const char json[] = "{\"numbers\":[\"+15559990001\"],\"expirySeconds\":120}";
    cr_assert_eq(write(fd, json, sizeof json - 1), (ssize_t)(sizeof json - 1));
    close(fd);
    snprintf(cmd, sizeof cmd, "'%s/engagectl' --json callin-group put %s %s",
             e2e_env("ENGAGE_BIN_DIR"), name, file);
    char *line = e2e_run(cmd);
    unlink(file);
    cr_assert(line, "engagectl callin-group put failed");
    char err[128];
    eg_json_t *j = eg_json_parse(line, strlen(line), 0, err, sizeof err);
    cr_expect_eq(eg_json_int(eg_json_get(eg_json_get(j, "status"), "code")), 201, "%s", line);
    eg_json_free(j);
    free(line);
    snprintf(cmd, sizeof cmd, "'%s/engagectl' --json callin-group get %s",
             e2e_env("ENGAGE_BIN_DIR"), name);
    line = e2e_run(cmd);
    cr_assert(line, "engagectl callin-group get failed");
    j = eg_json_parse(line, strlen(line), 0, err, sizeof err);
    cr_expect_eq(eg_json_int(eg_json_get(eg_json_get(j, "data"), "expirySeconds")), 120, "%s",
                 line);
    eg_json_free(j);
    free(line);
}

/* ---- requests ---- */

Test(callin, a_request_gets_a_number_of_the_group_and_a_code)
{
    group_t g;
    make_group(&g, 3, "\"accessCodeDigits\":6,\"expirySeconds\":120,\"callbackService\":\"cs1\"");
    int64_t before = eg_now_ms();
    char body[512];
    snprintf(body, sizeof body,
             "{\"groupName\":\"%s\",\"fromPhoneNumber\":\"+15551230000\","
             "\"userData\":{\"order\":42}}",
             g.name);
    e2e_resp_t r = e2e_post(CREATE, e2e_env("ENGAGE_API_KEY"), body);
    cr_assert_eq(r.status, 200, "%d %s", r.status, e2e_message(&r));
    cr_expect(eg_uuid_valid(e2e_data_str(&r, "id")));
    cr_expect(in_group(&g, e2e_data_str(&r, "toPhoneNumber")), "%s",
              e2e_data_str(&r, "toPhoneNumber"));
    cr_expect_str_eq(e2e_data_str(&r, "groupName"), g.name);
    const char *code = e2e_data_str(&r, "accessCode");
    cr_assert(code && strlen(code) == 6 && strspn(code, "0123456789") == 6, "code %s", code);
    cr_expect_str_eq(e2e_data_str(&r, "fromPhoneNumber"), "+15551230000");
    cr_expect_str_eq(e2e_data_str(&r, "callbackServiceId"), "cs1", "the group's default");
    int64_t exp = eg_json_int(eg_json_get(eg_json_get(r.body, "data"), "expirationTime"));
    cr_expect(exp >= before + 119000 && exp <= eg_now_ms() + 121000, "expirationTime %lld",
              (long long)exp);
    e2e_free(&r);

    snprintf(body, sizeof body, "{\"groupName\":\"%s\",\"callbackServiceId\":\"other\"}", g.name);
    r = e2e_post(CREATE, e2e_env("ENGAGE_API_KEY"), body);
    cr_assert_eq(r.status, 200, "%d %s", r.status, e2e_message(&r));
    cr_expect_str_eq(e2e_data_str(&r, "callbackServiceId"), "other", "the request's own");
    cr_expect_null(e2e_data_str(&r, "fromPhoneNumber"));
    e2e_free(&r);
}

typedef struct {
    const char *group;
    int status;
    char number[20];
    char code[12];
} job_t;

static void *request_one(void *arg)
{
    job_t *j = arg;
    e2e_resp_t r = call_in(e2e_env("ENGAGE_API_KEY"), j->group);
    j->status = r.status;
    if (r.status == 200) {
        const char *n = e2e_data_str(&r, "toPhoneNumber"), *c = e2e_data_str(&r, "accessCode");
        snprintf(j->number, sizeof j->number, "%s", n ? n : "");
        snprintf(j->code, sizeof j->code, "%s", c ? c : "");
    }
    e2e_free(&r);
    return NULL;
}

Test(callin, concurrent_requests_never_share_a_pair, .timeout = 120)
{
    group_t g;
    make_group(&g, 5, "\"expirySeconds\":60");
    enum { N = 20 };
    job_t jobs[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        jobs[i] = (job_t){.group = g.name};
        pthread_create(&t[i], NULL, request_one, &jobs[i]);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    int used[MAX_NUMBERS] = {0};
    for (int i = 0; i < N; i++) {
        cr_assert_eq(jobs[i].status, 200, "request %d: %d", i, jobs[i].status);
        cr_expect(in_group(&g, jobs[i].number), "%s", jobs[i].number);
        cr_expect_eq(strlen(jobs[i].code), 4, "4-digit code: %s", jobs[i].code);
        for (int k = 0; k < g.n; k++)
            used[k] += strcmp(jobs[i].number, g.numbers[k]) == 0;
        for (int k = 0; k < i; k++)
            cr_expect(strcmp(jobs[i].number, jobs[k].number) != 0 ||
                          strcmp(jobs[i].code, jobs[k].code) != 0,
                      "requests %d and %d share %s / %s", k, i, jobs[i].number, jobs[i].code);
    }
    int numbers_used = 0;
    for (int k = 0; k < g.n; k++)
        numbers_used += used[k] > 0;
    cr_expect_geq(numbers_used, 2, "the load is spread over the numbers (%d used)", numbers_used);
}

Test(callin, without_codes_each_number_is_lent_once_then_503_then_free_after_expiry, .timeout = 60)
{
    group_t g;
    make_group(&g, 2, "\"useAccessCodes\":false,\"expirySeconds\":2");
    const char *key = e2e_env("ENGAGE_API_KEY");
    char first[2][20];
    for (int i = 0; i < 2; i++) {
        e2e_resp_t r = call_in(key, g.name);
        cr_assert_eq(r.status, 200, "request %d: %d %s", i, r.status, e2e_message(&r));
        cr_expect_null(e2e_data_str(&r, "accessCode"), "no code without codes");
        snprintf(first[i], sizeof first[i], "%s", e2e_data_str(&r, "toPhoneNumber"));
        cr_expect(in_group(&g, first[i]));
        e2e_free(&r);
    }
    cr_expect_str_neq(first[0], first[1], "two live requests hold different numbers");
    e2e_resp_t r = call_in(key, g.name);
    cr_expect_eq(r.status, 503, "third request: %d %s", r.status, e2e_message(&r));
    cr_expect(strstr(e2e_message(&r), "no free number") != NULL, "%s", e2e_message(&r));
    cr_expect(r.retry_after[0] && atoi(r.retry_after) >= 1 && atoi(r.retry_after) <= 2,
              "Retry-After: '%s'", r.retry_after);
    e2e_free(&r);

    sleep(3); /* expiry + 1 s */
    char again[2][20];
    for (int i = 0; i < 2; i++) {
        r = call_in(key, g.name);
        cr_expect_eq(r.status, 200, "after expiry, request %d: %d %s", i, r.status,
                     e2e_message(&r));
        snprintf(again[i], sizeof again[i], "%s",
                 e2e_data_str(&r, "toPhoneNumber") ? e2e_data_str(&r, "toPhoneNumber") : "");
        e2e_free(&r);
    }
    cr_expect_str_neq(again[0], again[1], "both numbers are free again");
}

Test(callin, with_codes_one_number_lends_many_codes_and_they_expire, .timeout = 60)
{
    group_t g;
    make_group(&g, 1, "\"expirySeconds\":2");
    const char *key = e2e_env("ENGAGE_API_KEY");
    char codes[10][12];
    for (int i = 0; i < 10; i++) {
        e2e_resp_t r = call_in(key, g.name);
        cr_assert_eq(r.status, 200, "request %d: %d %s", i, r.status, e2e_message(&r));
        cr_expect_str_eq(e2e_data_str(&r, "toPhoneNumber"), g.numbers[0]);
        snprintf(codes[i], sizeof codes[i], "%s", e2e_data_str(&r, "accessCode"));
        for (int k = 0; k < i; k++)
            cr_expect_str_neq(codes[i], codes[k], "one number, two live requests, one code");
        e2e_free(&r);
    }
    /* A group without codes sharing the number cannot take it while codes are live, and can
     * once they expired. */
    group_t whole = {0};
    snprintf(whole.name, sizeof whole.name, "%.32s-whole", g.name);
    char body[256], path[160];
    snprintf(body, sizeof body, "{\"numbers\":[\"%s\"],\"useAccessCodes\":false}", g.numbers[0]);
    snprintf(path, sizeof path, "/ges/api/v1/call-in-groups/%s", whole.name);
    e2e_resp_t r = e2e_call("PUT", path, e2e_env("ENGAGE_ADMIN_KEY"), NULL, body);
    cr_assert_eq(r.status, 201, "%s", e2e_message(&r));
    e2e_free(&r);
    r = call_in(key, whole.name);
    cr_expect_eq(r.status, 503, "codes are live on the number: %d", r.status);
    e2e_free(&r);
    sleep(3); /* expiry + 1 s */
    r = call_in(key, whole.name);
    cr_expect_eq(r.status, 200, "after expiry the number is free: %d %s", r.status,
                 e2e_message(&r));
    e2e_free(&r);
}

Test(callin, unknown_group_is_404_and_bad_input_400_naming_the_field)
{
    const char *key = e2e_env("ENGAGE_API_KEY");
    e2e_resp_t r = call_in(key, "no-such-group-anywhere");
    cr_expect_eq(r.status, 404);
    cr_expect(strstr(e2e_message(&r), "no-such-group-anywhere") != NULL, "%s", e2e_message(&r));
    e2e_free(&r);
    struct {
        const char *body, *field;
    } cases[] = {
        {"{}", "groupName"},
        {"{\"groupName\":null}", "groupName"},
        {"{\"groupName\":42}", "groupName"},
        {"{\"groupName\":\"has space\"}", "groupName"},
        {"{\"groupName\":\"g\",\"fromPhoneNumber\":\"555\"}", "fromPhoneNumber"},
        {"{\"groupName\":\"g\",\"fromPhoneNumber\":15551234567}", "fromPhoneNumber"},
        {"{\"groupName\":\"g\",\"userData\":[1]}", "userData"},
        {"{\"groupName\":\"g\",\"userData\":\"x\"}", "userData"},
        {"{\"groupName\":\"g\",\"callbackServiceId\":7}", "callbackServiceId"},
        {"[]", "body"},
        {"", "body"},
        {"{\"groupName\":", "body"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        r = e2e_post(CREATE, key, cases[i].body);
        cr_expect_eq(r.status, 400, "%s: %d", cases[i].body, r.status);
        cr_expect(strncmp(e2e_message(&r), cases[i].field, strlen(cases[i].field)) == 0, "%s: %s",
                  cases[i].body, e2e_message(&r));
        e2e_free(&r);
    }
}

Test(callin, user_data_over_100_kib_is_400)
{
    size_t n = 101 * 1024;
    char *body = malloc(n + 128);
    int len = snprintf(body, 128, "{\"groupName\":\"g\",\"userData\":{\"a\":\"");
    memset(body + len, 'x', n);
    strcpy(body + len + n, "\"}}");
    e2e_resp_t r = e2e_post(CREATE, e2e_env("ENGAGE_API_KEY"), body);
    cr_expect_eq(r.status, 400);
    cr_expect(strncmp(e2e_message(&r), "userData", 8) == 0, "%s", e2e_message(&r));
    e2e_free(&r);
    free(body);
}

Test(callin, get_is_405_and_unknown_paths_404_and_no_key_401)
{
    e2e_resp_t r = e2e_call("GET", CREATE, e2e_env("ENGAGE_API_KEY"), NULL, NULL);
    cr_expect_eq(r.status, 405);
    e2e_free(&r);
    r = e2e_post("/engagement/v3/call-in/requests/cancel", e2e_env("ENGAGE_API_KEY"), "{}");
    cr_expect_eq(r.status, 404);
    e2e_free(&r);
    r = e2e_post(CREATE, NULL, "{\"groupName\":\"g\"}");
    cr_expect_eq(r.status, 401);
    e2e_free(&r);
}

Test(callin, another_tenant_cannot_use_the_group)
{
    group_t g;
    make_group(&g, 2, "");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "'%s/engagectl' tenant create callin-other-%d-%ld --json",
             e2e_env("ENGAGE_BIN_DIR"), getpid(), (long)eg_now_ms());
    char *line = e2e_run(cmd);
    cr_assert(line, "engagectl tenant create failed");
    char err[64];
    eg_json_t *t = eg_json_parse(line, strlen(line), 0, err, sizeof err);
    const char *other = eg_json_str(eg_json_get(t, "apiKey"));
    const char *other_admin = eg_json_str(eg_json_get(t, "adminKey"));
    cr_assert(other && other_admin);
    e2e_resp_t r = call_in(other, g.name);
    cr_expect_eq(r.status, 404, "tenant B used tenant A's group (%d)", r.status);
    e2e_free(&r);
    char path[160];
    snprintf(path, sizeof path, "/ges/api/v1/call-in-groups/%s", g.name);
    r = e2e_call("GET", path, other_admin, NULL, NULL);
    cr_expect_eq(r.status, 404, "tenant B's admin sees tenant A's group (%d)", r.status);
    e2e_free(&r);
    r = call_in(e2e_env("ENGAGE_API_KEY"), g.name);
    cr_expect_eq(r.status, 200, "tenant A still can (%d %s)", r.status, e2e_message(&r));
    e2e_free(&r);
    eg_json_free(t);
    free(line);
}
