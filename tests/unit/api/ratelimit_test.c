/* The per-key rate limiter of the api (services/api/ratelimit.c): token bucket math with an
 * injected clock, the table by key id, and the cluster sync arithmetic (without Redis). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"

Test(rl_bucket, a_new_bucket_allows_the_burst_then_refuses)
{
    rl_bucket_t b;
    rl_bucket_init(&b, 5, 1000);
    for (int i = 0; i < 10; i++)
        cr_assert(rl_bucket_take(&b, 5, 1000, NULL), "request %d of the burst of 10", i + 1);
    int retry = 0;
    cr_assert_not(rl_bucket_take(&b, 5, 1000, &retry), "the 11th at the same instant");
    cr_expect_eq(retry, 1);
}

Test(rl_bucket, refills_at_the_rate)
{
    rl_bucket_t b;
    rl_bucket_init(&b, 5, 0);
    for (int i = 0; i < 10; i++)
        cr_assert(rl_bucket_take(&b, 5, 0, NULL));
    cr_assert_not(rl_bucket_take(&b, 5, 199, NULL), "0.995 tokens after 199 ms at 5/s");
    cr_assert(rl_bucket_take(&b, 5, 200, NULL), "one token after 200 ms at 5/s");
    cr_assert_not(rl_bucket_take(&b, 5, 200, NULL));
    /* One second later: 5 more, no more. */
    int ok = 0;
    for (int i = 0; i < 20; i++)
        ok += rl_bucket_take(&b, 5, 1200, NULL);
    cr_expect_eq(ok, 5);
}

Test(rl_bucket, never_holds_more_than_the_burst)
{
    rl_bucket_t b;
    rl_bucket_init(&b, 2000, 0);
    int ok = 0;
    for (int i = 0; i < 10000; i++)
        ok += rl_bucket_take(&b, 2000, 3600000, NULL); /* an hour idle, all at once */
    cr_expect_eq(ok, 4000, "API.md: default 2000/s with a burst of 4000 (%d)", ok);
}

Test(rl_bucket, a_clock_going_backwards_earns_nothing)
{
    rl_bucket_t b;
    rl_bucket_init(&b, 1, 10000);
    cr_assert(rl_bucket_take(&b, 1, 10000, NULL));
    cr_assert(rl_bucket_take(&b, 1, 10000, NULL));
    cr_assert_not(rl_bucket_take(&b, 1, 5000, NULL));
    cr_assert_not(rl_bucket_take(&b, 1, 10500, NULL), "half a token since the last update");
    cr_assert(rl_bucket_take(&b, 1, 11000, NULL));
}

Test(rl_bucket, a_lower_rate_drops_tokens_above_the_new_burst)
{
    rl_bucket_t b;
    rl_bucket_init(&b, 100, 0);
    int ok = 0;
    for (int i = 0; i < 100; i++)
        ok += rl_bucket_take(&b, 3, 0, NULL);
    cr_expect_eq(ok, 6, "burst of the new rate 3/s is 6 (%d)", ok);
}

Test(rl_bucket, retry_after_is_whole_seconds_until_a_token)
{
    cr_expect_eq(rl_retry_after_s(0.0, 5), 1);
    cr_expect_eq(rl_retry_after_s(0.99, 1), 1);
    cr_expect_eq(rl_retry_after_s(0.5, 1), 1);
    cr_expect_eq(rl_retry_after_s(-0.5, 1), 2);
    cr_expect_eq(rl_retry_after_s(-9.0, 5), 2, "10 tokens short at 5/s");
    cr_expect_eq(rl_retry_after_s(-10.0, 5), 3, "11 tokens short at 5/s: 2.2 s");
    cr_expect_eq(rl_retry_after_s(-3999.0, 2000), 2);
    cr_expect_geq(rl_retry_after_s(-1e12, 1), 1);
}

Test(rl_bucket, charges_from_other_replicas_stop_at_minus_the_burst)
{
    rl_bucket_t b;
    rl_bucket_init(&b, 5, 0);
    rl_bucket_charge(&b, 1000);
    cr_expect_float_eq(b.tokens, -10.0, 1e-9);
    int retry = 0;
    cr_assert_not(rl_bucket_take(&b, 5, 0, &retry));
    cr_expect_eq(retry, 3, "11 tokens short at 5/s");
    cr_assert(rl_bucket_take(&b, 5, 2200, NULL), "11 tokens earned in 2.2 s");
    rl_bucket_charge(&b, -5);
    cr_expect_float_eq(b.tokens, 0.0, 1e-9, "a negative charge changes nothing");
}

