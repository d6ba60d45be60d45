/* Integration tests of tools/voice-sim: each test starts $ENGAGE_BIN_DIR/voice-sim as a child
 * process against the redis-server in ENGAGE_REDIS_URL, writes commands to its commands stream
 * the way ors-bridge does and checks what a voice-platform integrator would see: the
 * call.progress entries on the events stream, the dial and cancel counters, and a clean exit
 * on SIGTERM.
 *
 * Criterion runs every test in its own forked process, in parallel, so each test has its own
 * stream names and tenant (pid + clock); the voicesim:* hashes are shared but keyed by tenant
 * and callback id. One test runs a redis-server of its own, to take it away and bring it back.
 * Steps are 20 ms so a whole call takes under 100 ms. Timing checks are lower bounds only (the
 * simulator must never report a step early); upper bounds would be flaky on a loaded machine and
 * are left to generous wait limits. */
#define _DEFAULT_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "engage/config.h"
#include "engage/httpclient.h"
#include "engage/ids.h"
#include "engage/store.h"
#include "engage/timeutil.h"

#define STEP_MS 20
#define MAX_EVENTS 64
#define MAX_ENV 8

typedef struct {
    pid_t pid;
    char commands[128];
    char events[128];
    char tenant[64];
    int http_port;
} sim_proc_t;

/* One simulator per test process (Criterion forks each test), cleaned up by fini. */
static sim_proc_t sim;
static eg_store_t *store;

typedef struct {
    char id[48];
    char type[32];
    char tenant[64];
    char callback_id[64];
    char attempt[16];
    char result[32];
    char at[40];
    char call_id[48];
} event_t;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static const char *redis_url(void)
{
    const char *url = getenv("ENGAGE_REDIS_URL");
    if (url == NULL || url[0] == '\0') {
        cr_assert_fail("ENGAGE_REDIS_URL is not set: the integration tests need a running "
                       "redis-server (e.g. ENGAGE_REDIS_URL=redis://127.0.0.1:6379)");
    }
    return url;
}

static eg_store_t *open_store(const char *url)
{
    eg_store_t *s = NULL;
    eg_status_t st = eg_store_open(&s, url, 2000);
    cr_assert_eq(st, EG_OK, "eg_store_open: %s", eg_status_str(st));
    return s;
}

/* Run a command from a NULL-terminated list of strings; the reply is the caller's. */
static eg_reply_t *vcmd(eg_store_t *s, eg_status_t *st_out, const char *first, va_list ap)
{
    const char *argv[64];
    int argc = 0;
    eg_reply_t *r = NULL;

    for (const char *a = first; a != NULL && argc < 64; a = va_arg(ap, const char *)) {
        argv[argc++] = a;
    }
    eg_status_t st = eg_store_command(s, argc, argv, NULL, &r);
    if (st_out != NULL) {
        *st_out = st;
    } else {
        cr_assert_eq(st, EG_OK, "%s: %s (%s)", argv[0], eg_status_str(st),
                     r && r->str ? r->str : eg_store_error(s));
    }
    return r;
}

static eg_reply_t *cmd(const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    eg_reply_t *r = vcmd(store, NULL, first, ap);
    va_end(ap);
    return r;
}

