/* The batch writer (services/archiver/archive.c) called directly against the real PostgreSQL
 * (ENGAGE_PG_DSN), in a schema of each test's own, to pin down the write rules without the bus:
 * one batch or many, any order, duplicates inside a batch, refused events, a lost connection,
 * the statements a batch costs, and text that must arrive verbatim. The same rules through a
 * running archiver and JetStream: tests/integration/archiver_test.c. */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive.h"
#include "archiver_fixtures.h"
#include "engage.pb-c.h"
#include "engage/ids.h"
#include "engage/pg.h"
#include "history.h"

static char tenant[EG_UUID_STR_LEN + 1];
static char schema[64];
static char schema_dsn[768];
static eg_pg_t *wpg; /* the writer's connection */

static void direct_setup(void)
{
    make_schema(schema, sizeof schema, schema_dsn, sizeof schema_dsn);
    wpg = open_pg(schema_dsn);
    uuid(tenant);
}

static void direct_teardown(void)
{
    eg_pg_close(wpg);
    drop_schema(schema);
}

TestSuite(archive, .init = direct_setup, .fini = direct_teardown, .timeout = 60);

/* A history of two callbacks with a reschedule, a late event and duplicates, as events[]. */
#define HIST_N 8
static event_t hist[HIST_N];
static const Eg__Event *hist_ptr[HIST_N];
static char hx[EG_UUID_STR_LEN + 1], hy[EG_UUID_STR_LEN + 1];

static void make_history(void)
{
    uuid(hx);
    uuid(hy);
    const spec_t specs[HIST_N] = {
        {.callback_id = hx,
         .tenant_id = tenant,
         .version = 1,
         .state = EG__STATE__STATE_SCHEDULED,
         .user_data = "{\"a\": 1}"},
        {.callback_id = hy, .tenant_id = tenant, .version = 1, .state = EG__STATE__STATE_QUEUED},
        {.callback_id = hx,
         .tenant_id = tenant,
         .version = 2,
         .state = EG__STATE__STATE_SCHEDULED,
         .from = EG__STATE__STATE_SCHEDULED,
         .desired_ms = T0 + 86400000,
         .user_data = "{\"a\": 1}"},
        {.callback_id = hy,
         .tenant_id = tenant,
         .version = 2,
         .state = EG__STATE__STATE_ROUTING,
         .from = EG__STATE__STATE_QUEUED,
         .attempts = 1},
        {.callback_id = hx,
         .tenant_id = tenant,
         .version = 3,
         .state = EG__STATE__STATE_SCHEDULED,
         .from = EG__STATE__STATE_SCHEDULED,
         .desired_ms = T0 + 2 * 86400000,
         .user_data = "{\"a\": 1}"},
        {.callback_id = hx,
         .tenant_id = tenant,
         .version = 4,
         .state = EG__STATE__STATE_QUEUED,
         .from = EG__STATE__STATE_SCHEDULED,
         .desired_ms = T0 + 2 * 86400000},
        {.callback_id = hy,
         .tenant_id = tenant,
         .version = 3,
         .state = EG__STATE__STATE_COMPLETED,
         .reason = EG__REASON__REASON_FAIL_CALL_TO_CUSTOMER,
         .from = EG__STATE__STATE_ROUTING,
         .attempts = 1},
        {.callback_id = hx,
         .tenant_id = tenant,
         .version = 5,
         .state = EG__STATE__STATE_COMPLETED,
         .reason = EG__REASON__REASON_CANCELLED,
         .from = EG__STATE__STATE_QUEUED,
         .desired_ms = T0 + 2 * 86400000},
    };
    for (int i = 0; i < HIST_N; i++) {
        build(&hist[i], &specs[i]);
        hist_ptr[i] = &hist[i].ev;
    }
}

static void write_ok(eg_pg_t *pg, const Eg__Event *const *events, size_t n)
{
    archive_outcome_t out[HIST_N * 2];
    cr_assert_leq(n, sizeof out / sizeof out[0]);
    eg_status_t st = archive_write(pg, events, n, out);
    cr_assert_eq(st, EG_OK, "archive_write: %s (%s)", eg_status_str(st), eg_pg_error(pg));
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(out[i], ARCHIVE_DONE);
}

