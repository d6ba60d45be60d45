/* End to end: nothing a callback leaves in Redis outlives its retention. Every key a callback
 * creates for its number (record, per-phone index, active set, per-day ZSET, Idempotency-Key,
 * the voice platform's dial guard) carries a TTL, and none longer than the callback's desired
 * time + 14 days (or the key family's own shorter life). The indexes of a number live as long as
 * its longest-lived record: a later, shorter-lived create never shortens them, and a reschedule
 * lengthens them with the record. (The PostgreSQL side of retention is
 * tests/integration/archiver/retention_test.c.) */
#define _DEFAULT_SOURCE
#include <time.h>
#include <unistd.h>

#include "e2e.h"
#include "engage/ids.h"
#include "engage/store.h"
#include "engage/timeutil.h"

#define DAY 86400000LL
#define KEEP (14 * DAY)
#define SLACK 120000LL /* between our clock reading and the server's PEXPIRE */

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static long long pttl(eg_store_t *s, const char *key)
{
    const char *argv[] = {"PTTL", key};
    eg_reply_t *r = NULL;
    cr_assert_eq(eg_store_command(s, 2, argv, NULL, &r), EG_OK);
    long long v = r->integer;
    eg_reply_free(r);
    return v;
}

static void key(char *out, size_t len, const char *kind, const char *rest)
{
    snprintf(out, len, "eg:{t:%s}:%s:%s", e2e_env("ENGAGE_TENANT_ID"), kind, rest);
}

/* The key exists with a TTL in [min_ms, max_ms]. */
static void expect_ttl(eg_store_t *s, const char *k, long long min_ms, long long max_ms)
{
    long long t = pttl(s, k);
    cr_assert_neq(t, -2, "%s does not exist", k);
    cr_assert_neq(t, -1, "%s never expires", k);
    cr_assert(t >= min_ms && t <= max_ms, "%s: TTL %lld ms, want %lld..%lld", k, t, min_ms, max_ms);
}

static char *create(const char *phone, int64_t desired, const char *idem)
{
    char body[384], iso[EG_ISO_LEN + 1], hdr[96];
    if (desired) {
        eg_time_format_iso(desired, iso);
        snprintf(body, sizeof body,
                 "{\"serviceName\":\"%s\",\"phoneNumber\":\"%s\",\"desiredTime\":\"%s\"}",
                 e2e_env("ENGAGE_DEMO_SERVICE"), phone, iso);
    } else {
        snprintf(body, sizeof body, "{\"serviceName\":\"%s\",\"phoneNumber\":\"%s\"}",
                 e2e_env("ENGAGE_DEMO_SERVICE"), phone);
    }
    snprintf(hdr, sizeof hdr, "Idempotency-Key: %s", idem ? idem : "");
    e2e_resp_t r = e2e_call("POST", "/engagement/v3/callbacks/create", e2e_env("ENGAGE_API_KEY"),
                            idem ? hdr : NULL, body);
    cr_assert_eq(r.status, 200, "create: %d %s", r.status, e2e_message(&r));
    char *id = strdup(e2e_data_str(&r, "id"));
    e2e_free(&r);
    return id;
}

/* Every key of the tenant that names the number or one of the ids has a TTL. */
static int scan_number_keys(eg_store_t *s, const char *phone)
{
    char match[160], cursor[32] = "0";
    int seen = 0;
    snprintf(match, sizeof match, "eg:{t:%s}:*%s*", e2e_env("ENGAGE_TENANT_ID"), phone);
    do {
        const char *argv[] = {"SCAN", cursor, "MATCH", match, "COUNT", "1000"};
        eg_reply_t *r = NULL;
        cr_assert_eq(eg_store_command(s, 6, argv, NULL, &r), EG_OK);
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const char *k = r->element[1]->element[i]->str;
            cr_assert_gt(pttl(s, k), 0, "%s has no TTL", k);
            seen++;
        }
        eg_reply_free(r);
    } while (strcmp(cursor, "0") != 0);
    return seen;
}

Test(retention, every_key_of_a_number_expires_within_14_days_of_its_desired_time, .timeout = 60)
{
    char phone[20], idem[48], k[256];
    unsigned r;
    eg_random_bytes(&r, sizeof r);
    snprintf(phone, sizeof phone, "+1888%05u%02u", r % 100000u, 10 + (r >> 20) % 80);
    snprintf(idem, sizeof idem, "retention-%u", r);
    eg_store_t *redis = NULL, *voice = NULL;
    cr_assert_eq(eg_store_open(&redis, e2e_env("ENGAGE_REDIS_URL"), 2000), EG_OK);
    cr_assert_eq(eg_store_open(&voice, e2e_env("ENGAGE_VOICE_REDIS_URL"), 2000), EG_OK);

    /* A callback in 10 days, then an immediate one (which lives 14 days from now). */
    int64_t t0 = eg_now_ms(), far = t0 + 10 * DAY;
    char *sched = create(phone, far, idem);
    char *now_cb = create(phone, 0, NULL);
    int64_t t1 = eg_now_ms();

    key(k, sizeof k, "cb", sched);
    expect_ttl(redis, k, far + KEEP - t1 - SLACK, far + KEEP - t0);
    key(k, sizeof k, "cb", now_cb);
    expect_ttl(redis, k, KEEP - SLACK, KEEP);
    /* The number's hash: as long as the longest-lived record, not the last create's. */
    key(k, sizeof k, "n", phone);
    expect_ttl(redis, k, far + KEEP - t1 - SLACK, far + KEEP - t0);
    key(k, sizeof k, "idem", idem);
    expect_ttl(redis, k, DAY - SLACK, DAY);

    /* The voice platform's dial guard of the immediate one (in the commands stream's hash slot:
     * the stream's name is its hash tag). */
    char guard[300];
    snprintf(guard, sizeof guard, "engage:{%s}:dialed:%s:%s:1",
             e2e_env("ENGAGE_VOICE_COMMANDS_STREAM"), e2e_env("ENGAGE_TENANT_ID"), now_cb);
    int64_t deadline = eg_mono_ms() + 10000;
    while (pttl(voice, guard) == -2 && eg_mono_ms() < deadline)
        sleep_ms(50);
    expect_ttl(voice, guard, 1, 15 * DAY);

    /* Rescheduled to 13 days ahead: the record and the number's indexes live longer. */
    int64_t later = t0 + 13 * DAY;
    char body[160], iso[EG_ISO_LEN + 1];
    eg_time_format_iso(later, iso);
    snprintf(body, sizeof body, "{\"id\":\"%s\",\"desiredTime\":\"%s\"}", sched, iso);
    e2e_resp_t rs =
        e2e_post("/engagement/v3/callbacks/reschedule", e2e_env("ENGAGE_API_KEY"), body);
    cr_assert_eq(rs.status, 200, "reschedule: %d %s", rs.status, e2e_message(&rs));
    e2e_free(&rs);
    int64_t t2 = eg_now_ms();
    key(k, sizeof k, "cb", sched);
    expect_ttl(redis, k, later + KEEP - t2 - SLACK, later + KEEP - t0);
    key(k, sizeof k, "n", phone);
    expect_ttl(redis, k, later + KEEP - t2 - SLACK, later + KEEP - t0);

    /* And no key of the number anywhere in the tenant's space lives for ever. */
    cr_assert_geq(scan_number_keys(redis, phone), 1);

    free(sched);
    free(now_cb);
    eg_store_close(redis);
    eg_store_close(voice);
}