/* The same, returning the status instead of asserting it. */
static eg_status_t try_cmd(eg_reply_t **out, const char *first, ...)
{
    eg_status_t st;
    va_list ap;
    va_start(ap, first);
    eg_reply_t *r = vcmd(store, &st, first, ap);
    va_end(ap);
    if (out != NULL) {
        *out = r;
    } else {
        eg_reply_free(r);
    }
    return st;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    cr_assert_geq(fd, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static bool group_exists(const char *stream, const char *group)
{
    eg_reply_t *r = NULL;
    bool found = false;
    if (try_cmd(&r, "XINFO", "GROUPS", stream, NULL) == EG_OK && r->type == EG_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++) {
            const eg_reply_t *g = r->element[i];
            for (size_t j = 0; j + 1 < g->elements; j += 2) {
                if (g->element[j]->str && strcmp(g->element[j]->str, "name") == 0 &&
                    g->element[j + 1]->str && strcmp(g->element[j + 1]->str, group) == 0) {
                    found = true;
                }
            }
        }
    }
    eg_reply_free(r);
    return found;
}

/* Fork and exec voice-sim on this test's streams; env holds extra NAME=value entries. */
static void spawn_sim(const char *url, const char *const *env)
{
    const char *bindir = getenv("ENGAGE_BIN_DIR");
    char bin[1024], port[16];

    cr_assert(bindir && *bindir, "ENGAGE_BIN_DIR is not set (the directory with voice-sim)");
    snprintf(bin, sizeof(bin), "%s/voice-sim", bindir);
    cr_assert_eq(access(bin, X_OK), 0, "%s is not executable", bin);
    sim.http_port = free_port();
    snprintf(port, sizeof(port), "%d", sim.http_port);

    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* Only what this test chooses: nothing inherited from a dev stack's environment. */
        const char *drop[] = {"ENGAGE_CONSUL_ADDR",
                              "ENGAGE_INSTANCE_ID",
                              "ENGAGE_VOICE_SIM_DEFAULT_OUTCOME",
                              "ENGAGE_VOICE_SIM_GROUP",
                              "ENGAGE_VOICE_SIM_CONSUMER",
                              "ENGAGE_HTTP_ADDR"};
        for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++) {
            unsetenv(drop[i]);
        }
        setenv("ENGAGE_REDIS_URL", url, 1);
        setenv("ENGAGE_VOICE_REDIS_URL", url, 1);
        setenv("ENGAGE_VOICE_COMMANDS_STREAM", sim.commands, 1);
        setenv("ENGAGE_VOICE_EVENTS_STREAM", sim.events, 1);
        setenv("ENGAGE_HTTP_PORT", port, 1);
        setenv("ENGAGE_LOG_LEVEL", "warn", 1);
        setenv("ENGAGE_VOICE_SIM_STEP_MS", "20", 1);
        for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
            putenv((char *)env[i]);
        }
        execl(bin, "voice-sim", (char *)NULL);
        _exit(127);
    }
    sim.pid = pid;
}

/* Start the simulator and wait until its consumer group exists, so commands written from now
 * on are read. group NULL = the default "voice-sim". */
static void start_sim_with(const char *const *env, const char *group)
{
    spawn_sim(redis_url(), env);
    for (int i = 0; i < 500; i++) {
        int status = 0;
        cr_assert_eq(waitpid(sim.pid, &status, WNOHANG), 0, "voice-sim exited at start (%d)",
                     WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status));
        if (group_exists(sim.commands, group ? group : "voice-sim")) {
            return;
        }
        sleep_ms(10);
    }
    cr_assert_fail("voice-sim did not create its consumer group on %s within 5 s", sim.commands);
}

static void start_sim(void)
{
    start_sim_with(NULL, NULL);
}

/* Wait up to limit_ms for the child to exit; its exit status, or -1 on timeout. */
static int wait_exit(pid_t pid, long limit_ms, long *took_ms)
{
    int64_t t0 = eg_mono_ms();
    for (;;) {
        int status;
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            *took_ms = (long)(eg_mono_ms() - t0);
            return status;
        }
        if (eg_mono_ms() - t0 > limit_ms) {
            *took_ms = (long)(eg_mono_ms() - t0);
            return -1;
        }
        sleep_ms(5);
    }
}

