/* Integration tests of lib/stream.c against a real redis-server (ENGAGE_REDIS_URL).
 *
 * Criterion runs each test in its own forked process, in parallel, so every stream key carries
 * the test's pid and name. "A restart" is a new handle with the same consumer name. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "engage/store.h"
#include "engage/stream.h"
#include "leakcheck.h"

static eg_store_t *open_store(void)
{
    const char *url = getenv("ENGAGE_REDIS_URL");
    eg_store_t *s = NULL;
    if (url == NULL || url[0] == '\0') {
        cr_assert_fail("ENGAGE_REDIS_URL is not set: the integration tests need a running "
                       "redis-server (e.g. ENGAGE_REDIS_URL=redis://127.0.0.1:6379)");
    }
    eg_status_t st = eg_store_open(&s, url, 2000);
    cr_assert_eq(st, EG_OK, "eg_store_open(%s): %s", url, eg_status_str(st));
    return s;
}

static void key(char *out, size_t outlen, const char *name)
{
    snprintf(out, outlen, "test:stream:%ld:%s", (long)getpid(), name);
}

static eg_stream_t *consumer(eg_store_t *st, const char *k, const char *name)
{
    eg_stream_opts_t o = {.stream = k, .group = "g", .consumer = name, .read_count = 10};
    eg_stream_t *s = NULL;
    cr_assert_eq(eg_stream_open(&s, st, &o), EG_OK);
    return s;
}

/* Run a command from NUL-terminated strings, asserting EG_OK; returns the reply (caller frees). */
static eg_reply_t *cmd(eg_store_t *s, int argc, const char **argv)
{
    eg_reply_t *r = NULL;
    eg_status_t st = eg_store_command(s, argc, argv, NULL, &r);
    cr_assert_eq(st, EG_OK, "%s: %s (%s)", argv[0], eg_status_str(st), eg_store_error(s));
    return r;
}

/* XADD k * n <value>; the new id is copied into id (64 bytes). */
static void add(eg_store_t *s, const char *k, const char *value, char *id)
{
    const char *argv[] = {"XADD", k, "*", "n", value};
    eg_reply_t *r = cmd(s, 5, argv);
    cr_assert_eq(r->type, EG_REPLY_STRING);
    snprintf(id, 64, "%s", r->str);
    eg_reply_free(r);
}

/* How many entries of group g are pending (any consumer), and on which consumer the first is. */
static long long pending_count(eg_store_t *s, const char *k, char *owner, size_t ownerlen)
{
    const char *argv[] = {"XPENDING", k, "g", "-", "+", "100"};
    eg_reply_t *r = cmd(s, 6, argv);
    cr_assert_eq(r->type, EG_REPLY_ARRAY);
    if (owner != NULL && r->elements > 0) {
        snprintf(owner, ownerlen, "%s", r->element[0]->element[1]->str);
    }
    long long n = (long long)r->elements;
    eg_reply_free(r);
    return n;
}

/* Read once and expect exactly the given values of field n, in order. */
static void expect_read(eg_stream_t *s, int block_ms, size_t n, const char *const *values)
{
    eg_stream_batch_t b = {0};
    eg_status_t st = eg_stream_read(s, block_ms, &b);
    cr_assert_eq(st, EG_OK, "read: %s (%s)", eg_status_str(st), eg_stream_error(s));
    cr_assert_eq(b.n, n, "read %zu entries, expected %zu", b.n, n);
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *v = eg_stream_entry_field(&b.entries[i], "n", &len);
        cr_assert_eq(b.entries[i].status, EG_OK);
        cr_assert_not_null(v);
        cr_assert(len == strlen(values[i]) && memcmp(v, values[i], len) == 0,
                  "entry %zu is '%.*s', expected '%s'", i, (int)len, v, values[i]);
    }
    eg_stream_batch_clear(&b);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

