/* The archiver's history queries (services/archiver/history.c) and the GDPR tombstones in its
 * batch writer (archive.c), called directly against the real PostgreSQL (ENGAGE_PG_DSN) in a
 * schema of each test's own: search filters, offset and cursor paging; erase deletes a number's
 * rows, tombstones them so later events are dropped, writes the audit row, and is idempotent;
 * an erase that meets a batch in flight leaves nothing behind. */
#include <criterion/criterion.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive.h"
#include "engage.pb-c.h"
#include "engage/ids.h"
#include "engage/pg.h"
#include "history.h"

#define T0 1890000000000LL /* 2029-11-22 */
#define HOUR 3600000LL

static char schema[64], dsn[768], tenant[EG_UUID_STR_LEN + 1];
static eg_pg_t *pg;

static const char *env(const char *name)
{
    const char *v = getenv(name);
    cr_assert(v != NULL && v[0] != '\0', "%s is not set: run the tests through `make test`", name);
    return v;
}

static eg_pg_t *open_pg(const char *d)
{
    eg_pg_t *p = NULL;
    cr_assert_eq(eg_pg_open(&p, d), EG_OK);
    return p;
}

static void setup(void)
{
    char id[EG_UUID_STR_LEN + 1], sql[128];
    const char *base = env("ENGAGE_PG_DSN");
    eg_uuid_v7_str(id);
    snprintf(schema, sizeof schema, "hist_%.8s%.4s", id + 24, id + 9);
    if (strncmp(base, "postgres://", 11) == 0 || strncmp(base, "postgresql://", 13) == 0)
        snprintf(dsn, sizeof dsn, "%s%coptions=-csearch_path%%3D%s", base,
                 strchr(base, '?') != NULL ? '&' : '?', schema);
    else
        snprintf(dsn, sizeof dsn, "%s options='-csearch_path=%s'", base, schema);
    eg_pg_t *admin = open_pg(base);
    snprintf(sql, sizeof sql, "CREATE SCHEMA %s", schema);
    cr_assert_eq(eg_pg_exec(admin, sql, 0, NULL, NULL), EG_OK, "%s", eg_pg_error(admin));
    eg_pg_close(admin);
    pg = open_pg(dsn);
    cr_assert_eq(eg_pg_migrate(pg, NULL), EG_OK, "%s", eg_pg_error(pg));
    eg_uuid_v7_str(tenant);
}

static void teardown(void)
{
    char sql[128];
    eg_pg_close(pg);
    eg_pg_t *admin = open_pg(env("ENGAGE_PG_DSN"));
    snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", schema);
    eg_pg_exec(admin, sql, 0, NULL, NULL);
    eg_pg_close(admin);
}

TestSuite(history, .init = setup, .fini = teardown, .timeout = 60);

typedef struct {
    Eg__Event ev;
    Eg__Callback cb;
    char event_id[EG_UUID_STR_LEN + 1];
} event_t;

/* An event of callback id (borrowed strings) with the given fields. */
static void build(event_t *e, const char *id, const char *service, const char *phone,
                  Eg__State state, uint64_t version, int64_t desired, int64_t created)
{
    eg__event__init(&e->ev);
    eg__callback__init(&e->cb);
    eg_uuid_v7_str(e->event_id);
    e->ev.event_id = e->event_id;
    e->ev.at_ms = created + (int64_t)version * 1000;
    e->ev.callback = &e->cb;
    e->cb.id = (char *)id;
    e->cb.tenant_id = tenant;
    e->cb.service = (char *)service;
    e->cb.phone = (char *)phone;
    e->cb.state = state;
    e->cb.version = version;
    e->cb.desired_time_ms = desired;
    e->cb.created_ms = created;
    e->cb.updated_ms = e->ev.at_ms;
    e->cb.user_data_json = (char *)"{\"k\": 1}";
}

static void write_one(const event_t *e)
{
    const Eg__Event *p[1] = {&e->ev};
    bool permanent = false;
    cr_assert_eq(archive_write_batch(pg, p, 1, &permanent), EG_OK, "%s", eg_pg_error(pg));
}

static long count(const char *sql, const char *p1)
{
    eg_pg_res_t *res = NULL;
    const char *p[1] = {p1};
    cr_assert_eq(eg_pg_exec(pg, sql, p1 ? 1 : 0, p1 ? p : NULL, &res), EG_OK, "%s: %s", sql,
                 eg_pg_error(pg));
    long v = atol(eg_pg_value(res, 0, 0));
    eg_pg_res_free(res);
    return v;
}

