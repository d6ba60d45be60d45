/* Integration tests of lib/pg.c and lib/migrations.c against a real PostgreSQL (ENGAGE_PG_DSN).
 *
 * Criterion runs each test in its own forked process, in parallel, so every test works in a
 * schema of its own (t_<pid>_<random>), reached by adding options='-csearch_path=...' to the DSN.
 * That also proves migrations land in the connection's schema. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <fcntl.h>

#include "engage/pg.h"

static const char *pg_dsn(void)
{
    const char *dsn = getenv("ENGAGE_PG_DSN");
    if (dsn == NULL || dsn[0] == '\0') {
        cr_assert_fail(
            "ENGAGE_PG_DSN is not set: the integration tests need a running PostgreSQL "
            "(e.g. ENGAGE_PG_DSN='host=127.0.0.1 port=5432 user=postgres dbname=engage')");
    }
    return dsn;
}

static eg_pg_t *open_dsn(const char *dsn)
{
    eg_pg_t *pg = NULL;
    eg_status_t st = eg_pg_open(&pg, dsn);
    cr_assert_eq(st, EG_OK, "eg_pg_open: %s", eg_status_str(st));
    return pg;
}

static void exec_ok(eg_pg_t *pg, const char *sql)
{
    eg_status_t st = eg_pg_exec(pg, sql, 0, NULL, NULL);
    cr_assert_eq(st, EG_OK, "%s: %s (%s)", sql, eg_status_str(st), eg_pg_error(pg));
}

/* A single value of a one-row query, as a long. */
static long query_long(eg_pg_t *pg, const char *sql, int nparams, const char *const *params)
{
    eg_pg_res_t *res = NULL;
    eg_status_t st = eg_pg_exec(pg, sql, nparams, params, &res);
    cr_assert_eq(st, EG_OK, "%s: %s (%s)", sql, eg_status_str(st), eg_pg_error(pg));
    cr_assert_eq(eg_pg_rows(res), 1);
    cr_assert_not_null(eg_pg_value(res, 0, 0));
    long v = strtol(eg_pg_value(res, 0, 0), NULL, 10);
    eg_pg_res_free(res);
    return v;
}

typedef struct {
    char name[64];
    char dsn[512];
} schema_t;

/* Create a schema of this test's own and the DSN that puts it first on the search_path. */
static void fresh_schema(schema_t *sc)
{
    struct timespec ts;
    const char *base = pg_dsn();
    char sql[128];

    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(sc->name, sizeof(sc->name), "t_%ld_%lx", (long)getpid(),
             (unsigned long)ts.tv_nsec ^ (unsigned long)rand());
    if (strncmp(base, "postgres://", 11) == 0 || strncmp(base, "postgresql://", 13) == 0) {
        snprintf(sc->dsn, sizeof(sc->dsn), "%s%coptions=-csearch_path%%3D%s", base,
                 strchr(base, '?') != NULL ? '&' : '?', sc->name);
    } else {
        snprintf(sc->dsn, sizeof(sc->dsn), "%s options='-csearch_path=%s'", base, sc->name);
    }
    eg_pg_t *admin = open_dsn(base);
    snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", sc->name);
    exec_ok(admin, sql);
    eg_pg_close(admin);
}

static void drop_schema(const schema_t *sc)
{
    char sql[128];
    eg_pg_t *admin = open_dsn(pg_dsn());
    snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", sc->name);
    exec_ok(admin, sql);
    eg_pg_close(admin);
}

/* Terminate pg's server session from another connection and wait until it is gone. */
static void kill_backend(eg_pg_t *pg)
{
    char pid[32];
    snprintf(pid, sizeof(pid), "%ld", query_long(pg, "SELECT pg_backend_pid()", 0, NULL));
    eg_pg_t *killer = open_dsn(pg_dsn());
    const char *params[] = {pid};
    long ok = query_long(killer, "SELECT pg_terminate_backend($1::int, 5000)::int", 1, params);
    cr_assert_eq(ok, 1, "pg_terminate_backend failed");
    eg_pg_close(killer);
}

