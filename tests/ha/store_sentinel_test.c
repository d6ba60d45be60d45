/* lib/store in sentinel mode against real Redis Sentinel (a primary, 2 replicas, 3 sentinels,
 * master "engage"; started by tests/ha/store_sentinel_test.sh, sentinels in
 * ENGAGE_TEST_REDIS_SENTINELS; run with --jobs 1, the failover test kills the primary):
 *   - the store finds the primary through the sentinels, and with min_replicas=1 a write is
 *     answered only once a replica has it;
 *   - a write no replica confirms (min_replicas above the replicas there are) is EG_EUNAVAIL
 *     within wait_ms;
 *   - the primary killed (SIGKILL) under writes: the store follows the failover by itself, every
 *     write answered EG_OK is on the new primary, and the writes stop for less than 10 s. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "engage/store.h"
#include "engage/timeutil.h"

static eg_store_t *open_sentinel(const char *params)
{
    const char *v = getenv("ENGAGE_TEST_REDIS_SENTINELS");
    cr_assert(v && *v, "ENGAGE_TEST_REDIS_SENTINELS (sentinel host:port list) is not set");
    char url[512];
    snprintf(url, sizeof url, "redis-sentinel://%s?master=engage%s", v, params);
    eg_store_t *s = NULL;
    eg_status_t st = eg_store_open(&s, url, 2000);
    cr_assert_eq(st, EG_OK, "cannot open through the sentinels: %s", eg_status_str(st));
    return s;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The pid and port of the server s talks to (INFO server). */
static pid_t server_pid(eg_store_t *s, int *port)
{
    const char *info[] = {"INFO", "server"};
    eg_reply_t *r = NULL;
    cr_assert_eq(eg_store_command(s, 2, info, NULL, &r), EG_OK);
    const char *p = strstr(r->str, "process_id:"), *q = strstr(r->str, "tcp_port:");
    cr_assert(p && q);
    pid_t pid = (pid_t)atol(p + 11);
    *port = atoi(q + 9);
    eg_reply_free(r);
    return pid;
}

Test(store_sentinel, writes_wait_for_a_replica)
{
    eg_store_t *s = open_sentinel("&min_replicas=1&wait_ms=1000");
    char k[64];
    snprintf(k, sizeof k, "test:sentinel:%d:w", (int)getpid());
    const char *set[] = {"SET", k, "v"};
    eg_reply_t *r = NULL;
    cr_expect_eq(eg_store_command(s, 3, set, NULL, &r), EG_OK, "%s", eg_store_error(s));
    eg_reply_free(r);
    eg_store_close(s);

    /* Three replicas asked for, two there: the write is not confirmed. */
    s = open_sentinel("&min_replicas=3&wait_ms=300");
    int64_t t0 = eg_mono_ms();
    r = NULL;
    eg_status_t st = eg_store_command(s, 3, set, NULL, &r);
    int64_t took = eg_mono_ms() - t0;
    cr_expect_eq(st, EG_EUNAVAIL, "a write without the replicas asked for: %s", eg_status_str(st));
    cr_expect_null(r, "no reply is handed out");
    cr_expect_str_neq(eg_store_error(s), "", "the error names the replicas");
    cr_expect(took >= 250 && took < 1500, "answered after %lld ms (wait_ms 300)", (long long)took);
    /* Reads do not wait. */
    const char *get[] = {"GET", k};
    cr_expect_eq(eg_store_command(s, 2, get, NULL, &r), EG_OK, "%s", eg_store_error(s));
    eg_reply_free(r);
    eg_store_close(s);
}

Test(store_sentinel, the_primary_killed_under_writes_loses_nothing_acknowledged)
{
    eg_store_t *s = open_sentinel("&min_replicas=1&wait_ms=1000");
    int port = 0;
    pid_t pid = server_pid(s, &port);
    enum { MAX = 4000 };
    static char acked[MAX];
    int n = 0, done = 0;
    int64_t t0 = eg_mono_ms(), last_ok = t0, worst_gap = 0, killed_at = 0;
    while (n < MAX && eg_mono_ms() - t0 < 25000) {
        if (!killed_at && n == 200) {
            cr_log_info("killing the primary (port %d, pid %d)", port, (int)pid);
            kill(pid, SIGKILL);
            killed_at = eg_mono_ms();
        }
        char k[64], v[16];
        snprintf(k, sizeof k, "test:sentinel:%d:%d", (int)getpid(), n);
        snprintf(v, sizeof v, "%d", n);
        const char *set[] = {"SET", k, v};
        eg_reply_t *r = NULL;
        eg_status_t st = eg_store_command(s, 3, set, NULL, &r);
        eg_reply_free(r);
        int64_t now = eg_mono_ms();
        if (st == EG_OK) {
            acked[n++] = 1;
            if (now - last_ok > worst_gap)
                worst_gap = now - last_ok;
            last_ok = now;
            if (killed_at && ++done > 300)
                break;
        } else {
            sleep_ms(50); /* a caller retrying an outage */
        }
    }
    int new_port = 0;
    server_pid(s, &new_port);
    cr_log_info("failover: writes stopped for %lld ms; primary %d -> %d", (long long)worst_gap,
                port, new_port);
    cr_expect_neq(new_port, port, "the store should be on the new primary");
    cr_expect_lt(worst_gap, 10000, "writes stopped for %lld ms", (long long)worst_gap);
    cr_expect_gt(done, 300, "only %d writes after the kill", done);
    /* Every acknowledged write is on the new primary. */
    int lost = 0;
    for (int i = 0; i < n; i++) {
        char k[64];
        snprintf(k, sizeof k, "test:sentinel:%d:%d", (int)getpid(), i);
        const char *get[] = {"GET", k};
        eg_reply_t *r = NULL;
        cr_assert_eq(eg_store_command(s, 2, get, NULL, &r), EG_OK, "%s", eg_store_error(s));
        if (acked[i] && (r->type != EG_REPLY_STRING || atoi(r->str) != i))
            lost++;
        eg_reply_free(r);
    }
    cr_expect_eq(lost, 0, "%d of %d acknowledged writes lost", lost, n);
    printf("store_sentinel: unavailable_ms=%lld acked=%d lost=%d\n", (long long)worst_gap, n, lost);
    eg_store_close(s);
}
