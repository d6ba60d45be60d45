/* EWT mode2 and mode3 from the voice platform's queue figures (queue.stats). */
#include <criterion/criterion.h>

#include "queue_stats.h"

static const qstats_t busy = {.at_ms = 1,
                              .agents_logged_in = 4,
                              .agents_ready = 1,
                              .calls_waiting = 6,
                              .avg_handle_time_s = 120};

Test(queue_stats, mode2_counts_callbacks_and_calls_over_agents_logged_in)
{
    int code = 99;
    const char *msg = NULL;
    cr_expect_eq(qstats_ewt(2, 0, &busy, &code, &msg), 180, "6 x 120 / 4");
    cr_expect_eq(code, 0);
    cr_expect_str_eq(msg, "OK");
    cr_expect_eq(qstats_ewt(2, 2, &busy, &code, &msg), 240, "(2 + 6) x 120 / 4");
}

Test(queue_stats, mode3_uses_the_platforms_calls_over_ready_agents)
{
    int code = 99;
    const char *msg = NULL;
    cr_expect_eq(qstats_ewt(3, 50, &busy, &code, &msg), 720, "6 x 120 / 1; callbacks not counted");
    cr_expect_eq(code, 0);
    qstats_t none_ready = busy;
    none_ready.agents_ready = 0;
    cr_expect_eq(qstats_ewt(3, 0, &none_ready, &code, &msg), 180, "nobody ready: logged in");
}

Test(queue_stats, rounds_to_the_nearest_second)
{
    qstats_t q = {.agents_logged_in = 3, .calls_waiting = 1, .avg_handle_time_s = 100};
    int code;
    const char *msg;
    cr_expect_eq(qstats_ewt(2, 0, &q, &code, &msg), 33, "100 / 3 = 33.3");
    q.avg_handle_time_s = 101;
    q.agents_logged_in = 2;
    cr_expect_eq(qstats_ewt(2, 0, &q, &code, &msg), 51, "101 / 2 = 50.5 rounds up");
}

Test(queue_stats, no_figures_or_no_agents_is_minus_one_with_code_minus_two)
{
    int code = 0;
    const char *msg = NULL;
    cr_expect_eq(qstats_ewt(2, 3, NULL, &code, &msg), -1);
    cr_expect_eq(code, -2);
    cr_expect(strstr(msg, "queue.stats") != NULL, "%s", msg);
    qstats_t empty = busy;
    empty.agents_logged_in = 0;
    empty.agents_ready = 0;
    for (int mode = 2; mode <= 3; mode++) {
        code = 0;
        cr_expect_eq(qstats_ewt(mode, 3, &empty, &code, &msg), -1, "mode%d", mode);
        cr_expect_eq(code, -2);
        cr_expect_str_eq(msg, "no agents logged in");
    }
}

Test(queue_stats, huge_figures_do_not_overflow)
{
    qstats_t q = {.agents_logged_in = 1,
                  .calls_waiting = QSTATS_MAX_COUNT,
                  .avg_handle_time_s = QSTATS_MAX_COUNT};
    int code;
    const char *msg;
    cr_expect_eq(qstats_ewt(2, QSTATS_MAX_COUNT, &q, &code, &msg), INT32_MAX, "capped");
}
