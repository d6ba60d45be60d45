/* End to end: API keys through the admin API and engagectl (create, list, revoke), revocation
 * reaching the api within a second although it caches keys for 10 s, tenant isolation, and the
 * per-key rate limit (429 with Retry-After). */
#define _DEFAULT_SOURCE
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "e2e.h"
#include "engage/ids.h"
#include "engage/timeutil.h"

#define KEYS "/ges/api/v1/keys"
#define RETRIEVE "/engagement/v3/callbacks/retrieve"
#define CREATE "/engagement/v3/callbacks/create"

typedef struct {
    char id[32];
    char key[128];
} new_key_t;

/* POST /keys with body as the given admin key; asserts 201 and the answer's shape. */
static new_key_t create_key(const char *admin, const char *body)
{
    e2e_resp_t r = e2e_post(KEYS, admin, body);
    cr_assert_eq(r.status, 201, "create key answered %d: %s", r.status, e2e_message(&r));
    new_key_t k;
    const char *id = e2e_data_str(&r, "keyId"), *key = e2e_data_str(&r, "apiKey");
    cr_assert(id && key, "201 without keyId and apiKey");
    cr_assert_eq(strlen(id), 16, "key id %s", id);
    cr_assert(strncmp(key, id, strlen(id)) == 0 && key[strlen(id)] == '.',
              "the key is <id>.<secret>");
    snprintf(k.id, sizeof k.id, "%s", id);
    snprintf(k.key, sizeof k.key, "%s", key);
    e2e_free(&r);
    return k;
}

static int status_of(const char *method, const char *path, const char *key, const char *body)
{
    e2e_resp_t r = e2e_call(method, path, key, NULL, body);
    int code = r.status;
    e2e_free(&r);
    return code;
}

/* A retrieve of a random id: 404 when the key is accepted, 401 when it is not. */
static int retrieve_status(const char *key)
{
    char id[EG_UUID_STR_LEN + 1], body[96];
    eg_uuid_v7_str(id);
    snprintf(body, sizeof body, "{\"id\":\"%s\"}", id);
    return status_of("POST", RETRIEVE, key, body);
}

/* Revoke key_id with admin, then poll (every 50 ms) with check_key until it is refused;
 * returns the milliseconds from the revocation's answer to the first 401. */