Test(stream, creating_the_group_twice_is_fine_and_makes_the_stream)
{
    eg_store_t *st = open_store();
    char k[128];
    key(k, sizeof k, "create");
    eg_stream_t *s = consumer(st, k, "a");
    cr_assert_eq(eg_stream_create_group(s), EG_OK, "%s", eg_stream_error(s));
    cr_assert_eq(eg_stream_create_group(s), EG_OK, "BUSYGROUP must be success: %s",
                 eg_stream_error(s));
    const char *info[] = {"XINFO", "GROUPS", k};
    eg_reply_t *r = cmd(st, 3, info);
    cr_assert_eq(r->type, EG_REPLY_ARRAY);
    cr_expect_eq(r->elements, 1, "one group, got %zu", r->elements);
    eg_reply_free(r);
    eg_stream_close(s);
    eg_stream_close(NULL);
    eg_store_close(st);
}

Test(stream, pending_entries_come_before_new_ones_after_a_restart)
{
    eg_store_t *st = open_store();
    char k[128], id[3][64];
    key(k, sizeof k, "restart");
    eg_stream_t *s = consumer(st, k, "c");
    cr_assert_eq(eg_stream_create_group(s), EG_OK);
    add(st, k, "one", id[0]);
    add(st, k, "two", id[1]);
    cr_assert(eg_stream_reading_pending(s), "a new handle starts with its pending entries");
    expect_read(s, 0, 0, NULL); /* nothing pending yet: switches to new entries */
    cr_assert(!eg_stream_reading_pending(s));
    expect_read(s, 0, 2, (const char *[]){"one", "two"});
    eg_stream_close(s); /* "crash" without acknowledging */

    add(st, k, "three", id[2]);
    s = consumer(st, k, "c");
    expect_read(s, 100, 2, (const char *[]){"one", "two"});
    const char *ids[] = {id[0], id[1]};
    long long acked = 0;
    cr_assert_eq(eg_stream_ack(s, ids, 2, &acked), EG_OK);
    cr_expect_eq(acked, 2);
    expect_read(s, 0, 0, NULL); /* pending list empty now */
    expect_read(s, 0, 1, (const char *[]){"three"});
    expect_read(s, 0, 0, NULL);
    eg_stream_close(s);
    eg_store_close(st);
}

Test(stream, ack_removes_the_entry_from_pending)
{
    eg_store_t *st = open_store();
    char k[128], id[64];
    key(k, sizeof k, "ack");
    eg_stream_t *s = consumer(st, k, "c");
    cr_assert_eq(eg_stream_create_group(s), EG_OK);
    add(st, k, "x", id);
    expect_read(s, 0, 0, NULL);
    expect_read(s, 0, 1, (const char *[]){"x"});
    cr_assert_eq(pending_count(st, k, NULL, 0), 1);
    const char *ids[] = {id};
    cr_assert_eq(eg_stream_ack(s, ids, 0, NULL), EG_OK, "no ids: nothing to do");
    cr_assert_eq(pending_count(st, k, NULL, 0), 1);
    cr_assert_eq(eg_stream_ack(s, ids, 1, NULL), EG_OK);
    cr_expect_eq(pending_count(st, k, NULL, 0), 0);
    eg_stream_close(s);
    s = consumer(st, k, "c"); /* a restart finds nothing to redo */
    expect_read(s, 0, 0, NULL);
    eg_stream_close(s);
    eg_store_close(st);
}

Test(stream, an_entry_left_by_a_dead_consumer_is_claimed_after_the_idle_time_not_before)
{
    eg_store_t *st = open_store();
    char k[128], id[64], owner[64] = "";
    key(k, sizeof k, "claim");
    eg_stream_t *a = consumer(st, k, "a");
    eg_stream_t *b = consumer(st, k, "b");
    cr_assert_eq(eg_stream_create_group(a), EG_OK);
    add(st, k, "stranded", id);
    expect_read(a, 0, 0, NULL);
    expect_read(a, 0, 1, (const char *[]){"stranded"});
    eg_stream_close(a); /* a dies with the entry unacknowledged */

    eg_stream_batch_t got = {0};
    cr_assert_eq(eg_stream_claim(b, 400, &got), EG_OK, "%s", eg_stream_error(b));
    cr_expect_eq(got.n, 0, "claimed before the idle time");
    pending_count(st, k, owner, sizeof owner);
    cr_expect_str_eq(owner, "a");

    sleep_ms(500);
    cr_assert_eq(eg_stream_claim(b, 400, &got), EG_OK, "%s", eg_stream_error(b));
    cr_assert_eq(got.n, 1, "not claimed after the idle time");
    cr_expect_str_eq(got.entries[0].id, id);
    cr_expect_str_eq(eg_stream_entry_field(&got.entries[0], "n", NULL), "stranded");
    pending_count(st, k, owner, sizeof owner);
    cr_expect_str_eq(owner, "b");
    eg_stream_batch_clear(&got);

    /* It is b's pending entry now: a read of b's pending entries finds it. */
    eg_stream_rewind(b);
    expect_read(b, 0, 1, (const char *[]){"stranded"});
    const char *ids[] = {id};
    cr_assert_eq(eg_stream_ack(b, ids, 1, NULL), EG_OK);
    cr_expect_eq(pending_count(st, k, NULL, 0), 0);
    eg_stream_close(b);
    eg_store_close(st);
}

