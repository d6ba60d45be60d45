/* lib/timeutil.c: strict ISO-8601 parsing (offset required) and UTC formatting. */
#include <criterion/criterion.h>

#include <string.h>
#include <time.h>

#include "engage/timeutil.h"

/* 2026-11-28T19:00:00.000Z, computed independently. */
#define T_2026_11_28_19 1795892400000LL

static eg_status_t parse(const char *s, int64_t *ms)
{
    return eg_time_parse_iso(s, strlen(s), ms);
}

static void assert_parses(const char *s, int64_t want)
{
    int64_t ms = -42;
    cr_assert_eq(parse(s, &ms), EG_OK, "'%s' refused", s);
    cr_assert_eq(ms, want, "'%s' parsed as %lld, want %lld", s, (long long)ms, (long long)want);
}

static void assert_refused(const char *s)
{
    int64_t ms = 12345;
    cr_assert_eq(parse(s, &ms), EG_EINVAL, "'%s' accepted as %lld", s, (long long)ms);
}

Test(timeutil, parse_utc_z)
{
    assert_parses("2026-11-28T19:00:00.000Z", T_2026_11_28_19);
    assert_parses("2026-11-28T19:00:00Z", T_2026_11_28_19);
    assert_parses("1970-01-01T00:00:00Z", 0);
    assert_parses("2026-11-28T19:00:00z", T_2026_11_28_19);
}

Test(timeutil, parse_without_seconds)
{
    assert_parses("2026-11-28T19:00Z", T_2026_11_28_19);
    assert_parses("2026-11-28T14:00-05:00", T_2026_11_28_19);
}

Test(timeutil, parse_positive_offset_with_colon)
{
    /* 19:00Z is 00:30 the next day in India. */
    assert_parses("2026-11-29T00:30:00+05:30", T_2026_11_28_19);
    assert_parses("2026-11-28T19:00:00+00:00", T_2026_11_28_19);
}

Test(timeutil, parse_negative_offset_without_colon)
{
    assert_parses("2026-11-28T13:00:00-0600", T_2026_11_28_19);
    assert_parses("2026-11-29T00:30:00+0530", T_2026_11_28_19);
    assert_parses("2026-11-28T13:00:00.250-06:00", T_2026_11_28_19 + 250);
}

Test(timeutil, parse_fractional_seconds)
{
    assert_parses("2026-11-28T19:00:00.5Z", T_2026_11_28_19 + 500);
    assert_parses("2026-11-28T19:00:00.123Z", T_2026_11_28_19 + 123);
    assert_parses("2026-11-28T19:00:00.123456Z", T_2026_11_28_19 + 123);
    assert_parses("2026-11-28T19:00:00.999999Z", T_2026_11_28_19 + 999);
    assert_parses("2026-11-28T19:00:00.007Z", T_2026_11_28_19 + 7);
    assert_parses("2026-11-28T19:00:59.9+00:00", T_2026_11_28_19 + 59900);
}

Test(timeutil, parse_leap_day_of_a_leap_year)
{
    assert_parses("2024-02-29T12:34:56.789Z", 1709210096789LL);
    assert_parses("2000-02-29T00:00:00Z", 951782400000LL);
}

Test(timeutil, parse_before_the_epoch)
{
    assert_parses("1969-12-31T23:59:59.999Z", -1);
    assert_parses("1970-01-01T00:00:00+01:00", -3600000);
}

Test(timeutil, parse_rejects_missing_offset)
{
    assert_refused("2026-11-28T19:00:00");
    assert_refused("2026-11-28T19:00:00.000");
    assert_refused("2026-11-28T19:00");
}

Test(timeutil, parse_rejects_bad_dates_and_times)
{
    assert_refused("2026-02-29T10:00:00Z"); /* 2026 is not a leap year */
    assert_refused("1900-02-29T10:00:00Z"); /* nor is 1900 */
    assert_refused("2026-13-01T10:00:00Z");
    assert_refused("2026-00-10T10:00:00Z");
    assert_refused("2026-04-31T10:00:00Z");
    assert_refused("2026-01-00T10:00:00Z");
    assert_refused("2026-01-32T10:00:00Z");
    assert_refused("2026-01-01T24:00:00Z");
    assert_refused("2026-01-01T24:00Z");
    assert_refused("2026-01-01T10:60:00Z");
    assert_refused("2026-01-01T10:00:60Z");
}

