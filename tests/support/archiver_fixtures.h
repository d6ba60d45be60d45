/* Helpers shared by the archiver's integration tests (tests/integration/archiver_test.c and
 * tests/integration/archiver/): lifecycle events built from a short spec, queries that read one
 * value, the rows of a tenant as one digest, and schemas of a test's own. The test runner
 * (scripts/test.sh) exports ENGAGE_PG_DSN. */
#ifndef TESTS_ARCHIVER_FIXTURES_H
#define TESTS_ARCHIVER_FIXTURES_H
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage.pb-c.h"
#include "engage/ids.h"
#include "engage/mem.h"
#include "engage/pg.h"

#define T0 1890000000000 /* 2029-11-22: desired times of the test callbacks */

static inline const char *env(const char *name)
{
    const char *v = getenv(name);
    cr_assert(v != NULL && v[0] != '\0', "%s is not set: run the tests through `make test`", name);
    return v;
}

static inline void uuid(char out[EG_UUID_STR_LEN + 1])
{
    eg_uuid_v7_str(out);
}

static inline eg_pg_t *open_pg(const char *dsn)
{
    eg_pg_t *pg = NULL;
    eg_status_t st = eg_pg_open(&pg, dsn);
    cr_assert_eq(st, EG_OK, "eg_pg_open: %s", eg_status_str(st));
    return pg;
}

/* The first value of a query as a string (caller frees), or NULL for no row or SQL NULL. */
static inline char *q_str(eg_pg_t *pg, const char *sql, int n, const char *const *params)
{
    eg_pg_res_t *res = NULL;
    eg_status_t st = eg_pg_exec(pg, sql, n, params, &res);
    cr_assert_eq(st, EG_OK, "%s: %s (%s)", sql, eg_status_str(st), eg_pg_error(pg));
    const char *v = eg_pg_rows(res) > 0 ? eg_pg_value(res, 0, 0) : NULL;
    char *out = eg_xstrdup(v);
    eg_pg_res_free(res);
    return out;
}

static inline long q_long(eg_pg_t *pg, const char *sql, int n, const char *const *params)
{
    char *v = q_str(pg, sql, n, params);
    cr_assert_not_null(v, "%s: no value", sql);
    long r = strtol(v, NULL, 10);
    free(v);
    return r;
}

static const char SQL_STATE[] =
    "SELECT state || '/' || coalesce(reason, '-') || '/' || attempts || '/v' || version "
    "FROM callbacks WHERE id = $1";
static const char SQL_NEVENTS[] = "SELECT count(*) FROM callback_events WHERE callback_id = $1";
static const char SQL_NROWS[] = "SELECT count(*) FROM callbacks WHERE id = $1";
/* Rows of one callback in the three tables. */
static const char SQL_ALLROWS[] =
    "SELECT (SELECT count(*) FROM callbacks WHERE id = $1::uuid) + "
    "(SELECT count(*) FROM callback_data WHERE callback_id = $1::uuid) + "
    "(SELECT count(*) FROM callback_events WHERE callback_id = $1::uuid)";

/* A digest of every row of the tenant's callbacks in the three tables, and how many rows. */
static const char SQL_CHECKSUM[] =
    "WITH ids AS (SELECT id FROM callbacks WHERE tenant_id = $1::uuid) "
    "SELECT md5(coalesce((SELECT string_agg(c::text, '|' ORDER BY c.id, c.desired_time) "
    "FROM callbacks c WHERE c.tenant_id = $1::uuid), '') || '#' || "
    "coalesce((SELECT string_agg(d::text, '|' ORDER BY d.callback_id, d.desired_time) "
    "FROM callback_data d WHERE d.callback_id IN (SELECT id FROM ids)), '') || '#' || "
    "coalesce((SELECT string_agg(e::text, '|' ORDER BY e.event_id, e.desired_time) "
    "FROM callback_events e WHERE e.callback_id IN (SELECT id FROM ids)), '')) "
    "|| ' ' || (SELECT count(*) FROM callbacks WHERE tenant_id = $1::uuid) "
    "|| '/' || (SELECT count(*) FROM callback_data WHERE callback_id IN (SELECT id FROM ids)) "
    "|| '/' || (SELECT count(*) FROM callback_events WHERE callback_id IN (SELECT id FROM ids))";

