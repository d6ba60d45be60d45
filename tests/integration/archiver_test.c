/* Integration tests of engage-archiver against the real NATS (ENGAGE_NATS_URL) and PostgreSQL
 * (ENGAGE_PG_DSN) of the test run.
 *
 * Each test starts $ENGAGE_BIN_DIR/engage-archiver as a child process, publishes Event
 * protobufs on the ENGAGE_EVENTS stream the way the scheduler's outbox relay does
 * (engage.events.<tenant>, message id = event id), and looks at the rows in PostgreSQL.
 * Criterion runs tests in parallel, in forked processes, and every archiver reads all of
 * engage.events.>, so each test publishes for a tenant of its own, asserts only that tenant's
 * rows, and gives its archiver a durable consumer of its own (ENGAGE_ARCHIVER_DURABLE), which
 * starts at the beginning of the stream. A fresh durable first works through everything earlier
 * tests published, so each test waits for one "warm-up" event before it times anything; after
 * that, rows must appear within ROWS_MS. (The batch writer's rules without the bus:
 * tests/integration/archiver/archive_test.c.)
 *
 * The spawned archivers get the parent-death signal, so a crashed test leaves none behind; their
 * log goes to a file whose path the failure messages name. */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "archiver_fixtures.h"
#include "engage.pb-c.h"
#include "engage/bus.h"
#include "engage/events.h"
#include "engage/httpclient.h"
#include "engage/ids.h"
#include "engage/json.h"
#include "engage/mem.h"
#include "engage/pg.h"
#include "engage/subjects.h"
#include "history.h"

extern char **environ;

#define ROWS_MS 2000  /* an event's rows are committed within this, once warmed up */
#define WARM_MS 60000 /* start, migrations, and the replay of the stream so far */
#define STOP_MS 5000  /* SIGTERM to exit */

/* ---- environment, time ---- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- PostgreSQL ---- */

static eg_pg_t *db;

/* Poll until the query's first value is want, for up to ms; returns whether it got there. */
static bool wait_str(const char *sql, const char *p1, const char *want, int64_t ms)
{
    const char *params[1] = {p1};
    int64_t deadline = mono_ms() + ms;
    for (;;) {
        char *v = q_str(db, sql, 1, params);
        bool ok = v != NULL && strcmp(v, want) == 0;
        free(v);
        if (ok)
            return true;
        if (mono_ms() >= deadline)
            return false;
        sleep_ms(25);
    }
}

/* ---- the bus ---- */

static eg_bus_t *bus;
static char tenant[EG_UUID_STR_LEN + 1];

static void publish_raw(const char *tenant_id, const void *data, size_t len, const char *msg_id)
{
    char subject[128];
    snprintf(subject, sizeof subject, "%s%s", EG_SUBJ_EVENTS_PREFIX, tenant_id);
    eg_status_t st =
        eg_bus_js_publish(bus, subject, data, len, msg_id, "corr-archiver-test", 5000, NULL);
    cr_assert_eq(st, EG_OK, "publish on %s: %s", subject, eg_status_str(st));
}

/* Publish the event of s with message id msg_id (NULL: the event id, as the relay does).
 * Returns the event id in out (may be NULL). */
static void publish(const spec_t *s, const char *msg_id, char out[EG_UUID_STR_LEN + 1])
{
    event_t e;
    build(&e, s);
    size_t len = eg__event__get_packed_size(&e.ev);
    uint8_t *buf = eg_xmalloc(len ? len : 1);
    eg__event__pack(&e.ev, buf);
    publish_raw(s->tenant_id, buf, len, msg_id ? msg_id : e.event_id);
    free(buf);
    if (out != NULL)
        snprintf(out, EG_UUID_STR_LEN + 1, "%s", e.event_id);
}

/* A JetStream API request; the parsed JSON answer (caller frees). */
static eg_json_t *js_api(const char *subject)
{
    void *reply = NULL;
    size_t len = 0;
    char err[128];
    eg_status_t st = eg_bus_request(bus, subject, "", 0, NULL, 5000, &reply, &len);
    cr_assert_eq(st, EG_OK, "%s: %s", subject, eg_status_str(st));
    eg_json_t *j = eg_json_parse(reply, len, 0, err, sizeof err);
    free(reply);
    cr_assert_not_null(j, "%s: %s", subject, err);
    return j;
}

/* ---- the archiver process ---- */

#define MAX_ARCH 4

typedef struct {
    pid_t pid;
    char durable[64];
    char log[256];
    int port;
} arch_t;

static arch_t *running[MAX_ARCH];

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

