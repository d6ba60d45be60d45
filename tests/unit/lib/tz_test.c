/* lib/tz.c: zones from the system tzdata through GLib. Local <-> UTC across DST transitions
 * (gaps give no instant, overlaps two), offsets, transitions and ISO-8601 local formatting.
 * Expected instants are written as UTC ISO strings, parsed by lib/timeutil.c (no zone code),
 * and were checked against `zdump -v -c 2026,2027 ZONE` on tzdata 2025b. */
#include <criterion/criterion.h>

#include <string.h>

#include "engage/timeutil.h"
#include "engage/tz.h"
#include "leakcheck.h"

static int64_t at(const char *iso)
{
    int64_t ms = 0;
    cr_assert_eq(eg_time_parse_iso(iso, strlen(iso), &ms), EG_OK, "bad test time %s", iso);
    return ms;
}

static eg_tz_t *open_zone(const char *name)
{
    eg_tz_t *tz = eg_tz_open(name);
    cr_assert_not_null(tz, "%s not found in the system tzdata", name);
    return tz;
}

static void assert_local(const char *zone, const char *utc, const char *want)
{
    eg_tz_t *tz = open_zone(zone);
    char got[EG_TZ_LOCAL_LEN];
    eg_tz_format_local(tz, at(utc), got);
    cr_assert_str_eq(got, want, "%s at %s", zone, utc);
    eg_tz_close(tz);
}

/* Assert the instants of a local wall time: n of them, equal to want0 / want1 (UTC ISO). */
static void assert_from_local(const char *zone, int y, int mo, int d, int h, int mi, int n,
                              const char *want0, const char *want1)
{
    eg_tz_t *tz = open_zone(zone);
    int64_t got[2] = {-1, -1};
    int count = eg_tz_from_local(tz, y, mo, d, h, mi, got);
    cr_assert_eq(count, n, "%s %04d-%02d-%02d %02d:%02d: %d instants, want %d", zone, y, mo, d, h,
                 mi, count, n);
    if (n >= 1)
        cr_assert_eq(got[0], at(want0), "%s %02d:%02d first instant", zone, h, mi);
    if (n == 2)
        cr_assert_eq(got[1], at(want1), "%s %02d:%02d second instant", zone, h, mi);
    eg_tz_close(tz);
}

