/* lib/sizing.c: the formulas behind `engagectl sizing`, checked against hand-computed values. */
#include <criterion/criterion.h>

#include <math.h>

#include "engage/sizing.h"

#define GIB (1024.0 * 1024 * 1024)

static void near(double got, double want, const char *what)
{
    cr_assert(fabs(got - want) <= 1e-6 * (fabs(want) + 1), "%s: got %.3f, want %.3f", what, got,
              want);
}

/* A model with round numbers, so the expected values are easy to check by hand. */
static const eg_sizing_model_t toy = {
    .name = "toy",
    .redis_bytes_per_cb_low = 500,
    .redis_bytes_per_cb_high = 600,
    .redis_bytes_per_userdata_kb = 1000,
    .pg_bytes_per_cb_low = 1000,
    .pg_bytes_per_cb_high = 1500,
    .pg_bytes_per_userdata_kb = 1100,
    .redis_cmds_immediate_life = 20,
    .redis_cmds_scheduled_life = 30,
    .redis_cmds_per_waiting_min = 2,
    .idle_redis_cmds_per_s = 1,
    .idle_per_tenant = false,
    .node_bytes = 1000000,
};

Test(sizing, resident_is_a_day_s_callbacks_times_the_days_kept)
{
    eg_sizing_input_t in = {.callbacks_per_day = 1000, .scheduled_days = 0, .tenants = 1};
    near(eg_sizing_resident(&in), 14000, "immediate");
    in.scheduled_days = 3;
    near(eg_sizing_resident(&in), 17000, "booked 3 days ahead");
}

Test(sizing, immediate_load)
{
    eg_sizing_input_t in = {.callbacks_per_day = 1440, .user_data_kb = 2, .tenants = 5};
    eg_sizing_result_t r;
    eg_sizing_compute(&toy, &in, &r);
    near(r.resident_callbacks, 20160, "resident");
    near(r.redis_bytes_low, 20160 * (500 + 2 * 1000), "redis low");
    near(r.redis_bytes_high, 20160 * (600 + 2 * 1000), "redis high");
    near(r.pg_bytes_low, 20160 * (1000 + 2 * 1100), "pg low");
    near(r.pg_bytes_high, 20160 * (1500 + 2 * 1100), "pg high");
    /* 52,416,000 bytes on nodes of 1,000,000: 53 nodes. */
    cr_assert_eq(r.nodes, 53);
    /* One callback a minute x 20 + nothing waiting + 1/s idle x 60 x 53 nodes (not per tenant). */
    near(r.redis_cmds_per_min, 20 + 0 + 60 * 53, "commands");
}

Test(sizing, scheduled_load_pays_for_waiting)
{
    eg_sizing_input_t in = {.callbacks_per_day = 2880, .scheduled_days = 2, .tenants = 1};
    eg_sizing_result_t r;
    eg_sizing_compute(&toy, &in, &r);
    near(r.resident_callbacks, 2880 * 16, "resident");
    cr_assert_eq(r.nodes, 28); /* 46,080 x 600 = 27,648,000 bytes */
    /* 2 lives a minute x 30 + 5,760 waiting x 2 + 60 x 28. */
    near(r.redis_cmds_per_min, 60 + 11520 + 1680, "commands");
}

Test(sizing, at_least_one_node_and_one_tenant)
{
    eg_sizing_input_t in = {.callbacks_per_day = 0, .tenants = 0};
    eg_sizing_result_t r;
    eg_sizing_compute(&eg_sizing_ges, &in, &r);
    cr_assert_eq(r.nodes, 1);
    near(r.redis_bytes_high, 0, "no callbacks, no bytes");
    near(r.redis_cmds_per_min, 50 * 60, "one idle node of one tenant");
}

Test(sizing, ges_published_figures)
{
    /* 100,000 immediate callbacks a day with 1 kB of user data, 3 tenants. */
    eg_sizing_input_t in = {.callbacks_per_day = 100000, .user_data_kb = 1, .tenants = 3};
    eg_sizing_result_t r;
    eg_sizing_compute(&eg_sizing_ges, &in, &r);
    near(r.resident_callbacks, 1400000, "resident");
    near(r.redis_bytes_low, 1400000 * (4.5 + 1.25) * 1024, "redis low");
    near(r.redis_bytes_high, 1400000 * (5.5 + 1.25) * 1024, "redis high");
    near(r.pg_bytes_low, 1400000 * (6.5 + 3.0) * 1024, "pg low");
    near(r.pg_bytes_high, 1400000 * (7.0 + 3.0) * 1024, "pg high");
    /* 9,676,800,000 bytes / 2 GiB = 4.5: 5 nodes. */
    cr_assert_eq(r.nodes, 5);
    near(r.redis_cmds_per_min, 100000.0 / 1440 * 110 + 50 * 60 * 5 * 3, "commands");
}

Test(sizing, ges_seed_scenario)
{
    /* Slots of 100 every 15 minutes, 24x7, always booked 14 days ahead: 9,600 callbacks a day,
     * 134,400 waiting. GES's formula: 134,400 waiting + 6.67 lives a minute x 110 + one idle
     * node (the 138,756 also counts the 1,000 immediate callbacks in the queue). */
    eg_sizing_input_t in = {.callbacks_per_day = 9600, .scheduled_days = 14, .tenants = 1};
    eg_sizing_result_t r;
    eg_sizing_compute(&eg_sizing_ges, &in, &r);
    near(r.redis_cmds_per_min, 134400 + 9600.0 / 1440 * 110 + 3000 * r.nodes, "commands");
    cr_assert_eq(r.nodes, (int)ceil(268800 * 5.5 * 1024 / (2 * GIB)));
}

Test(sizing, engage_beats_ges_on_every_cost)
{
    eg_sizing_input_t in = {
        .callbacks_per_day = 50000, .user_data_kb = 1, .scheduled_days = 1, .tenants = 10};
    eg_sizing_result_t e, g;
    eg_sizing_compute(&eg_sizing_engage, &in, &e);
    eg_sizing_compute(&eg_sizing_ges, &in, &g);
    cr_assert_lt(e.redis_bytes_high, g.redis_bytes_low);
    cr_assert_lt(e.pg_bytes_high, g.pg_bytes_low);
    cr_assert_lt(e.redis_cmds_per_min, g.redis_cmds_per_min);
    cr_assert_leq(e.nodes, g.nodes);
}
