/* End to end: the history. find covers callbacks that only the archive still holds (and the
 * scheduler's state wins over the archive's); the admin search filters and pages a tenant's
 * callbacks; the export answers CSV and JSON files, paging through the archiver for large ones.
 *
 * History the scheduler no longer holds is written straight into PostgreSQL (its Redis record
 * expired, as it would 14 days after its desired time); each test uses numbers and service
 * names of its own, so tests running in parallel never see each other's rows. */
#define _DEFAULT_SOURCE
#include <time.h>
#include <unistd.h>

#include "e2e.h"
#include "engage/ids.h"
#include "engage/pg.h"
#include "engage/timeutil.h"

#define SEARCH "/ges/api/v1/callbacks"
#define HOUR 3600000LL

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static unsigned rnd(void)
{
    unsigned r;
    eg_random_bytes(&r, sizeof r);
    return r;
}

static void unique_phone(char out[20])
{
    snprintf(out, 20, "+1555%05u%02u", rnd() % 100000u, 10 + rnd() % 80);
}

static eg_pg_t *pg_open(void)
{
    eg_pg_t *pg = NULL;
    cr_assert_eq(eg_pg_open(&pg, e2e_env("ENGAGE_PG_DSN")), EG_OK);
    return pg;
}

static void pg_ok(eg_pg_t *pg, const char *sql, int n, const char *const *p)
{
    cr_assert_eq(eg_pg_exec(pg, sql, n, p, NULL), EG_OK, "%s: %s", sql, eg_pg_error(pg));
}

/* An archived callback whose live record is gone: times relative to now, in ms. */
static void archive_row(eg_pg_t *pg, const char *tenant, const char *id, const char *service,
                        const char *phone, const char *state, const char *reason,
                        int64_t desired_rel, int64_t created_rel)
{
    char d[24], c[24];
    snprintf(d, sizeof d, "%lld", (long long)(eg_now_ms() + desired_rel));
    snprintf(c, sizeof c, "%lld", (long long)(eg_now_ms() + created_rel));
    const char *p[8] = {id, tenant, service, phone, d, state, reason, c};
    pg_ok(pg,
          "INSERT INTO callbacks (id, tenant_id, service, phone, desired_time, state, reason, "
          "attempts, version, created_at, updated_at) VALUES ($1::uuid, $2::uuid, $3, $4, "
          "to_timestamp($5::bigint / 1000.0), $6, $7, 1, 5, to_timestamp($8::bigint / 1000.0), "
          "to_timestamp($8::bigint / 1000.0))",
          8, p);
}

static char *create(const char *service, const char *phone, int64_t in_ms)
{
    char body[384], iso[EG_ISO_LEN + 1];
    eg_time_format_iso(eg_now_ms() + in_ms, iso);
    snprintf(body, sizeof body,
             "{\"serviceName\":\"%s\",\"phoneNumber\":\"%s\",\"desiredTime\":\"%s\"}", service,
             phone, iso);
    e2e_resp_t r = e2e_post("/engagement/v3/callbacks/create", e2e_env("ENGAGE_API_KEY"), body);
    cr_assert_eq(r.status, 200, "create: %d %s", r.status, e2e_message(&r));
    char *id = strdup(e2e_data_str(&r, "id"));
    e2e_free(&r);
    return id;
}

static e2e_resp_t get(const char *path, const char *key)
{
    return e2e_call("GET", path, key, NULL, NULL);
}

static eg_json_t *items(const e2e_resp_t *r)
{
    return eg_json_get(eg_json_get(r->body, "data"), "callbacks");
}

static const char *item_str(const e2e_resp_t *r, size_t i, const char *field)
{
    return eg_json_str(eg_json_get(eg_json_array_get(items(r), i), field));
}

static int64_t total(const e2e_resp_t *r)
{
    return eg_json_int(eg_json_get(eg_json_get(r->body, "data"), "total"));
}