static long rows_of(const char *id)
{
    return count("SELECT (SELECT count(*) FROM callbacks WHERE id = $1::uuid) + "
                 "(SELECT count(*) FROM callback_data WHERE callback_id = $1::uuid) + "
                 "(SELECT count(*) FROM callback_events WHERE callback_id = $1::uuid)",
                 id);
}

/* ---- search ---- */

#define N 7
static char ids[N][EG_UUID_STR_LEN + 1];

/* ids[i]: created i hours before T0, desired i days after T0; service "a" for even i, "b" for
 * odd; phone +15550000001 for i < 3; SCHEDULED, except i = 1 and 4 COMPLETED. */
static void fill(void)
{
    for (int i = 0; i < N; i++) {
        event_t e;
        eg_uuid_v7_str(ids[i]);
        build(&e, ids[i], i % 2 ? "b" : "a", i < 3 ? "+15550000001" : "+15550000002",
              i == 1 || i == 4 ? EG__STATE__STATE_COMPLETED : EG__STATE__STATE_SCHEDULED, 1,
              T0 + i * 24 * HOUR, T0 - i * HOUR);
        write_one(&e);
    }
}

static Eg__ArchiveSearchReply *search(const Eg__ArchiveSearchRequest *q)
{
    Eg__ArchiveSearchReply *r = NULL;
    char why[160] = "";
    cr_assert_eq(history_search(pg, q, &r, why, sizeof why), EG_OK, "%s", why);
    return r;
}

/* The ids of a reply, as indexes into ids[], joined ("0 2 4"). */
static void order(const Eg__ArchiveSearchReply *r, char *out, size_t len)
{
    size_t pos = 0;
    out[0] = '\0';
    for (size_t i = 0; i < r->n_callbacks; i++)
        for (int j = 0; j < N; j++)
            if (strcmp(r->callbacks[i]->id, ids[j]) == 0)
                pos += (size_t)snprintf(out + pos, len - pos, "%s%d", i ? " " : "", j);
}

Test(history, search_filters_newest_first)
{
    char got[64];
    fill();
    Eg__ArchiveSearchRequest q = EG__ARCHIVE_SEARCH_REQUEST__INIT;
    q.tenant_id = tenant;
    q.with_total = true;
    Eg__ArchiveSearchReply *r = search(&q);
    order(r, got, sizeof got);
    cr_assert_str_eq(got, "0 1 2 3 4 5 6");
    cr_assert_eq(r->total, N);
    cr_assert_str_eq(r->callbacks[1]->phone, "+15550000001");
    cr_assert_eq(r->callbacks[1]->state, EG__STATE__STATE_COMPLETED);
    cr_assert_eq(r->callbacks[1]->desired_time_ms, T0 + 24 * HOUR);
    cr_assert_eq(r->callbacks[1]->created_ms, T0 - HOUR);
    eg__archive_search_reply__free_unpacked(r, NULL);

    q.service = (char *)"a";
    q.state = EG__STATE__STATE_SCHEDULED;
    r = search(&q);
    order(r, got, sizeof got);
    cr_assert_str_eq(got, "0 2 6");
    cr_assert_eq(r->total, 3);
    eg__archive_search_reply__free_unpacked(r, NULL);

    q.service = (char *)"";
    q.state = 0;
    q.phone = (char *)"+15550000001";
    q.desired_from_ms = T0 + 24 * HOUR; /* inclusive */
    r = search(&q);
    order(r, got, sizeof got);
    cr_assert_str_eq(got, "1 2");
    eg__archive_search_reply__free_unpacked(r, NULL);

    q.phone = (char *)"";
    q.desired_from_ms = 0;
    q.created_from_ms = T0 - 4 * HOUR; /* inclusive */
    q.created_to_ms = T0 - HOUR;       /* exclusive */
    r = search(&q);
    order(r, got, sizeof got);
    cr_assert_str_eq(got, "2 3 4");
    eg__archive_search_reply__free_unpacked(r, NULL);

    /* Another tenant sees none of it. */
    char other[EG_UUID_STR_LEN + 1];
    eg_uuid_v7_str(other);
    Eg__ArchiveSearchRequest o = EG__ARCHIVE_SEARCH_REQUEST__INIT;
    o.tenant_id = other;
    o.with_total = true;
    r = search(&o);
    cr_assert_eq(r->n_callbacks, 0);
    cr_assert_eq(r->total, 0);
    eg__archive_search_reply__free_unpacked(r, NULL);
}