/* Start an archiver with a durable of its own and wait until /readyz says ready. */
static void arch_start(arch_t *a)
{
    char id[EG_UUID_STR_LEN + 1], bin[512], port_var[] = "ENGAGE_HTTP_PORT=0";
    char durable_var[128], asan_var[512];
    size_t n = 0, cap = 8;

    uuid(id);
    memset(a, 0, sizeof *a);
    snprintf(a->durable, sizeof a->durable, "archtest-%s", id);
    snprintf(a->log, sizeof a->log, "%s/engage-archiver-%s.log",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", a->durable);
    snprintf(bin, sizeof bin, "%s/engage-archiver", env("ENGAGE_BIN_DIR"));
    env("ENGAGE_NATS_URL");
    env("ENGAGE_PG_DSN");
    snprintf(durable_var, sizeof durable_var, "ENGAGE_ARCHIVER_DURABLE=%s", a->durable);
    /* The services' sanitizer settings when the runner gives them (tests keep ASan's own). */
    const char *asan = getenv("ENGAGE_SERVICE_ASAN_OPTIONS");
    snprintf(asan_var, sizeof asan_var, "ASAN_OPTIONS=%s", asan ? asan : "");

    for (char **e = environ; *e; e++)
        cap++;
    char **envp = eg_xcalloc(cap, sizeof *envp);
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, "ENGAGE_HTTP_PORT=", 17) == 0 ||
            strncmp(*e, "ENGAGE_ARCHIVER_DURABLE=", 24) == 0 ||
            (asan && strncmp(*e, "ASAN_OPTIONS=", 13) == 0))
            continue;
        envp[n++] = *e;
    }
    envp[n++] = port_var;
    envp[n++] = durable_var;
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

    /* The port it listens on, from its log: "... listening on http://127.0.0.1:<port>". */
    int64_t deadline = mono_ms() + WARM_MS;
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
    int status = 0;
    while (mono_ms() < deadline) {
        if (http_get(a, "/readyz", &status, NULL) && status == 200)
            break;
        sleep_ms(50);
    }
    cr_assert_eq(status, 200, "the archiver did not get ready; see %s", a->log);
}

/* SIGTERM; the exit status (-1 when it did not exit within ms, then killed). */
static int arch_stop(arch_t *a, int64_t ms, int64_t *took_ms)
{
    int status = 0, rc = -1;
    int64_t t0 = mono_ms();
    kill(a->pid, SIGTERM);
    while (mono_ms() - t0 < ms) {
        pid_t w = waitpid(a->pid, &status, WNOHANG);
        if (w == a->pid) {
            rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            break;
        }
        sleep_ms(10);
    }
    if (took_ms != NULL)
        *took_ms = mono_ms() - t0;
    if (rc == -1) {
        kill(a->pid, SIGKILL);
        waitpid(a->pid, &status, 0);
    }
    for (int i = 0; i < MAX_ARCH; i++)
        if (running[i] == a)
            running[i] = NULL;
    /* Its durable consumer is of no more use: remove it from the server. */
    char subject[160];
    snprintf(subject, sizeof subject, "$JS.API.CONSUMER.DELETE.%s.%s", EG_STREAM_EVENTS,
             a->durable);
    eg_json_free(js_api(subject));
    if (rc == 0)
        unlink(a->log);
    return rc;
}

static void arch_stop_ok(arch_t *a)
{
    int64_t took = 0;
    char log[256];
    snprintf(log, sizeof log, "%s", a->log);
    int rc = arch_stop(a, STOP_MS, &took);
    cr_assert_eq(rc, 0, "the archiver exited with %d after %lld ms; see %s", rc, (long long)took,
                 log);
}

/* Wait until the consumer has nothing pending or unacknowledged. */
static bool caught_up(const char *durable, int64_t ms)
{
    char subject[160];
    snprintf(subject, sizeof subject, "$JS.API.CONSUMER.INFO.%s.%s", EG_STREAM_EVENTS, durable);
    int64_t deadline = mono_ms() + ms;
    for (;;) {
        eg_json_t *j = js_api(subject);
        eg_json_t *pending = eg_json_get(j, "num_pending");
        eg_json_t *unacked = eg_json_get(j, "num_ack_pending");
        bool done = pending && unacked && eg_json_int(pending) == 0 && eg_json_int(unacked) == 0;
        eg_json_free(j);
        if (done)
            return true;
        if (mono_ms() >= deadline)
            return false;
        sleep_ms(50);
    }
}