/* SIGTERM the simulator and assert that it exits with code 0 within 5 s. */
static void stop_sim(void)
{
    long took = 0;
    cr_assert_gt(sim.pid, 0);
    cr_assert_eq(kill(sim.pid, SIGTERM), 0);
    int status = wait_exit(sim.pid, 5000, &took);
    cr_assert_neq(status, -1, "voice-sim did not exit within 5 s of SIGTERM");
    sim.pid = 0;
    cr_assert(WIFEXITED(status), "voice-sim was killed by signal %d",
              WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    cr_assert_eq(WEXITSTATUS(status), 0, "voice-sim exited with %d after SIGTERM",
                 WEXITSTATUS(status));
}

static void setup(void)
{
    /* Criterion may run several tests in one process one after another: the time makes the
     * names unique then, the pid between parallel processes. */
    long long uniq = (long long)eg_mono_ms();
    snprintf(sim.commands, sizeof(sim.commands), "test:vsim:%ld:%lld:commands", (long)getpid(),
             uniq);
    snprintf(sim.events, sizeof(sim.events), "test:vsim:%ld:%lld:events", (long)getpid(), uniq);
    snprintf(sim.tenant, sizeof(sim.tenant), "vsim-tenant-%ld-%lld", (long)getpid(), uniq);
    store = open_store(redis_url());
}

static void teardown(void)
{
    if (sim.pid > 0) {
        kill(sim.pid, SIGKILL);
        waitpid(sim.pid, NULL, 0);
        sim.pid = 0;
    }
    if (store != NULL && sim.commands[0] != '\0') {
        try_cmd(NULL, "DEL", sim.commands, sim.events, NULL);
    }
    eg_store_close(store);
    store = NULL;
}

TestSuite(voice_sim, .init = setup, .fini = teardown, .timeout = 60);

/* XADD a command entry (NULL-terminated field/value list) to the commands stream. */
static void add_command(const char *first, ...)
{
    const char *argv[40] = {"XADD", sim.commands, "*"};
    int argc = 3;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a != NULL && argc < 40; a = va_arg(ap, const char *)) {
        argv[argc++] = a;
    }
    va_end(ap);
    eg_reply_t *r = NULL;
    eg_status_t st = eg_store_command(store, argc, argv, NULL, &r);
    cr_assert_eq(st, EG_OK, "XADD %s: %s", sim.commands, eg_status_str(st));
    eg_reply_free(r);
}

/* A dial as ors-bridge writes it. Returns the wall-clock ms at which it was added. */
static int64_t dial(const char *callback_id, const char *attempt, const char *phone)
{
    char dispatch[EG_UUID_STR_LEN + 1];
    eg_uuid_v7_str(dispatch);
    int64_t t = eg_now_ms();
    add_command("type", "dial", "tenant", sim.tenant, "callback_id", callback_id, "attempt",
                attempt, "phone", phone, "service", "support", "virtual_queue", "VQ_Support",
                "priority", "0", "dial_mode", "customer-first", "user_data", "{\"order\":\"42\"}",
                "dispatch_id", dispatch, NULL);
    return t;
}

static void cancel(const char *callback_id, const char *attempt)
{
    add_command("type", "cancel", "tenant", sim.tenant, "callback_id", callback_id, "attempt",
                attempt, NULL);
}

static void copy_field(char *dst, size_t n, const eg_reply_t *v)
{
    cr_assert_eq(v->type, EG_REPLY_STRING);
    cr_assert_lt(v->len, n, "field value too long: %s", v->str);
    memcpy(dst, v->str, v->len + 1);
}

/* Every event on the events stream for callback_id (all attempts), in stream order. Asserts
 * that each entry carries every field of the contract. */
static size_t events_for(const char *callback_id, event_t *out, size_t max)
{
    size_t n = 0;
    eg_reply_t *r = cmd("XRANGE", sim.events, "-", "+", NULL);
    cr_assert_eq(r->type, EG_REPLY_ARRAY);
    for (size_t i = 0; i < r->elements; i++) {
        const eg_reply_t *e = r->element[i];
        const eg_reply_t *f = e->element[1];
        event_t ev;
        memset(&ev, 0, sizeof(ev));
        copy_field(ev.id, sizeof(ev.id), e->element[0]);
        for (size_t j = 0; j + 1 < f->elements; j += 2) {
            const char *k = f->element[j]->str;
            const eg_reply_t *v = f->element[j + 1];
            if (strcmp(k, "type") == 0) {
                copy_field(ev.type, sizeof(ev.type), v);
            } else if (strcmp(k, "tenant") == 0) {
                copy_field(ev.tenant, sizeof(ev.tenant), v);
            } else if (strcmp(k, "callback_id") == 0) {
                copy_field(ev.callback_id, sizeof(ev.callback_id), v);
            } else if (strcmp(k, "attempt") == 0) {
                copy_field(ev.attempt, sizeof(ev.attempt), v);
            } else if (strcmp(k, "result") == 0) {
                copy_field(ev.result, sizeof(ev.result), v);
            } else if (strcmp(k, "at") == 0) {
                copy_field(ev.at, sizeof(ev.at), v);
            } else if (strcmp(k, "call_id") == 0) {
                copy_field(ev.call_id, sizeof(ev.call_id), v);
            }
        }
        if (strcmp(ev.callback_id, callback_id) != 0) {
            continue;
        }
        int64_t at_ms = 0;
        cr_assert_str_eq(ev.type, "call.progress", "entry %s", ev.id);
        cr_assert_str_eq(ev.tenant, sim.tenant, "entry %s: tenant", ev.id);
        cr_assert(ev.attempt[0] != '\0', "entry %s has no attempt", ev.id);
        cr_assert(ev.result[0] != '\0', "entry %s has no result", ev.id);
        cr_assert_eq(eg_time_parse_iso(ev.at, strlen(ev.at), &at_ms), EG_OK,
                     "entry %s: at=%s is not ISO-8601", ev.id, ev.at);
        cr_assert_eq(strlen(ev.at), EG_ISO_LEN, "entry %s: at=%s is not UTC with ms", ev.id, ev.at);
        cr_assert(eg_uuid_valid(ev.call_id), "entry %s: call_id=%s", ev.id, ev.call_id);
        cr_assert_lt(n, max);
        out[n++] = ev;
    }
    eg_reply_free(r);
    return n;
}