static int64_t revoke_and_time(const char *admin, const char *key_id, const char *check_key,
                               bool admin_route)
{
    char path[128];
    snprintf(path, sizeof path, KEYS "/%s", key_id);
    e2e_resp_t r = e2e_call("DELETE", path, admin, NULL, NULL);
    cr_assert_eq(r.status, 200, "revoke answered %d: %s", r.status, e2e_message(&r));
    cr_expect(eg_json_true(eg_json_get(eg_json_get(r.body, "data"), "revoked")));
    e2e_free(&r);
    int64_t t0 = eg_mono_ms();
    for (;;) {
        int code =
            admin_route ? status_of("GET", KEYS, check_key, NULL) : retrieve_status(check_key);
        int64_t dt = eg_mono_ms() - t0;
        if (code == 401)
            return dt;
        cr_assert_eq(code, admin_route ? 200 : 404, "before it takes effect: %d", code);
        cr_assert_lt(dt, 3000, "revoked key still accepted after %lld ms", (long long)dt);
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* The tenant's key list; returns the entry of key_id (borrowed from *r) or NULL. */
static eg_json_t *listed(const char *admin, const char *key_id, e2e_resp_t *r)
{
    *r = e2e_call("GET", KEYS, admin, NULL, NULL);
    cr_assert_eq(r->status, 200, "list answered %d: %s", r->status, e2e_message(r));
    eg_json_t *data = eg_json_get(r->body, "data");
    cr_assert(eg_json_is_array(data));
    for (size_t i = 0; i < eg_json_array_size(data); i++) {
        eg_json_t *k = eg_json_array_get(data, i);
        const char *id = eg_json_str(eg_json_get(k, "keyId"));
        if (id && strcmp(id, key_id) == 0)
            return k;
    }
    return NULL;
}

Test(keys, create_use_list_and_revoke_within_a_second)
{
    const char *admin = e2e_env("ENGAGE_ADMIN_KEY");
    new_key_t api = create_key(admin, "{\"role\":\"api\",\"rateLimit\":0,\"name\":\"e2e\"}");
    new_key_t adm = create_key(admin, "{\"role\":\"admin\"}");

    /* Both work, and the api caches them (10 s) from here on. */
    cr_expect_eq(retrieve_status(api.key), 404, "a new api key is accepted");
    cr_expect_eq(retrieve_status(api.key), 404);
    cr_expect_eq(status_of("GET", KEYS, adm.key, NULL), 200, "a new admin key is accepted");
    cr_expect_eq(status_of("GET", KEYS, adm.key, NULL), 200);

    e2e_resp_t r;
    eg_json_t *k = listed(admin, api.id, &r);
    cr_assert(k, "the new key is listed");
    cr_expect_str_eq(eg_json_str(eg_json_get(k, "role")), "api");
    cr_expect_eq(eg_json_int(eg_json_get(k, "rateLimit")), 0);
    cr_expect(eg_json_is_bool(eg_json_get(k, "revoked")) &&
              !eg_json_true(eg_json_get(k, "revoked")));
    const char *created = eg_json_str(eg_json_get(k, "createdAt"));
    int64_t created_ms = 0;
    cr_expect(created && eg_time_parse_iso(created, strlen(created), &created_ms) == EG_OK,
              "createdAt is ISO-8601: %s", created ? created : "(none)");
    cr_expect_lt(llabs(created_ms - eg_now_ms()), 60000);
    cr_expect_null(eg_json_get(k, "apiKey"));
    cr_expect_null(eg_json_get(k, "secretHash"));
    char *text = eg_json_dump(r.body, NULL);
    const char *secret = strchr(api.key, '.') + 1;
    cr_expect_null(strstr(text, secret), "the list holds no secret");
    cr_expect_null(strstr(text, "hash"), "the list holds no hash");
    free(text);
    e2e_free(&r);

    int64_t dt = revoke_and_time(admin, api.id, api.key, false);
    cr_expect_lt(dt, 1000, "api key refused %lld ms after its revocation", (long long)dt);
    dt = revoke_and_time(admin, adm.id, adm.key, true);
    cr_expect_lt(dt, 1000, "admin key refused %lld ms after its revocation", (long long)dt);
    cr_expect_eq(retrieve_status(api.key), 401, "and stays refused");

    k = listed(admin, api.id, &r);
    cr_assert(k);
    cr_expect(eg_json_true(eg_json_get(k, "revoked")), "the list shows it revoked");
    e2e_free(&r);

    /* Revoking again is harmless. */
    char path[128];
    snprintf(path, sizeof path, KEYS "/%s", api.id);
    cr_expect_eq(status_of("DELETE", path, admin, NULL), 200);
}

Test(keys, a_new_key_books_a_callback)
{
    new_key_t k = create_key(e2e_env("ENGAGE_ADMIN_KEY"), "{}");
    char iso[EG_ISO_LEN + 1], body[256];
    eg_time_format_iso((eg_now_ms() / 3600000 + 5) * 3600000, iso);
    unsigned n;
    eg_random_bytes(&n, sizeof n);
    snprintf(body, sizeof body,
             "{\"serviceName\":\"%s\",\"phoneNumber\":\"+1555%07u\",\"desiredTime\":\"%s\"}",
             e2e_env("ENGAGE_DEMO_SERVICE"), n % 10000000u, iso);
    e2e_resp_t r = e2e_post(CREATE, k.key, body);
    cr_expect_eq(r.status, 200, "create with the new key: %d %s", r.status, e2e_message(&r));
    e2e_free(&r);
}

Test(keys, defaults_are_role_api_and_2000_per_second)
{
    e2e_resp_t r = e2e_post(KEYS, e2e_env("ENGAGE_ADMIN_KEY"), "{}");
    cr_assert_eq(r.status, 201, "%d %s", r.status, e2e_message(&r));
    cr_expect_str_eq(e2e_data_str(&r, "role"), "api");
    cr_expect_eq(eg_json_int(eg_json_get(eg_json_get(r.body, "data"), "rateLimit")), 2000);
    e2e_free(&r);
}

Test(keys, revoking_the_key_in_use_is_allowed)
{
    new_key_t k = create_key(e2e_env("ENGAGE_ADMIN_KEY"), "{\"role\":\"admin\"}");
    cr_assert_eq(status_of("GET", KEYS, k.key, NULL), 200);
    int64_t dt = revoke_and_time(k.key, k.id, k.key, true);
    cr_expect_lt(dt, 1000, "refused %lld ms after revoking itself", (long long)dt);
}

Test(keys, api_role_key_is_403_and_no_key_401)
{
    const char *api = e2e_env("ENGAGE_API_KEY");
    cr_expect_eq(status_of("GET", KEYS, api, NULL), 403);
    cr_expect_eq(status_of("POST", KEYS, api, "{}"), 403);
    cr_expect_eq(status_of("DELETE", KEYS "/0123456789abcdef", api, NULL), 403);
    cr_expect_eq(status_of("GET", KEYS, NULL, NULL), 401);
    cr_expect_eq(status_of("PUT", KEYS, e2e_env("ENGAGE_ADMIN_KEY"), "{}"), 405);
}

static void expect_400_naming(const char *body, const char *field)
{
    e2e_resp_t r = e2e_post(KEYS, e2e_env("ENGAGE_ADMIN_KEY"), body);
    cr_expect_eq(r.status, 400, "%s answered %d", body, r.status);
    cr_expect(strstr(e2e_message(&r), field) != NULL, "%s: message '%s' names %s", body,
              e2e_message(&r), field);
    cr_expect_null(eg_json_get(r.body, "data"));
    e2e_free(&r);
}

Test(keys, invalid_input_is_400_naming_the_field)
{
    expect_400_naming("{\"role\":\"root\"}", "role");
    expect_400_naming("{\"role\":7}", "role");
    expect_400_naming("{\"rateLimit\":-1}", "rateLimit");
    expect_400_naming("{\"rateLimit\":1000001}", "rateLimit");
    expect_400_naming("{\"rateLimit\":\"fast\"}", "rateLimit");
    expect_400_naming("{\"rateLimit\":2.5}", "rateLimit");
    char body[256];
    snprintf(body, sizeof body, "{\"name\":\"%0130d\"}", 0);
    expect_400_naming(body, "name");
    expect_400_naming("[1]", "body");
    expect_400_naming("{\"role\":", "body");

    const char *admin = e2e_env("ENGAGE_ADMIN_KEY");
    e2e_resp_t r = e2e_call("DELETE", KEYS "/not-a-key", admin, NULL, NULL);
    cr_expect_eq(r.status, 400);
    cr_expect(strstr(e2e_message(&r), "keyId") != NULL, "%s", e2e_message(&r));
    e2e_free(&r);
    cr_expect_eq(status_of("DELETE", KEYS "/0123456789abcdef", admin, NULL), 404);
}

/* A second tenant through engagectl; its admin key into admin (caller's buffer). */
static void second_tenant(char *admin, size_t n)
{
    char cmd[512], name[64];
    unsigned r;
    eg_random_bytes(&r, sizeof r);
    snprintf(name, sizeof name, "keys-b-%08x", r);
    snprintf(cmd, sizeof cmd, "\"%s/engagectl\" tenant create %s --json 2>/dev/null",
             e2e_env("ENGAGE_BIN_DIR"), name);
    char *line = e2e_run(cmd);
    cr_assert(line, "engagectl tenant create failed");
    char err[128];
    eg_json_t *j = eg_json_parse(line, strlen(line), 0, err, sizeof err);
    const char *key = eg_json_str(eg_json_get(j, "adminKey"));
    cr_assert(key, "no adminKey in: %s", line);
    snprintf(admin, n, "%s", key);
    eg_json_free(j);
    free(line);
}

Test(keys, another_tenants_key_is_not_found)
{
    char admin_b[128];
    second_tenant(admin_b, sizeof admin_b);
    new_key_t kb = create_key(admin_b, "{\"role\":\"api\"}");
    const char *admin_a = e2e_env("ENGAGE_ADMIN_KEY");

    char path[128];
    snprintf(path, sizeof path, KEYS "/%s", kb.id);
    e2e_resp_t r = e2e_call("DELETE", path, admin_a, NULL, NULL);
    cr_expect_eq(r.status, 404, "tenant A revoking B's key: %d %s", r.status, e2e_message(&r));
    e2e_free(&r);
    cr_expect_null(listed(admin_a, kb.id, &r), "A's list does not show B's key");
    e2e_free(&r);
    cr_expect_eq(retrieve_status(kb.key), 404, "B's key still works");
    eg_json_t *k = listed(admin_b, kb.id, &r);
    cr_expect(k && !eg_json_true(eg_json_get(k, "revoked")), "and is not revoked");
    e2e_free(&r);
}

Test(ratelimit, over_the_limit_is_429_with_retry_after)
{
    new_key_t k = create_key(e2e_env("ENGAGE_ADMIN_KEY"), "{\"rateLimit\":5}");
    int codes[30], limited = 0;
    char retry_after[30][16], message[30][160];
    bool has_data[30];
    int64_t t0 = eg_mono_ms();
    for (int i = 0; i < 30; i++) {
        char id[EG_UUID_STR_LEN + 1], body[96];
        eg_uuid_v7_str(id);
        snprintf(body, sizeof body, "{\"id\":\"%s\"}", id);
        e2e_resp_t r = e2e_post(RETRIEVE, k.key, body);
        codes[i] = r.status;
        snprintf(retry_after[i], sizeof retry_after[i], "%s", r.retry_after);
        snprintf(message[i], sizeof message[i], "%s", e2e_message(&r));
        has_data[i] = eg_json_get(r.body, "data") != NULL;
        e2e_free(&r);
    }
    double elapsed_s = (double)(eg_mono_ms() - t0) / 1000.0;
    for (int i = 0; i < 30; i++) {
        if (i < 10)
            cr_expect_neq(codes[i], 429, "request %d is within the burst of 10", i + 1);
        if (codes[i] != 429) {
            cr_expect_eq(codes[i], 404, "request %d: %d", i + 1, codes[i]);
            continue;
        }
        limited++;
        cr_expect_geq(atoi(retry_after[i]), 1, "Retry-After '%s'", retry_after[i]);
        cr_expect(strstr(message[i], "rate limit of 5 requests/s") != NULL, "message: %s",
                  message[i]);
        cr_expect_not(has_data[i], "a rate-limit 429 carries status only");
    }
    /* The burst of 10, plus what 5/s earned while the loop ran (plus one for rounding). */
    double allowed = 10.0 + 5.0 * elapsed_s + 1.0;
    cr_expect_geq(limited, 1, "30 requests in %.2f s at 5/s (burst 10): none limited", elapsed_s);
    cr_expect_leq((double)(30 - limited), allowed, "%d allowed in %.2f s at 5/s with a burst of 10",
                  30 - limited, elapsed_s);
}

Test(ratelimit, zero_is_unlimited)
{
    new_key_t k = create_key(e2e_env("ENGAGE_ADMIN_KEY"), "{\"rateLimit\":0}");
    for (int i = 0; i < 200; i++) {
        int code = retrieve_status(k.key);
        cr_assert_neq(code, 429, "request %d of an unlimited key was limited", i + 1);
    }
}

/* Run a command with the suite's URL and admin key; whole stdout into out. Returns the exit
 * code. */
static int run_ctl(const char *args, char *out, size_t n)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "\"%s/engagectl\" %s 2>&1", e2e_env("ENGAGE_BIN_DIR"), args);
    FILE *p = popen(cmd, "r");
    cr_assert(p, "popen %s", cmd);
    size_t len = fread(out, 1, n - 1, p);
    out[len] = '\0';
    int rc = pclose(p);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

Test(engagectl, key_create_list_revoke)
{
    e2e_env("ENGAGE_URL");
    e2e_env("ENGAGE_ADMIN_KEY");
    static char out[65536];
    cr_assert_eq(run_ctl("key create --role admin --rate-limit 7 --json", out, sizeof out), 0, "%s",
                 out);
    char err[128];
    eg_json_t *j = eg_json_parse(out, strlen(out), 0, err, sizeof err);
    cr_assert(j, "not one JSON object: %s", out);
    const char *id = eg_json_str(eg_json_get(j, "keyId"));
    const char *key = eg_json_str(eg_json_get(j, "apiKey"));
    cr_assert(id && key, "%s", out);
    cr_expect_str_eq(eg_json_str(eg_json_get(j, "role")), "admin");
    cr_expect_eq(eg_json_int(eg_json_get(j, "rateLimit")), 7);
    char key_id[32], api_key[128];
    snprintf(key_id, sizeof key_id, "%s", id);
    snprintf(api_key, sizeof api_key, "%s", key);
    eg_json_free(j);
    cr_expect_eq(status_of("GET", KEYS, api_key, NULL), 200, "the printed key works");

    cr_assert_eq(run_ctl("key list", out, sizeof out), 0, "%s", out);
    cr_expect(strstr(out, key_id) != NULL, "key list shows %s:\n%s", key_id, out);
    cr_expect_null(strstr(out, strchr(api_key, '.') + 1), "key list shows no secret");
    cr_assert_eq(run_ctl("key list --json", out, sizeof out), 0, "%s", out);
    j = eg_json_parse(out, strlen(out), 0, err, sizeof err);
    cr_expect(eg_json_is_array(eg_json_get(j, "keys")), "key list --json: %s", out);
    eg_json_free(j);

    char args[128];
    snprintf(args, sizeof args, "key revoke %s", key_id);
    cr_assert_eq(run_ctl(args, out, sizeof out), 0, "%s", out);
    cr_expect(strstr(out, "revoked") != NULL, "%s", out);
    int code = 0;
    for (int i = 0; i < 20 && code != 401; i++) {
        code = status_of("GET", KEYS, api_key, NULL);
        if (code != 401) {
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    cr_expect_eq(code, 401, "the revoked key is refused within a second");

    cr_expect_eq(run_ctl("key create --role root", out, sizeof out), 1, "%s", out);
    cr_expect(strstr(out, "role") != NULL, "%s", out);
    cr_expect_eq(run_ctl("key revoke 0123456789abcdef", out, sizeof out), 1, "%s", out);
    cr_expect_eq(run_ctl("key create --rate-limit lots", out, sizeof out), 2, "%s", out);
}

Test(engagectl, key_create_plain_prints_the_key_once)
{
    static char out[4096];
    cr_assert_eq(run_ctl("key create", out, sizeof out), 0, "%s", out);
    const char *line = strstr(out, "api key: ");
    cr_assert(line, "%s", out);
    char key[128];
    cr_assert_eq(sscanf(line, "api key: %127s", key), 1);
    cr_expect_eq(retrieve_status(key), 404, "the printed key works");
    cr_expect(strstr(out, "role api") != NULL, "%s", out);
    cr_expect(strstr(out, "2000/s") != NULL, "%s", out);
}