/* Publish a warm-up callback for the tenant and wait (generously) until it is written and the
 * archiver's consumer has nothing pending: from then on the archiver is through the stream's
 * backlog and timings mean something. (Other tests' archivers read the same events, so a row
 * alone does not show that this archiver got there.) */
static void warm_up(const arch_t *a)
{
    char cb[EG_UUID_STR_LEN + 1];
    uuid(cb);
    spec_t s = {
        .callback_id = cb, .tenant_id = tenant, .version = 1, .state = EG__STATE__STATE_SCHEDULED};
    publish(&s, NULL, NULL);
    cr_assert(wait_str(SQL_STATE, cb, "SCHEDULED/-/0/v1", WARM_MS),
              "the warm-up event was not archived; see %s", a->log);
    cr_assert(caught_up(a->durable, WARM_MS), "the archiver did not catch up; see %s", a->log);
}

/* Poll /metrics until the sample of name (a counter without labels) reaches min; its value. */
static long wait_metric(const arch_t *a, const char *name, long min, int64_t ms)
{
    char key[128];
    long v = -1;
    int64_t deadline = mono_ms() + ms;
    snprintf(key, sizeof key, "\n%s ", name);
    do {
        int status = 0;
        char *body = NULL;
        if (http_get(a, "/metrics", &status, &body) && status == 200) {
            char *line = strstr(body, key);
            if (line != NULL)
                v = atol(line + strlen(key));
        }
        free(body);
        if (v >= min)
            break;
        sleep_ms(50);
    } while (mono_ms() < deadline);
    return v;
}

static void arch_setup(void)
{
    eg_httpc_global_init();
    cr_assert_eq(eg_bus_open(&bus, env("ENGAGE_NATS_URL"), "archiver-test", 5000), EG_OK);
    cr_assert_eq(eg_events_stream_ensure(bus), EG_OK);
    db = open_pg(env("ENGAGE_PG_DSN"));
    /* The archiver applies migrations too; the test reads the tables before it may run. */
    cr_assert_eq(eg_pg_migrate(db, NULL), EG_OK, "%s", eg_pg_error(db));
    uuid(tenant);
}

static void arch_teardown(void)
{
    for (int i = 0; i < MAX_ARCH; i++)
        if (running[i] != NULL)
            arch_stop(running[i], STOP_MS, NULL);
    eg_pg_close(db);
    eg_bus_close(bus);
    eg_bus_shutdown();
    eg_httpc_global_cleanup();
}

TestSuite(archiver, .init = arch_setup, .fini = arch_teardown, .timeout = 180);