Test(stream, a_deleted_stream_is_recovered_and_entries_flow_again)
{
    eg_store_t *st = open_store();
    char k[128], id[64];
    key(k, sizeof k, "lost");
    eg_stream_t *s = consumer(st, k, "c");
    cr_assert_eq(eg_stream_create_group(s), EG_OK);
    add(st, k, "before", id);
    expect_read(s, 0, 0, NULL);
    expect_read(s, 0, 1, (const char *[]){"before"});

    const char *del[] = {"DEL", k};
    eg_reply_free(cmd(st, 2, del)); /* e.g. Redis restarted without its data */
    expect_read(s, 0, 0, NULL);     /* NOGROUP: group made again, nothing in it */
    add(st, k, "after", id);
    expect_read(s, 0, 1, (const char *[]){"after"});

    /* Deleted again, and written to before we read: the new group starts at 0, so the entry
     * written meanwhile is read in the same call that recovers. */
    eg_reply_free(cmd(st, 2, del));
    add(st, k, "meanwhile", id);
    expect_read(s, 0, 1, (const char *[]){"meanwhile"});

    /* A claim that finds the group gone recovers too. */
    eg_reply_free(cmd(st, 2, del));
    eg_stream_batch_t b = {0};
    cr_assert_eq(eg_stream_claim(s, 0, &b), EG_OK, "%s", eg_stream_error(s));
    cr_expect_eq(b.n, 0);
    add(st, k, "later", id);
    expect_read(s, 0, 1, (const char *[]){"later"});
    eg_stream_close(s);
    eg_store_close(st);
}

Test(stream, binary_and_empty_values_come_through_as_exact_views)
{
    eg_store_t *st = open_store();
    char k[128];
    key(k, sizeof k, "binary");
    eg_stream_t *s = consumer(st, k, "c");
    cr_assert_eq(eg_stream_create_group(s), EG_OK);
    static const char bin[] = {'a', '\0', 'b', '\xff', '\r', '\n'};
    static const char name[] = {'k', '\0', 'y'};
    const char *argv[] = {"XADD", k, "*", "bin", bin, "empty", "", name, "v"};
    const size_t lens[] = {4, strlen(k), 1, 3, sizeof bin, 5, 0, sizeof name, 1};
    eg_reply_t *r = NULL;
    cr_assert_eq(eg_store_command(st, 9, argv, lens, &r), EG_OK);
    eg_reply_free(r);

    eg_stream_batch_t b = {0};
    expect_read(s, 0, 0, NULL);
    cr_assert_eq(eg_stream_read(s, 0, &b), EG_OK);
    cr_assert_eq(b.n, 1);
    const eg_stream_entry_t *e = &b.entries[0];
    cr_assert_eq(e->status, EG_OK);
    cr_assert_eq(e->nfields, 3);
    cr_expect_eq(e->id_len, strlen(e->id));
    size_t len = 99;
    const char *v = eg_stream_entry_field(e, "bin", &len);
    cr_assert_not_null(v);
    cr_expect_eq(len, sizeof bin);
    cr_expect_eq(memcmp(v, bin, sizeof bin), 0, "binary value changed");
    v = eg_stream_entry_field(e, "empty", &len);
    cr_assert_not_null(v, "an empty value is present, not missing");
    cr_expect_eq(len, 0);
    cr_expect_eq(e->fields[2].name_len, sizeof name);
    cr_expect_eq(memcmp(e->fields[2].name, name, sizeof name), 0);
    cr_expect_null(eg_stream_entry_field(e, "k", NULL), "a name with a NUL is not its prefix");
    eg_stream_batch_clear(&b);
    eg_stream_close(s);
    eg_store_close(st);
    eg_assert_no_leaks();
}

