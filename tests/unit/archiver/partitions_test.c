/* The date arithmetic behind the archiver's day partitions: names, parsing back (only names the
 * archiver itself makes), and the UTC day of a time, before and after the epoch. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "partitions.h"

#define DAY PART_MS_PER_DAY

Test(partitions, day_of_is_the_utc_day_floor)
{
    cr_assert_eq(part_day_of(0), 0);
    cr_assert_eq(part_day_of(DAY - 1), 0);
    cr_assert_eq(part_day_of(DAY), 1);
    cr_assert_eq(part_day_of(-1), -1, "before the epoch rounds down, not towards zero");
    cr_assert_eq(part_day_of(-DAY), -1);
    /* 2026-11-28T19:00:00Z */
    cr_assert_eq(part_day_of(1795892400000LL), 20785);
}

Test(partitions, names_are_table_and_utc_date)
{
    char name[64];
    part_name(name, sizeof name, "callbacks", 0);
    cr_assert_str_eq(name, "callbacks_19700101");
    part_name(name, sizeof name, "callback_events", 20785);
    cr_assert_str_eq(name, "callback_events_20261128");
    part_name(name, sizeof name, "callback_data", part_day_of(951782400000LL)); /* 2000-02-29 */
    cr_assert_str_eq(name, "callback_data_20000229");
    part_name(name, sizeof name, "callbacks", part_day_of(4102444800000LL)); /* 2100-01-01 */
    cr_assert_str_eq(name, "callbacks_21000101");
}

Test(partitions, parse_round_trips_every_day_of_four_years)
{
    char name[64];
    for (int64_t day = 20000; day < 20000 + 4 * 366; day++) {
        int64_t back = -1;
        part_name(name, sizeof name, "callbacks", day);
        cr_assert(part_parse("callbacks", name, &back), "%s not parsed", name);
        cr_assert_eq(back, day, "%s", name);
    }
}

Test(partitions, parse_accepts_only_our_names)
{
    int64_t day = 0;
    const char *bad[] = {
        "callbacks_default",   "callbacks_2026112",  "callbacks_202611280",
        "callbacks_2026-1128", "callbacks_20261131", "callbacks_20260229",
        "callbacks_20261300",  "callbacks_20261100", "callback_data_20261128",
        "xcallbacks_20261128", "callbacks20261128",  "callbacks_1969123a",
        "callbacks_19691231",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_not(part_parse("callbacks", bad[i], &day), "%s accepted", bad[i]);
    cr_assert(part_parse("callbacks", "callbacks_20280229", &day), "a leap day is a day");
    /* callback_data's partitions are not callbacks' (and the other way round). */
    cr_assert(part_parse("callback_data", "callback_data_20261128", &day));
    cr_assert_eq(day, 20785);
}