static void wait_archived(eg_pg_t *pg, const char *id)
{
    const char *p[1] = {id};
    int64_t deadline = eg_mono_ms() + 15000;
    for (;;) {
        eg_pg_res_t *res = NULL;
        cr_assert_eq(eg_pg_exec(pg, "SELECT 1 FROM callbacks WHERE id = $1::uuid", 1, p, &res),
                     EG_OK);
        int rows = eg_pg_rows(res);
        eg_pg_res_free(res);
        if (rows > 0)
            return;
        cr_assert_lt(eg_mono_ms(), deadline, "%s was not archived", id);
        sleep_ms(100);
    }
}

Test(history, find_covers_callbacks_only_the_archive_holds, .timeout = 60)
{
    char phone[20], old[EG_UUID_STR_LEN + 1], path[200];
    const char *svc = e2e_env("ENGAGE_DEMO_SERVICE");
    unique_phone(phone);
    eg_uuid_v7_str(old);
    eg_pg_t *pg = pg_open();
    /* Three days old, completed: only the archive has it. */
    archive_row(pg, e2e_env("ENGAGE_TENANT_ID"), old, svc, phone, "COMPLETED", "AGENT_CONNECTED",
                -3 * 24 * HOUR, -3 * 24 * HOUR - HOUR);
    char *live = create(svc, phone, 2 * HOUR);

    snprintf(path, sizeof path, "/engagement/v3/callbacks/find?phoneNumber=%%2B%s", phone + 1);
    e2e_resp_t r = get(path, e2e_env("ENGAGE_API_KEY"));
    cr_assert_eq(r.status, 200, "%d %s", r.status, e2e_message(&r));
    cr_assert_eq(total(&r), 2);
    cr_assert_eq(eg_json_array_size(items(&r)), 2);
    cr_assert_str_eq(item_str(&r, 0, "id"), live, "newest first");
    cr_assert_str_eq(item_str(&r, 0, "callbackState"), "SCHEDULED");
    cr_assert_str_eq(item_str(&r, 1, "id"), old);
    cr_assert_str_eq(item_str(&r, 1, "callbackState"), "COMPLETED");
    cr_assert_str_eq(item_str(&r, 1, "callbackReason"), "AGENT_CONNECTED");
    cr_assert_null(eg_json_get(eg_json_get(r.body, "data"), "historyUnavailable"));
    e2e_free(&r);

    /* Filters and paging apply to the merged list. */
    snprintf(path, sizeof path, "/engagement/v3/callbacks/find?phoneNumber=%%2B%s&state=COMPLETED",
             phone + 1);
    r = get(path, e2e_env("ENGAGE_API_KEY"));
    cr_assert_eq(total(&r), 1);
    cr_assert_str_eq(item_str(&r, 0, "id"), old);
    e2e_free(&r);
    snprintf(path, sizeof path, "/engagement/v3/callbacks/find?phoneNumber=%%2B%s&limit=1&offset=1",
             phone + 1);
    r = get(path, e2e_env("ENGAGE_API_KEY"));
    cr_assert_eq(total(&r), 2);
    cr_assert_eq(eg_json_array_size(items(&r)), 1);
    cr_assert_str_eq(item_str(&r, 0, "id"), old);
    e2e_free(&r);
    snprintf(path, sizeof path,
             "/engagement/v3/callbacks/find?phoneNumber=%%2B%s&serviceName=nope-%u", phone + 1,
             rnd());
    r = get(path, e2e_env("ENGAGE_API_KEY"));
    cr_assert_eq(total(&r), 0);
    e2e_free(&r);
    free(live);
    eg_pg_close(pg);
}

