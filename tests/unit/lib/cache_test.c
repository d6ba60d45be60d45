/* lib/cache.c: a thread-safe TTL cache with a maximum size. */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "engage/cache.h"
#include "leakcheck.h"

typedef struct {
    int n;
    char tag[12];
} val_t;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static val_t val(int n, const char *tag)
{
    val_t v;
    memset(&v, 0, sizeof v);
    v.n = n;
    snprintf(v.tag, sizeof v.tag, "%s", tag);
    return v;
}

Test(cache, put_then_get_copies_the_value)
{
    eg_cache_t *c = eg_cache_new(16, sizeof(val_t));
    val_t in = val(7, "seven"), out;

    eg_cache_put(c, "k", &in, 60000);
    in.n = 8; /* the cache holds its own copy */
    memset(&out, 0, sizeof out);
    cr_assert(eg_cache_get(c, "k", &out));
    cr_assert_eq(out.n, 7);
    cr_assert_str_eq(out.tag, "seven");
    eg_cache_free(c);
    eg_assert_no_leaks();
}

Test(cache, missing_key_is_not_found_and_output_untouched)
{
    eg_cache_t *c = eg_cache_new(16, sizeof(val_t));
    val_t out = val(99, "untouched");

    cr_assert_not(eg_cache_get(c, "nope", &out));
    cr_assert_eq(out.n, 99);
    cr_assert_str_eq(out.tag, "untouched");
    eg_cache_free(c);
    eg_assert_no_leaks();
}

Test(cache, put_replaces_an_existing_key)
{
    eg_cache_t *c = eg_cache_new(2, sizeof(val_t));
    val_t a = val(1, "a"), b = val(2, "b"), other = val(3, "o"), out;

    eg_cache_put(c, "k", &a, 60000);
    eg_cache_put(c, "k", &b, 60000);
    cr_assert(eg_cache_get(c, "k", &out));
    cr_assert_eq(out.n, 2);
    /* A replacement is not a second entry: room is left for another key. */
    eg_cache_put(c, "other", &other, 60000);
    cr_assert(eg_cache_get(c, "k", &out));
    cr_assert_eq(out.n, 2);
    cr_assert(eg_cache_get(c, "other", &out));
    cr_assert_eq(out.n, 3);
    eg_cache_free(c);
    eg_assert_no_leaks();
}

Test(cache, entries_expire_after_their_ttl)
{
    eg_cache_t *c = eg_cache_new(16, sizeof(val_t));
    val_t v = val(1, "short"), out;

    eg_cache_put(c, "short", &v, 200);
    eg_cache_put(c, "long", &v, 60000);
    cr_assert(eg_cache_get(c, "short", &out), "gone before its TTL");
    sleep_ms(300);
    cr_assert_not(eg_cache_get(c, "short", &out), "still there after its TTL");
    cr_assert_not(eg_cache_get(c, "short", &out));
    cr_assert(eg_cache_get(c, "long", &out));
    eg_cache_free(c);
    eg_assert_no_leaks();
}

Test(cache, zero_or_negative_ttl_is_never_served)
{
    eg_cache_t *c = eg_cache_new(16, sizeof(val_t));
    val_t v = val(1, "x"), out;

    eg_cache_put(c, "zero", &v, 0);
    eg_cache_put(c, "neg", &v, -1000);
    cr_assert_not(eg_cache_get(c, "zero", &out));
    cr_assert_not(eg_cache_get(c, "neg", &out));
    eg_cache_free(c);
    eg_assert_no_leaks();
}

Test(cache, put_refreshes_the_ttl)
{
    eg_cache_t *c = eg_cache_new(16, sizeof(val_t));
    val_t v = val(1, "x"), out;

    eg_cache_put(c, "k", &v, 40);
    sleep_ms(25);
    eg_cache_put(c, "k", &v, 60000);
    sleep_ms(40);
    cr_assert(eg_cache_get(c, "k", &out), "the second put did not extend the TTL");
    eg_cache_free(c);
    eg_assert_no_leaks();
}