Test(ratelimit, zero_means_unlimited)
{
    ratelimit_t *rl = ratelimit_new();
    for (int i = 0; i < 100000; i++)
        cr_assert(ratelimit_take(rl, "0123456789abcdef", 0, 0, NULL));
    rl_sync_item_t *items = NULL;
    cr_expect_eq(ratelimit_sync_collect(rl, 0, &items), 0, "no bucket for an unlimited key");
    free(items);
    ratelimit_free(rl);
}

Test(ratelimit, keys_have_their_own_buckets)
{
    ratelimit_t *rl = ratelimit_new();
    int retry = 0, a = 0, b = 0;
    for (int i = 0; i < 50; i++) {
        a += ratelimit_take(rl, "aaaaaaaaaaaaaaaa", 5, 0, &retry);
        b += ratelimit_take(rl, "bbbbbbbbbbbbbbbb", 10, 0, &retry);
    }
    cr_expect_eq(a, 10);
    cr_expect_eq(b, 20);
    cr_expect_eq(retry, 1);
    cr_expect(ratelimit_take(rl, "aaaaaaaaaaaaaaaa", 5, 200, NULL), "refilled after 200 ms");
    ratelimit_free(rl);
}

static rl_sync_item_t *item_of(rl_sync_item_t *items, size_t n, const char *key_id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(items[i].key_id, key_id) == 0)
            return &items[i];
    return NULL;
}

Test(ratelimit, sync_charges_what_other_replicas_used)
{
    ratelimit_t *rl = ratelimit_new();
    const char *k = "0011223344556677";
    for (int i = 0; i < 5; i++)
        cr_assert(ratelimit_take(rl, k, 10, 0, NULL)); /* 15 of 20 left */

    rl_sync_item_t *items = NULL;
    size_t n = ratelimit_sync_collect(rl, 0, &items);
    cr_assert_eq(n, 1);
    cr_expect_eq(items[0].used, 5);
    /* First round: the counter's history (100 from before) is not charged. */
    items[0].total = 105;
    items[0].has_total = true;
    ratelimit_sync_apply(rl, items, n);
    free(items);

    cr_assert(ratelimit_take(rl, k, 10, 0, NULL)); /* 14 left */
    n = ratelimit_sync_collect(rl, 0, &items);
    cr_assert_eq(n, 1);
    cr_expect_eq(items[0].used, 1, "use is reset by each round");
    /* Others served 14 meanwhile: the counter grew by 1 (ours) + 14. */
    items[0].total = 105 + 1 + 14;
    items[0].has_total = true;
    ratelimit_sync_apply(rl, items, n);
    free(items);
    int retry = 0;
    cr_expect_not(ratelimit_take(rl, k, 10, 0, &retry), "the cluster used the whole burst");
    cr_expect_eq(retry, 1);
    cr_expect(ratelimit_take(rl, k, 10, 100, NULL), "one token after 100 ms at 10/s");
    ratelimit_free(rl);
}

Test(ratelimit, sync_without_redis_or_after_counter_expiry_charges_nothing)
{
    ratelimit_t *rl = ratelimit_new();
    const char *k = "8899aabbccddeeff";
    cr_assert(ratelimit_take(rl, k, 1, 0, NULL)); /* 1 of 2 left */
    rl_sync_item_t *items = NULL;
    size_t n = ratelimit_sync_collect(rl, 0, &items);
    items[0].total = 1000;
    items[0].has_total = true;
    ratelimit_sync_apply(rl, items, n);
    free(items);
    /* Redis did not answer: no total. */
    n = ratelimit_sync_collect(rl, 0, &items);
    ratelimit_sync_apply(rl, items, n);
    free(items);
    /* The counter expired and started again lower. */
    n = ratelimit_sync_collect(rl, 0, &items);
    items[0].total = 3;
    items[0].has_total = true;
    ratelimit_sync_apply(rl, items, n);
    free(items);
    cr_expect(ratelimit_take(rl, k, 1, 0, NULL), "the last token is still there");
    ratelimit_free(rl);
}

Test(ratelimit, idle_keys_are_forgotten)
{
    ratelimit_t *rl = ratelimit_new();
    cr_assert(ratelimit_take(rl, "aaaaaaaaaaaaaaaa", 5, 0, NULL));
    cr_assert(ratelimit_take(rl, "bbbbbbbbbbbbbbbb", 5, 20000, NULL));
    rl_sync_item_t *items = NULL;
    size_t n = ratelimit_sync_collect(rl, 40000, &items);
    cr_expect_eq(n, 1, "only the key used in the last 30 s");
    cr_expect_not_null(item_of(items, n, "bbbbbbbbbbbbbbbb"));
    free(items);
    ratelimit_free(rl);
}