Test(archiver, lifecycle_rows_appear_with_state_reason_and_attempts)
{
    arch_t a;
    char cb[EG_UUID_STR_LEN + 1], first[EG_UUID_STR_LEN + 1], last[EG_UUID_STR_LEN + 1];
    arch_start(&a);
    warm_up(&a);
    uuid(cb);

    int64_t t = mono_ms();
    spec_t s = {.callback_id = cb,
                .tenant_id = tenant,
                .version = 1,
                .state = EG__STATE__STATE_SCHEDULED,
                .user_data = "{\"orderId\": \"A-17\", \"vip\": true}"};
    publish(&s, NULL, first);
    cr_assert(wait_str(SQL_STATE, cb, "SCHEDULED/-/0/v1", ROWS_MS),
              "the created callback was not archived within %d ms; see %s", ROWS_MS, a.log);
    cr_assert_lt(mono_ms() - t, ROWS_MS);

    const struct {
        Eg__State state, from;
        Eg__Reason reason;
        uint32_t attempts;
    } steps[] = {
        {EG__STATE__STATE_QUEUED, EG__STATE__STATE_SCHEDULED, EG__REASON__REASON_NONE, 0},
        {EG__STATE__STATE_ROUTING, EG__STATE__STATE_QUEUED, EG__REASON__REASON_NONE, 1},
        {EG__STATE__STATE_PROCESSING, EG__STATE__STATE_ROUTING, EG__REASON__REASON_NONE, 1},
        {EG__STATE__STATE_COMPLETED, EG__STATE__STATE_PROCESSING,
         EG__REASON__REASON_AGENT_CONNECTED, 1},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        s.version = i + 2;
        s.state = steps[i].state;
        s.from = steps[i].from;
        s.reason = steps[i].reason;
        s.attempts = steps[i].attempts;
        publish(&s, NULL, last);
    }
    cr_assert(wait_str(SQL_STATE, cb, "COMPLETED/AGENT_CONNECTED/1/v5", ROWS_MS),
              "the completed state was not archived within %d ms; see %s", ROWS_MS, a.log);

    const char *p[1] = {cb};
    cr_assert_eq(q_long(db, SQL_NROWS, 1, p), 1);
    cr_assert_eq(q_long(db, SQL_NEVENTS, 1, p), 5);
    char *row =
        q_str(db,
              "SELECT tenant_id || ' ' || service || ' ' || phone || ' ' || "
              "(extract(epoch FROM desired_time) * 1000)::bigint || ' ' || "
              "(extract(epoch FROM created_at) * 1000)::bigint || ' ' || "
              "(extract(epoch FROM updated_at) * 1000)::bigint FROM callbacks WHERE id = $1",
              1, p);
    char want[256];
    snprintf(want, sizeof want, "%s support +15550001234 %lld %lld %lld", tenant, (long long)T0,
             (long long)(T0 - 86400000), (long long)(T0 - 86400000 + 5000));
    cr_assert_str_eq(row, want);
    free(row);

    /* The history: one row per transition, in order, with from-state and correlation id (this
     * one is not a UUID, so it is kept in detail). */
    char *hist = q_str(db,
                       "SELECT string_agg(state || ':' || coalesce(reason, '-') || ':' || attempt "
                       "|| ':' || coalesce(from_state, '-'), ' ' ORDER BY at) "
                       "FROM callback_events WHERE callback_id = $1",
                       1, p);
    cr_assert_str_eq(hist, "SCHEDULED:-:0:- QUEUED:-:0:SCHEDULED ROUTING:-:1:QUEUED "
                           "PROCESSING:-:1:ROUTING COMPLETED:AGENT_CONNECTED:1:PROCESSING");
    free(hist);
    const char *pe[1] = {last};
    char *corr = q_str(db,
                       "SELECT detail->>'corrId' || '/' || coalesce(corr_id::text, '-') FROM "
                       "callback_events WHERE event_id = $1",
                       1, pe);
    cr_assert_str_eq(corr, "corr-archiver-test/-");
    free(corr);
    const char *pf[1] = {first};
    cr_assert_eq(q_long(db,
                        "SELECT (extract(epoch FROM at) * 1000)::bigint FROM callback_events "
                        "WHERE event_id = $1",
                        1, pf),
                 T0 - 86400000 + 1000);
    char *ud =
        q_str(db, "SELECT user_data->>'orderId' FROM callback_data WHERE callback_id = $1", 1, p);
    cr_assert_str_eq(ud, "A-17");
    free(ud);
    arch_stop_ok(&a);
}

Test(archiver, duplicate_event_adds_no_second_row)
{
    arch_t a;
    char cb[EG_UUID_STR_LEN + 1], ev[EG_UUID_STR_LEN + 1], dup_id[64];
    arch_start(&a);
    warm_up(&a);
    uuid(cb);

    spec_t s = {
        .callback_id = cb, .tenant_id = tenant, .version = 1, .state = EG__STATE__STATE_SCHEDULED};
    publish(&s, NULL, ev);
    /* The same event again, past JetStream's dedupe (a new message id): a relay retry after the
     * duplicate window. */
    s.event_id = ev;
    snprintf(dup_id, sizeof dup_id, "%s-again", ev);
    publish(&s, dup_id, NULL);
    /* A later event, so that when it is in, the duplicate has been handled. */
    s.event_id = NULL;
    s.version = 2;
    s.state = EG__STATE__STATE_QUEUED;
    s.from = EG__STATE__STATE_SCHEDULED;
    publish(&s, NULL, NULL);
    cr_assert(wait_str(SQL_STATE, cb, "QUEUED/-/0/v2", ROWS_MS), "see %s", a.log);

    const char *p[1] = {cb};
    const char *pe[1] = {ev};
    cr_assert_eq(q_long(db, "SELECT count(*) FROM callback_events WHERE event_id = $1", 1, pe), 1);
    cr_assert_eq(q_long(db, SQL_NEVENTS, 1, p), 2);
    cr_assert_eq(q_long(db, SQL_NROWS, 1, p), 1);
    arch_stop_ok(&a);
}