Test(tz, open_refuses_unknown_and_malformed_names)
{
    cr_assert_null(eg_tz_open("Mars/Olympus_Mons"));
    cr_assert_null(eg_tz_open(""));
    cr_assert_null(eg_tz_open(NULL));
    char longname[80];
    memset(longname, 'A', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    cr_assert_null(eg_tz_open(longname));
    eg_tz_close(NULL);
    cr_assert(eg_tz_valid("America/New_York"));
    cr_assert_not(eg_tz_valid("America/Nowhere"));
}

Test(tz, open_close_keeps_the_name_and_leaks_nothing)
{
    eg_tz_t *tz = open_zone("Europe/Berlin");
    cr_assert_str_eq(eg_tz_name(tz), "Europe/Berlin");
    eg_tz_close(tz);
    eg_assert_no_leaks();
}

Test(tz, to_local_new_york_across_spring_forward)
{
    eg_tz_t *tz = open_zone("America/New_York");
    eg_local_t l;
    eg_tz_to_local(tz, at("2026-03-08T06:59:59.999Z"), &l);
    cr_assert_eq(l.year, 2026);
    cr_assert_eq(l.month, 3);
    cr_assert_eq(l.day, 8);
    cr_assert_eq(l.hour, 1);
    cr_assert_eq(l.minute, 59);
    cr_assert_eq(l.second, 59);
    cr_assert_eq(l.ms, 999);
    cr_assert_eq(l.weekday, 7, "2026-03-08 is a Sunday");
    cr_assert_eq(l.offset_s, -5 * 3600);
    eg_tz_to_local(tz, at("2026-03-08T07:00:00Z"), &l);
    cr_assert_eq(l.hour, 3, "02:00 EST is followed by 03:00 EDT");
    cr_assert_eq(l.minute, 0);
    cr_assert_eq(l.offset_s, -4 * 3600);
    eg_tz_close(tz);
}

Test(tz, to_local_kolkata_weekday_turns_at_1830_utc)
{
    eg_tz_t *tz = open_zone("Asia/Kolkata");
    eg_local_t l;
    eg_tz_to_local(tz, at("2026-07-05T18:29:59.999Z"), &l);
    cr_assert_eq(l.weekday, 7);
    cr_assert_eq(l.day, 5);
    cr_assert_eq(l.hour, 23);
    cr_assert_eq(l.minute, 59);
    eg_tz_to_local(tz, at("2026-07-05T18:30:00Z"), &l);
    cr_assert_eq(l.weekday, 1, "local midnight of Monday 2026-07-06");
    cr_assert_eq(l.day, 6);
    cr_assert_eq(l.hour, 0);
    cr_assert_eq(l.minute, 0);
    cr_assert_eq(l.offset_s, 5 * 3600 + 30 * 60);
    eg_tz_close(tz);
}

Test(tz, to_local_before_the_epoch)
{
    eg_tz_t *tz = open_zone("UTC");
    eg_local_t l;
    eg_tz_to_local(tz, -1, &l);
    cr_assert_eq(l.year, 1969);
    cr_assert_eq(l.month, 12);
    cr_assert_eq(l.day, 31);
    cr_assert_eq(l.hour, 23);
    cr_assert_eq(l.second, 59);
    cr_assert_eq(l.ms, 999);
    cr_assert_eq(l.weekday, 3, "1969-12-31 was a Wednesday");
    eg_tz_to_local(tz, -4 * 86400000LL, &l);
    cr_assert_eq(l.day, 28);
    cr_assert_eq(l.weekday, 7, "1969-12-28 was a Sunday");
    eg_tz_close(tz);
}

Test(tz, from_local_new_york_gap_has_no_instant)
{
    assert_from_local("America/New_York", 2026, 3, 8, 2, 0, 0, NULL, NULL);
    assert_from_local("America/New_York", 2026, 3, 8, 2, 30, 0, NULL, NULL);
    assert_from_local("America/New_York", 2026, 3, 8, 2, 59, 0, NULL, NULL);
    assert_from_local("America/New_York", 2026, 3, 8, 1, 59, 1, "2026-03-08T06:59Z", NULL);
    assert_from_local("America/New_York", 2026, 3, 8, 3, 0, 1, "2026-03-08T07:00Z", NULL);
}

Test(tz, from_local_new_york_overlap_has_two_instants_earlier_first)
{
    assert_from_local("America/New_York", 2026, 11, 1, 1, 0, 2, "2026-11-01T05:00Z",
                      "2026-11-01T06:00Z");
    assert_from_local("America/New_York", 2026, 11, 1, 1, 30, 2, "2026-11-01T05:30Z",
                      "2026-11-01T06:30Z");
    assert_from_local("America/New_York", 2026, 11, 1, 0, 59, 1, "2026-11-01T04:59Z", NULL);
    assert_from_local("America/New_York", 2026, 11, 1, 2, 0, 1, "2026-11-01T07:00Z", NULL);
}

Test(tz, from_local_berlin_2026)
{
    assert_from_local("Europe/Berlin", 2026, 3, 29, 2, 30, 0, NULL, NULL);
    assert_from_local("Europe/Berlin", 2026, 3, 29, 3, 0, 1, "2026-03-29T01:00Z", NULL);
    assert_from_local("Europe/Berlin", 2026, 10, 25, 2, 30, 2, "2026-10-25T00:30Z",
                      "2026-10-25T01:30Z");
    assert_from_local("Europe/Berlin", 2026, 10, 25, 3, 0, 1, "2026-10-25T02:00Z", NULL);
}

Test(tz, lord_howe_transitions_are_half_an_hour)
{
    /* tzdata 2025b: 2026-04-05 02:00 +11 -> 01:30 +10:30 at 2026-04-04T15:00Z;
     * 2026-10-04 02:00 +10:30 -> 02:30 +11 at 2026-10-03T15:30Z. */
    eg_tz_t *tz = open_zone("Australia/Lord_Howe");
    int64_t t1 = eg_tz_next_transition(tz, at("2026-01-01T00:00Z"), at("2027-01-01T00:00Z"));
    cr_assert_eq(t1, at("2026-04-04T15:00Z"));
    cr_assert_eq(eg_tz_offset(tz, t1 - 1), 11 * 3600);
    cr_assert_eq(eg_tz_offset(tz, t1), 10 * 3600 + 1800);
    int64_t t2 = eg_tz_next_transition(tz, t1, at("2027-01-01T00:00Z"));
    cr_assert_eq(t2, at("2026-10-03T15:30Z"));
    cr_assert_eq(eg_tz_offset(tz, t2 - 1), 10 * 3600 + 1800);
    cr_assert_eq(eg_tz_offset(tz, t2), 11 * 3600);
    eg_tz_close(tz);

    assert_from_local("Australia/Lord_Howe", 2026, 4, 5, 1, 30, 2, "2026-04-04T14:30Z",
                      "2026-04-04T15:00Z");
    assert_from_local("Australia/Lord_Howe", 2026, 4, 5, 1, 45, 2, "2026-04-04T14:45Z",
                      "2026-04-04T15:15Z");
    assert_from_local("Australia/Lord_Howe", 2026, 4, 5, 2, 0, 1, "2026-04-04T15:30Z", NULL);
    assert_from_local("Australia/Lord_Howe", 2026, 4, 5, 1, 29, 1, "2026-04-04T14:29Z", NULL);
    assert_from_local("Australia/Lord_Howe", 2026, 10, 4, 2, 0, 0, NULL, NULL);
    assert_from_local("Australia/Lord_Howe", 2026, 10, 4, 2, 15, 0, NULL, NULL);
    assert_from_local("Australia/Lord_Howe", 2026, 10, 4, 2, 30, 1, "2026-10-03T15:30Z", NULL);
    assert_from_local("Australia/Lord_Howe", 2026, 10, 4, 1, 59, 1, "2026-10-03T15:29Z", NULL);
}

Test(tz, from_local_overlap_order_is_by_instant_not_by_dst_flag)
{
    /* Europe/Dublin has negative DST in tzdata: summer (+01) is standard time and winter (GMT)
     * is "daylight". The standard-time instant of the October overlap is the earlier one. */
    assert_from_local("Europe/Dublin", 2026, 10, 25, 1, 30, 2, "2026-10-25T00:30Z",
                      "2026-10-25T01:30Z");
    assert_from_local("Europe/Dublin", 2026, 3, 29, 1, 30, 0, NULL, NULL);
    /* Volgograd moved from +04 to +03 standard time on 2020-12-27: an overlap with no DST. */
    assert_from_local("Europe/Volgograd", 2020, 12, 27, 1, 30, 2, "2020-12-26T21:30Z",
                      "2020-12-26T22:30Z");
}

Test(tz, mexico_city_has_no_dst_in_2026)
{
    eg_tz_t *tz = open_zone("America/Mexico_City");
    cr_assert_eq(eg_tz_offset(tz, at("2026-01-15T12:00Z")), -6 * 3600);
    cr_assert_eq(eg_tz_offset(tz, at("2026-07-01T12:00Z")), -6 * 3600, "DST abolished in 2022");
    cr_assert_eq(eg_tz_next_transition(tz, at("2026-01-01T00:00Z"), at("2027-01-01T00:00Z")), -1);
    eg_tz_close(tz);
    /* The first Sunday of April used to skip 02:00-03:00: not any more. */
    assert_from_local("America/Mexico_City", 2026, 4, 5, 2, 30, 1, "2026-04-05T08:30Z", NULL);
    assert_from_local("America/Mexico_City", 2026, 7, 1, 9, 0, 1, "2026-07-01T15:00Z", NULL);
    assert_from_local("America/Mexico_City", 2026, 10, 25, 1, 30, 1, "2026-10-25T07:30Z", NULL);
}

Test(tz, from_local_carries_hour_24_to_the_next_day)
{
    assert_from_local("Asia/Kolkata", 2026, 7, 5, 24, 0, 1, "2026-07-05T18:30Z", NULL);
    assert_from_local("Asia/Kolkata", 2026, 12, 31, 24, 0, 1, "2026-12-31T18:30Z", NULL);
    assert_from_local("UTC", 2026, 2, 28, 24, 30, 1, "2026-03-01T00:30Z", NULL);
    eg_tz_t *tz = open_zone("UTC");
    int64_t out[2];
    cr_assert_eq(eg_tz_from_local(tz, 2026, 13, 1, 0, 0, out), 0, "month 13 is refused");
    eg_tz_close(tz);
}

Test(tz, next_transition_new_york_2026)
{
    eg_tz_t *tz = open_zone("America/New_York");
    int64_t end = at("2027-01-01T00:00Z");
    int64_t spring = eg_tz_next_transition(tz, at("2026-01-01T00:00Z"), end);
    cr_assert_eq(spring, at("2026-03-08T07:00Z"));
    cr_assert_eq(eg_tz_next_transition(tz, spring, end), at("2026-11-01T06:00Z"));
    cr_assert_eq(eg_tz_next_transition(tz, spring - 1, end), spring, "strictly after t");
    cr_assert_eq(eg_tz_next_transition(tz, at("2026-01-01T00:00Z"), spring), spring,
                 "limit is inclusive");
    cr_assert_eq(eg_tz_next_transition(tz, at("2026-01-01T00:00Z"), spring - 1), -1);
    cr_assert_eq(eg_tz_next_transition(tz, spring, spring), -1);
    eg_tz_close(tz);

    tz = open_zone("Asia/Kolkata");
    cr_assert_eq(eg_tz_next_transition(tz, at("2026-01-01T00:00Z"), at("2036-01-01T00:00Z")), -1);
    eg_tz_close(tz);
}

Test(tz, rules_hold_past_the_last_listed_transition)
{
    /* Far-future years come from the TZif footer rule (second Sunday of March). */
    eg_tz_t *tz = open_zone("America/New_York");
    cr_assert_eq(eg_tz_next_transition(tz, at("2100-01-01T00:00Z"), at("2100-12-31T00:00Z")),
                 at("2100-03-14T07:00Z"));
    eg_tz_close(tz);
}

Test(tz, format_local_offsets)
{
    assert_local("America/Mexico_City", "2026-11-30T10:00:00Z", "2026-11-30T04:00:00.000-06:00");
    assert_local("America/Mexico_City", "2026-07-01T15:00:00Z", "2026-07-01T09:00:00.000-06:00");
    assert_local("Asia/Kolkata", "2026-07-05T18:30:00Z", "2026-07-06T00:00:00.000+05:30");
    assert_local("Australia/Lord_Howe", "2026-01-15T00:00:00Z", "2026-01-15T11:00:00.000+11:00");
    assert_local("Australia/Lord_Howe", "2026-07-15T00:00:00Z", "2026-07-15T10:30:00.000+10:30");
    assert_local("Australia/Lord_Howe", "2026-04-04T14:59:59.999Z",
                 "2026-04-05T01:59:59.999+11:00");
    assert_local("Australia/Lord_Howe", "2026-04-04T15:00:00Z", "2026-04-05T01:30:00.000+10:30");
    assert_local("UTC", "2026-11-28T19:00:00.123Z", "2026-11-28T19:00:00.123+00:00");
    assert_local("America/New_York", "2026-11-01T05:30:00Z", "2026-11-01T01:30:00.000-04:00");
    assert_local("America/New_York", "2026-11-01T06:30:00Z", "2026-11-01T01:30:00.000-05:00");
    assert_local("Europe/Berlin", "2026-12-31T23:00:00Z", "2027-01-01T00:00:00.000+01:00");
}