Test(stream, a_pending_entry_deleted_from_the_stream_comes_back_without_fields)
{
    eg_store_t *st = open_store();
    char k[128], id[64];
    key(k, sizeof k, "xdel");
    eg_stream_t *s = consumer(st, k, "c");
    cr_assert_eq(eg_stream_create_group(s), EG_OK);
    add(st, k, "gone", id);
    expect_read(s, 0, 0, NULL);
    expect_read(s, 0, 1, (const char *[]){"gone"});
    const char *xdel[] = {"XDEL", k, id};
    eg_reply_free(cmd(st, 3, xdel));

    eg_stream_rewind(s);
    eg_stream_batch_t b = {0};
    cr_assert_eq(eg_stream_read(s, 0, &b), EG_OK);
    cr_assert_eq(b.n, 1);
    cr_expect_eq(b.entries[0].status, EG_ENOTFOUND);
    cr_expect_str_eq(b.entries[0].id, id, "the id is kept so it can be acknowledged");
    cr_expect_eq(b.entries[0].nfields, 0);
    const char *ids[] = {b.entries[0].id};
    cr_assert_eq(eg_stream_ack(s, ids, 1, NULL), EG_OK);
    eg_stream_batch_clear(&b);
    cr_expect_eq(pending_count(st, k, NULL, 0), 0);
    eg_stream_close(s);
    eg_store_close(st);
}

Test(stream, a_key_of_another_type_is_an_error_status_not_a_crash)
{
    eg_store_t *st = open_store();
    char k[128];
    key(k, sizeof k, "wrongtype");
    const char *set[] = {"SET", k, "not a stream"};
    eg_reply_free(cmd(st, 3, set));
    eg_stream_t *s = consumer(st, k, "c");
    eg_stream_batch_t b = {0};
    cr_expect_eq(eg_stream_create_group(s), EG_EPROTO);
    cr_expect(strstr(eg_stream_error(s), "WRONGTYPE") != NULL, "error: %s", eg_stream_error(s));
    cr_expect_eq(eg_stream_read(s, 0, &b), EG_EPROTO, "%s", eg_stream_error(s));
    cr_expect_eq(b.n, 0);
    cr_expect(eg_stream_reading_pending(s), "after a failure the pending entries come first");
    cr_expect_eq(eg_stream_read(s, 0, &b), EG_EPROTO);
    cr_expect_eq(eg_stream_claim(s, 0, &b), EG_EPROTO, "%s", eg_stream_error(s));
    const char *ids[] = {"1-1"};
    cr_expect_eq(eg_stream_ack(s, ids, 1, NULL), EG_EPROTO);
    eg_stream_close(s);
    eg_store_close(st);
}

