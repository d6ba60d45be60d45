/* Day partitions and retention of the history, with the real engage-archiver against the real
 * PostgreSQL (ENGAGE_PG_DSN) and NATS (ENGAGE_NATS_URL) of the test run.
 *
 * Each test gives its archivers a schema of its own (search_path in the DSN), so dropping
 * partitions never touches the suite's history, and ENGAGE_ARCHIVER_REQUESTS=0, so they answer
 * none of the suite's searches. The archivers create the partitions themselves; the test puts
 * history in them two ways: rows inserted before the archiver starts (they sit in the DEFAULT
 * partitions until the archiver creates their day and moves them), and events published on
 * JetStream that the archiver writes. Then an archiver started with the clock hook
 * ENGAGE_CLOCK_OFFSET_MS = 21 days sees "today + 1" as 20 days ago: its partitions must be
 * dropped, those within 14 days kept.
 *
 * The archivers get the parent-death signal, so a crashed test leaves none behind; their log
 * goes to a file whose path the failure messages name. */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engage.pb-c.h"
#include "engage/bus.h"
#include "engage/events.h"
#include "engage/httpclient.h"
#include "engage/ids.h"
#include "engage/json.h"
#include "engage/mem.h"
#include "engage/pg.h"
#include "engage/subjects.h"
#include "partitions.h"

extern char **environ;

#define DAY PART_MS_PER_DAY
#define START_MS 90000 /* start, migrations, first maintenance */
#define ROWS_MS 60000  /* a published event is written (after the stream's backlog) */
#define STOP_MS 5000
#define OFFSET_DAYS 21

static const char *const TABLES[] = {"callbacks", "callback_data", "callback_events"};