Test(history, offset_and_cursor_pages_agree)
{
    char got[64], all[128] = "";
    fill();
    Eg__ArchiveSearchRequest q = EG__ARCHIVE_SEARCH_REQUEST__INIT;
    q.tenant_id = tenant;
    q.limit = 3;
    q.offset = 3;
    Eg__ArchiveSearchReply *r = search(&q);
    order(r, got, sizeof got);
    cr_assert_str_eq(got, "3 4 5");
    eg__archive_search_reply__free_unpacked(r, NULL);

    /* The cursor walks every row once (and ignores offset once it is set). */
    char cursor[EG_UUID_STR_LEN + 1] = "";
    q.offset = 0;
    for (int page = 0; page < 5; page++) {
        q.offset = page > 0 ? 99 : 0;
        q.before_id = cursor;
        r = search(&q);
        order(r, got, sizeof got);
        snprintf(all + strlen(all), sizeof all - strlen(all), "%s[%s]", page ? " " : "", got);
        if (r->n_callbacks == 0) {
            eg__archive_search_reply__free_unpacked(r, NULL);
            break;
        }
        q.before_created_ms = r->callbacks[r->n_callbacks - 1]->created_ms;
        snprintf(cursor, sizeof cursor, "%s", r->callbacks[r->n_callbacks - 1]->id);
        eg__archive_search_reply__free_unpacked(r, NULL);
    }
    cr_assert_str_eq(all, "[0 1 2] [3 4 5] [6] []");
}

Test(history, search_refuses_bad_requests)
{
    Eg__ArchiveSearchRequest q = EG__ARCHIVE_SEARCH_REQUEST__INIT;
    Eg__ArchiveSearchReply *r = NULL;
    char why[160];
    q.tenant_id = (char *)"not-a-uuid";
    cr_assert_eq(history_search(pg, &q, &r, why, sizeof why), EG_EINVAL);
    q.tenant_id = tenant;
    q.state = 42;
    cr_assert_eq(history_search(pg, &q, &r, why, sizeof why), EG_EINVAL);
    q.state = 0;
    q.limit = HISTORY_SEARCH_MAX + 1;
    cr_assert_eq(history_search(pg, &q, &r, why, sizeof why), EG_EINVAL);
    q.limit = 0;
    q.before_id = (char *)"nope";
    cr_assert_eq(history_search(pg, &q, &r, why, sizeof why), EG_EINVAL);
    cr_assert_null(r);
}

/* ---- erase ---- */

Test(history, erase_deletes_the_number_and_keeps_it_deleted)
{
    char a[EG_UUID_STR_LEN + 1], b[EG_UUID_STR_LEN + 1], c[EG_UUID_STR_LEN + 1],
        pending[EG_UUID_STR_LEN + 1];
    eg_uuid_v7_str(a);
    eg_uuid_v7_str(b);
    eg_uuid_v7_str(c);
    eg_uuid_v7_str(pending); /* known to the scheduler, not archived yet */
    event_t e;
    build(&e, a, "a", "+15550000009", EG__STATE__STATE_COMPLETED, 3, T0, T0 - HOUR);
    write_one(&e);
    build(&e, b, "b", "+15550000009", EG__STATE__STATE_SCHEDULED, 1, T0 + 24 * HOUR, T0);
    write_one(&e);
    build(&e, c, "a", "+15550000008", EG__STATE__STATE_SCHEDULED, 1, T0, T0);
    write_one(&e);
    cr_assert_eq(rows_of(a), 3);

    history_erased_t out;
    const char *given[1] = {pending};
    cr_assert_eq(history_erase(pg, tenant, "+15550000009", given, 1, "0123456789abcdef",
                               "{\"phoneHash\": \"x\"}", &out),
                 EG_OK, "%s", eg_pg_error(pg));
    cr_assert_eq(out.n_ids, 3, "a, b and the pending one");
    cr_assert_eq(out.rows_callbacks, 2);
    cr_assert_eq(out.rows_data, 2);
    cr_assert_eq(out.rows_events, 2);
    history_ids_free(&out);
    cr_assert_eq(rows_of(a) + rows_of(b), 0);
    cr_assert_eq(rows_of(c), 3, "another number's rows were erased");
    cr_assert_eq(count("SELECT count(*) FROM gdpr_erased", NULL), 3);
    cr_assert_eq(count("SELECT count(*) FROM audit_log WHERE action = 'gdpr.erase' AND "
                       "actor = '0123456789abcdef'",
                       NULL),
                 1);

    /* Late events of erased callbacks (the cancel, a replay, the pending one's create) are
     * dropped, in a batch with an event that is not. */
    event_t late[3];
    build(&late[0], b, "b", "+15550000009", EG__STATE__STATE_COMPLETED, 2, T0 + 24 * HOUR, T0);
    build(&late[1], pending, "a", "+15550000009", EG__STATE__STATE_SCHEDULED, 1, T0, T0);
    build(&late[2], c, "a", "+15550000008", EG__STATE__STATE_QUEUED, 2, T0, T0);
    const Eg__Event *batch[3] = {&late[0].ev, &late[1].ev, &late[2].ev};
    archive_outcome_t outcomes[3];
    cr_assert_eq(archive_write(pg, batch, 3, outcomes), EG_OK);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(outcomes[i], ARCHIVE_DONE, "dropped events are acknowledged");
    cr_assert_eq(rows_of(b) + rows_of(pending), 0, "an erased callback came back");
    cr_assert_eq(
        count("SELECT count(*) FROM callbacks WHERE id = $1::uuid AND state = 'QUEUED'", c), 1);

    /* Again: nothing left of the number. */
    cr_assert_eq(history_erase(pg, tenant, "+15550000009", NULL, 0, NULL, NULL, &out), EG_OK);
    cr_assert_eq(out.n_ids, 0);
    cr_assert_eq(out.rows_callbacks + out.rows_data + out.rows_events, 0);
    history_ids_free(&out);
}