Test(cache, never_holds_more_than_max)
{
    enum { MAX = 8, PUTS = 100 };
    eg_cache_t *c = eg_cache_new(MAX, sizeof(val_t));
    char key[16];
    val_t out;
    int live = 0;

    for (int i = 0; i < PUTS; i++) {
        val_t v = val(i, "x");
        snprintf(key, sizeof key, "k%d", i);
        eg_cache_put(c, key, &v, 60000);
        /* The entry just stored is always there. */
        cr_assert(eg_cache_get(c, key, &out), "%s missing right after its put", key);
        cr_assert_eq(out.n, i);
    }
    for (int i = 0; i < PUTS; i++) {
        snprintf(key, sizeof key, "k%d", i);
        if (eg_cache_get(c, key, &out)) {
            cr_assert_eq(out.n, i, "%s holds another key's value", key);
            live++;
        }
    }
    cr_assert_leq(live, MAX);
    cr_assert_geq(live, 1);
    eg_cache_free(c);
    eg_assert_no_leaks();
}

Test(cache, eviction_drops_expired_entries_first)
{
    eg_cache_t *c = eg_cache_new(3, sizeof(val_t));
    val_t v = val(1, "x"), out;

    eg_cache_put(c, "old", &v, 20);
    eg_cache_put(c, "b", &v, 60000);
    eg_cache_put(c, "c", &v, 60000);
    sleep_ms(40);
    eg_cache_put(c, "d", &v, 60000);
    cr_assert(eg_cache_get(c, "b", &out), "a live entry was evicted while an expired one existed");
    cr_assert(eg_cache_get(c, "c", &out), "a live entry was evicted while an expired one existed");
    cr_assert(eg_cache_get(c, "d", &out));
    cr_assert_not(eg_cache_get(c, "old", &out));
    eg_cache_free(c);
    eg_assert_no_leaks();
}

Test(cache, max_zero_still_holds_one)
{
    eg_cache_t *c = eg_cache_new(0, sizeof(val_t));
    val_t v = val(5, "x"), out;

    eg_cache_put(c, "a", &v, 60000);
    cr_assert(eg_cache_get(c, "a", &out));
    eg_cache_put(c, "b", &v, 60000);
    cr_assert(eg_cache_get(c, "b", &out));
    cr_assert_not(eg_cache_get(c, "a", &out));
    eg_cache_free(c);
    eg_assert_no_leaks();
}

Test(cache, del_removes_one_key)
{
    eg_cache_t *c = eg_cache_new(16, sizeof(val_t));
    val_t v = val(1, "x"), out;

    eg_cache_put(c, "a", &v, 60000);
    eg_cache_put(c, "b", &v, 60000);
    eg_cache_del(c, "a");
    eg_cache_del(c, "never-there");
    cr_assert_not(eg_cache_get(c, "a", &out));
    cr_assert(eg_cache_get(c, "b", &out));
    eg_cache_free(c);
    eg_assert_no_leaks();
}

Test(cache, clear_removes_everything_and_cache_stays_usable)
{
    eg_cache_t *c = eg_cache_new(64, sizeof(val_t));
    char key[16];
    val_t v = val(1, "x"), out;

    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof key, "k%d", i);
        eg_cache_put(c, key, &v, 60000);
    }
    eg_cache_clear(c);
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof key, "k%d", i);
        cr_assert_not(eg_cache_get(c, key, &out), "%s survived clear", key);
    }
    eg_cache_put(c, "again", &v, 60000);
    cr_assert(eg_cache_get(c, "again", &out));
    eg_cache_free(c);
    eg_cache_free(NULL);
    eg_assert_no_leaks();
}