Test(stream, a_blocking_read_waits_then_returns_nothing)
{
    eg_store_t *st = open_store();
    char k[128];
    key(k, sizeof k, "block");
    eg_stream_t *s = consumer(st, k, "c");
    cr_assert_eq(eg_stream_create_group(s), EG_OK);
    expect_read(s, 0, 0, NULL);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    expect_read(s, 300, 0, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    cr_expect_geq(ms, 250, "BLOCK 300 returned after %ld ms", ms);
    eg_stream_close(s);
    eg_store_close(st);
}

Test(stream, range_and_del_commands_in_one_pipeline_keep_the_order)
{
    eg_store_t *st = open_store();
    char k[128], id[3][64];
    key(k, sizeof k, "range");
    add(st, k, "1", id[0]);
    add(st, k, "2", id[1]);
    add(st, k, "3", id[2]);

    eg_stream_cmd_t range = {0}, del = {0};
    eg_stream_cmd_range(k, 2, &range);
    eg_reply_t *rep[2] = {NULL};
    const char *const *cmds[2] = {range.argv};
    int argcs[2] = {range.argc};
    cr_assert_eq(eg_store_pipeline(st, 1, argcs, cmds, rep), EG_OK);
    eg_stream_batch_t b = {0};
    cr_assert_eq(eg_stream_parse_range(rep[0], &b), EG_OK);
    cr_assert_eq(b.n, 2, "COUNT 2 gave %zu", b.n);
    cr_expect_str_eq(b.entries[0].id, id[0]);
    cr_expect_str_eq(b.entries[1].id, id[1]);

    const char *ids[] = {b.entries[0].id, b.entries[1].id};
    eg_stream_cmd_del(k, ids, 2, &del);
    cmds[0] = del.argv;
    argcs[0] = del.argc;
    cmds[1] = range.argv;
    argcs[1] = range.argc;
    cr_assert_eq(eg_store_pipeline(st, 2, argcs, cmds, rep), EG_OK);
    cr_expect_eq(rep[0]->integer, 2);
    cr_assert_eq(eg_stream_parse_range(rep[1], &b), EG_OK);
    cr_assert_eq(b.n, 1, "the read after the XDEL sees %zu entries", b.n);
    cr_expect_str_eq(b.entries[0].id, id[2]);
    cr_expect_str_eq(eg_stream_entry_field(&b.entries[0], "n", NULL), "3");
    eg_reply_free(rep[0]);
    eg_stream_batch_clear(&b);
    eg_stream_cmd_free(&range);
    eg_stream_cmd_free(&del);
    eg_store_close(st);
    eg_assert_no_leaks();
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

/* A redis-server of the test's own that does not know XAUTOCLAIM, like Redis before 6.2. */
static pid_t start_old_redis(int port)
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
               "--appendonly", "no", "--rename-command", "XAUTOCLAIM", "", (char *)NULL);
        _exit(127);
    }
    return pid;
}

Test(stream, a_redis_without_xautoclaim_claims_nothing_and_warns_once)
{
    if (system("command -v redis-server >/dev/null 2>&1") != 0) {
        cr_skip_test("redis-server is not on PATH");
    }
    int port = free_port();
    char url[64], id[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    pid_t redis = start_old_redis(port);
    eg_store_t *st = NULL;
    for (int i = 0; i < 500 && eg_store_open(&st, url, 500) != EG_OK; i++) {
        sleep_ms(10);
    }
    cr_assert_not_null(st, "redis-server on %s did not come up", url);
    eg_stream_t *a = consumer(st, "s", "a"), *b = consumer(st, "s", "b");
    cr_assert_eq(eg_stream_create_group(a), EG_OK);
    add(st, "s", "x", id);
    expect_read(a, 0, 0, NULL);
    expect_read(a, 0, 1, (const char *[]){"x"});

    /* Catch this process's log lines (stderr) while claiming three times. */
    char logpath[] = "/tmp/engage-stream-test-XXXXXX";
    int logfd = mkstemp(logpath);
    cr_assert_geq(logfd, 0);
    int saved = dup(STDERR_FILENO);
    dup2(logfd, STDERR_FILENO);
    eg_status_t sts[3];
    size_t ns[3];
    for (int i = 0; i < 3; i++) {
        eg_stream_batch_t got = {0};
        sts[i] = eg_stream_claim(b, 0, &got);
        ns[i] = got.n;
        eg_stream_batch_clear(&got);
    }
    dup2(saved, STDERR_FILENO);
    close(saved);
    char logs[4096] = "";
    ssize_t len = pread(logfd, logs, sizeof logs - 1, 0);
    logs[len > 0 ? len : 0] = '\0';
    close(logfd);
    unlink(logpath);

    int warnings = 0;
    for (const char *p = logs; (p = strstr(p, "no XAUTOCLAIM")) != NULL; p++) {
        warnings++;
    }
    for (int i = 0; i < 3; i++) {
        cr_expect_eq(sts[i], EG_OK, "claim %d: %s", i, eg_status_str(sts[i]));
        cr_expect_eq(ns[i], 0);
    }
    cr_expect_eq(warnings, 1, "warned %d times: %s", warnings, logs);
    char owner[64] = "";
    pending_count(st, "s", owner, sizeof owner);
    cr_expect_str_eq(owner, "a");
    expect_read(b, 0, 0, NULL); /* reading still works */
    eg_stream_close(a);
    eg_stream_close(b);
    eg_store_close(st);
    kill(redis, SIGKILL);
    waitpid(redis, NULL, 0);
}