/* Wait until callback_id has at least want events (up to 5 s), then 5 more steps to catch any
 * entry that should not come, and return them all. */
static size_t await_events(const char *callback_id, size_t want, event_t *out, size_t max)
{
    size_t n = 0;
    for (int i = 0; i < 500; i++) {
        n = events_for(callback_id, out, max);
        if (n >= want) {
            break;
        }
        sleep_ms(10);
    }
    sleep_ms(5 * STEP_MS);
    return events_for(callback_id, out, max);
}

static long long hash_count(const char *hash, const char *field)
{
    eg_reply_t *r = cmd("HGET", hash, field, NULL);
    long long v = r->type == EG_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
    eg_reply_free(r);
    return v;
}

static long long dial_count(const char *callback_id, const char *attempt)
{
    char f[192];
    int len = snprintf(f, sizeof(f), "%s:%s:%s", sim.tenant, callback_id, attempt);
    cr_assert(len > 0 && (size_t)len < sizeof(f), "dial field for %s does not fit", callback_id);
    return hash_count("voicesim:dials", f);
}

/* Assert the results of callback_id's attempt, in order: exactly the NULL-terminated list. The
 * events of that attempt share one call id, which is returned in call_id. */
static void assert_results(const event_t *ev, size_t n, const char *attempt, char *call_id,
                           const char *first, ...)
{
    const char *want[16];
    size_t nwant = 0;
    va_list ap;
    va_start(ap, first);
    for (const char *r = first; r != NULL && nwant < 16; r = va_arg(ap, const char *)) {
        want[nwant++] = r;
    }
    va_end(ap);

    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ev[i].attempt, attempt) != 0) {
            continue;
        }
        cr_assert_lt(k, nwant, "callback %s attempt %s: unexpected extra result %s",
                     ev[i].callback_id, attempt, ev[i].result);
        cr_assert_str_eq(ev[i].result, want[k], "callback %s attempt %s step %zu",
                         ev[i].callback_id, attempt, k + 1);
        if (k == 0) {
            strcpy(call_id, ev[i].call_id);
        } else {
            cr_assert_str_eq(ev[i].call_id, call_id, "one call id per dial");
        }
        k++;
    }
    cr_assert_eq(k, nwant, "callback %s attempt %s: %zu of %zu results arrived",
                 n > 0 ? ev[0].callback_id : "?", attempt, k, nwant);
}

static int64_t at_ms(const event_t *ev)
{
    int64_t ms = 0;
    eg_time_parse_iso(ev->at, strlen(ev->at), &ms);
    return ms;
}