static void assert_final(eg_pg_t *pg)
{
    const char *px[1] = {hx};
    const char *py[1] = {hy};
    char *s = q_str(pg, SQL_STATE, 1, px);
    cr_assert_str_eq(s, "COMPLETED/CANCELLED/0/v5");
    free(s);
    s = q_str(pg, SQL_STATE, 1, py);
    cr_assert_str_eq(s, "COMPLETED/FAIL_CALL_TO_CUSTOMER/1/v3");
    free(s);
    char t[24];
    snprintf(t, sizeof t, "%lld", (long long)(T0 + 2 * 86400000LL));
    const char *pt[2] = {hx, t};
    s = q_str(pg,
              "SELECT (SELECT count(*) FROM callbacks WHERE id = $1) || '/' || "
              "(SELECT count(*) FROM callback_data WHERE callback_id = $1) || '/' || "
              "(SELECT count(*) FROM callback_events WHERE callback_id = $1) || '/' || "
              "(SELECT count(*) FROM callback_events WHERE callback_id = $1 AND desired_time = "
              "to_timestamp($2::double precision / 1000)) || '/' || "
              "(SELECT count(*) FROM callback_data WHERE callback_id = $1 AND desired_time = "
              "to_timestamp($2::double precision / 1000)) || '/' || "
              "(SELECT count(*) FROM callbacks WHERE id = $1 AND desired_time = "
              "to_timestamp($2::double precision / 1000))",
              2, pt);
    cr_assert_str_eq(s, "1/1/5/5/1/1", "rows of the rescheduled callback (rows/data/events/...)");
    free(s);
}

Test(archive, one_batch_writes_the_history)
{
    make_history();
    write_ok(wpg, hist_ptr, HIST_N);
    assert_final(wpg);
}

Test(archive, rewriting_and_any_order_give_the_same_rows)
{
    make_history();
    write_ok(wpg, hist_ptr, HIST_N);
    char *once = checksum(wpg, tenant);

    /* The same batch again, then every event alone, newest first (each event is late). */
    write_ok(wpg, hist_ptr, HIST_N);
    for (int i = HIST_N - 1; i >= 0; i--)
        write_ok(wpg, &hist_ptr[i], 1);
    char *again = checksum(wpg, tenant);
    cr_assert_str_eq(again, once);

    /* Newest first into an empty schema gives the very same rows. */
    char other[64], other_dsn[768];
    make_schema(other, sizeof other, other_dsn, sizeof other_dsn);
    eg_pg_t *pg2 = open_pg(other_dsn);
    const Eg__Event *rev[HIST_N];
    for (int i = 0; i < HIST_N; i++)
        rev[i] = hist_ptr[HIST_N - 1 - i];
    write_ok(pg2, rev, HIST_N);
    assert_final(pg2);
    char *reversed = checksum(pg2, tenant);
    cr_assert_str_eq(reversed, once, "newest-first order gave other rows");
    eg_pg_close(pg2);
    drop_schema(other);

    /* Mixed orders, each event in a transaction of its own, as redeliveries would come. */
    static const int orders[][HIST_N] = {
        {1, 3, 5, 7, 0, 2, 4, 6}, {4, 0, 7, 2, 6, 1, 3, 5}, {2, 6, 0, 5, 3, 7, 1, 4}};
    for (size_t k = 0; k < sizeof orders / sizeof orders[0]; k++) {
        make_schema(other, sizeof other, other_dsn, sizeof other_dsn);
        pg2 = open_pg(other_dsn);
        for (int i = 0; i < HIST_N; i++)
            write_ok(pg2, &hist_ptr[orders[k][i]], 1);
        char *mixed = checksum(pg2, tenant);
        cr_assert_str_eq(mixed, once, "order %zu gave other rows", k);
        free(mixed);
        eg_pg_close(pg2);
        drop_schema(other);
    }
    free(once);
    free(again);
    free(reversed);
}