Test(cache, keys_are_compared_exactly)
{
    eg_cache_t *c = eg_cache_new(16, sizeof(val_t));
    val_t a = val(1, "a"), b = val(2, "b"), e = val(3, "e"), out;

    eg_cache_put(c, "key", &a, 60000);
    eg_cache_put(c, "KEY", &b, 60000);
    eg_cache_put(c, "", &e, 60000);
    cr_assert(eg_cache_get(c, "key", &out));
    cr_assert_eq(out.n, 1);
    cr_assert(eg_cache_get(c, "KEY", &out));
    cr_assert_eq(out.n, 2);
    cr_assert(eg_cache_get(c, "", &out));
    cr_assert_eq(out.n, 3);
    cr_assert_not(eg_cache_get(c, "ke", &out));
    eg_cache_free(c);
    eg_assert_no_leaks();
}

/* ---- concurrency ---- */

#define THREADS 4
#define ROUNDS 5000

typedef struct {
    eg_cache_t *c;
    int id;
    int errors;
} worker_t;

static void *worker(void *arg)
{
    worker_t *w = arg;
    char key[32];

    for (int i = 0; i < ROUNDS; i++) {
        /* Private keys: what a thread puts, it reads back (the cache is big enough). */
        val_t v = val(w->id * ROUNDS + i, "mine"), out;
        snprintf(key, sizeof key, "t%d-%d", w->id, i % 50);
        eg_cache_put(w->c, key, &v, 60000);
        if (!eg_cache_get(w->c, key, &out) || out.n != v.n)
            w->errors++;
        /* Shared keys: any thread's value, but always a whole one. */
        snprintf(key, sizeof key, "shared-%d", i % 7);
        val_t s = val(i % 7, "shared");
        eg_cache_put(w->c, key, &s, 60000);
        if (eg_cache_get(w->c, key, &out) && (out.n != i % 7 || strcmp(out.tag, "shared") != 0))
            w->errors++;
        if (i % 97 == 0)
            eg_cache_del(w->c, key);
    }
    return NULL;
}

Test(cache, concurrent_put_get_from_four_threads)
{
    eg_cache_t *c = eg_cache_new(1024, sizeof(val_t));
    pthread_t th[THREADS];
    worker_t w[THREADS];

    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker_t){.c = c, .id = i, .errors = 0};
        cr_assert_eq(pthread_create(&th[i], NULL, worker, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(w[i].errors, 0, "thread %d saw %d wrong answers", i, w[i].errors);
    }
    /* Every thread's last private values are still there. */
    for (int t = 0; t < THREADS; t++) {
        for (int k = 0; k < 50; k++) {
            char key[32];
            val_t out;
            int last = ROUNDS - 50 + k;
            snprintf(key, sizeof key, "t%d-%d", t, last % 50);
            cr_assert(eg_cache_get(c, key, &out), "%s missing", key);
            cr_assert_eq(out.n, t * ROUNDS + last);
        }
    }
    eg_cache_free(c);
    eg_assert_no_leaks();
}

Test(cache, concurrent_puts_into_a_small_cache_with_eviction)
{
    eg_cache_t *c = eg_cache_new(16, sizeof(val_t));
    pthread_t th[THREADS];
    worker_t w[THREADS];

    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker_t){.c = c, .id = i, .errors = 0};
        cr_assert_eq(pthread_create(&th[i], NULL, worker, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    /* Here a private read may miss (another thread's put can evict the entry first), so the
     * workers' counts are not checked: what is left must still be whole and under its key. */
    int live = 0;
    for (int t = 0; t < THREADS; t++) {
        for (int k = 0; k < 50; k++) {
            char key[32];
            val_t out;
            snprintf(key, sizeof key, "t%d-%d", t, k);
            if (eg_cache_get(c, key, &out)) {
                cr_assert_eq(out.n % ROUNDS % 50, k, "%s holds %d", key, out.n);
                cr_assert_eq(out.n / ROUNDS, t, "%s holds another thread's value", key);
                live++;
            }
        }
    }
    cr_assert_leq(live, 16);
    eg_cache_free(c);
    eg_assert_no_leaks();
}