Test(voice_sim, outcomes_follow_the_last_two_digits)
{
    static const struct {
        const char *phone;
        const char *results[5];
    } cases[] = {
        {"+15550100091", {"DIALING", "BUSY"}},
        {"+15550100092", {"DIALING", "NO_ANSWER"}},
        {"+15550100093", {"DIALING", "ANSWERING_MACHINE"}},
        {"+15550100095", {"DIALING", "PERSON", "CALL_ENDED"}},
        {"+15550100096", {"DIALING", "FAILED"}},
        {"+15550100000", {"DIALING", "PERSON", "AGENT_CONNECTED", "CALL_ENDED"}},
        {"+15550100097", {"DIALING", "PERSON", "AGENT_CONNECTED", "CALL_ENDED"}},
        {"+15550100019", {"DIALING", "PERSON", "AGENT_CONNECTED", "CALL_ENDED"}},
    };
    enum { N = sizeof(cases) / sizeof(cases[0]) };
    char ids[N][EG_UUID_STR_LEN + 1];
    char calls[N][EG_UUID_STR_LEN + 1];
    int64_t dialled[N];

    start_sim();
    for (size_t i = 0; i < N; i++) {
        eg_uuid_v7_str(ids[i]);
        dialled[i] = dial(ids[i], "1", cases[i].phone);
    }
    for (size_t i = 0; i < N; i++) {
        event_t ev[MAX_EVENTS];
        size_t want = 0;
        while (want < 5 && cases[i].results[want] != NULL) {
            want++;
        }
        size_t n = await_events(ids[i], want, ev, MAX_EVENTS);
        cr_assert_eq(n, want, "%s: %zu entries, expected %zu", cases[i].phone, n, want);
        for (size_t k = 0; k < n; k++) {
            cr_assert_str_eq(ev[k].result, cases[i].results[k], "%s step %zu", cases[i].phone,
                             k + 1);
            cr_assert_str_eq(ev[k].attempt, "1");
            cr_assert_str_eq(ev[k].call_id, ev[0].call_id, "one call id per dial");
        }
        strcpy(calls[i], ev[0].call_id);
        /* The first step comes one step after the dial and the next ones a step apart, so the
         * last cannot come before want steps have passed (2 ms of clock slack). */
        cr_assert_geq(at_ms(&ev[n - 1]) - dialled[i], (int64_t)want * STEP_MS - 2,
                      "%s: %zu steps in %lld ms", cases[i].phone, want,
                      (long long)(at_ms(&ev[n - 1]) - dialled[i]));
        cr_assert_eq(dial_count(ids[i], "1"), 1, "voicesim:dials counts the dial of %s",
                     cases[i].phone);
        for (size_t j = 0; j < i; j++) {
            cr_assert_str_neq(calls[i], calls[j], "each dial has its own call id");
        }
    }
    stop_sim();
}

Test(voice_sim, suffix_94_is_busy_first_then_answered_and_91_stays_busy)
{
    char cb94[EG_UUID_STR_LEN + 1], cb91[EG_UUID_STR_LEN + 1];
    char call1[64], call2[64], busy1[64], busy2[64];
    event_t ev[MAX_EVENTS];

    start_sim();
    eg_uuid_v7_str(cb94);
    eg_uuid_v7_str(cb91);
    dial(cb94, "1", "+4930123456794");
    dial(cb91, "1", "+4930123456791");
    size_t n = await_events(cb94, 2, ev, MAX_EVENTS);
    assert_results(ev, n, "1", call1, "DIALING", "BUSY", NULL);
    n = await_events(cb91, 2, ev, MAX_EVENTS);
    assert_results(ev, n, "1", busy1, "DIALING", "BUSY", NULL);

    /* The scheduler retries: attempt 2 of the same callbacks. */
    dial(cb94, "2", "+4930123456794");
    dial(cb91, "2", "+4930123456791");
    n = await_events(cb94, 6, ev, MAX_EVENTS);
    assert_results(ev, n, "1", call1, "DIALING", "BUSY", NULL);
    assert_results(ev, n, "2", call2, "DIALING", "PERSON", "AGENT_CONNECTED", "CALL_ENDED", NULL);
    cr_assert_str_neq(call1, call2, "a new attempt is a new call");
    n = await_events(cb91, 4, ev, MAX_EVENTS);
    assert_results(ev, n, "2", busy2, "DIALING", "BUSY", NULL);

    cr_assert_eq(dial_count(cb94, "1"), 1);
    cr_assert_eq(dial_count(cb94, "2"), 1);
    cr_assert_eq(dial_count(cb91, "1"), 1);
    cr_assert_eq(dial_count(cb91, "2"), 1);
    stop_sim();
}