Test(archive, a_refused_event_does_not_hold_back_the_batch)
{
    char a[EG_UUID_STR_LEN + 1], b[EG_UUID_STR_LEN + 1], c[EG_UUID_STR_LEN + 1];
    uuid(a);
    uuid(b);
    uuid(c);
    event_t e[3];
    spec_t s = {.tenant_id = tenant, .version = 1, .state = EG__STATE__STATE_SCHEDULED};
    s.callback_id = a;
    build(&e[0], &s);
    s.callback_id = b;
    s.user_data = "{not json";
    build(&e[1], &s);
    s.callback_id = c;
    s.user_data = NULL;
    s.desired_ms = INT64_C(9000000000000000000); /* beyond PostgreSQL's timestamps */
    build(&e[2], &s);
    const Eg__Event *ev[3] = {&e[0].ev, &e[1].ev, &e[2].ev};

    archive_outcome_t out[3];
    bool permanent = false;
    cr_assert_neq(archive_write_batch(wpg, ev, 3, &permanent), EG_OK);
    cr_assert(permanent);
    cr_assert_neq(archive_write(wpg, ev, 3, out), EG_OK);
    cr_assert_eq(out[0], ARCHIVE_DONE);
    cr_assert_eq(out[1], ARCHIVE_REJECT);
    cr_assert_eq(out[2], ARCHIVE_REJECT);
    const char *pa[1] = {a};
    const char *pb[1] = {b};
    cr_assert_eq(q_long(wpg, SQL_NROWS, 1, pa), 1);
    cr_assert_eq(q_long(wpg, SQL_NEVENTS, 1, pa), 1);
    cr_assert_eq(q_long(wpg, SQL_NROWS, 1, pb), 0);
    /* The connection is usable afterwards. */
    cr_assert_eq(eg_pg_ping(wpg), EG_OK);
}

Test(archive, checks_ids_before_the_database)
{
    event_t e;
    char why[128];
    char cb[EG_UUID_STR_LEN + 1];
    uuid(cb);
    spec_t s = {.callback_id = cb, .tenant_id = tenant, .version = 1};
    build(&e, &s);
    cr_assert(archive_event_check(&e.ev, why, sizeof why));
    e.cb.tenant_id = (char *)"";
    cr_assert_not(archive_event_check(&e.ev, why, sizeof why));
    cr_assert_str_eq(why, "the tenant id is not a UUID");
    e.cb.tenant_id = tenant;
    e.ev.event_id = (char *)"x";
    cr_assert_not(archive_event_check(&e.ev, why, sizeof why));
    e.ev.event_id = e.event_id;
    e.ev.callback = NULL;
    cr_assert_not(archive_event_check(&e.ev, why, sizeof why));
    cr_assert_str_eq(why, "the event carries no callback");
}

Test(archive, survives_a_lost_connection)
{
    make_history();
    /* Kill the writer's server session: the next batch reconnects (eg_pg) and goes in. */
    char pid[32];
    snprintf(pid, sizeof pid, "%ld", q_long(wpg, "SELECT pg_backend_pid()", 0, NULL));
    eg_pg_t *killer = open_pg(env("ENGAGE_PG_DSN"));
    const char *pk[1] = {pid};
    cr_assert_eq(q_long(killer, "SELECT pg_terminate_backend($1::int, 5000)::int", 1, pk), 1);
    eg_pg_close(killer);
    write_ok(wpg, hist_ptr, HIST_N);
    assert_final(wpg);
}

/* The same events several times inside one batch, in any order: the rows of writing them once
 * (one callbacks row per callback with its newest version, each event once, user data once). */
Test(archive, duplicates_inside_one_batch_change_nothing)
{
    make_history();
    const Eg__Event *twice[HIST_N * 2];
    for (int i = 0; i < HIST_N; i++) {
        twice[i] = hist_ptr[HIST_N - 1 - i];
        twice[HIST_N + i] = hist_ptr[(i * 3) % HIST_N];
    }
    write_ok(wpg, twice, HIST_N * 2);
    assert_final(wpg);
    char *dup = checksum(wpg, tenant);

    char other[64], other_dsn[768];
    make_schema(other, sizeof other, other_dsn, sizeof other_dsn);
    eg_pg_t *pg2 = open_pg(other_dsn);
    write_ok(pg2, hist_ptr, HIST_N);
    char *once = checksum(pg2, tenant);
    cr_assert_str_eq(dup, once, "duplicates inside a batch gave other rows");
    eg_pg_close(pg2);
    drop_schema(other);
    free(dup);
    free(once);
}

