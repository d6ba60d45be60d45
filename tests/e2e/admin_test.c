/* End to end: callback service configuration through the admin API, and the booking rules it
 * drives (capacity per slot, the 429 with proposals). */
#define _DEFAULT_SOURCE
#include "e2e.h"
#include "engage/ids.h"
#include "engage/timeutil.h"

static e2e_resp_t put_service(const char *key, const char *name, const char *json)
{
    char path[160];
    snprintf(path, sizeof path, "/ges/api/v1/services/%s", name);
    return e2e_call("PUT", path, key, NULL, json);
}

static void unique_name(char *out, size_t n, const char *prefix)
{
    unsigned r;
    eg_random_bytes(&r, sizeof r);
    snprintf(out, n, "%s-%u", prefix, r);
}

Test(admin, put_creates_then_updates_and_get_shows_defaults)
{
    char name[64];
    unique_name(name, sizeof name, "svc");
    const char *admin = e2e_env("ENGAGE_ADMIN_KEY");
    e2e_resp_t r = put_service(admin, name, "{\"slotMinutes\":60}");
    cr_expect_eq(r.status, 201, "first PUT creates (%d %s)", r.status, e2e_message(&r));
    e2e_free(&r);
    r = put_service(admin, name, "{\"slotMinutes\":30,\"capacity\":{\"default\":7}}");
    cr_expect_eq(r.status, 200, "second PUT updates");
    e2e_free(&r);
    char path[160];
    snprintf(path, sizeof path, "/ges/api/v1/services/%s", name);
    r = e2e_call("GET", path, admin, NULL, NULL);
    cr_assert_eq(r.status, 200);
    eg_json_t *d = eg_json_get(r.body, "data");
    cr_expect_eq(eg_json_int(eg_json_get(d, "slotMinutes")), 30);
    cr_expect_eq(eg_json_int(eg_json_get(eg_json_get(d, "capacity"), "default")), 7);
    cr_expect_eq(eg_json_int(eg_json_get(d, "horizonDays")), 14, "default filled in");
    cr_expect_str_eq(eg_json_str(eg_json_get(d, "virtualQueue")), name);
    e2e_free(&r);
}

Test(admin, invalid_configuration_is_400_naming_the_field)
{
    char name[64];
    unique_name(name, sizeof name, "bad");
    e2e_resp_t r = put_service(e2e_env("ENGAGE_ADMIN_KEY"), name, "{\"slotMinutes\":7}");
    cr_expect_eq(r.status, 400);
    cr_expect(strstr(e2e_message(&r), "slotMinutes") != NULL, "%s", e2e_message(&r));
    e2e_free(&r);
}

Test(admin, api_role_key_is_403_and_no_key_401)
{
    e2e_resp_t r = put_service(e2e_env("ENGAGE_API_KEY"), "x", "{}");
    cr_expect_eq(r.status, 403);
    e2e_free(&r);
    r = put_service(NULL, "x", "{}");
    cr_expect_eq(r.status, 401);
    e2e_free(&r);
}

Test(booking, full_slot_is_429_with_proposals)
{
    char name[64], body[256], iso[EG_ISO_LEN + 1];
    unique_name(name, sizeof name, "cap");
    e2e_resp_t r = put_service(e2e_env("ENGAGE_ADMIN_KEY"), name,
                               "{\"slotMinutes\":60,\"capacity\":{\"default\":2}}");
    cr_assert_eq(r.status, 201);
    e2e_free(&r);
    int64_t slot = (eg_now_ms() / 3600000 + 3) * 3600000; /* a slot 3 h ahead */
    eg_time_format_iso(slot + 10 * 60000, iso);
    int ok = 0;
    for (int i = 0; i < 3; i++) {
        snprintf(body, sizeof body,
                 "{\"serviceName\":\"%s\",\"phoneNumber\":\"+1555000%04d\",\"desiredTime\":\"%s\"}",
                 name, i, iso);
        r = e2e_post("/engagement/v3/callbacks/create", e2e_env("ENGAGE_API_KEY"), body);
        if (r.status == 200) {
            ok++;
        } else {
            cr_expect_eq(r.status, 429, "third create: %d %s", r.status, e2e_message(&r));
            eg_json_t *slots = eg_json_get(eg_json_get(r.body, "data"), "slots");
            cr_expect(eg_json_is_object(slots) && eg_json_object_size(slots) > 0,
                      "429 proposes free slots");
            char next[EG_ISO_LEN + 1];
            eg_time_format_iso(slot + 3600000, next);
            cr_expect_eq(eg_json_int(eg_json_get(slots, next)), 2, "the next slot is free");
        }
        e2e_free(&r);
    }
    cr_expect_eq(ok, 2, "exactly the capacity is booked");
}

Test(admin, delete_service_refused_while_callbacks_pending_then_gone)
{
    char name[64], path[160], body[200];
    unique_name(name, sizeof name, "del");
    const char *admin = e2e_env("ENGAGE_ADMIN_KEY");
    e2e_resp_t r = put_service(admin, name, "{}");
    cr_assert_eq(r.status, 201);
    e2e_free(&r);
    char iso[EG_ISO_LEN + 1];
    eg_time_format_iso(eg_now_ms() + 5 * 3600000, iso);
    snprintf(body, sizeof body,
             "{\"serviceName\":\"%s\",\"phoneNumber\":\"+15550010001\",\"desiredTime\":\"%s\"}",
             name, iso);
    r = e2e_post("/engagement/v3/callbacks/create", e2e_env("ENGAGE_API_KEY"), body);
    cr_assert_eq(r.status, 200);
    char id[40];
    snprintf(id, sizeof id, "%s", e2e_data_str(&r, "id"));
    e2e_free(&r);
    snprintf(path, sizeof path, "/ges/api/v1/services/%s", name);
    r = e2e_call("DELETE", path, admin, NULL, NULL);
    cr_expect_eq(r.status, 409, "a service with a pending callback is kept (%d)", r.status);
    cr_expect(strstr(e2e_message(&r), "cancel") != NULL, "%s", e2e_message(&r));
    e2e_free(&r);
    snprintf(body, sizeof body, "{\"id\":\"%s\"}", id);
    r = e2e_post("/engagement/v3/callbacks/cancel", e2e_env("ENGAGE_API_KEY"), body);
    cr_assert_eq(r.status, 200);
    e2e_free(&r);
    r = e2e_call("DELETE", path, admin, NULL, NULL);
    cr_expect_eq(r.status, 200);
    e2e_free(&r);
    r = e2e_call("GET", path, admin, NULL, NULL);
    cr_expect_eq(r.status, 404, "gone");
    e2e_free(&r);
}