static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);

    cr_assert_geq(fd, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

Test(pg, ping_and_close_null)
{
    eg_pg_t *pg = open_dsn(pg_dsn());
    cr_assert_eq(eg_pg_ping(pg), EG_OK, "%s", eg_pg_error(pg));
    eg_pg_close(pg);
    eg_pg_close(NULL);
    eg_pg_res_free(NULL);
}

Test(pg, notices_and_warnings_are_dropped)
{
    eg_pg_t *pg = open_dsn(pg_dsn());
    char path[] = "/tmp/eg-pg-notice-XXXXXX";
    char buf[4096];
    int fd = mkstemp(path);
    int saved = dup(STDERR_FILENO);
    ssize_t n;

    /* libpq's default notice processor writes to stderr: catch stderr in a file. */
    cr_assert_geq(fd, 0);
    cr_assert_geq(saved, 0);
    cr_assert_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    exec_ok(pg, "DO $$ BEGIN RAISE NOTICE 'eg-notice-text'; RAISE WARNING 'eg-warning-text'; "
                "END $$");
    exec_ok(pg, "CREATE TEMP TABLE IF NOT EXISTS n (id int)");
    exec_ok(pg, "CREATE TEMP TABLE IF NOT EXISTS n (id int)");
    fflush(stderr);
    cr_assert_eq(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    n = pread(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    unlink(path);
    cr_assert_geq(n, 0);
    buf[n] = '\0';
    cr_assert(strstr(buf, "eg-notice-text") == NULL, "NOTICE printed: %s", buf);
    cr_assert(strstr(buf, "eg-warning-text") == NULL, "WARNING printed: %s", buf);
    cr_assert(strstr(buf, "already exists") == NULL, "NOTICE printed: %s", buf);
    eg_pg_close(pg);
}

Test(pg, exec_with_params_stores_injection_verbatim)
{
    schema_t sc;
    fresh_schema(&sc);
    eg_pg_t *pg = open_dsn(sc.dsn);
    eg_pg_res_t *res = NULL;
    const char *evil = "x'); DROP TABLE notes; --\\ \"$1\" é";

    exec_ok(pg, "CREATE TABLE notes (id int PRIMARY KEY, body text)");
    const char *ins[] = {"7", evil};
    cr_assert_eq(eg_pg_exec(pg, "INSERT INTO notes (id, body) VALUES ($1, $2)", 2, ins, &res),
                 EG_OK, "%s", eg_pg_error(pg));
    cr_assert_eq(eg_pg_affected(res), 1);
    eg_pg_res_free(res);

    const char *sel[] = {"7"};
    cr_assert_eq(eg_pg_exec(pg, "SELECT id, body FROM notes WHERE id = $1", 1, sel, &res), EG_OK);
    cr_assert_eq(eg_pg_rows(res), 1);
    cr_assert_eq(eg_pg_cols(res), 2);
    cr_assert_str_eq(eg_pg_value(res, 0, 0), "7");
    cr_assert_str_eq(eg_pg_value(res, 0, 1), evil);
    cr_assert_null(eg_pg_value(res, 1, 0), "out of range must be NULL");
    cr_assert_null(eg_pg_value(res, 0, 2), "out of range must be NULL");
    eg_pg_res_free(res);

    /* The table survived. */
    cr_assert_eq(query_long(pg, "SELECT count(*) FROM notes", 0, NULL), 1);

    /* UPDATE reports the rows it changed. */
    const char *upd[] = {"new"};
    cr_assert_eq(eg_pg_exec(pg, "UPDATE notes SET body = $1", 1, upd, &res), EG_OK);
    cr_assert_eq(eg_pg_affected(res), 1);
    eg_pg_res_free(res);

    eg_pg_close(pg);
    drop_schema(&sc);
}

Test(pg, unique_violation_is_econflict)
{
    schema_t sc;
    fresh_schema(&sc);
    eg_pg_t *pg = open_dsn(sc.dsn);

    exec_ok(pg, "CREATE TABLE names (name text PRIMARY KEY)");
    const char *p[] = {"secret-customer-value"};
    cr_assert_eq(eg_pg_exec(pg, "INSERT INTO names VALUES ($1)", 1, p, NULL), EG_OK);
    cr_assert_eq(eg_pg_exec(pg, "INSERT INTO names VALUES ($1)", 1, p, NULL), EG_ECONFLICT);
    cr_assert(strstr(eg_pg_error(pg), "23505") != NULL, "error: %s", eg_pg_error(pg));
    cr_assert(strstr(eg_pg_error(pg), "secret-customer-value") == NULL,
              "the error text leaks the value: %s", eg_pg_error(pg));

    /* Other errors are EG_EIO with a message. */
    cr_assert_eq(eg_pg_exec(pg, "SELECT * FROM no_such_table", 0, NULL, NULL), EG_EIO);
    cr_assert(strstr(eg_pg_error(pg), "no_such_table") != NULL, "error: %s", eg_pg_error(pg));
    const char *bad[] = {"not-an-int"};
    cr_assert_eq(eg_pg_exec(pg, "SELECT $1::int", 1, bad, NULL), EG_EIO);
    cr_assert(strstr(eg_pg_error(pg), "22P02") != NULL, "error: %s", eg_pg_error(pg));
    cr_assert(strstr(eg_pg_error(pg), "not-an-int") == NULL, "the error text leaks the value: %s",
              eg_pg_error(pg));
    cr_assert_eq(eg_pg_exec(pg, NULL, 0, NULL, NULL), EG_EINVAL);
    cr_assert_eq(eg_pg_exec(pg, "", 0, NULL, NULL), EG_EIO);
    cr_assert(strlen(eg_pg_error(pg)) > 0);
    /* The connection is fine after all those errors. */
    cr_assert_eq(eg_pg_ping(pg), EG_OK);

    eg_pg_close(pg);
    drop_schema(&sc);
}

Test(pg, null_values)
{
    schema_t sc;
    fresh_schema(&sc);
    eg_pg_t *pg = open_dsn(sc.dsn);
    eg_pg_res_t *res = NULL;

    exec_ok(pg, "CREATE TABLE t (id int PRIMARY KEY, a text, b text)");
    const char *p[] = {"1", NULL, ""};
    cr_assert_eq(eg_pg_exec(pg, "INSERT INTO t VALUES ($1, $2, $3)", 3, p, NULL), EG_OK, "%s",
                 eg_pg_error(pg));
    cr_assert_eq(eg_pg_exec(pg, "SELECT a, b, a IS NULL, b IS NULL FROM t", 0, NULL, &res), EG_OK);
    cr_assert_null(eg_pg_value(res, 0, 0), "SQL NULL must come back as NULL");
    cr_assert_not_null(eg_pg_value(res, 0, 1), "'' is not NULL");
    cr_assert_str_eq(eg_pg_value(res, 0, 1), "");
    cr_assert_str_eq(eg_pg_value(res, 0, 2), "t");
    cr_assert_str_eq(eg_pg_value(res, 0, 3), "f");
    eg_pg_res_free(res);

    eg_pg_close(pg);
    drop_schema(&sc);
}

Test(pg, transaction_rollback_discards_commit_keeps)
{
    schema_t sc;
    fresh_schema(&sc);
    eg_pg_t *pg = open_dsn(sc.dsn);
    eg_pg_t *other = open_dsn(sc.dsn);

    exec_ok(pg, "CREATE TABLE t (id int PRIMARY KEY)");

    cr_assert_eq(eg_pg_begin(pg), EG_OK);
    cr_assert_eq(eg_pg_begin(pg), EG_ESTATE, "nested BEGIN must be refused");
    exec_ok(pg, "INSERT INTO t VALUES (1)");
    cr_assert_eq(query_long(pg, "SELECT count(*) FROM t", 0, NULL), 1);
    cr_assert_eq(query_long(other, "SELECT count(*) FROM t", 0, NULL), 0, "uncommitted row seen");
    cr_assert_eq(eg_pg_rollback(pg), EG_OK);
    cr_assert_eq(query_long(pg, "SELECT count(*) FROM t", 0, NULL), 0, "rollback kept the row");

    cr_assert_eq(eg_pg_begin(pg), EG_OK);
    exec_ok(pg, "INSERT INTO t VALUES (2)");
    cr_assert_eq(eg_pg_commit(pg), EG_OK, "%s", eg_pg_error(pg));
    cr_assert_eq(query_long(other, "SELECT count(*) FROM t", 0, NULL), 1);

    /* A statement fails inside the transaction: COMMIT must not report success. */
    cr_assert_eq(eg_pg_begin(pg), EG_OK);
    exec_ok(pg, "INSERT INTO t VALUES (3)");
    cr_assert_eq(eg_pg_exec(pg, "INSERT INTO t VALUES (2)", 0, NULL, NULL), EG_ECONFLICT);
    cr_assert_eq(eg_pg_commit(pg), EG_EIO, "COMMIT of a failed transaction reported success");
    cr_assert_eq(query_long(other, "SELECT count(*) FROM t WHERE id = 3", 0, NULL), 0);
    /* And the connection is usable again, outside any transaction. */
    cr_assert_eq(eg_pg_begin(pg), EG_OK);
    cr_assert_eq(eg_pg_rollback(pg), EG_OK);

    eg_pg_close(other);
    eg_pg_close(pg);
    drop_schema(&sc);
}

Test(pg, migrate_twice_applies_once)
{
    schema_t sc;
    fresh_schema(&sc);
    eg_pg_t *pg = open_dsn(sc.dsn);
    int applied = -1;
    const char *schema[] = {sc.name};

    cr_assert_geq(eg_pg_migrations_latest(), 2);
    cr_assert_eq(eg_pg_migrate(pg, &applied), EG_OK, "%s", eg_pg_error(pg));
    cr_assert_eq(applied, eg_pg_migrations_latest());
    cr_assert_eq(eg_pg_migrate(pg, &applied), EG_OK, "%s", eg_pg_error(pg));
    cr_assert_eq(applied, 0);
    cr_assert_eq(eg_pg_migrate(pg, NULL), EG_OK);

    /* Everything landed in this test's schema. */
    cr_assert_eq(query_long(pg, "SELECT count(*) FROM schema_migrations", 0, NULL),
                 eg_pg_migrations_latest());
    cr_assert_eq(query_long(pg, "SELECT max(version) FROM schema_migrations", 0, NULL),
                 eg_pg_migrations_latest());
    cr_assert_eq(query_long(pg,
                            "SELECT count(*) FROM information_schema.tables "
                            "WHERE table_schema = $1 AND table_name IN ('schema_migrations', "
                            "'tenants', 'api_keys', 'services', 'audit_log', 'callbacks', "
                            "'callbacks_default', 'callback_data', 'callback_data_default', "
                            "'callback_events', 'callback_events_default')",
                            1, schema),
                 11);

    /* The schema works: foreign key, check constraint, and the DEFAULT partitions. */
    exec_ok(pg, "INSERT INTO tenants (id, name) VALUES "
                "('00000000-0000-0000-0000-000000000001', 'acme')");
    cr_assert_eq(eg_pg_exec(pg,
                            "INSERT INTO api_keys (key_id, tenant_id, secret_hash, role) VALUES "
                            "('k1', '00000000-0000-0000-0000-000000000001', 'h', 'root')",
                            0, NULL, NULL),
                 EG_EIO, "the role check constraint is missing");
    cr_assert_eq(eg_pg_exec(pg,
                            "INSERT INTO api_keys (key_id, tenant_id, secret_hash, role) VALUES "
                            "('k1', '00000000-0000-0000-0000-0000000000ff', 'h', 'api')",
                            0, NULL, NULL),
                 EG_EIO, "the tenant foreign key is missing");
    exec_ok(pg, "INSERT INTO api_keys (key_id, tenant_id, secret_hash, role) VALUES "
                "('k1', '00000000-0000-0000-0000-000000000001', 'h', 'admin')");
    cr_assert_eq(query_long(pg, "SELECT rate_limit FROM api_keys", 0, NULL), 2000);
    exec_ok(pg, "INSERT INTO callbacks (id, tenant_id, service, phone, desired_time, state, "
                "version, created_at, updated_at) VALUES ('00000000-0000-0000-0000-0000000000aa', "
                "'00000000-0000-0000-0000-000000000001', 'svc', '+15550001234', now(), "
                "'SCHEDULED', 1, now(), now())");
    cr_assert_eq(query_long(pg, "SELECT count(*) FROM callbacks_default", 0, NULL), 1);
    exec_ok(pg, "INSERT INTO callback_events (event_id, callback_id, desired_time, state, at) "
                "VALUES (gen_random_uuid(), gen_random_uuid(), now(), 'SCHEDULED', now())");
    exec_ok(pg, "INSERT INTO callback_data (callback_id, desired_time, user_data) "
                "VALUES (gen_random_uuid(), now(), '{\"a\": 1}')");

    eg_pg_close(pg);
    drop_schema(&sc);
}

typedef struct {
    const char *dsn;
    pthread_barrier_t *barrier;
    eg_status_t open_st;
    eg_status_t st;
    int applied;
} migrator_t;

static void *migrator(void *arg)
{
    migrator_t *m = arg;
    eg_pg_t *pg = NULL;

    m->open_st = eg_pg_open(&pg, m->dsn);
    pthread_barrier_wait(m->barrier);
    if (m->open_st == EG_OK) {
        m->st = eg_pg_migrate(pg, &m->applied);
    }
    eg_pg_close(pg);
    return NULL;
}

Test(pg, concurrent_migrate_applies_each_once)
{
    enum { NTHREADS = 4 };
    schema_t sc;
    pthread_t th[NTHREADS];
    migrator_t m[NTHREADS];
    pthread_barrier_t barrier;
    int total = 0;

    fresh_schema(&sc);
    pthread_barrier_init(&barrier, NULL, NTHREADS);
    for (int i = 0; i < NTHREADS; i++) {
        m[i] = (migrator_t){.dsn = sc.dsn, .barrier = &barrier, .st = EG_EINTERNAL, .applied = -1};
        cr_assert_eq(pthread_create(&th[i], NULL, migrator, &m[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
    }
    pthread_barrier_destroy(&barrier);
    for (int i = 0; i < NTHREADS; i++) {
        cr_assert_eq(m[i].open_st, EG_OK, "thread %d could not connect", i);
        cr_assert_eq(m[i].st, EG_OK, "thread %d: %s", i, eg_status_str(m[i].st));
        cr_assert_geq(m[i].applied, 0);
        total += m[i].applied;
    }
    cr_assert_eq(total, eg_pg_migrations_latest(), "applied %d in all", total);

    eg_pg_t *pg = open_dsn(sc.dsn);
    cr_assert_eq(query_long(pg, "SELECT count(*) FROM schema_migrations", 0, NULL),
                 eg_pg_migrations_latest());
    eg_pg_close(pg);
    drop_schema(&sc);
}

Test(pg, unreachable_is_unavailable)
{
    eg_pg_t *pg = (eg_pg_t *)1;
    char dsn[256];

    snprintf(dsn, sizeof(dsn), "host=127.0.0.1 port=%d dbname=engage connect_timeout=3",
             closed_port());
    cr_assert_eq(eg_pg_open(&pg, dsn), EG_EUNAVAIL);
    cr_assert_null(pg);
}

/* What the scheduler and the archiver run at start: migrate over a connection of its own. */
Test(pg, migrate_retry_applies_the_schema_and_gives_up_on_an_unreachable_server)
{
    schema_t sc;
    fresh_schema(&sc);
    cr_assert_eq(eg_pg_migrate_retry(sc.dsn, 3, 10), EG_OK);
    eg_pg_t *pg = open_dsn(sc.dsn);
    cr_assert_eq(query_long(pg, "SELECT max(version) FROM schema_migrations", 0, NULL),
                 eg_pg_migrations_latest());
    eg_pg_close(pg);
    cr_assert_eq(eg_pg_migrate_retry(sc.dsn, 1, 10), EG_OK, "a second start has nothing to do");
    drop_schema(&sc);

    char dsn[256];
    snprintf(dsn, sizeof(dsn), "host=127.0.0.1 port=%d dbname=engage connect_timeout=3",
             closed_port());
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_eq(eg_pg_migrate_retry(dsn, 3, 200), EG_EUNAVAIL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_assert(waited >= 0.35, "3 tries 200 ms apart took only %.3f s", waited);
}

Test(pg, reconnects_outside_transaction)
{
    schema_t sc;
    fresh_schema(&sc);
    eg_pg_t *pg = open_dsn(sc.dsn);
    eg_pg_res_t *res = NULL;

    long before = query_long(pg, "SELECT pg_backend_pid()", 0, NULL);
    kill_backend(pg);
    cr_assert_eq(eg_pg_exec(pg, "SELECT pg_backend_pid(), current_schema()", 0, NULL, &res), EG_OK,
                 "%s", eg_pg_error(pg));
    cr_assert_neq(strtol(eg_pg_value(res, 0, 0), NULL, 10), before, "not a new session");
    cr_assert_str_eq(eg_pg_value(res, 0, 1), sc.name, "the reset lost the search_path");
    eg_pg_res_free(res);

    eg_pg_close(pg);
    drop_schema(&sc);
}

Test(pg, connection_lost_inside_transaction_is_unavailable)
{
    schema_t sc;
    fresh_schema(&sc);
    eg_pg_t *pg = open_dsn(sc.dsn);

    exec_ok(pg, "CREATE TABLE t (id int PRIMARY KEY)");
    cr_assert_eq(eg_pg_begin(pg), EG_OK);
    exec_ok(pg, "INSERT INTO t VALUES (1)");
    kill_backend(pg);
    cr_assert_eq(eg_pg_exec(pg, "INSERT INTO t VALUES (2)", 0, NULL, NULL), EG_EUNAVAIL);
    /* Still inside the (lost) transaction: no silent autocommit of later statements. */
    cr_assert_eq(eg_pg_exec(pg, "INSERT INTO t VALUES (3)", 0, NULL, NULL), EG_EUNAVAIL);
    cr_assert_eq(eg_pg_rollback(pg), EG_OK);
    cr_assert_eq(query_long(pg, "SELECT count(*) FROM t", 0, NULL), 0, "%s", eg_pg_error(pg));

    eg_pg_close(pg);
    drop_schema(&sc);
}

/* A session that went read-only under a writer (what a connection that landed on a standby
 * gets: SQLSTATE 25006) is of no use to it: outside a transaction the handle replaces the
 * session and the write goes through; inside one the call is EG_EUNAVAIL (retried by the
 * caller, never a silent EG_EIO) and the statement after the rollback is on a new session. */
Test(pg, read_only_session_is_unavailable_and_replaced)
{
    schema_t sc;
    fresh_schema(&sc);
    eg_pg_t *pg = open_dsn(sc.dsn);

    exec_ok(pg, "CREATE TABLE t (id int PRIMARY KEY)");
    long before = query_long(pg, "SELECT pg_backend_pid()", 0, NULL);
    exec_ok(pg, "SET default_transaction_read_only = on");
    cr_assert_eq(eg_pg_exec(pg, "INSERT INTO t VALUES (1)", 0, NULL, NULL), EG_OK,
                 "a write on a read-only session was not sent again on a new one: %s",
                 eg_pg_error(pg));
    cr_assert_neq(query_long(pg, "SELECT pg_backend_pid()", 0, NULL), before, "same session");

    exec_ok(pg, "SET default_transaction_read_only = on");
    cr_assert_eq(eg_pg_begin(pg), EG_OK);
    cr_assert_eq(eg_pg_exec(pg, "INSERT INTO t VALUES (2)", 0, NULL, NULL), EG_EUNAVAIL, "%s",
                 eg_pg_error(pg));
    cr_assert(strncmp(eg_pg_error(pg), "25006", 5) == 0, "%s", eg_pg_error(pg));
    cr_assert_eq(eg_pg_rollback(pg), EG_OK);
    cr_assert_eq(eg_pg_exec(pg, "INSERT INTO t VALUES (3)", 0, NULL, NULL), EG_OK, "%s",
                 eg_pg_error(pg));
    cr_assert_eq(query_long(pg, "SELECT count(*) FROM t", 0, NULL), 2);

    eg_pg_close(pg);
    drop_schema(&sc);
}

/* How often this session has executed the prepared statement name (PostgreSQL counts the plans
 * it used), or -1 when the session has no such statement. */
static long executions(eg_pg_t *pg, const char *name)
{
    eg_pg_res_t *res = NULL;
    const char *p[] = {name};
    cr_assert_eq(eg_pg_exec(pg,
                            "SELECT generic_plans + custom_plans FROM pg_prepared_statements "
                            "WHERE name = $1",
                            1, p, &res),
                 EG_OK, "%s", eg_pg_error(pg));
    long n = eg_pg_rows(res) == 1 ? strtol(eg_pg_value(res, 0, 0), NULL, 10) : -1;
    eg_pg_res_free(res);
    return n;
}

Test(pg, prepared_statements_are_prepared_once_and_again_when_lost)
{
    schema_t sc;
    fresh_schema(&sc);
    eg_pg_t *pg = open_dsn(sc.dsn);
    eg_pg_res_t *res = NULL;
    static const char sql[] = "SELECT $1::int + 1";
    const char *p[] = {"41"};

    for (int i = 0; i < 3; i++) {
        cr_assert_eq(eg_pg_exec_prepared(pg, "t_add", sql, 1, p, &res), EG_OK, "%s",
                     eg_pg_error(pg));
        cr_assert_str_eq(eg_pg_value(res, 0, 0), "42");
        eg_pg_res_free(res);
    }
    cr_assert_eq(executions(pg, "t_add"), 3, "not one prepared statement run three times");

    /* One name, one statement. */
    cr_assert_eq(eg_pg_exec_prepared(pg, "t_add", "SELECT $1::int + 2", 1, p, NULL), EG_EINVAL);

    /* The server forgot it (DEALLOCATE ALL): outside a transaction it is prepared again. */
    exec_ok(pg, "DEALLOCATE ALL");
    cr_assert_eq(eg_pg_exec_prepared(pg, "t_add", sql, 1, p, NULL), EG_OK, "%s", eg_pg_error(pg));
    cr_assert_eq(executions(pg, "t_add"), 1);
    /* Inside one the statement fails (the transaction is lost anyway); the next call works. */
    exec_ok(pg, "DEALLOCATE ALL");
    cr_assert_eq(eg_pg_begin(pg), EG_OK);
    cr_assert_eq(eg_pg_exec_prepared(pg, "t_add", sql, 1, p, NULL), EG_EIO);
    cr_assert_eq(eg_pg_rollback(pg), EG_OK);
    cr_assert_eq(eg_pg_exec_prepared(pg, "t_add", sql, 1, p, NULL), EG_OK, "%s", eg_pg_error(pg));

    /* A new session after a lost connection prepares it again. */
    kill_backend(pg);
    cr_assert_eq(eg_pg_exec_prepared(pg, "t_add", sql, 1, p, &res), EG_OK, "%s", eg_pg_error(pg));
    cr_assert_str_eq(eg_pg_value(res, 0, 0), "42");
    eg_pg_res_free(res);
    cr_assert_eq(executions(pg, "t_add"), 1);

    /* Errors are classified as eg_pg_exec's. */
    exec_ok(pg, "CREATE TABLE u (id int PRIMARY KEY)");
    const char *one[] = {"1"};
    cr_assert_eq(eg_pg_exec_prepared(pg, "t_ins", "INSERT INTO u VALUES ($1::int)", 1, one, NULL),
                 EG_OK);
    cr_assert_eq(eg_pg_exec_prepared(pg, "t_ins", "INSERT INTO u VALUES ($1::int)", 1, one, NULL),
                 EG_ECONFLICT);

    eg_pg_close(pg);
    drop_schema(&sc);
}

Test(pg, array_literals_carry_any_text_verbatim)
{
    eg_pg_t *pg = open_dsn(pg_dsn());
    eg_pg_res_t *res = NULL;
    eg_pg_array_t a, n;
    static const char *const values[] = {
        "plain", "", "a\"b", "c\\d", "{,}", "NULL", " spaced ", "x'); DROP TABLE t; --", "é\t\n"};
    size_t count = sizeof(values) / sizeof(values[0]);

    eg_pg_array_init(&a, 4096);
    for (size_t i = 0; i < count; i++) {
        eg_pg_array_add(&a, values[i]);
    }
    eg_pg_array_add(&a, NULL);
    eg_pg_array_init(&n, 4096);
    eg_pg_array_add_i64(&n, INT64_MIN);
    eg_pg_array_add_i64(&n, 0);
    eg_pg_array_add_i64(&n, INT64_MAX);
    cr_assert_eq(eg_pg_array_count(&a), count + 1);
    const char *p[] = {eg_pg_array_text(&a), eg_pg_array_text(&n)};
    cr_assert_not_null(p[0]);
    cr_assert_eq(eg_pg_exec(pg,
                            "SELECT x, x IS NULL FROM unnest($1::text[]) WITH ORDINALITY AS "
                            "t(x, i) ORDER BY i",
                            1, p, &res),
                 EG_OK, "%s", eg_pg_error(pg));
    cr_assert_eq(eg_pg_rows(res), (int)count + 1);
    for (size_t i = 0; i < count; i++) {
        cr_assert_str_eq(eg_pg_value(res, (int)i, 0), values[i]);
    }
    cr_assert_str_eq(eg_pg_value(res, (int)count, 1), "t", "NULL did not arrive as SQL NULL");
    eg_pg_res_free(res);
    cr_assert_eq(eg_pg_exec(pg, "SELECT array_to_string($1::bigint[], ' ')", 1, &p[1], &res), EG_OK,
                 "%s", eg_pg_error(pg));
    cr_assert_str_eq(eg_pg_value(res, 0, 0), "-9223372036854775808 0 9223372036854775807");
    eg_pg_res_free(res);

    /* Past its maximum it fails, and stays failed. */
    eg_pg_array_reset(&n);
    cr_assert_str_eq(eg_pg_array_text(&n), "{}");
    eg_pg_array_reset(&n);
    char big[5000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    eg_pg_array_add(&n, big);
    eg_pg_array_add(&n, "y");
    cr_assert_eq(eg_pg_array_status(&n), EG_ETOOBIG);
    cr_assert_null(eg_pg_array_text(&n));
    eg_pg_array_free(&a);
    eg_pg_array_free(&n);
    eg_pg_array_free(&n);
    eg_pg_close(pg);
}