static const char *env(const char *name)
{
    const char *v = getenv(name);
    cr_assert(v != NULL && v[0] != '\0', "%s is not set: run the tests through `make test`", name);
    return v;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- PostgreSQL, in a schema of the test's own ---- */

static char schema[64], dsn[768];
static eg_pg_t *db; /* on the test's schema */

static eg_pg_t *open_pg(const char *d)
{
    eg_pg_t *pg = NULL;
    eg_status_t st = eg_pg_open(&pg, d);
    cr_assert_eq(st, EG_OK, "eg_pg_open: %s", eg_status_str(st));
    return pg;
}

static void make_schema(void)
{
    char id[EG_UUID_STR_LEN + 1], sql[128];
    const char *base = env("ENGAGE_PG_DSN");
    eg_uuid_v7_str(id);
    snprintf(schema, sizeof schema, "ret_%.8s%.4s", id + 24, id + 9);
    if (strncmp(base, "postgres://", 11) == 0 || strncmp(base, "postgresql://", 13) == 0)
        snprintf(dsn, sizeof dsn, "%s%coptions=-csearch_path%%3D%s", base,
                 strchr(base, '?') != NULL ? '&' : '?', schema);
    else
        snprintf(dsn, sizeof dsn, "%s options='-csearch_path=%s'", base, schema);
    eg_pg_t *admin = open_pg(base);
    snprintf(sql, sizeof sql, "CREATE SCHEMA %s", schema);
    cr_assert_eq(eg_pg_exec(admin, sql, 0, NULL, NULL), EG_OK, "%s", eg_pg_error(admin));
    eg_pg_close(admin);
    db = open_pg(dsn);
    cr_assert_eq(eg_pg_migrate(db, NULL), EG_OK, "%s", eg_pg_error(db));
}

static void drop_schema(void)
{
    char sql[128];
    eg_pg_close(db);
    db = NULL;
    eg_pg_t *admin = open_pg(env("ENGAGE_PG_DSN"));
    snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", schema);
    eg_pg_exec(admin, sql, 0, NULL, NULL);
    eg_pg_close(admin);
}

static long q_long(const char *sql, int n, const char *const *params)
{
    eg_pg_res_t *res = NULL;
    eg_status_t st = eg_pg_exec(db, sql, n, params, &res);
    cr_assert_eq(st, EG_OK, "%s: %s", sql, eg_pg_error(db));
    cr_assert_eq(eg_pg_rows(res), 1, "%s: no row", sql);
    const char *v = eg_pg_value(res, 0, 0);
    long r = v ? strtol(v, NULL, 10) : -1;
    eg_pg_res_free(res);
    return r;
}

static void exec_ok(const char *sql, int n, const char *const *params)
{
    eg_status_t st = eg_pg_exec(db, sql, n, params, NULL);
    cr_assert_eq(st, EG_OK, "%s: %s", sql, eg_pg_error(db));
}

/* Is <table>_<day> a partition of table in the test's schema? */
static bool is_partition(const char *table, int64_t day)
{
    char name[96];
    part_name(name, sizeof name, table, day);
    const char *p[2] = {table, name};
    return q_long("SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                  "WHERE i.inhparent = to_regclass($1) AND c.relname = $2",
                  2, p) == 1;
}

/* The partition holding a callback's row in table ("" when none; caller's buffer). */
static void where_is(const char *table, const char *id, char *out, size_t len)
{
    char sql[256];
    eg_pg_res_t *res = NULL;
    const char *p[1] = {id};
    snprintf(sql, sizeof sql, "SELECT tableoid::regclass::text FROM %s WHERE %s = $1::uuid", table,
             strcmp(table, "callbacks") == 0 ? "id" : "callback_id");
    cr_assert_eq(eg_pg_exec(db, sql, 1, p, &res), EG_OK, "%s", eg_pg_error(db));
    snprintf(out, len, "%s", eg_pg_rows(res) > 0 ? eg_pg_value(res, 0, 0) : "");
    eg_pg_res_free(res);
}

/* A callback's history rows (one row in each table) with a desired time, straight into the
 * parent tables: they land wherever PostgreSQL routes them. */
static void insert_history(const char *tenant, const char *id, int64_t desired)
{
    char ev[EG_UUID_STR_LEN + 1], t[24];
    eg_uuid_v7_str(ev);
    snprintf(t, sizeof t, "%" PRId64, desired);
    const char *pc[3] = {id, tenant, t};
    exec_ok("INSERT INTO callbacks (id, tenant_id, service, phone, desired_time, state, "
            "attempts, version, created_at, updated_at) VALUES ($1::uuid, $2::uuid, 'support', "
            "'+15550001234', to_timestamp($3::bigint / 1000.0), 'SCHEDULED', 0, 1, now(), now())",
            3, pc);
    const char *pd[2] = {id, t};
    exec_ok("INSERT INTO callback_data (callback_id, desired_time, user_data) VALUES ($1::uuid, "
            "to_timestamp($2::bigint / 1000.0), '{\"k\": 1}')",
            2, pd);
    const char *pe[3] = {ev, id, t};
    exec_ok("INSERT INTO callback_events (event_id, callback_id, desired_time, state, at) "
            "VALUES ($1::uuid, $2::uuid, to_timestamp($3::bigint / 1000.0), 'SCHEDULED', now())",
            3, pe);
}

static long rows_of(const char *id)
{
    const char *p[1] = {id};
    return q_long("SELECT (SELECT count(*) FROM callbacks WHERE id = $1::uuid) + "
                  "(SELECT count(*) FROM callback_data WHERE callback_id = $1::uuid) + "
                  "(SELECT count(*) FROM callback_events WHERE callback_id = $1::uuid)",
                  1, p);
}

/* ---- the archiver process ---- */

typedef struct {
    pid_t pid;
    char durable[64];
    char log[256];
    int port;
} arch_t;

#define MAX_ARCH 2
static arch_t *running[MAX_ARCH];
static eg_bus_t *bus;

static char *log_text(const arch_t *a)
{
    FILE *f = fopen(a->log, "r");
    if (f == NULL)
        return eg_xstrdup("");
    char *buf = eg_xcalloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static bool http_get(const arch_t *a, const char *path, int *status, char **body)
{
    char url[128];
    eg_http_resp_t r;
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", a->port, path);
    if (eg_http_fetch("GET", url, NULL, NULL, 0, 2000, &r) != EG_OK)
        return false;
    *status = r.status;
    if (body != NULL)
        *body = eg_xstrdup(r.body ? r.body : "");
    eg_http_resp_free(&r);
    return true;
}

/* A counter of the archiver's /metrics (-1 when absent). */
static long metric(const arch_t *a, const char *name)
{
    char key[128];
    long v = -1;
    int status = 0;
    char *body = NULL;
    snprintf(key, sizeof key, "\n%s ", name);
    if (http_get(a, "/metrics", &status, &body) && status == 200) {
        char *line = strstr(body, key);
        if (line != NULL)
            v = atol(line + strlen(key));
    }
    free(body);
    return v;
}

/* Start an archiver on the test's schema; offset_ms is the clock hook. durable NULL: a durable
 * consumer of its own (which replays the stream from its start); else that one's, to continue
 * where another archiver stopped. arch_ready waits for it. */
static void arch_spawn(arch_t *a, int64_t offset_ms, const char *durable)
{
    char id[EG_UUID_STR_LEN + 1], bin[512], port_var[] = "ENGAGE_HTTP_PORT=0";
    char durable_var[128], dsn_var[900], offset_var[64], asan_var[512];
    char requests_var[] = "ENGAGE_ARCHIVER_REQUESTS=0";
    size_t n = 0, cap = 16;

    eg_uuid_v7_str(id);
    memset(a, 0, sizeof *a);
    if (durable != NULL)
        snprintf(a->durable, sizeof a->durable, "%s", durable);
    else
        snprintf(a->durable, sizeof a->durable, "rettest-%s", id);
    snprintf(a->log, sizeof a->log, "%s/engage-archiver-%s.log",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", a->durable);
    snprintf(bin, sizeof bin, "%s/engage-archiver", env("ENGAGE_BIN_DIR"));
    env("ENGAGE_NATS_URL");
    snprintf(durable_var, sizeof durable_var, "ENGAGE_ARCHIVER_DURABLE=%s", a->durable);
    snprintf(dsn_var, sizeof dsn_var, "ENGAGE_PG_DSN=%s", dsn);
    snprintf(offset_var, sizeof offset_var, "ENGAGE_CLOCK_OFFSET_MS=%" PRId64, offset_ms);
    const char *asan = getenv("ENGAGE_SERVICE_ASAN_OPTIONS");
    snprintf(asan_var, sizeof asan_var, "ASAN_OPTIONS=%s", asan ? asan : "");

    for (char **e = environ; *e; e++)
        cap++;
    char **envp = eg_xcalloc(cap, sizeof *envp);
    static const char *const replaced[] = {
        "ENGAGE_HTTP_PORT=", "ENGAGE_ARCHIVER_DURABLE=", "ENGAGE_PG_DSN=",
        "ENGAGE_CLOCK_OFFSET_MS=", "ENGAGE_ARCHIVER_REQUESTS="};
    for (char **e = environ; *e; e++) {
        bool skip = asan && strncmp(*e, "ASAN_OPTIONS=", 13) == 0;
        for (size_t i = 0; i < sizeof replaced / sizeof *replaced && !skip; i++)
            skip = strncmp(*e, replaced[i], strlen(replaced[i])) == 0;
        if (!skip)
            envp[n++] = *e;
    }
    envp[n++] = port_var;
    envp[n++] = durable_var;
    envp[n++] = dsn_var;
    envp[n++] = offset_var;
    envp[n++] = requests_var;
    if (asan)
        envp[n++] = asan_var;
    envp[n] = NULL;
    char *argv[] = {bin, NULL};
    pid_t parent = getpid();

    a->pid = fork();
    cr_assert_geq(a->pid, 0, "fork failed");
    if (a->pid == 0) {
        /* Only async-signal-safe calls between fork and exec: the parent has threads. */
        int fd = open(a->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        execve(bin, argv, envp);
        _exit(127);
    }
    free(envp);
    for (int i = 0; i < MAX_ARCH; i++) {
        if (running[i] == NULL) {
            running[i] = a;
            break;
        }
    }
}

/* Wait until the archiver listens and has finished its first maintenance run. */
static void arch_ready(arch_t *a)
{
    int64_t deadline = mono_ms() + START_MS;
    while (a->port == 0 && mono_ms() < deadline) {
        char *text = log_text(a);
        char *p = strstr(text, "listening on http://");
        if (p != NULL && (p = strchr(p + 20, ':')) != NULL)
            a->port = atoi(p + 1);
        free(text);
        int status;
        cr_assert_eq(waitpid(a->pid, &status, WNOHANG), 0, "the archiver exited; see %s", a->log);
        if (a->port == 0)
            sleep_ms(20);
    }
    cr_assert_gt(a->port, 0, "the archiver did not listen; see %s", a->log);
    while (metric(a, "engage_archiver_maintenance_runs_total") < 1 && mono_ms() < deadline)
        sleep_ms(50);
    cr_assert_geq(metric(a, "engage_archiver_maintenance_runs_total"), 1,
                  "no maintenance run finished; see %s", a->log);
}

static void arch_start(arch_t *a, int64_t offset_ms, const char *durable)
{
    arch_spawn(a, offset_ms, durable);
    arch_ready(a);
}

static void js_delete_consumer(const char *durable)
{
    char subject[160];
    void *reply = NULL;
    size_t len = 0;
    snprintf(subject, sizeof subject, "$JS.API.CONSUMER.DELETE.%s.%s", EG_STREAM_EVENTS, durable);
    if (eg_bus_request(bus, subject, "", 0, NULL, 5000, &reply, &len) == EG_OK)
        free(reply);
}

/* SIGTERM and wait; asserts a clean exit. keep_consumer: leave its durable for another. */
static void arch_stop(arch_t *a, bool keep_consumer)
{
    int status = 0, rc = -1;
    int64_t t0 = mono_ms();
    kill(a->pid, SIGTERM);
    while (mono_ms() - t0 < STOP_MS) {
        if (waitpid(a->pid, &status, WNOHANG) == a->pid) {
            rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            break;
        }
        sleep_ms(10);
    }
    if (rc == -1) {
        kill(a->pid, SIGKILL);
        waitpid(a->pid, &status, 0);
    }
    for (int i = 0; i < MAX_ARCH; i++)
        if (running[i] == a)
            running[i] = NULL;
    if (!keep_consumer)
        js_delete_consumer(a->durable);
    cr_assert_eq(rc, 0, "the archiver exited with %d; see %s", rc, a->log);
    unlink(a->log);
}

/* Publish a SCHEDULED event the way the outbox relay does. */
static void publish(const char *tenant, const char *id, int64_t desired)
{
    char ev_id[EG_UUID_STR_LEN + 1], subject[128];
    Eg__Event ev = EG__EVENT__INIT;
    Eg__Callback cb = EG__CALLBACK__INIT;
    eg_uuid_v7_str(ev_id);
    ev.event_id = ev_id;
    ev.at_ms = now_ms();
    ev.callback = &cb;
    cb.id = (char *)id;
    cb.tenant_id = (char *)tenant;
    cb.service = (char *)"support";
    cb.phone = (char *)"+15550001234";
    cb.desired_time_ms = desired;
    cb.created_ms = ev.at_ms;
    cb.updated_ms = ev.at_ms;
    cb.state = EG__STATE__STATE_SCHEDULED;
    cb.version = 1;
    cb.user_data_json = (char *)"{\"k\": 2}";
    size_t len = eg__event__get_packed_size(&ev);
    uint8_t *buf = eg_xmalloc(len);
    eg__event__pack(&ev, buf);
    snprintf(subject, sizeof subject, "%s%s", EG_SUBJ_EVENTS_PREFIX, tenant);
    eg_status_t st = eg_bus_js_publish(bus, subject, buf, len, ev_id, NULL, 5000, NULL);
    free(buf);
    cr_assert_eq(st, EG_OK, "publish: %s", eg_status_str(st));
}

static void wait_rows(const char *id, long want, const arch_t *a)
{
    int64_t deadline = mono_ms() + ROWS_MS;
    while (rows_of(id) != want && mono_ms() < deadline)
        sleep_ms(50);
    cr_assert_eq(rows_of(id), want, "callback %s: not archived; see %s", id, a->log);
}

static void setup(void)
{
    eg_httpc_global_init();
    cr_assert_eq(eg_bus_open(&bus, env("ENGAGE_NATS_URL"), "retention-test", 5000), EG_OK);
    cr_assert_eq(eg_events_stream_ensure(bus), EG_OK);
    make_schema();
}

static void teardown(void)
{
    for (int i = 0; i < MAX_ARCH; i++) {
        if (running[i] != NULL) {
            kill(running[i]->pid, SIGKILL);
            waitpid(running[i]->pid, NULL, 0);
            js_delete_consumer(running[i]->durable);
        }
    }
    drop_schema();
    eg_bus_close(bus);
    eg_bus_shutdown();
    eg_httpc_global_cleanup();
}

TestSuite(retention, .init = setup, .fini = teardown, .timeout = 240);

Test(retention, partitions_past_14_days_are_dropped_with_a_shortened_clock)
{
    char tenant[EG_UUID_STR_LEN + 1], moved[EG_UUID_STR_LEN + 1], kept[EG_UUID_STR_LEN + 1],
        old_default[EG_UUID_STR_LEN + 1], far_default[EG_UUID_STR_LEN + 1],
        published[EG_UUID_STR_LEN + 1], where[128], want[128];
    int64_t now = now_ms(), today = part_day_of(now), noon = 12 * 3600 * 1000;
    eg_uuid_v7_str(tenant);
    eg_uuid_v7_str(moved);
    eg_uuid_v7_str(kept);
    eg_uuid_v7_str(old_default);
    eg_uuid_v7_str(far_default);
    eg_uuid_v7_str(published);

    /* History written before any day partition exists: all of it lands in DEFAULT. */
    insert_history(tenant, moved, (today + 1) * DAY + noon);
    insert_history(tenant, kept, (today + 10) * DAY + noon);
    insert_history(tenant, old_default, (today - 3) * DAY + noon);  /* outside the window */
    insert_history(tenant, far_default, (today + 20) * DAY + noon); /* outside the window */
    for (size_t t = 0; t < 3; t++) {
        where_is(TABLES[t], moved, where, sizeof where);
        snprintf(want, sizeof want, "%s_default", TABLES[t]);
        cr_assert_str_eq(where, want, "precondition: no day partitions yet");
    }

    /* 1. An archiver on real time creates today - 1 .. today + 15 and moves the DEFAULT rows
     * of those days into them. */
    arch_t a;
    arch_start(&a, 0, NULL);
    for (size_t t = 0; t < 3; t++) {
        for (int64_t d = today - PART_DAYS_BEFORE; d <= today + PART_DAYS_AFTER; d++)
            cr_assert(is_partition(TABLES[t], d), "%s: no partition for day %+" PRId64, TABLES[t],
                      d - today);
        cr_assert_not(is_partition(TABLES[t], today + PART_DAYS_AFTER + 1));
        where_is(TABLES[t], moved, where, sizeof where);
        part_name(want, sizeof want, TABLES[t], today + 1);
        cr_assert_str_eq(where, want, "%s: the row was not moved out of DEFAULT", TABLES[t]);
        where_is(TABLES[t], kept, where, sizeof where);
        part_name(want, sizeof want, TABLES[t], today + 10);
        cr_assert_str_eq(where, want);
        where_is(TABLES[t], old_default, where, sizeof where);
        snprintf(want, sizeof want, "%s_default", TABLES[t]);
        cr_assert_str_eq(where, want, "a row outside the window left DEFAULT");
    }
    cr_assert_geq(metric(&a, "engage_archiver_default_rows_moved_total"), 6);
    cr_assert_eq(metric(&a, "engage_archiver_maintenance_errors_total"), 0, "see %s", a.log);
    /* The primary keys came with the partitions: a duplicate row is refused. */
    {
        char t[24];
        snprintf(t, sizeof t, "%" PRId64, (today + 1) * DAY + noon);
        const char *p[3] = {moved, tenant, t};
        cr_assert_eq(eg_pg_exec(db,
                                "INSERT INTO callbacks (id, tenant_id, service, phone, "
                                "desired_time, state, attempts, version, created_at, updated_at) "
                                "VALUES ($1::uuid, $2::uuid, 's', '+15550001234', "
                                "to_timestamp($3::bigint / 1000.0), 'QUEUED', 0, 2, now(), now())",
                                3, p, NULL),
                     EG_ECONFLICT);
    }

    /* History the archiver writes itself lands in its partition. */
    publish(tenant, published, (today + 1) * DAY + noon);
    wait_rows(published, 3, &a);
    where_is("callback_events", published, where, sizeof where);
    part_name(want, sizeof want, "callback_events", today + 1);
    cr_assert_str_eq(where, want);
    /* The next archiver continues on this one's consumer: a new durable would replay the
     * stream, and with it `published` (a replay re-creates history past retention until the
     * next run deletes it from DEFAULT). */
    arch_stop(&a, true);

    /* GDPR tombstones: one past the tombstones' retention as of the shifted clock, one not. */
    char tomb_old[EG_UUID_STR_LEN + 1], tomb_new[EG_UUID_STR_LEN + 1];
    eg_uuid_v7_str(tomb_old);
    eg_uuid_v7_str(tomb_new);
    const char *pt[3] = {tomb_old, tomb_new, tenant};
    exec_ok("INSERT INTO gdpr_erased (callback_id, tenant_id, erased_at) VALUES "
            "($1::uuid, $3::uuid, now()), ($2::uuid, $3::uuid, now() + interval '10 days')",
            3, pt);

    /* 2. Now + 21 days: today + 1 is 20 days ago. Its partitions go (and with them the rows),
     * as does every day before today + 7; from today + 7 on, everything stays. */
    arch_t b;
    arch_start(&b, (int64_t)OFFSET_DAYS * DAY, a.durable);
    int64_t cutoff = part_day_of(now + (OFFSET_DAYS - PART_RETENTION_DAYS) * DAY);
    for (size_t t = 0; t < 3; t++) {
        for (int64_t d = today - PART_DAYS_BEFORE; d < cutoff; d++)
            cr_assert_not(is_partition(TABLES[t], d), "%s: day %+" PRId64 " was not dropped",
                          TABLES[t], d - today);
        for (int64_t d = cutoff; d <= today + PART_DAYS_AFTER; d++)
            cr_assert(is_partition(TABLES[t], d), "%s: day %+" PRId64 " was dropped", TABLES[t],
                      d - today);
    }
    cr_assert_eq(rows_of(moved), 0, "the rows of a dropped day remain");
    cr_assert_eq(rows_of(published), 0);
    cr_assert_eq(rows_of(old_default), 0, "old rows in DEFAULT were not deleted");
    cr_assert_eq(rows_of(kept), 3, "rows within 14 days were lost");
    cr_assert_eq(rows_of(far_default), 3, "future rows in DEFAULT were deleted");
    cr_assert_geq(metric(&b, "engage_archiver_partitions_dropped_total"),
                  3 * (cutoff - (today - PART_DAYS_BEFORE)));
    cr_assert_geq(metric(&b, "engage_archiver_retention_rows_deleted_total"), 3);
    cr_assert_eq(metric(&b, "engage_archiver_maintenance_errors_total"), 0, "see %s", b.log);
    const char *p1[1] = {tomb_old};
    cr_assert_eq(q_long("SELECT count(*) FROM gdpr_erased WHERE callback_id = $1::uuid", 1, p1), 0,
                 "an old tombstone was kept");
    const char *p2[1] = {tomb_new};
    cr_assert_eq(q_long("SELECT count(*) FROM gdpr_erased WHERE callback_id = $1::uuid", 1, p2), 1,
                 "a recent tombstone was purged");
    arch_stop(&b, false);
}

Test(retention, two_archivers_share_the_maintenance)
{
    /* Started together on an empty schema: both run maintenance under the advisory lock; every
     * partition exists once and neither reports an error. */
    arch_t a, b;
    int64_t today = part_day_of(now_ms());
    arch_spawn(&a, 0, NULL);
    arch_spawn(&b, 0, NULL);
    arch_ready(&a);
    arch_ready(&b);
    for (size_t t = 0; t < 3; t++) {
        const char *p[1] = {TABLES[t]};
        long n = q_long("SELECT count(*) FROM pg_inherits WHERE inhparent = to_regclass($1)", 1, p);
        cr_assert_eq(n, PART_DAYS_BEFORE + PART_DAYS_AFTER + 1 + 1, "%s: %ld partitions", TABLES[t],
                     n); /* the days and DEFAULT */
        cr_assert(is_partition(TABLES[t], today));
    }
    cr_assert_eq(metric(&a, "engage_archiver_maintenance_errors_total"), 0, "see %s", a.log);
    cr_assert_eq(metric(&b, "engage_archiver_maintenance_errors_total"), 0, "see %s", b.log);
    cr_assert_eq(metric(&a, "engage_archiver_partitions_created_total") +
                     metric(&b, "engage_archiver_partitions_created_total"),
                 3 * (PART_DAYS_BEFORE + PART_DAYS_AFTER + 1), "a partition was made twice");
    arch_stop(&a, false);
    arch_stop(&b, false);
}