Test(voice_sim, a_second_dial_of_one_attempt_is_counted_twice)
{
    /* The counter is the tests' proof that no attempt is dialled twice: it must see a
     * duplicate when there is one. */
    char cb[EG_UUID_STR_LEN + 1];
    event_t ev[MAX_EVENTS];

    start_sim();
    eg_uuid_v7_str(cb);
    dial(cb, "1", "+15550100091");
    dial(cb, "1", "+15550100091");
    size_t n = await_events(cb, 4, ev, MAX_EVENTS);
    cr_assert_eq(n, 4, "two dials, two calls: %zu entries", n);
    cr_assert_eq(dial_count(cb, "1"), 2);
    stop_sim();
}

Test(voice_sim, cancel_stops_the_call_in_progress_and_only_that_one)
{
    /* Long steps so the cancel surely lands between DIALING and PERSON. */
    const char *env[] = {"ENGAGE_VOICE_SIM_STEP_MS=400", NULL};
    char gone[EG_UUID_STR_LEN + 1], kept[EG_UUID_STR_LEN + 1], call[64];
    event_t ev[MAX_EVENTS];
    size_t n = 0;

    start_sim_with(env, NULL);
    eg_uuid_v7_str(gone);
    eg_uuid_v7_str(kept);
    dial(gone, "1", "+15550100000");
    dial(kept, "1", "+15550100000");
    for (int i = 0; i < 500 && n == 0; i++) {
        sleep_ms(5);
        n = events_for(gone, ev, MAX_EVENTS);
    }
    cr_assert_eq(n, 1, "DIALING should have come first");
    cancel(gone, "1");

    /* The kept call runs to its end (4 steps of 400 ms); the cancelled one stays silent. */
    for (int i = 0; i < 400 && events_for(kept, ev, MAX_EVENTS) < 4; i++) {
        sleep_ms(10);
    }
    sleep_ms(500);
    n = events_for(kept, ev, MAX_EVENTS);
    assert_results(ev, n, "1", call, "DIALING", "PERSON", "AGENT_CONNECTED", "CALL_ENDED", NULL);
    n = events_for(gone, ev, MAX_EVENTS);
    assert_results(ev, n, "1", call, "DIALING", NULL);

    char f[192];
    int len = snprintf(f, sizeof(f), "%s:%s", sim.tenant, gone);
    cr_assert(len > 0 && (size_t)len < sizeof(f));
    cr_assert_eq(hash_count("voicesim:cancels", f), 1);
    len = snprintf(f, sizeof(f), "%s:%s", sim.tenant, kept);
    cr_assert(len > 0 && (size_t)len < sizeof(f));
    cr_assert_eq(hash_count("voicesim:cancels", f), 0);
    stop_sim();
}

Test(voice_sim, default_outcome_comes_from_the_environment)
{
    const char *env[] = {"ENGAGE_VOICE_SIM_DEFAULT_OUTCOME=noanswer", NULL};
    char plain[EG_UUID_STR_LEN + 1], answered[EG_UUID_STR_LEN + 1], busy[EG_UUID_STR_LEN + 1];
    char call[64];
    event_t ev[MAX_EVENTS];

    start_sim_with(env, NULL);
    eg_uuid_v7_str(plain);
    eg_uuid_v7_str(answered);
    eg_uuid_v7_str(busy);
    dial(plain, "1", "+15550100000");
    dial(answered, "2", "+15550100094");
    dial(busy, "1", "+15550100091");
    size_t n = await_events(plain, 2, ev, MAX_EVENTS);
    assert_results(ev, n, "1", call, "DIALING", "NO_ANSWER", NULL);
    /* "answered after the first attempt" means the answer sequence, not the default. */
    n = await_events(answered, 4, ev, MAX_EVENTS);
    assert_results(ev, n, "2", call, "DIALING", "PERSON", "AGENT_CONNECTED", "CALL_ENDED", NULL);
    n = await_events(busy, 2, ev, MAX_EVENTS);
    assert_results(ev, n, "1", call, "DIALING", "BUSY", NULL);
    stop_sim();
}

