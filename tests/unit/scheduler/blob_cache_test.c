/* The blob cache: a hint that must never hand out another callback's blob. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "blob_cache.h"

#define T "01936f3e-0000-7000-8000-000000000001"

Test(blob_cache, gives_back_what_was_put_and_nothing_else)
{
    blob_cache_t *c = blob_cache_new(64, 100);
    size_t len = 0;
    cr_expect_null(blob_cache_get(c, T, "a", &len), "empty cache");
    blob_cache_put(c, T, "a", "first", 5);
    blob_cache_put(c, T, "a", "second!", 7);
    char *b = blob_cache_get(c, T, "a", &len);
    cr_assert_not_null(b);
    cr_expect_eq(len, 7);
    cr_expect_eq(memcmp(b, "second!", 7), 0, "the last put wins");
    free(b);
    cr_expect_null(blob_cache_get(c, T, "b", &len), "another id");
    cr_expect_null(blob_cache_get(c, "other-tenant", "a", &len), "another tenant");
    blob_cache_forget(c, T, "a");
    cr_expect_null(blob_cache_get(c, T, "a", &len), "forgotten");
    blob_cache_free(c);
}

Test(blob_cache, a_blob_too_large_is_not_kept_and_drops_the_old_one)
{
    blob_cache_t *c = blob_cache_new(64, 8);
    size_t len = 0;
    blob_cache_put(c, T, "a", "small", 5);
    blob_cache_put(c, T, "a", "far too large", 13);
    cr_expect_null(blob_cache_get(c, T, "a", &len), "a stale small blob must not remain");
    blob_cache_free(c);
}

Test(blob_cache, ids_sharing_a_slot_replace_each_other)
{
    blob_cache_t *c = blob_cache_new(1, 100); /* one slot: every id shares it */
    size_t len = 0;
    blob_cache_put(c, T, "a", "A", 1);
    blob_cache_put(c, T, "b", "B", 1);
    cr_expect_null(blob_cache_get(c, T, "a", &len), "replaced by b");
    char *b = blob_cache_get(c, T, "b", &len);
    cr_assert_not_null(b);
    cr_expect_eq(b[0], 'B');
    free(b);
    blob_cache_forget(c, T, "a"); /* not there: b stays */
    b = blob_cache_get(c, T, "b", &len);
    cr_expect_not_null(b);
    free(b);
    blob_cache_free(c);
}