Test(archiver, older_version_never_moves_state_back)
{
    arch_t a;
    char cb[EG_UUID_STR_LEN + 1], marker[EG_UUID_STR_LEN + 1];
    arch_start(&a);
    warm_up(&a);
    uuid(cb);
    uuid(marker);

    spec_t s = {
        .callback_id = cb, .tenant_id = tenant, .version = 1, .state = EG__STATE__STATE_SCHEDULED};
    publish(&s, NULL, NULL);
    spec_t done = s;
    done.version = 3;
    done.state = EG__STATE__STATE_COMPLETED;
    done.reason = EG__REASON__REASON_CANCELLED;
    done.from = EG__STATE__STATE_QUEUED;
    publish(&done, NULL, NULL);
    cr_assert(wait_str(SQL_STATE, cb, "COMPLETED/CANCELLED/0/v3", ROWS_MS), "see %s", a.log);

    /* Version 2 arrives late (QUEUED), then a marker callback tells us it was processed. */
    spec_t late = s;
    late.version = 2;
    late.state = EG__STATE__STATE_QUEUED;
    late.from = EG__STATE__STATE_SCHEDULED;
    publish(&late, NULL, NULL);
    spec_t m = {.callback_id = marker,
                .tenant_id = tenant,
                .version = 1,
                .state = EG__STATE__STATE_SCHEDULED};
    publish(&m, NULL, NULL);
    cr_assert(wait_str(SQL_STATE, marker, "SCHEDULED/-/0/v1", ROWS_MS), "see %s", a.log);

    const char *p[1] = {cb};
    char *state = q_str(db, SQL_STATE, 1, p);
    cr_assert_str_eq(state, "COMPLETED/CANCELLED/0/v3", "a late event moved the state back");
    free(state);
    /* The late transition is still history. */
    cr_assert_eq(q_long(db, SQL_NEVENTS, 1, p), 3);
    arch_stop_ok(&a);
}

Test(archiver, user_data_lands_once)
{
    arch_t a;
    char cb[EG_UUID_STR_LEN + 1], bare[EG_UUID_STR_LEN + 1];
    arch_start(&a);
    warm_up(&a);
    uuid(cb);
    uuid(bare);

    spec_t s = {.callback_id = cb,
                .tenant_id = tenant,
                .version = 1,
                .state = EG__STATE__STATE_SCHEDULED,
                .user_data = "{\"language\": \"fr\"}"};
    publish(&s, NULL, NULL);
    s.version = 2;
    s.state = EG__STATE__STATE_QUEUED;
    publish(&s, NULL, NULL);
    s.version = 3;
    s.state = EG__STATE__STATE_COMPLETED;
    s.reason = EG__REASON__REASON_CANCELLED;
    publish(&s, NULL, NULL);
    spec_t b = {
        .callback_id = bare, .tenant_id = tenant, .version = 1, .state = EG__STATE__STATE_QUEUED};
    publish(&b, NULL, NULL);
    cr_assert(wait_str(SQL_STATE, cb, "COMPLETED/CANCELLED/0/v3", ROWS_MS), "see %s", a.log);
    cr_assert(wait_str(SQL_STATE, bare, "QUEUED/-/0/v1", ROWS_MS), "see %s", a.log);

    const char *p[1] = {cb};
    cr_assert_eq(q_long(db, "SELECT count(*) FROM callback_data WHERE callback_id = $1", 1, p), 1);
    char *ud = q_str(db, "SELECT user_data::text FROM callback_data WHERE callback_id = $1", 1, p);
    cr_assert_str_eq(ud, "{\"language\": \"fr\"}");
    free(ud);
    const char *pb[1] = {bare};
    cr_assert_eq(q_long(db, "SELECT count(*) FROM callback_data WHERE callback_id = $1", 1, pb), 0,
                 "a callback without user data got a callback_data row");
    arch_stop_ok(&a);
}