/* An erase that starts while a batch holds its callback's lock waits, then deletes what the
 * batch wrote. */
typedef struct {
    const char *id;
    eg_status_t st;
    size_t n;
} erase_job_t;

static void *erase_thread(void *arg)
{
    erase_job_t *j = arg;
    eg_pg_t *own = open_pg(dsn);
    history_erased_t out;
    const char *given[1] = {j->id};
    j->st = history_erase(own, tenant, "+15550000007", given, 1, NULL, NULL, &out);
    j->n = out.n_ids;
    history_ids_free(&out);
    eg_pg_close(own);
    return NULL;
}

Test(history, erase_waits_for_a_batch_in_flight)
{
    char id[EG_UUID_STR_LEN + 1];
    eg_uuid_v7_str(id);
    /* A batch's transaction, held open after its locks: the erase must wait for it. */
    const char *p[2] = {id, tenant};
    cr_assert_eq(eg_pg_begin(pg), EG_OK);
    cr_assert_eq(
        eg_pg_exec(pg, "SELECT pg_advisory_xact_lock(1162297682, hashtext($1))", 1, p, NULL), EG_OK,
        "%s", eg_pg_error(pg));
    cr_assert_eq(eg_pg_exec(pg,
                            "INSERT INTO callbacks (id, tenant_id, service, phone, desired_time, "
                            "state, attempts, version, created_at, updated_at) VALUES ($1::uuid, "
                            "$2::uuid, 'a', '+15550000007', now(), 'SCHEDULED', 0, 1, now(), "
                            "now())",
                            2, p, NULL),
                 EG_OK, "%s", eg_pg_error(pg));
    erase_job_t job = {.id = id};
    pthread_t t;
    pthread_create(&t, NULL, erase_thread, &job);
    struct timespec ts = {0, 300 * 1000000L};
    nanosleep(&ts, NULL);
    cr_assert_eq(eg_pg_commit(pg), EG_OK);
    pthread_join(t, NULL);
    cr_assert_eq(job.st, EG_OK);
    cr_assert_eq(rows_of(id), 0, "the erase did not wait for the batch");
    cr_assert_eq(count("SELECT count(*) FROM gdpr_erased WHERE callback_id = $1::uuid", id), 1);
}

Test(history, erase_never_crosses_tenants)
{
    /* An id given for this tenant whose row is another tenant's is left alone. */
    char id[EG_UUID_STR_LEN + 1], other[EG_UUID_STR_LEN + 1];
    eg_uuid_v7_str(id);
    eg_uuid_v7_str(other);
    const char *p[2] = {id, other};
    cr_assert_eq(eg_pg_exec(pg,
                            "INSERT INTO callbacks (id, tenant_id, service, phone, desired_time, "
                            "state, attempts, version, created_at, updated_at) VALUES ($1::uuid, "
                            "$2::uuid, 'a', '+15550000006', now(), 'SCHEDULED', 0, 1, now(), "
                            "now())",
                            2, p, NULL),
                 EG_OK, "%s", eg_pg_error(pg));
    history_erased_t out;
    const char *given[1] = {id};
    cr_assert_eq(history_erase(pg, tenant, "+15550000006", given, 1, NULL, NULL, &out), EG_OK);
    cr_assert_eq(out.n_ids, 0);
    history_ids_free(&out);
    cr_assert_eq(rows_of(id), 1);
    cr_assert_eq(count("SELECT count(*) FROM gdpr_erased WHERE callback_id = $1::uuid", id), 0);
}