Test(history, find_shows_the_live_state_once, .timeout = 60)
{
    char phone[20], path[200];
    unique_phone(phone);
    eg_pg_t *pg = pg_open();
    char *id = create(e2e_env("ENGAGE_DEMO_SERVICE"), phone, HOUR);
    wait_archived(pg, id);
    /* The archive disagrees (as if behind, or wrong): the scheduler's record wins. */
    const char *p[1] = {id};
    pg_ok(pg,
          "UPDATE callbacks SET state = 'COMPLETED', reason = 'CANCELLED', version = 1000 "
          "WHERE id = $1::uuid",
          1, p);
    snprintf(path, sizeof path, "/engagement/v3/callbacks/find?phoneNumber=%%2B%s", phone + 1);
    e2e_resp_t r = get(path, e2e_env("ENGAGE_API_KEY"));
    cr_assert_eq(r.status, 200);
    cr_assert_eq(total(&r), 1, "one entry per callback");
    cr_assert_str_eq(item_str(&r, 0, "id"), id);
    cr_assert_str_eq(item_str(&r, 0, "callbackState"), "SCHEDULED");
    e2e_free(&r);
    snprintf(path, sizeof path, "/engagement/v3/callbacks/find?phoneNumber=%%2B%s&state=COMPLETED",
             phone + 1);
    r = get(path, e2e_env("ENGAGE_API_KEY"));
    cr_assert_eq(total(&r), 0, "the archive's stale state matched the filter");
    e2e_free(&r);
    free(id);
    eg_pg_close(pg);
}

/* A service's worth of archived callbacks for the search tests: ids[i] created i hours ago,
 * desired (i - 2) days ahead; states cycle; phone[0] for even i, phone[1] for odd i. */
#define NSEARCH 6
typedef struct {
    char service[48];
    char phone[2][20];
    char ids[NSEARCH][EG_UUID_STR_LEN + 1];
} fixture_t;

static const char *const STATES[] = {"SCHEDULED", "COMPLETED", "QUEUED"};

static void fixture(eg_pg_t *pg, fixture_t *f)
{
    snprintf(f->service, sizeof f->service, "hist-%u", rnd());
    unique_phone(f->phone[0]);
    unique_phone(f->phone[1]);
    for (int i = 0; i < NSEARCH; i++) {
        eg_uuid_v7_str(f->ids[i]);
        const char *st = STATES[i % 3];
        archive_row(pg, e2e_env("ENGAGE_TENANT_ID"), f->ids[i], f->service, f->phone[i % 2], st,
                    strcmp(st, "COMPLETED") == 0 ? "CANCELLED" : NULL, (i - 2) * 24 * HOUR,
                    -i * HOUR);
    }
    /* Another tenant's callback with the same service and number: never visible. */
    char other_tenant[EG_UUID_STR_LEN + 1], other[EG_UUID_STR_LEN + 1];
    eg_uuid_v7_str(other_tenant);
    eg_uuid_v7_str(other);
    archive_row(pg, other_tenant, other, f->service, f->phone[0], "SCHEDULED", NULL, 0, 0);
}