Test(timeutil, parse_rejects_bad_shapes)
{
    assert_refused("");
    assert_refused("2026-11-28");
    assert_refused("2026-11-28Z");
    assert_refused("26-11-28T19:00:00Z");
    assert_refused("2026/11/28T19:00:00Z");
    assert_refused("2026-11-28X19:00:00Z");
    assert_refused("2026-11-28T19-00-00Z");
    assert_refused("2026-1-28T19:00:00Z");
    assert_refused("2026-11-28T9:00:00Z");
    assert_refused("2026-11-28T19:00:00.Z"); /* a dot with no digits */
    assert_refused("2026-11-28T19:00:0Z");
    assert_refused("2026-11-28T19:00:00+5:30");
    assert_refused("2026-11-28T19:00:00+05");
    assert_refused("2026-11-28T19:00:00+05:3");
    assert_refused("2026-11-28T19:00:00+19:00");
    assert_refused("2026-11-28T19:00:00+05:60");
    assert_refused("1795892400000");
}

Test(timeutil, parse_rejects_trailing_garbage)
{
    assert_refused("2026-11-28T19:00:00ZZ");
    assert_refused("2026-11-28T19:00:00Z ");
    assert_refused("2026-11-28T19:00:00.000Zjunk");
    assert_refused("2026-11-28T19:00:00+05:30:00");
    assert_refused("2026-11-28T19:00:00+05:30Z");
}

Test(timeutil, parse_honours_len)
{
    const char *s = "2026-11-28T19:00:00Zgarbage";
    int64_t ms = 0;

    cr_assert_eq(eg_time_parse_iso(s, 20, &ms), EG_OK);
    cr_assert_eq(ms, T_2026_11_28_19);
    /* Cut before the offset: no offset, refused. */
    cr_assert_eq(eg_time_parse_iso(s, 19, &ms), EG_EINVAL);
    cr_assert_eq(eg_time_parse_iso(s, 0, &ms), EG_EINVAL);
}

static void assert_formats(int64_t ms, const char *want)
{
    char out[EG_ISO_LEN + 1];

    memset(out, 'X', sizeof out);
    eg_time_format_iso(ms, out);
    cr_assert_str_eq(out, want, "%lld formatted as %s", (long long)ms, out);
    cr_assert_eq(strlen(out), EG_ISO_LEN);
}

Test(timeutil, format_known_instants)
{
    assert_formats(0, "1970-01-01T00:00:00.000Z");
    assert_formats(T_2026_11_28_19, "2026-11-28T19:00:00.000Z");
    assert_formats(T_2026_11_28_19 + 7, "2026-11-28T19:00:00.007Z");
    assert_formats(1709210096789LL, "2024-02-29T12:34:56.789Z");
    assert_formats(951782400000LL, "2000-02-29T00:00:00.000Z");
    assert_formats(253402300799999LL, "9999-12-31T23:59:59.999Z");
}

Test(timeutil, format_negative_ms)
{
    assert_formats(-1, "1969-12-31T23:59:59.999Z");
    assert_formats(-1000, "1969-12-31T23:59:59.000Z");
    assert_formats(-1001, "1969-12-31T23:59:58.999Z");
    assert_formats(-86400000, "1969-12-31T00:00:00.000Z");
}

Test(timeutil, parse_of_format_is_identity)
{
    const int64_t samples[] = {0,
                               1,
                               -1,
                               -999,
                               -1000,
                               -1001,
                               999,
                               T_2026_11_28_19,
                               T_2026_11_28_19 + 123,
                               1709210096789LL,
                               951782400000LL,
                               4102444799999LL, /* 2099-12-31T23:59:59.999Z */
                               -2208988800000LL /* 1900-01-01 */};
    for (size_t i = 0; i < sizeof samples / sizeof *samples; i++) {
        char s[EG_ISO_LEN + 1];
        int64_t back = 0;

        eg_time_format_iso(samples[i], s);
        cr_assert_eq(parse(s, &back), EG_OK, "%s refused", s);
        cr_assert_eq(back, samples[i], "%lld -> %s -> %lld", (long long)samples[i], s,
                     (long long)back);
    }
    /* And a walk over every day of 2024 and 2025 at an odd time of day. */
    for (int64_t ms = 1704067200000LL + 45296789; ms < 1767225600000LL; ms += 86400000) {
        char s[EG_ISO_LEN + 1];
        int64_t back = 0;

        eg_time_format_iso(ms, s);
        cr_assert_eq(parse(s, &back), EG_OK, "%s refused", s);
        cr_assert_eq(back, ms, "%s", s);
    }
}

Test(timeutil, now_is_realtime_in_ms)
{
    int64_t a = eg_now_ms();
    time_t t = time(NULL);
    int64_t b = eg_now_ms();

    cr_assert_leq(a, b);
    cr_assert_geq((int64_t)t * 1000, a - 2000); /* time() may use a coarse clock */
    cr_assert_leq((int64_t)t * 1000, b);
}

