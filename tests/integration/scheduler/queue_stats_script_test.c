/* The queue.stats put script (services/scheduler/queue_stats.c, run by qstats_store) against
 * the suite's redis-server: the figures put are the ones the EWT reads back (qstats_load, then
 * qstats_ewt), a newer put replaces them, an older one (entries handled out of order) is
 * ignored and does not prolong them, and they expire QSTATS_TTL_MS after the last update. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage/ids.h"
#include "engage/store.h"
#include "queue_stats.h"
#include "store_keys.h"

/* Every key name these tests read, from the store's own key builder (store_keys.h). */
static void key_of(char *out, size_t n, const char *tenant, store_family_t family, const char *rest)
{
    char *k = store_key(family, tenant, rest);
    cr_assert(strlen(k) < n, "key %s does not fit", k);
    snprintf(out, n, "%s", k);
    free(k);
}

#define VQ "vq-sales"
#define AT 1890000000000LL

static eg_store_t *a_store_and_tenant(char tenant[EG_UUID_STR_LEN + 1])
{
    const char *url = getenv("ENGAGE_REDIS_URL");
    cr_assert(url && *url, "ENGAGE_REDIS_URL is not set: run through `make test`");
    eg_store_t *s = NULL;
    cr_assert_eq(eg_store_open(&s, url, 2000), EG_OK);
    eg_uuid_v7_str(tenant);
    return s;
}

/* The platform's figures at `at`: 4 agents logged in, `ready` ready, `waiting` calls, 120 s. */
static qstats_t figures_at(int64_t at, int ready, int waiting)
{
    return (qstats_t){.at_ms = at,
                      .agents_logged_in = 4,
                      .agents_ready = ready,
                      .calls_waiting = waiting,
                      .avg_handle_time_s = 120};
}

static bool put(eg_store_t *s, const char *tenant, const qstats_t *qs)
{
    bool stored = false;
    eg_status_t st = qstats_store(s, tenant, VQ, qs, &stored);
    cr_assert_eq(st, EG_OK, "%s", eg_status_str(st));
    return stored;
}

static long long pttl(eg_store_t *s, const char *tenant)
{
    char k[200];
    key_of(k, sizeof k, tenant, STORE_QSTATS, VQ);
    const char *argv[] = {"PTTL", k};
    eg_reply_t *r = NULL;
    cr_assert_eq(eg_store_command(s, 2, argv, NULL, &r), EG_OK);
    long long v = r->integer;
    eg_reply_free(r);
    return v;
}

Test(queue_stats_script, figures_put_are_read_back_by_the_ewt)
{
    char tenant[EG_UUID_STR_LEN + 1];
    eg_store_t *s = a_store_and_tenant(tenant);
    qstats_t in = figures_at(AT, 1, 6), out;
    cr_expect_eq(qstats_load(s, tenant, VQ, &out), EG_ENOTFOUND, "nothing before the first put");
    cr_assert(put(s, tenant, &in), "stored");

    memset(&out, 0, sizeof out);
    cr_assert_eq(qstats_load(s, tenant, VQ, &out), EG_OK);
    cr_expect_eq(out.at_ms, AT);
    cr_expect_eq(out.agents_logged_in, 4);
    cr_expect_eq(out.agents_ready, 1);
    cr_expect_eq(out.calls_waiting, 6);
    cr_expect_eq(out.avg_handle_time_s, 120);
    int code = 99;
    const char *msg = NULL;
    cr_expect_eq(qstats_ewt(2, 2, &out, &code, &msg), 240, "(2 + 6) x 120 / 4");
    cr_expect_eq(qstats_ewt(3, 2, &out, &code, &msg), 720, "6 x 120 / 1 ready");
    cr_expect_eq(code, 0);

    long long ttl = pttl(s, tenant);
    cr_expect(ttl > QSTATS_TTL_MS - 10000 && ttl <= QSTATS_TTL_MS, "expire after 5 min (%lld)",
              ttl);
    qstats_t other;
    cr_expect_eq(qstats_load(s, tenant, "vq-other", &other), EG_ENOTFOUND, "per virtual queue");
    eg_store_close(s);
}

Test(queue_stats_script, a_newer_put_replaces_the_figures_and_renews_their_life)
{
    char tenant[EG_UUID_STR_LEN + 1], k[200];
    eg_store_t *s = a_store_and_tenant(tenant);
    qstats_t first = figures_at(AT, 1, 6), newer = figures_at(AT + 5000, 2, 10), out;
    cr_assert(put(s, tenant, &first));
    key_of(k, sizeof k, tenant, STORE_QSTATS, VQ);
    const char *shorten[] = {"PEXPIRE", k, "60000"};
    eg_reply_t *r = NULL;
    cr_assert_eq(eg_store_command(s, 3, shorten, NULL, &r), EG_OK);
    eg_reply_free(r);

    cr_expect(put(s, tenant, &newer), "a newer put is stored");
    cr_assert_eq(qstats_load(s, tenant, VQ, &out), EG_OK);
    cr_expect_eq(out.at_ms, AT + 5000);
    cr_expect_eq(out.agents_ready, 2);
    cr_expect_eq(out.calls_waiting, 10);
    cr_expect(pttl(s, tenant) > 60000, "the update renewed the figures' life");
    eg_store_close(s);
}

Test(queue_stats_script, an_older_put_is_ignored_and_does_not_prolong_the_figures)
{
    char tenant[EG_UUID_STR_LEN + 1], k[200];
    eg_store_t *s = a_store_and_tenant(tenant);
    qstats_t newest = figures_at(AT, 1, 6), late = figures_at(AT - 1, 3, 50), out;
    cr_assert(put(s, tenant, &newest));
    key_of(k, sizeof k, tenant, STORE_QSTATS, VQ);
    const char *shorten[] = {"PEXPIRE", k, "60000"};
    eg_reply_t *r = NULL;
    cr_assert_eq(eg_store_command(s, 3, shorten, NULL, &r), EG_OK);
    eg_reply_free(r);

    cr_expect(!put(s, tenant, &late), "an entry older by 1 ms is not stored");
    cr_assert_eq(qstats_load(s, tenant, VQ, &out), EG_OK);
    cr_expect_eq(out.at_ms, AT, "the newest figures stay");
    cr_expect_eq(out.agents_ready, 1);
    cr_expect_eq(out.calls_waiting, 6);
    cr_expect(pttl(s, tenant) <= 60000, "an ignored put does not keep old figures alive");
    eg_store_close(s);
}

Test(queue_stats_script, a_put_at_the_same_time_is_stored)
{
    /* Not older, so stored: a platform that reports twice in one millisecond has the last
     * word, as the header's rule ("older than the stored one is ignored") says. */
    char tenant[EG_UUID_STR_LEN + 1];
    eg_store_t *s = a_store_and_tenant(tenant);
    qstats_t a = figures_at(AT, 1, 6), b = figures_at(AT, 0, 7), out;
    cr_assert(put(s, tenant, &a));
    cr_expect(put(s, tenant, &b));
    cr_assert_eq(qstats_load(s, tenant, VQ, &out), EG_OK);
    cr_expect_eq(out.calls_waiting, 7);
    eg_store_close(s);
}