Test(archiver, replay_from_the_start_changes_nothing)
{
    arch_t a, b;
    char x[EG_UUID_STR_LEN + 1], y[EG_UUID_STR_LEN + 1], e3[EG_UUID_STR_LEN + 1];
    char again[64];
    const int64_t t2 = T0 + 3 * 86400000LL; /* x is rescheduled three days later */
    arch_start(&a);
    warm_up(&a);
    uuid(x);
    uuid(y);

    /* x: created, rescheduled, queued (published twice), routing, and a late duplicate of the
     * creation; y: created and cancelled. */
    spec_t s = {.callback_id = x,
                .tenant_id = tenant,
                .version = 1,
                .state = EG__STATE__STATE_SCHEDULED,
                .user_data = "{\"k\": [1, 2]}"};
    spec_t first = s;
    char e1[EG_UUID_STR_LEN + 1];
    publish(&s, NULL, e1);
    s.version = 2;
    s.desired_ms = t2;
    s.from = EG__STATE__STATE_SCHEDULED;
    publish(&s, NULL, NULL);
    s.version = 3;
    s.state = EG__STATE__STATE_QUEUED;
    publish(&s, NULL, e3);
    s.event_id = e3;
    snprintf(again, sizeof again, "%s-again", e3);
    publish(&s, again, NULL);
    s.event_id = NULL;
    s.version = 4;
    s.state = EG__STATE__STATE_ROUTING;
    s.from = EG__STATE__STATE_QUEUED;
    s.attempts = 1;
    publish(&s, NULL, NULL);
    first.event_id = e1;
    snprintf(again, sizeof again, "%s-again", e1);
    publish(&first, again, NULL);
    spec_t c = {
        .callback_id = y, .tenant_id = tenant, .version = 1, .state = EG__STATE__STATE_SCHEDULED};
    publish(&c, NULL, NULL);
    c.version = 2;
    c.state = EG__STATE__STATE_COMPLETED;
    c.reason = EG__REASON__REASON_CANCELLED;
    c.from = EG__STATE__STATE_SCHEDULED;
    publish(&c, NULL, NULL);
    cr_assert(wait_str(SQL_STATE, y, "COMPLETED/CANCELLED/0/v2", ROWS_MS), "see %s", a.log);
    cr_assert(wait_str(SQL_STATE, x, "ROUTING/-/1/v4", ROWS_MS), "see %s", a.log);

    /* After the reschedule every row of x sits under the new desired time. */
    const char *p[1] = {x};
    const char *rows_at_t2 =
        "SELECT (SELECT count(*) FROM callbacks WHERE id = $1) || '/' || "
        "(SELECT count(*) FROM callbacks WHERE id = $1 AND desired_time = to_timestamp($2::double "
        "precision / 1000)) || '/' || "
        "(SELECT count(*) FROM callback_data WHERE callback_id = $1 AND desired_time = "
        "to_timestamp($2::double precision / 1000)) || '/' || "
        "(SELECT count(*) FROM callback_events WHERE callback_id = $1 AND desired_time = "
        "to_timestamp($2::double precision / 1000)) || '/' || "
        "(SELECT count(*) FROM callback_events WHERE callback_id = $1)";
    char t2s[24];
    snprintf(t2s, sizeof t2s, "%lld", (long long)t2);
    const char *p2[2] = {x, t2s};
    char *where = q_str(db, rows_at_t2, 2, p2);
    cr_assert_str_eq(where, "1/1/1/4/4");
    free(where);
    cr_assert_eq(q_long(db, SQL_NEVENTS, 1, p), 4);

    char *before = checksum(db, tenant);
    arch_stop_ok(&a);

    /* A marker for another tenant, published before the second archiver's consumer exists:
     * once that consumer has nothing pending, it has replayed the whole tenant. */
    char other[EG_UUID_STR_LEN + 1], marker[EG_UUID_STR_LEN + 1];
    uuid(other);
    uuid(marker);
    spec_t m = {.callback_id = marker,
                .tenant_id = other,
                .version = 1,
                .state = EG__STATE__STATE_SCHEDULED};
    publish(&m, NULL, NULL);
    arch_start(&b);
    cr_assert(caught_up(b.durable, WARM_MS), "the replay did not finish; see %s", b.log);
    cr_assert(wait_str(SQL_STATE, marker, "SCHEDULED/-/0/v1", ROWS_MS), "see %s", b.log);

    char *after = checksum(db, tenant);
    cr_assert_str_eq(after, before, "the replay changed the tenant's rows");
    where = q_str(db, rows_at_t2, 2, p2);
    cr_assert_str_eq(where, "1/1/1/4/4", "the replay moved rows back to the old desired time");
    free(where);
    free(before);
    free(after);
    arch_stop_ok(&b);
}