Test(timeutil, mono_never_goes_back_and_measures_sleep)
{
    int64_t a = eg_mono_ms();
    struct timespec ts = {0, 20 * 1000000};

    nanosleep(&ts, NULL);
    int64_t b = eg_mono_ms();
    cr_assert_geq(b - a, 19);
}

/* ---- civil dates: the one calendar of the code (lib/tz.c, the archiver's partitions, the
 * scheduler's holidays count days with it) ---- */

Test(timeutil, day_numbers_of_known_dates)
{
    cr_assert_eq(eg_days_from_civil(1970, 1, 1), 0);
    cr_assert_eq(eg_days_from_civil(1969, 12, 31), -1);
    cr_assert_eq(eg_days_from_civil(2000, 3, 1), 11017);
    cr_assert_eq(eg_days_from_civil(2026, 11, 28), T_2026_11_28_19 / 86400000);
    cr_assert_eq(eg_days_from_civil(1900, 1, 1), -25567);
    /* A day past the month's end counts on (lib/tz.c adds days to the first of the month). */
    cr_assert_eq(eg_days_from_civil(2024, 2, 30), eg_days_from_civil(2024, 3, 1));
    cr_assert_eq(eg_days_from_civil(2023, 12, 32), eg_days_from_civil(2024, 1, 1));
}

/* Against the C library's calendar (gmtime_r), day by day from 1600 to 2400. */
Test(timeutil, civil_dates_agree_with_gmtime_and_round_trip)
{
    for (int64_t day = -135140; day <= 157000; day++) {
        time_t t = (time_t)(day * 86400);
        struct tm tm;
        cr_assert_not_null(gmtime_r(&t, &tm));
        int64_t y;
        int m, d;
        eg_civil_from_days(day, &y, &m, &d);
        if (y != tm.tm_year + 1900 || m != tm.tm_mon + 1 || d != tm.tm_mday)
            cr_assert_fail("day %lld: %lld-%d-%d, gmtime says %d-%d-%d", (long long)day,
                           (long long)y, m, d, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
        if (eg_days_from_civil(y, m, d) != day)
            cr_assert_fail("day %lld does not round-trip", (long long)day);
    }
}

Test(timeutil, days_in_month_follow_the_gregorian_leap_rule)
{
    const int want[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    for (int m = 1; m <= 12; m++)
        cr_expect_eq(eg_days_in_month(2025, m), want[m - 1], "2025-%02d", m);
    cr_expect_eq(eg_days_in_month(2024, 2), 29);
    cr_expect_eq(eg_days_in_month(2000, 2), 29, "divisible by 400");
    cr_expect_eq(eg_days_in_month(1900, 2), 28, "divisible by 100, not 400");
    cr_expect_eq(eg_days_in_month(2100, 2), 28);
}

static eg_status_t date(const char *s, int64_t *day)
{
    return eg_date_parse(s, strlen(s), day);
}

Test(timeutil, date_parse_gives_the_day_number_of_real_dates)
{
    int64_t day = 0;
    cr_assert_eq(date("1970-01-01", &day), EG_OK);
    cr_assert_eq(day, 0);
    cr_assert_eq(date("2024-02-29", &day), EG_OK);
    cr_assert_eq(day, eg_days_from_civil(2024, 2, 29));
    cr_assert_eq(date("1969-12-31", &day), EG_OK);
    cr_assert_eq(day, -1);
    cr_assert_eq(date("2026-12-31", &day), EG_OK);
    cr_assert_eq(day, eg_days_from_civil(2026, 12, 31));
}

Test(timeutil, date_parse_refuses_what_is_not_a_date)
{
    const char *bad[] = {
        "",           "2025-02-29",        "2100-02-29",  "2026-04-31",  "2026-13-01",
        "2026-00-10", "2026-01-00",        "2026-1-01",   "2026-01-1",   "26-01-01",
        "2026/01/01", "2026-01-01T00:00Z", "2026-01-01 ", " 2026-01-01", "2026-0a-01"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int64_t day = 4242;
        cr_expect_eq(date(bad[i], &day), EG_EINVAL, "'%s' accepted", bad[i]);
        cr_expect_eq(day, 4242, "'%s' wrote the day", bad[i]);
    }
    int64_t day = 0;
    cr_expect_eq(eg_date_parse("2026-01-019", 10, &day), EG_OK, "len bounds the text");
    cr_expect_eq(eg_date_parse(NULL, 10, &day), EG_EINVAL);
}