Test(voice_sim, an_unknown_default_outcome_is_refused_at_start)
{
    const char *env[] = {"ENGAGE_VOICE_SIM_DEFAULT_OUTCOME=hangup", NULL};
    long took = 0;

    spawn_sim(redis_url(), env);
    int status = wait_exit(sim.pid, 5000, &took);
    cr_assert_neq(status, -1, "voice-sim kept running with a bad default outcome");
    sim.pid = 0;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) != 0,
              "voice-sim should exit non-zero on a bad default outcome");
}

static eg_http_resp_t http_get(const char *path)
{
    char url[128];
    eg_http_resp_t resp;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", sim.http_port, path);
    eg_status_t st = eg_http_fetch("GET", url, NULL, NULL, 0, 5000, &resp);
    cr_assert_eq(st, EG_OK, "GET %s: %s", url, eg_status_str(st));
    return resp;
}

static long long pending_count(const char *group)
{
    eg_reply_t *r = cmd("XPENDING", sim.commands, group, NULL);
    cr_assert_eq(r->type, EG_REPLY_ARRAY);
    long long v = r->element[0]->integer;
    eg_reply_free(r);
    return v;
}

Test(voice_sim, odd_commands_are_acknowledged_and_ignored_and_metrics_tell)
{
    char good[EG_UUID_STR_LEN + 1], call[64];
    event_t ev[MAX_EVENTS];

    start_sim();
    eg_uuid_v7_str(good);
    add_command("type", "route", "tenant", sim.tenant, "call_id", "c1", "destination", "x", NULL);
    add_command("type", "dial", "tenant", sim.tenant, "phone", "+15550100000", NULL);
    add_command("callback_id", good, NULL);
    dial(good, "1", "+15550100000");
    size_t n = await_events(good, 4, ev, MAX_EVENTS);
    assert_results(ev, n, "1", call, "DIALING", "PERSON", "AGENT_CONNECTED", "CALL_ENDED", NULL);
    cr_assert_eq(pending_count("voice-sim"), 0, "every command is acknowledged");

    eg_http_resp_t r = http_get("/healthz");
    cr_assert_eq(r.status, 200);
    eg_http_resp_free(&r);
    r = http_get("/readyz");
    cr_assert_eq(r.status, 200, "readyz: %s", r.body);
    eg_http_resp_free(&r);
    r = http_get("/metrics");
    cr_assert_eq(r.status, 200);
    cr_assert(strstr(r.body, "\nvoicesim_dials_total 1\n"), "metrics:\n%s", r.body);
    cr_assert(strstr(r.body, "\nvoicesim_ignored_total 3\n"), "metrics:\n%s", r.body);
    cr_assert(strstr(r.body, "\nvoicesim_cancels_total 0\n"), "metrics:\n%s", r.body);
    cr_assert(strstr(r.body, "voicesim_progress_total{result=\"AGENT_CONNECTED\"} 1\n"),
              "metrics:\n%s", r.body);
    eg_http_resp_free(&r);
    stop_sim();
}

Test(voice_sim, commands_read_but_not_acknowledged_are_played_after_a_restart)
{
    /* A previous run read the dial (it is pending for this consumer) and died before acting on
     * it: the next run with the same consumer name must play it. */
    char consumer[64], env_consumer[96], cb[EG_UUID_STR_LEN + 1], call[64];
    const char *env[] = {env_consumer, NULL};
    event_t ev[MAX_EVENTS];

    snprintf(consumer, sizeof(consumer), "vsim-test-%ld", (long)getpid());
    snprintf(env_consumer, sizeof(env_consumer), "ENGAGE_VOICE_SIM_CONSUMER=%s", consumer);
    eg_reply_free(cmd("XGROUP", "CREATE", sim.commands, "voice-sim", "$", "MKSTREAM", NULL));
    eg_uuid_v7_str(cb);
    dial(cb, "1", "+15550100093");
    eg_reply_t *r = cmd("XREADGROUP", "GROUP", "voice-sim", consumer, "COUNT", "10", "STREAMS",
                        sim.commands, ">", NULL);
    cr_assert_eq(r->type, EG_REPLY_ARRAY, "the dial was read by the 'previous run'");
    eg_reply_free(r);
    cr_assert_eq(pending_count("voice-sim"), 1);

    start_sim_with(env, NULL);
    size_t n = await_events(cb, 2, ev, MAX_EVENTS);
    assert_results(ev, n, "1", call, "DIALING", "ANSWERING_MACHINE", NULL);
    cr_assert_eq(pending_count("voice-sim"), 0);
    cr_assert_eq(dial_count(cb, "1"), 1);
    stop_sim();
}