Test(archiver, undecodable_and_unwritable_messages_are_skipped)
{
    arch_t a;
    char good[EG_UUID_STR_LEN + 1], bad[EG_UUID_STR_LEN + 1], id[EG_UUID_STR_LEN + 1];
    arch_start(&a);
    warm_up(&a);
    uuid(good);
    uuid(bad);

    /* Not a protobuf: a length-delimited field 1 that claims 255 bytes and has 2. */
    static const uint8_t garbage[] = {0x0a, 0xff, 0x01, 'x', 'y'};
    uuid(id);
    publish_raw(tenant, garbage, sizeof garbage, id);
    /* An Event whose callback id is no UUID. */
    spec_t noid = {.callback_id = "not-a-uuid",
                   .tenant_id = tenant,
                   .version = 1,
                   .state = EG__STATE__STATE_SCHEDULED};
    publish(&noid, NULL, NULL);
    /* An Event whose user data PostgreSQL refuses (not JSON). */
    spec_t badjson = {.callback_id = bad,
                      .tenant_id = tenant,
                      .version = 1,
                      .state = EG__STATE__STATE_SCHEDULED,
                      .user_data = "{not json"};
    publish(&badjson, NULL, NULL);
    spec_t ok = {
        .callback_id = good, .tenant_id = tenant, .version = 1, .state = EG__STATE__STATE_QUEUED};
    publish(&ok, NULL, NULL);

    int64_t t = mono_ms();
    cr_assert(wait_str(SQL_STATE, good, "QUEUED/-/0/v1", ROWS_MS),
              "the event after the bad ones did not arrive within %d ms; see %s", ROWS_MS, a.log);
    cr_assert_lt(mono_ms() - t, ROWS_MS);
    const char *pb[1] = {bad};
    cr_assert_eq(q_long(db, SQL_NROWS, 1, pb), 0);
    cr_assert_eq(q_long(db, SQL_NEVENTS, 1, pb), 0);

    /* Still alive, and counting what it dropped (the three above, and any earlier tests left
     * in the stream). */
    int status;
    cr_assert_eq(waitpid(a.pid, &status, WNOHANG), 0, "the archiver died; see %s", a.log);
    cr_assert_geq(wait_metric(&a, "engage_archiver_rejected_total", 3, ROWS_MS), 3);
    arch_stop_ok(&a);
}

Test(archiver, ready_and_metrics)
{
    arch_t a;
    arch_start(&a);
    warm_up(&a);

    int status = 0;
    char *body = NULL;
    cr_assert(http_get(&a, "/readyz", &status, &body));
    cr_assert_eq(status, 200);
    bool checks = strstr(body, "\"consumer\":\"ok\"") && strstr(body, "\"postgres\":\"ok\"") &&
                  strstr(body, "\"nats\":\"ok\"");
    free(body);
    cr_assert(checks, "/readyz lacks a check");

    cr_assert(http_get(&a, "/metrics", &status, &body));
    cr_assert_eq(status, 200);
    static const char *const series[] = {
        "engage_archiver_events_total", "engage_archiver_batches_total",
        "engage_archiver_errors_total", "engage_archiver_lag_seconds",
        "engage_archiver_batch_seconds_bucket"};
    bool all = true;
    for (size_t i = 0; i < sizeof series / sizeof series[0]; i++)
        all = all && strstr(body, series[i]) != NULL;
    free(body);
    cr_assert(all, "a series is missing from /metrics");
    /* The warm-up event went in through this archiver, in at least one committed batch. */
    cr_assert_geq(wait_metric(&a, "engage_archiver_events_total", 1, ROWS_MS), 1);
    cr_assert_geq(wait_metric(&a, "engage_archiver_batches_total", 1, ROWS_MS), 1);
    arch_stop_ok(&a);
}

Test(archiver, sigterm_exits_zero_within_5s)
{
    arch_t a;
    char cb[EG_UUID_STR_LEN + 1];
    arch_start(&a);
    warm_up(&a);
    uuid(cb);
    for (uint64_t v = 1; v <= 20; v++) {
        spec_t s = {
            .callback_id = cb, .tenant_id = tenant, .version = v, .state = EG__STATE__STATE_QUEUED};
        publish(&s, NULL, NULL);
    }
    int64_t took = 0;
    char log[256];
    snprintf(log, sizeof log, "%s", a.log);
    int rc = arch_stop(&a, STOP_MS, &took);
    cr_assert_eq(rc, 0, "exit status %d after %lld ms (-1: still running); see %s", rc,
                 (long long)took, log);
    cr_assert_lt(took, STOP_MS);
}

Test(archiver, rebinds_when_its_consumer_is_deleted)
{
    arch_t a;
    char cb[EG_UUID_STR_LEN + 1], subject[160];
    arch_start(&a);
    warm_up(&a);
    uuid(cb);

    /* An operator (or a stream restore) removes the durable: the archiver must create it again
     * and go on, rather than fail every fetch forever. */
    snprintf(subject, sizeof subject, "$JS.API.CONSUMER.DELETE.%s.%s", EG_STREAM_EVENTS, a.durable);
    eg_json_free(js_api(subject));
    spec_t s = {
        .callback_id = cb, .tenant_id = tenant, .version = 1, .state = EG__STATE__STATE_QUEUED};
    publish(&s, NULL, NULL);
    cr_assert(wait_str(SQL_STATE, cb, "QUEUED/-/0/v1", WARM_MS), "see %s", a.log);
    /* The consumer exists again, and this archiver works through it. */
    cr_assert(caught_up(a.durable, WARM_MS), "the consumer was not re-created; see %s", a.log);
    arch_stop_ok(&a);
}