Test(history, admin_search_filters_and_pages, .timeout = 60)
{
    fixture_t f;
    char path[400], from[EG_ISO_LEN + 1], to[EG_ISO_LEN + 1];
    const char *admin = e2e_env("ENGAGE_ADMIN_KEY");
    eg_pg_t *pg = pg_open();
    fixture(pg, &f);

    snprintf(path, sizeof path, SEARCH "?service=%s", f.service);
    e2e_resp_t r = get(path, admin);
    cr_assert_eq(r.status, 200, "%d %s", r.status, e2e_message(&r));
    cr_assert_eq(total(&r), NSEARCH);
    for (int i = 0; i < NSEARCH; i++)
        cr_assert_str_eq(item_str(&r, (size_t)i, "id"), f.ids[i], "newest first");
    cr_assert_str_eq(item_str(&r, 0, "phoneNumber"), f.phone[0]);
    cr_assert_str_eq(item_str(&r, 1, "callbackReason"), "CANCELLED");
    e2e_free(&r);

    /* state, phone (encoded or not), paging */
    snprintf(path, sizeof path, SEARCH "?service=%s&state=COMPLETED", f.service);
    r = get(path, admin);
    cr_assert_eq(total(&r), 2);
    cr_assert_str_eq(item_str(&r, 0, "id"), f.ids[1]);
    cr_assert_str_eq(item_str(&r, 1, "id"), f.ids[4]);
    e2e_free(&r);
    snprintf(path, sizeof path, SEARCH "?service=%s&phone=%%2B%s", f.service, f.phone[1] + 1);
    r = get(path, admin);
    cr_assert_eq(total(&r), 3);
    e2e_free(&r);
    snprintf(path, sizeof path, SEARCH "?phone=+%s", f.phone[0] + 1);
    r = get(path, admin);
    cr_assert_eq(total(&r), 3, "a '+' sent unencoded still finds the number");
    e2e_free(&r);
    snprintf(path, sizeof path, SEARCH "?service=%s&limit=2&offset=2", f.service);
    r = get(path, admin);
    cr_assert_eq(total(&r), NSEARCH);
    cr_assert_eq(eg_json_array_size(items(&r)), 2);
    cr_assert_str_eq(item_str(&r, 0, "id"), f.ids[2]);
    cr_assert_str_eq(item_str(&r, 1, "id"), f.ids[3]);
    e2e_free(&r);

    /* Desired-time range [now - 12 h, now + 36 h): ids 2 (desired now) and 3 (now + 1 day). */
    eg_time_format_iso(eg_now_ms() - 12 * HOUR, from);
    eg_time_format_iso(eg_now_ms() + 36 * HOUR, to);
    snprintf(path, sizeof path, SEARCH "?service=%s&from=%s&to=%s", f.service, from, to);
    r = get(path, admin);
    cr_assert_eq(total(&r), 2, "%s", path);
    cr_assert_str_eq(item_str(&r, 0, "id"), f.ids[2]);
    e2e_free(&r);
    /* Created in the last 90 minutes: ids 0 and 1. */
    eg_time_format_iso(eg_now_ms() - 90 * 60000, from);
    snprintf(path, sizeof path, SEARCH "?service=%s&createdFrom=%s", f.service, from);
    r = get(path, admin);
    cr_assert_eq(total(&r), 2);
    e2e_free(&r);

    /* Bad input names the parameter; api keys are refused. */
    const char *bad[] = {"state=BOGUS",
                         "from=yesterday",
                         "limit=0",
                         "limit=1001",
                         "offset=-1",
                         "phone=12345",
                         "from=2026-01-02T00:00:00.000Z&to=2026-01-01T00:00:00.000Z"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(path, sizeof path, SEARCH "?%s", bad[i]);
        r = get(path, admin);
        cr_assert_eq(r.status, 400, "%s: %d", bad[i], r.status);
        e2e_free(&r);
    }
    snprintf(path, sizeof path, SEARCH "?service=%s", f.service);
    r = get(path, e2e_env("ENGAGE_API_KEY"));
    cr_assert_eq(r.status, 403);
    e2e_free(&r);
    eg_pg_close(pg);
}