static inline char *checksum(eg_pg_t *pg, const char *tenant_id)
{
    const char *p[1] = {tenant_id};
    return q_str(pg, SQL_CHECKSUM, 1, p);
}

/* ---- events ---- */

typedef struct {
    const char *event_id; /* NULL: a new one */
    const char *callback_id;
    const char *tenant_id;
    uint64_t version;
    Eg__State state;
    Eg__Reason reason;
    Eg__State from;
    int64_t desired_ms;
    uint32_t attempts;
    const char *user_data; /* NULL: none */
    const char *phone;     /* NULL: +15550001234 */
    const char *corr;      /* NULL: "corr-archiver-test" */
    const char *service;   /* NULL: "support" */
} spec_t;

typedef struct {
    Eg__Event ev;
    Eg__Callback cb;
    char event_id[EG_UUID_STR_LEN + 1];
} event_t;

/* Fill e from s; strings of s are borrowed and must outlive e. */
static inline void build(event_t *e, const spec_t *s)
{
    eg__event__init(&e->ev);
    eg__callback__init(&e->cb);
    if (s->event_id != NULL)
        snprintf(e->event_id, sizeof e->event_id, "%s", s->event_id);
    else
        uuid(e->event_id);
    e->ev.event_id = e->event_id;
    e->ev.at_ms = T0 - 86400000 + (int64_t)s->version * 1000;
    e->ev.corr_id = (char *)(s->corr ? s->corr : "corr-archiver-test");
    e->ev.from_state = s->from;
    e->ev.callback = &e->cb;
    e->cb.id = (char *)s->callback_id;
    e->cb.tenant_id = (char *)s->tenant_id;
    e->cb.service = (char *)(s->service ? s->service : "support");
    e->cb.phone = (char *)(s->phone ? s->phone : "+15550001234");
    e->cb.desired_time_ms = s->desired_ms ? s->desired_ms : T0;
    e->cb.created_ms = T0 - 86400000;
    e->cb.updated_ms = e->ev.at_ms;
    e->cb.state = s->state;
    e->cb.reason = s->reason;
    e->cb.attempts = s->attempts;
    e->cb.version = s->version;
    e->cb.user_data_json = (char *)(s->user_data ? s->user_data : "");
}

/* ---- schemas of a test's own ---- */

/* Create a schema with a fresh name (into name) and every migration applied in it, and the DSN
 * that puts it first on the search_path (into dsn). */
static inline void make_schema(char *name, size_t namelen, char *dsn, size_t dsnlen)
{
    char id[EG_UUID_STR_LEN + 1], sql[128];
    const char *base = env("ENGAGE_PG_DSN");
    uuid(id);
    snprintf(name, namelen, "arch_%.8s%.4s", id + 24, id + 9);
    if (strncmp(base, "postgres://", 11) == 0 || strncmp(base, "postgresql://", 13) == 0)
        snprintf(dsn, dsnlen, "%s%coptions=-csearch_path%%3D%s", base,
                 strchr(base, '?') != NULL ? '&' : '?', name);
    else
        snprintf(dsn, dsnlen, "%s options='-csearch_path=%s'", base, name);
    eg_pg_t *admin = open_pg(base);
    snprintf(sql, sizeof sql, "CREATE SCHEMA %s", name);
    cr_assert_eq(eg_pg_exec(admin, sql, 0, NULL, NULL), EG_OK, "%s", eg_pg_error(admin));
    eg_pg_close(admin);
    eg_pg_t *pg = open_pg(dsn);
    cr_assert_eq(eg_pg_migrate(pg, NULL), EG_OK, "%s", eg_pg_error(pg));
    eg_pg_close(pg);
}

static inline void drop_schema(const char *name)
{
    char sql[128];
    eg_pg_t *admin = open_pg(env("ENGAGE_PG_DSN"));
    snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", name);
    eg_pg_exec(admin, sql, 0, NULL, NULL);
    eg_pg_close(admin);
}

#endif