/* A GDPR erase deletes a number's rows, but the callbacks' events stay in JetStream for the
 * stream's retention: a replay (a new durable consumer reads the stream from the start) must not
 * bring them back (the tombstones of gdpr_erased), and must leave another number's rows as
 * they are. */
Test(archiver, erased_callbacks_stay_erased_after_a_replay)
{
    arch_t a, b;
    char x[EG_UUID_STR_LEN + 1], y[EG_UUID_STR_LEN + 1], kept[EG_UUID_STR_LEN + 1];
    const char *erased_phone = "+15550002222";
    arch_start(&a);
    warm_up(&a);
    uuid(x);
    uuid(y);
    uuid(kept);

    spec_t s = {.callback_id = x,
                .tenant_id = tenant,
                .version = 1,
                .state = EG__STATE__STATE_SCHEDULED,
                .phone = erased_phone,
                .user_data = "{\"name\": \"Ada\"}"};
    publish(&s, NULL, NULL);
    s.version = 2;
    s.state = EG__STATE__STATE_QUEUED;
    s.from = EG__STATE__STATE_SCHEDULED;
    publish(&s, NULL, NULL);
    s.version = 3;
    s.state = EG__STATE__STATE_COMPLETED;
    s.reason = EG__REASON__REASON_CANCELLED;
    s.from = EG__STATE__STATE_QUEUED;
    publish(&s, NULL, NULL);
    spec_t t = {.callback_id = y,
                .tenant_id = tenant,
                .version = 1,
                .state = EG__STATE__STATE_SCHEDULED,
                .phone = erased_phone};
    publish(&t, NULL, NULL);
    spec_t k = {.callback_id = kept,
                .tenant_id = tenant,
                .version = 1,
                .state = EG__STATE__STATE_SCHEDULED,
                .phone = "+15550003333",
                .user_data = "{\"name\": \"Bob\"}"};
    publish(&k, NULL, NULL);
    cr_assert(wait_str(SQL_STATE, x, "COMPLETED/CANCELLED/0/v3", ROWS_MS), "see %s", a.log);
    cr_assert(wait_str(SQL_STATE, y, "SCHEDULED/-/0/v1", ROWS_MS), "see %s", a.log);
    cr_assert(wait_str(SQL_STATE, kept, "SCHEDULED/-/0/v1", ROWS_MS), "see %s", a.log);
    cr_assert(caught_up(a.durable, WARM_MS), "see %s", a.log);
    arch_stop_ok(&a);

    history_erased_t out;
    cr_assert_eq(history_erase(db, tenant, erased_phone, NULL, 0, NULL, NULL, &out), EG_OK, "%s",
                 eg_pg_error(db));
    cr_assert_eq(out.n_ids, 2);
    cr_assert_eq(out.rows_callbacks + out.rows_data + out.rows_events, 2 + 1 + 4);
    history_ids_free(&out);
    const char *px[1] = {x};
    const char *py[1] = {y};
    cr_assert_eq(q_long(db, SQL_ALLROWS, 1, px) + q_long(db, SQL_ALLROWS, 1, py), 0);
    char *before = checksum(db, tenant);

    /* A marker for another tenant, published before the second archiver's consumer exists:
     * once that consumer has nothing pending, it has replayed the whole stream. */
    char other[EG_UUID_STR_LEN + 1], marker[EG_UUID_STR_LEN + 1];
    uuid(other);
    uuid(marker);
    spec_t m = {.callback_id = marker,
                .tenant_id = other,
                .version = 1,
                .state = EG__STATE__STATE_SCHEDULED};
    publish(&m, NULL, NULL);
    arch_start(&b);
    cr_assert(caught_up(b.durable, WARM_MS), "the replay did not finish; see %s", b.log);
    cr_assert(wait_str(SQL_STATE, marker, "SCHEDULED/-/0/v1", ROWS_MS), "see %s", b.log);

    cr_assert_eq(q_long(db, SQL_ALLROWS, 1, px), 0, "the replay brought an erased callback back");
    cr_assert_eq(q_long(db, SQL_ALLROWS, 1, py), 0, "the replay brought an erased callback back");
    char *after = checksum(db, tenant);
    cr_assert_str_eq(after, before, "the replay changed the rows the erase left");
    free(before);
    free(after);
    arch_stop_ok(&b);
}
