/* Unit tests of services/scheduler/wake.c: wake-ups that carry names. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "wake.h"

static wake_t w;
static wake_names_t got;

static void setup(void)
{
    wake_init(&w);
}

static void teardown(void)
{
    wake_destroy(&w);
}

TestSuite(wake, .init = setup, .fini = teardown, .timeout = 10);

Test(wake, names_arrive_once_each_and_are_taken_by_the_wait)
{
    wake_signal_name(&w, "tenant-a");
    wake_signal_name(&w, "tenant-b");
    wake_signal_name(&w, "tenant-a");
    cr_assert(wake_has_name(&w, "tenant-a"));
    cr_assert_not(wake_has_name(&w, "tenant-c"));
    cr_assert(wake_wait_names(&w, 1000, &got));
    cr_assert_eq(got.n, 2);
    cr_assert_not(got.all);
    cr_assert_str_eq(got.name[0], "tenant-a");
    cr_assert_str_eq(got.name[1], "tenant-b");
    /* Taken: the next wait times out with nothing. */
    cr_assert_not(wake_wait_names(&w, 10, &got));
    cr_assert_eq(got.n, 0);
    cr_assert_not(wake_has_name(&w, "tenant-a"));
}

Test(wake, a_plain_signal_means_look_everywhere)
{
    wake_signal_name(&w, "tenant-a");
    wake_signal(&w);
    cr_assert(wake_wait_names(&w, 1000, &got));
    cr_assert(got.all);
    cr_assert_eq(got.n, 1);
}

Test(wake, too_many_names_or_a_long_one_mean_look_everywhere)
{
    char name[32];
    for (int i = 0; i < WAKE_NAMES + 1; i++) {
        snprintf(name, sizeof name, "t-%d", i);
        wake_signal_name(&w, name);
    }
    cr_assert(wake_wait_names(&w, 1000, &got));
    cr_assert_eq(got.n, WAKE_NAMES);
    cr_assert(got.all);

    char long_name[WAKE_NAME_MAX + 8];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    wake_signal_name(&w, long_name);
    cr_assert(wake_wait_names(&w, 1000, &got));
    cr_assert_eq(got.n, 0);
    cr_assert(got.all);
}

Test(wake, plain_wait_clears_the_names_too)
{
    wake_signal_name(&w, "tenant-a");
    cr_assert(wake_wait(&w, 1000));
    cr_assert_not(wake_wait_names(&w, 0, &got));
    cr_assert_eq(got.n, 0);
    cr_assert_not(got.all);
}

Test(wake, merge_keeps_names_unique_and_all_sticky)
{
    wake_names_t a = {0}, b = {0};
    wake_names_add(&a, "x");
    wake_names_add(&b, "x");
    wake_names_add(&b, "y");
    b.all = true;
    wake_names_merge(&a, &b);
    cr_assert_eq(a.n, 2);
    cr_assert(a.all);
}