/* How often the writer's session ran the prepared statement name (what), or how often it
 * planned it anew for the call (custom plans). */
static long plans(eg_pg_t *pg, const char *name, const char *what)
{
    const char *p[2] = {name, what};
    char *v = q_str(pg,
                    "SELECT CASE WHEN $2 = 'custom' THEN custom_plans ELSE generic_plans + "
                    "custom_plans END FROM pg_prepared_statements WHERE name = $1",
                    2, p);
    long n = v != NULL ? strtol(v, NULL, 10) : 0;
    free(v);
    return n;
}

static long runs(eg_pg_t *pg, const char *name)
{
    return plans(pg, name, "runs");
}

/* A batch costs one statement per step, however many events it holds: 200 events of 40
 * callbacks (five versions each, the newest last) run the lock, the read, the upsert, the user
 * data and the event inserts once each, all prepared, and none planned again for its call. */
Test(archive, a_batch_runs_each_statement_once)
{
    enum { CBS = 40, STEPS = 5 };
    static char ids[CBS][EG_UUID_STR_LEN + 1];
    static event_t evs[CBS * STEPS];
    const Eg__Event *ptr[CBS * STEPS];
    static const Eg__State states[STEPS] = {EG__STATE__STATE_SCHEDULED, EG__STATE__STATE_QUEUED,
                                            EG__STATE__STATE_ROUTING, EG__STATE__STATE_PROCESSING,
                                            EG__STATE__STATE_COMPLETED};
    for (int c = 0; c < CBS; c++)
        uuid(ids[c]);
    for (int st = 0; st < STEPS; st++) {
        for (int c = 0; c < CBS; c++) {
            spec_t s = {.callback_id = ids[c],
                        .tenant_id = tenant,
                        .version = (uint64_t)st + 1,
                        .state = states[st],
                        .user_data = "{\"n\": 1}"};
            build(&evs[st * CBS + c], &s);
            ptr[st * CBS + c] = &evs[st * CBS + c].ev;
        }
    }
    archive_outcome_t out[CBS * STEPS];
    cr_assert_eq(archive_write(wpg, ptr, CBS * STEPS, out), EG_OK, "%s", eg_pg_error(wpg));
    static const char *const names[] = {"archive_lock", "archive_read", "archive_upsert",
                                        "archive_data", "archive_events"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        cr_assert_eq(runs(wpg, names[i]), 1, "%s ran %ld times for one batch", names[i],
                     runs(wpg, names[i]));
    cr_assert_eq(runs(wpg, "archive_move_callbacks"), 0, "a move without a reschedule");
    cr_assert_eq(q_long(wpg,
                        "SELECT count(*) FROM callbacks WHERE state = 'COMPLETED' AND version = 5",
                        0, NULL),
                 CBS);
    cr_assert_eq(q_long(wpg, "SELECT count(*) FROM callback_events", 0, NULL), CBS * STEPS);
    cr_assert_eq(q_long(wpg, "SELECT count(*) FROM callback_data", 0, NULL), CBS);

    /* The replay of the batch: still one run each, and nothing changes. */
    char *before = checksum(wpg, tenant);
    cr_assert_eq(archive_write(wpg, ptr, CBS * STEPS, out), EG_OK, "%s", eg_pg_error(wpg));
    cr_assert_eq(runs(wpg, "archive_events"), 2);
    cr_assert_eq(runs(wpg, "archive_upsert"), 1, "nothing was newer, yet the upsert ran");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        cr_assert_eq(plans(wpg, names[i], "custom"), 0, "%s was planned again for a call",
                     names[i]);
    char *after = checksum(wpg, tenant);
    cr_assert_str_eq(after, before);
    free(before);
    free(after);
}

/* Text goes into the batch's array parameters quoted: quotes, backslashes, braces, commas and
 * the word NULL arrive as they were. A correlation id in canonical UUID form is stored as a uuid,
 * any other one as text in detail; the export shows both as before, in detail. */
Test(archive, text_and_correlation_ids_are_kept_verbatim)
{
    char a[EG_UUID_STR_LEN + 1], b[EG_UUID_STR_LEN + 1], corr[EG_UUID_STR_LEN + 1];
    char upper[EG_UUID_STR_LEN + 1];
    uuid(a);
    uuid(b);
    uuid(corr);
    for (int i = 0; i <= EG_UUID_STR_LEN; i++)
        upper[i] = (char)(corr[i] >= 'a' && corr[i] <= 'f' ? corr[i] - 'a' + 'A' : corr[i]);
    static const char *const odd_service = "s\"q\\{x,y} NULL";
    static const char *const odd_data = "{\"k\": \"a\\\"b\\\\c {,} NULL \u00e9\"}";
    event_t e[3];
    spec_t s = {.callback_id = a,
                .tenant_id = tenant,
                .version = 1,
                .state = EG__STATE__STATE_SCHEDULED,
                .service = odd_service,
                .phone = "+15550007777",
                .user_data = odd_data,
                .corr = corr};
    build(&e[0], &s);
    s.version = 2;
    s.state = EG__STATE__STATE_QUEUED;
    s.from = EG__STATE__STATE_SCHEDULED;
    s.corr = upper;
    build(&e[1], &s);
    spec_t t = {.callback_id = b,
                .tenant_id = tenant,
                .version = 1,
                .state = EG__STATE__STATE_SCHEDULED,
                .phone = "+15550007777",
                .corr = ""};
    build(&e[2], &t);
    const Eg__Event *ev[3] = {&e[0].ev, &e[1].ev, &e[2].ev};
    write_ok(wpg, ev, 3);

    const char *pa[1] = {a};
    char *svc = q_str(wpg, "SELECT service FROM callbacks WHERE id = $1", 1, pa);
    cr_assert_str_eq(svc, odd_service);
    free(svc);
    char *ud =
        q_str(wpg, "SELECT user_data->>'k' FROM callback_data WHERE callback_id = $1", 1, pa);
    cr_assert_str_eq(ud, "a\"b\\c {,} NULL \u00e9");
    free(ud);
    const char *pe0[1] = {e[0].event_id};
    char *c0 = q_str(wpg,
                     "SELECT coalesce(corr_id::text, '-') || '/' || coalesce(detail::text, '-') "
                     "FROM callback_events WHERE event_id = $1",
                     1, pe0);
    char want[128];
    snprintf(want, sizeof want, "%s/-", corr);
    cr_assert_str_eq(c0, want, "a canonical UUID is kept as a uuid, and only there");
    free(c0);

    Eg__HistoryRecord **recs = NULL;
    size_t n = 0;
    cr_assert_eq(history_export(wpg, tenant, "+15550007777", &recs, &n), EG_OK, "%s",
                 eg_pg_error(wpg));
    cr_assert_eq(n, 2);
    for (size_t i = 0; i < n; i++) {
        Eg__HistoryRecord *r = recs[i];
        if (strcmp(r->callback->id, a) == 0) {
            cr_assert_eq(r->n_events, 2);
            cr_assert_str_eq(r->callback->service, odd_service);
            snprintf(want, sizeof want, "{\"corrId\": \"%s\"}", corr);
            cr_assert_str_eq(r->events[0]->detail_json, want);
            snprintf(want, sizeof want, "{\"from\": \"SCHEDULED\", \"corrId\": \"%s\"}", upper);
            cr_assert_str_eq(r->events[1]->detail_json, want);
        } else {
            cr_assert_eq(r->n_events, 1);
            cr_assert_str_eq(r->events[0]->detail_json, "", "no detail: no from, no corrId");
        }
        eg__history_record__free_unpacked(r, NULL);
    }
    free(recs);
}