Test(voice_sim, sigterm_during_calls_exits_zero_within_5s)
{
    const char *env[] = {"ENGAGE_VOICE_SIM_STEP_MS=1000", NULL};
    char cb[EG_UUID_STR_LEN + 1];
    event_t ev[MAX_EVENTS];
    long took = 0;

    start_sim_with(env, NULL);
    eg_uuid_v7_str(cb);
    dial(cb, "1", "+15550100000");
    for (int i = 0; i < 300 && events_for(cb, ev, MAX_EVENTS) == 0; i++) {
        sleep_ms(10);
    }
    cr_assert_eq(events_for(cb, ev, MAX_EVENTS), 1, "the call is in progress");
    cr_assert_eq(kill(sim.pid, SIGTERM), 0);
    int status = wait_exit(sim.pid, 5000, &took);
    cr_assert_neq(status, -1, "voice-sim did not exit within 5 s of SIGTERM");
    sim.pid = 0;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status %d", status);
    /* Nothing more is written once it has stopped. */
    sleep_ms(1200);
    cr_assert_eq(events_for(cb, ev, MAX_EVENTS), 1);
}

/* A redis-server of the test's own, for the outage test (it must not disturb the shared one). */
static pid_t start_redis(int port)
{
    char p[16];
    snprintf(p, sizeof(p), "%d", port);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, 1);
        }
        execlp("redis-server", "redis-server", "--port", p, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static eg_store_t *await_redis(const char *url)
{
    for (int i = 0; i < 500; i++) {
        eg_store_t *s = NULL;
        if (eg_store_open(&s, url, 500) == EG_OK) {
            return s;
        }
        sleep_ms(10);
    }
    cr_assert_fail("redis-server on %s did not come up", url);
    return NULL;
}

Test(voice_sim, survives_a_redis_restart)
{
    char url[64], cb[EG_UUID_STR_LEN + 1], call[64];
    event_t ev[MAX_EVENTS];
    int port = free_port();
    long took = 0;

    if (system("command -v redis-server >/dev/null 2>&1") != 0) {
        cr_skip_test("redis-server is not on PATH");
    }
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
    pid_t redis = start_redis(port);
    eg_store_close(store);
    store = await_redis(url);
    spawn_sim(url, NULL);
    for (int i = 0; i < 500 && !group_exists(sim.commands, "voice-sim"); i++) {
        sleep_ms(10);
    }
    eg_uuid_v7_str(cb);
    dial(cb, "1", "+15550100000");
    size_t n = await_events(cb, 4, ev, MAX_EVENTS);
    assert_results(ev, n, "1", call, "DIALING", "PERSON", "AGENT_CONNECTED", "CALL_ENDED", NULL);

    /* Redis goes away for a second (all data lost) and comes back on the same port. */
    kill(redis, SIGKILL);
    waitpid(redis, NULL, 0);
    eg_store_close(store);
    store = NULL;
    sleep_ms(1000);
    int status = 0;
    cr_assert_eq(waitpid(sim.pid, &status, WNOHANG), 0, "voice-sim exited during the outage");
    redis = start_redis(port);
    store = await_redis(url);
    for (int i = 0; i < 500 && !group_exists(sim.commands, "voice-sim"); i++) {
        sleep_ms(10);
    }
    cr_assert(group_exists(sim.commands, "voice-sim"), "the group was not created again");
    eg_uuid_v7_str(cb);
    dial(cb, "1", "+15550100092");
    n = await_events(cb, 2, ev, MAX_EVENTS);
    assert_results(ev, n, "1", call, "DIALING", "NO_ANSWER", NULL);

    stop_sim();
    kill(redis, SIGTERM);
    wait_exit(redis, 5000, &took);
}