/* A raw GET (the export is a file, not an envelope). */
static eg_http_resp_t fetch(const char *path, const char *key)
{
    char url[600], hdr[160];
    snprintf(url, sizeof url, "%s%s", e2e_env("ENGAGE_URL"), path);
    snprintf(hdr, sizeof hdr, "x-api-key: %s", key);
    const char *headers[] = {hdr, NULL};
    eg_http_resp_t resp;
    cr_assert_eq(eg_http_fetch("GET", url, headers, NULL, 0, 60000, &resp), EG_OK);
    return resp;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

Test(history, export_csv_and_json, .timeout = 90)
{
    fixture_t f;
    char path[300], hdr[64];
    const char *admin = e2e_env("ENGAGE_ADMIN_KEY");
    eg_pg_t *pg = pg_open();
    fixture(pg, &f);

    snprintf(path, sizeof path, SEARCH "/export?format=csv&service=%s", f.service);
    eg_http_resp_t r = fetch(path, admin);
    cr_assert_eq(r.status, 200, "%d %s", r.status, r.body);
    eg_http_resp_header(&r, "Content-Type", hdr, sizeof hdr);
    cr_assert_not_null(strstr(hdr, "text/csv"), "%s", hdr);
    static const char header[] = "id,serviceName,phoneNumber,desiredTime,createdTime,"
                                 "updatedTime,callbackState,callbackReason,attempts\r\n";
    cr_assert_eq(strncmp(r.body, header, sizeof header - 1), 0, "header row: %.120s", r.body);
    cr_assert_eq(count_lines(r.body), NSEARCH + 1);
    char line[256];
    snprintf(line, sizeof line, "\r\n%s,%s,%s,", f.ids[1], f.service, f.phone[1]);
    cr_assert_not_null(strstr(r.body, line), "no row for %s", f.ids[1]);
    cr_assert_not_null(strstr(r.body, ",COMPLETED,CANCELLED,1\r\n"));
    eg_http_resp_header(&r, "X-Engage-Export-Rows", hdr, sizeof hdr);
    cr_assert_str_eq(hdr, "6");
    eg_http_resp_free(&r);

    snprintf(path, sizeof path, SEARCH "/export?format=json&service=%s&state=SCHEDULED", f.service);
    r = fetch(path, admin);
    cr_assert_eq(r.status, 200);
    char err[128];
    eg_json_t *arr = eg_json_parse(r.body, r.len, 0, err, sizeof err);
    cr_assert(eg_json_is_array(arr), "%s", err);
    cr_assert_eq(eg_json_array_size(arr), 2);
    cr_assert_str_eq(eg_json_str(eg_json_get(eg_json_array_get(arr, 0), "id")), f.ids[0]);
    eg_json_free(arr);
    eg_http_resp_free(&r);

    snprintf(path, sizeof path, SEARCH "/export?format=xml");
    r = fetch(path, admin);
    cr_assert_eq(r.status, 400);
    eg_http_resp_free(&r);
    snprintf(path, sizeof path, SEARCH "/export?service=%s", f.service);
    r = fetch(path, e2e_env("ENGAGE_API_KEY"));
    cr_assert_eq(r.status, 403);
    eg_http_resp_free(&r);
    eg_pg_close(pg);
}

static int by_text(const void *a, const void *b)
{
    return strcmp(a, b);
}

Test(history, export_pages_through_thousands, .timeout = 120)
{
    /* More rows than one archive page (2,000), created in the same second in part: the cursor
     * (created time, id) neither repeats nor skips a row. */
    char service[48], path[300];
    snprintf(service, sizeof service, "bulk-%u", rnd());
    eg_pg_t *pg = pg_open();
    const char *p[2] = {e2e_env("ENGAGE_TENANT_ID"), service};
    pg_ok(pg,
          "INSERT INTO callbacks (id, tenant_id, service, phone, desired_time, state, attempts, "
          "version, created_at, updated_at) SELECT gen_random_uuid(), $1::uuid, $2, "
          "'+15550009999', now() + interval '1 day', 'SCHEDULED', 0, 1, "
          "date_trunc('second', now()) - (i / 7) * interval '1 second', now() "
          "FROM generate_series(1, 4321) AS i",
          2, p);
    snprintf(path, sizeof path, SEARCH "/export?format=csv&service=%s", service);
    eg_http_resp_t r = fetch(path, e2e_env("ENGAGE_ADMIN_KEY"));
    cr_assert_eq(r.status, 200, "%d %.200s", r.status, r.body);
    cr_assert_eq(count_lines(r.body), 4321 + 1);
    /* Every id once: the first cell of each row, sorted, has no neighbours alike. */
    char(*ids)[EG_UUID_STR_LEN + 1] = calloc(4321, sizeof *ids);
    size_t n = 0;
    for (const char *line = strchr(r.body, '\n'); line && line[1] && n < 4321;
         line = strchr(line + 1, '\n'))
        snprintf(ids[n++], sizeof ids[0], "%.36s", line + 1);
    cr_assert_eq(n, 4321);
    qsort(ids, n, sizeof ids[0], by_text);
    for (size_t i = 1; i < n; i++)
        cr_assert_str_neq(ids[i - 1], ids[i], "row %s twice", ids[i]);
    free(ids);
    eg_pg_res_t *res = NULL;
    const char *q[1] = {service};
    cr_assert_eq(eg_pg_exec(pg, "DELETE FROM callbacks WHERE service = $1", 1, q, &res), EG_OK);
    cr_assert_eq(eg_pg_affected(res), 4321);
    eg_pg_res_free(res);
    eg_http_resp_free(&r);
    eg_pg_close(pg);
}
