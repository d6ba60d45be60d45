/* services/scheduler/hours.c: business hours, holidays, special days and the slot grid in the
 * service's time zone, across DST transitions (America/New_York, Europe/Berlin, Australia/
 * Lord_Howe's half-hour DST), fixed offsets (Asia/Kolkata +05:30, America/Mexico_City without
 * DST since 2022), intervals crossing midnight and "24:00" ends.
 *
 * Expected instants are UTC or offset ISO strings parsed by lib/timeutil.c (no zone code); the
 * transitions were checked with `zdump -v -c 2026,2027 ZONE` (tzdata 2025b). Configurations use
 * single quotes for readability; q() turns them into JSON. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage/timeutil.h"
#include "engage/tz.h"
#include "hours.h"
#include "leakcheck.h"
#include "service_config.h"

#define MIN_MS INT64_C(60000)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS (24 * HOUR_MS)
#define WEEK_MS (7 * DAY_MS)

static int64_t at(const char *iso)
{
    int64_t ms = 0;
    cr_assert_eq(eg_time_parse_iso(iso, strlen(iso), &ms), EG_OK, "bad test time %s", iso);
    return ms;
}

/* Compile a configuration written with single quotes. The svc_config_t is freed before the
 * hours are used, so a compiled table that kept pointers into it would fail under ASan. */
static hours_t *compile(const char *text)
{
    char json[2048];
    char err[256] = "";
    svc_config_t cfg;
    hours_t *h = NULL;
    size_t n = strlen(text);
    cr_assert_lt(n, sizeof json);
    for (size_t i = 0; i <= n; i++)
        json[i] = text[i] == '\'' ? '"' : text[i];
    cr_assert_eq(svc_config_parse("svc", json, n, &cfg, err, sizeof err), EG_OK, "%s: %s", err,
                 json);
    cr_assert_eq(hours_compile(&cfg, &h, err, sizeof err), EG_OK, "%s", err);
    svc_config_free(&cfg);
    return h;
}

static void local_of(const hours_t *h, int64_t t, eg_local_t *l)
{
    eg_tz_t *tz = eg_tz_open(hours_timezone(h));
    cr_assert_not_null(tz);
    eg_tz_to_local(tz, t, l);
    eg_tz_close(tz);
}

/* The offered slots of [from, to) must start exactly at want[0..n) (ISO strings). */
static void assert_slots(const hours_t *h, const char *from, const char *to,
                         const char *const *want, size_t n)
{
    hours_slot_t got[128];
    size_t count = hours_slots(h, at(from), at(to), got, 128);
    for (size_t i = 0; i < count && i < n; i++) {
        char iso[EG_ISO_LEN + 1];
        eg_time_format_iso(got[i].start_ms, iso);
        cr_assert_eq(got[i].start_ms, at(want[i]), "slot %zu starts %s, want %s", i, iso, want[i]);
    }
    cr_assert_eq(count, n, "%zu slots in [%s, %s), want %zu", count, from, to, n);
}

static size_t count_slots(const hours_t *h, int64_t from, int64_t to)
{
    static hours_slot_t buf[40000];
    return hours_slots(h, from, to, buf, sizeof buf / sizeof buf[0]);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- America/New_York ---- */

Test(hours_ny, spring_forward_grid_has_no_0200_or_0230_slot)
{
    hours_t *h = compile("{'timezone':'America/New_York','slotMinutes':30}");
    /* 00:00 01:00 EST ... 01:30 EST, then 03:00 EDT: back to back in UTC. */
    static const char *const want[] = {
        "2026-03-08T05:00Z", "2026-03-08T05:30Z", "2026-03-08T06:00Z", "2026-03-08T06:30Z",
        "2026-03-08T07:00Z", "2026-03-08T07:30Z", "2026-03-08T08:00Z", "2026-03-08T08:30Z",
        "2026-03-08T09:00Z", "2026-03-08T09:30Z"};
    assert_slots(h, "2026-03-08T00:00-05:00", "2026-03-08T06:00-04:00", want, N(want));

    hours_slot_t s[64];
    size_t n = hours_slots(h, at("2026-03-08T00:00-05:00"), at("2026-03-09T00:00-04:00"), s, 64);
    cr_assert_eq(n, 46, "a 23-hour day has 46 half-hour slots, got %zu", n);
    for (size_t i = 0; i < n; i++) {
        eg_local_t l;
        local_of(h, s[i].start_ms, &l);
        cr_assert_neq(l.hour, 2, "no slot may start at local 02:%02d", l.minute);
        cr_assert_eq(l.minute % 30, 0);
    }
    hours_free(h);
}

Test(hours_ny, spring_forward_hours_follow_the_wall_clock)
{
    hours_t *h =
        compile("{'timezone':'America/New_York','businessHours':{'sun':[['01:00','04:00']]}}");
    static const char *const want[] = {"2026-03-08T06:00Z", "2026-03-08T06:30Z",
                                       "2026-03-08T07:00Z", "2026-03-08T07:30Z"};
    assert_slots(h, "2026-03-08T00:00-05:00", "2026-03-09T00:00-04:00", want, N(want));
    cr_assert(hours_is_open(h, at("2026-03-08T06:59:59.999Z")), "01:59:59 EST");
    cr_assert(hours_is_open(h, at("2026-03-08T07:00Z")), "03:00 EDT");
    cr_assert_not(hours_is_open(h, at("2026-03-08T08:00Z")), "04:00 EDT");
    cr_assert_not(hours_is_open(h, at("2026-03-08T05:59Z")), "00:59 EST");
    /* 01:30 EST to 04:00 EDT is 1.5 hours of real time. */
    cr_assert_eq(hours_open_until(h, at("2026-03-08T06:30Z"), WEEK_MS), at("2026-03-08T08:00Z"));
    hours_free(h);
}

Test(hours_ny, interval_inside_the_gap_never_opens)
{
    hours_t *h =
        compile("{'timezone':'America/New_York','businessHours':{'mon':[['09:00','17:00']]},"
                "'specialDays':{'2026-03-08':[['02:00','02:30']]}}");
    cr_assert_not(hours_is_open(h, at("2026-03-08T06:59:59Z")));
    cr_assert_not(hours_is_open(h, at("2026-03-08T07:00Z")));
    cr_assert_eq(count_slots(h, at("2026-03-08T00:00-05:00"), at("2026-03-09T00:00-04:00")), 0);
    cr_assert_eq(hours_next_open(h, at("2026-03-07T20:00-05:00"), 3 * DAY_MS),
                 at("2026-03-09T09:00-04:00"));
    hours_free(h);
}

Test(hours_ny, interval_starting_in_the_gap_opens_when_the_clock_jumps)
{
    hours_t *h = compile("{'timezone':'America/New_York','businessHours':{},"
                         "'specialDays':{'2026-03-08':[['02:30','05:00']]}}");
    cr_assert_eq(hours_next_open(h, at("2026-03-08T00:00-05:00"), DAY_MS), at("2026-03-08T07:00Z"));
    static const char *const want[] = {"2026-03-08T07:00Z", "2026-03-08T07:30Z",
                                       "2026-03-08T08:00Z", "2026-03-08T08:30Z"};
    assert_slots(h, "2026-03-08T00:00-05:00", "2026-03-09T00:00-04:00", want, N(want));
    cr_assert_eq(hours_open_until(h, at("2026-03-08T07:00Z"), DAY_MS), at("2026-03-08T09:00Z"));
    hours_free(h);
}

Test(hours_ny, fall_back_offers_0100_and_0130_twice)
{
    hours_t *h = compile("{'timezone':'America/New_York','slotMinutes':30,"
                         "'capacity':{'default':10,'weekly':{'sun':{'01:00':7,'01:30':8}}}}");
    static const char *const want[] = {
        "2026-11-01T04:00Z", "2026-11-01T04:30Z", "2026-11-01T05:00Z", "2026-11-01T05:30Z",
        "2026-11-01T06:00Z", "2026-11-01T06:30Z", "2026-11-01T07:00Z", "2026-11-01T07:30Z"};
    assert_slots(h, "2026-11-01T00:00-04:00", "2026-11-01T03:00-05:00", want, N(want));

    hours_slot_t s[64];
    size_t n = hours_slots(h, at("2026-11-01T00:00-04:00"), at("2026-11-02T00:00-05:00"), s, 64);
    cr_assert_eq(n, 50, "a 25-hour day has 50 half-hour slots, got %zu", n);
    int64_t repeated[4];
    size_t nrep = 0;
    for (size_t i = 0; i < n; i++) {
        eg_local_t l;
        local_of(h, s[i].start_ms, &l);
        if (i > 0)
            cr_assert_gt(s[i].start_ms, s[i - 1].start_ms, "slots in time order");
        if (l.hour == 1) {
            cr_assert_lt(nrep, 4);
            repeated[nrep++] = s[i].start_ms;
            cr_assert_eq(s[i].capacity, l.minute == 0 ? 7 : 8, "weekly capacity of 01:%02d",
                         l.minute);
        } else {
            cr_assert_eq(s[i].capacity, 10);
        }
    }
    cr_assert_eq(nrep, 4, "01:00 and 01:30 twice each");
    cr_assert_eq(repeated[0], at("2026-11-01T05:00Z"));
    cr_assert_eq(repeated[1], at("2026-11-01T05:30Z"));
    cr_assert_eq(repeated[2], at("2026-11-01T06:00Z"));
    cr_assert_eq(repeated[3], at("2026-11-01T06:30Z"));
    hours_free(h);
}

Test(hours_ny, fall_back_hours_are_open_for_both_instants)
{
    hours_t *h =
        compile("{'timezone':'America/New_York','businessHours':{'sun':[['01:00','02:00']]}}");
    static const char *const want[] = {"2026-11-01T05:00Z", "2026-11-01T05:30Z",
                                       "2026-11-01T06:00Z", "2026-11-01T06:30Z"};
    assert_slots(h, "2026-11-01T00:00-04:00", "2026-11-02T00:00-05:00", want, N(want));
    /* 01:00 EDT to 02:00 EST is one open period of two real hours. */
    cr_assert_eq(hours_open_until(h, at("2026-11-01T05:10Z"), WEEK_MS), at("2026-11-01T07:00Z"));
    hours_free(h);

    /* 01:30-03:00: open 01:30-02:00 EDT, closed again 01:00-01:30 EST, open 01:30-03:00 EST. */
    h = compile("{'timezone':'America/New_York','businessHours':{'sun':[['01:30','03:00']]}}");
    cr_assert(hours_is_open(h, at("2026-11-01T05:40Z")));
    cr_assert_eq(hours_open_until(h, at("2026-11-01T05:40Z"), WEEK_MS), at("2026-11-01T06:00Z"));
    cr_assert_not(hours_is_open(h, at("2026-11-01T06:10Z")));
    cr_assert_eq(hours_open_until(h, at("2026-11-01T06:10Z"), WEEK_MS), at("2026-11-01T06:10Z"),
                 "closed: open_until is t itself");
    cr_assert_eq(hours_next_open(h, at("2026-11-01T06:10Z"), DAY_MS), at("2026-11-01T06:30Z"));
    cr_assert_eq(hours_open_until(h, at("2026-11-01T06:30Z"), WEEK_MS), at("2026-11-01T08:00Z"));
    hours_free(h);
}

/* ---- Europe/Berlin ---- */

Test(hours_berlin, spring_and_fall_2026)
{
    hours_t *h = compile("{'timezone':'Europe/Berlin','slotMinutes':60}");
    static const char *const spring[] = {"2026-03-28T23:00Z", "2026-03-29T00:00Z",
                                         "2026-03-29T01:00Z", "2026-03-29T02:00Z"};
    assert_slots(h, "2026-03-29T00:00+01:00", "2026-03-29T05:00+02:00", spring, N(spring));
    static const char *const fall[] = {"2026-10-24T22:00Z", "2026-10-24T23:00Z",
                                       "2026-10-25T00:00Z", "2026-10-25T01:00Z",
                                       "2026-10-25T02:00Z"};
    assert_slots(h, "2026-10-25T00:00+02:00", "2026-10-25T04:00+01:00", fall, N(fall));
    hours_slot_t s[8];
    hours_slots(h, at("2026-10-25T00:00Z"), at("2026-10-25T02:00Z"), s, 8);
    eg_local_t a, b;
    local_of(h, s[0].start_ms, &a);
    local_of(h, s[1].start_ms, &b);
    cr_assert(a.hour == 2 && b.hour == 2 && a.offset_s == 7200 && b.offset_s == 3600,
              "02:00 CEST then 02:00 CET");
    hours_free(h);

    h = compile("{'timezone':'Europe/Berlin','businessHours':{'sun':[['02:00','03:00']]}}");
    cr_assert_eq(hours_open_until(h, at("2026-10-25T00:00Z"), WEEK_MS), at("2026-10-25T02:00Z"),
                 "02:00-03:00 lasts two real hours on the fall-back night");
    cr_assert_eq(hours_next_open(h, at("2026-03-29T00:00Z"), DAY_MS), -1,
                 "02:00-03:00 does not exist on the spring-forward night");
    cr_assert_eq(hours_next_open(h, at("2026-03-29T00:00Z"), 8 * DAY_MS), at("2026-04-05T00:00Z"));
    hours_free(h);
}

/* ---- Asia/Kolkata (+05:30) ---- */

Test(hours_kolkata, local_half_hours_map_to_utc_half_hours)
{
    hours_t *h = compile("{'timezone':'Asia/Kolkata','businessHours':{'mon':[['09:00','17:00']]}}");
    hours_slot_t s[64];
    size_t n = hours_slots(h, at("2026-07-05T18:30Z"), at("2026-07-06T18:30Z"), s, 64);
    cr_assert_eq(n, 16);
    cr_assert_eq(s[0].start_ms, at("2026-07-06T03:30Z"), "09:00 IST");
    cr_assert_eq(s[1].start_ms, at("2026-07-06T04:00Z"), "09:30 IST");
    cr_assert_eq(s[15].start_ms, at("2026-07-06T11:00Z"), "16:30 IST");
    for (size_t i = 0; i < n; i++) {
        eg_local_t l;
        local_of(h, s[i].start_ms, &l);
        int utc_minute = (int)(s[i].start_ms / MIN_MS % 60);
        cr_assert_eq(utc_minute, l.minute == 0 ? 30 : 0, "local :%02d is UTC :%02d", l.minute,
                     utc_minute);
    }
    cr_assert_eq(hours_open_until(h, at("2026-07-06T03:30Z"), WEEK_MS), at("2026-07-06T11:30Z"));
    hours_free(h);
}

Test(hours_kolkata, weekday_changes_at_1830_utc)
{
    hours_t *h = compile("{'timezone':'Asia/Kolkata','businessHours':{'mon':[['00:00','24:00']]},"
                         "'capacity':{'weekly':{'mon':{'00:00':3}}}}");
    cr_assert_not(hours_is_open(h, at("2026-07-05T18:29:59.999Z")), "Sunday 23:59 IST");
    cr_assert(hours_is_open(h, at("2026-07-05T18:30Z")), "Monday 00:00 IST");
    cr_assert(hours_is_open(h, at("2026-07-06T18:29:59.999Z")), "Monday 23:59 IST");
    cr_assert_not(hours_is_open(h, at("2026-07-06T18:30Z")), "Tuesday 00:00 IST");
    cr_assert_eq(hours_slot_capacity(h, at("2026-07-05T18:30Z")), 3, "Monday 00:00 override");
    cr_assert_eq(hours_slot_capacity(h, at("2026-07-05T18:00Z")), 10, "Sunday 23:30: default");
    cr_assert_eq(hours_next_open(h, at("2026-07-05T12:00Z"), WEEK_MS), at("2026-07-05T18:30Z"));
    hours_slot_t s[4];
    cr_assert_eq(hours_slots(h, at("2026-07-05T18:00Z"), at("2026-07-05T19:30Z"), s, 4), 2);
    cr_assert_eq(s[0].start_ms, at("2026-07-05T18:30Z"));
    cr_assert_eq(s[0].capacity, 3);
    cr_assert_eq(s[1].capacity, 10);
    hours_free(h);
}

/* ---- Australia/Lord_Howe (30-minute DST) ---- */

Test(hours_lord_howe, april_repeats_0130_to_0200)
{
    /* 2026-04-05 02:00 +11:00 -> 01:30 +10:30 at 2026-04-04T15:00Z. */
    hours_t *h = compile("{'timezone':'Australia/Lord_Howe','slotMinutes':30}");
    static const char *const want[] = {
        "2026-04-04T13:00Z", "2026-04-04T13:30Z", "2026-04-04T14:00Z", "2026-04-04T14:30Z",
        "2026-04-04T15:00Z", "2026-04-04T15:30Z", "2026-04-04T16:00Z"};
    assert_slots(h, "2026-04-05T00:00+11:00", "2026-04-05T03:00+10:30", want, N(want));
    eg_local_t a, b;
    local_of(h, at("2026-04-04T14:30Z"), &a);
    local_of(h, at("2026-04-04T15:00Z"), &b);
    cr_assert(a.hour == 1 && a.minute == 30 && b.hour == 1 && b.minute == 30,
              "both are local 01:30");
    hours_free(h);

    h = compile("{'timezone':'Australia/Lord_Howe','businessHours':{'sun':[['01:30','02:00']]}}");
    cr_assert_eq(hours_open_until(h, at("2026-04-04T14:30Z"), WEEK_MS), at("2026-04-04T15:30Z"),
                 "01:30-02:00 runs twice back to back: one real hour");
    cr_assert_eq(count_slots(h, at("2026-04-04T13:00Z"), at("2026-04-05T13:00Z")), 2);
    hours_free(h);
}

Test(hours_lord_howe, october_skips_0200_to_0230)
{
    /* 2026-10-04 02:00 +10:30 -> 02:30 +11:00 at 2026-10-03T15:30Z. */
    hours_t *h = compile("{'timezone':'Australia/Lord_Howe','slotMinutes':30}");
    static const char *const want[] = {"2026-10-03T14:30Z", "2026-10-03T15:00Z",
                                       "2026-10-03T15:30Z", "2026-10-03T16:00Z",
                                       "2026-10-03T16:30Z"};
    assert_slots(h, "2026-10-04T01:00+10:30", "2026-10-04T04:00+11:00", want, N(want));
    eg_local_t l;
    local_of(h, at("2026-10-03T15:30Z"), &l);
    cr_assert(l.hour == 2 && l.minute == 30, "the slot after 01:30 is 02:30");
    hours_free(h);

    h = compile("{'timezone':'Australia/Lord_Howe','slotMinutes':60}");
    cr_assert_eq(hours_slot_start(h, at("2026-10-03T15:40Z")), at("2026-10-03T14:30Z"),
                 "02:40 +11: the 02:00 slot does not exist, 01:00 +10:30 runs on");
    cr_assert_eq(hours_slot_start(h, at("2026-10-03T16:10Z")), at("2026-10-03T16:00Z"));
    hours_free(h);

    h = compile("{'timezone':'Australia/Lord_Howe','businessHours':{'sun':[['02:00','02:30']]}}");
    cr_assert_eq(hours_next_open(h, at("2026-10-03T14:00Z"), DAY_MS), -1);
    cr_assert_eq(hours_next_open(h, at("2026-10-03T14:00Z"), 8 * DAY_MS),
                 at("2026-10-11T02:00+11:00"));
    hours_free(h);
}

/* ---- America/Mexico_City (no DST since 2022) ---- */

Test(hours_mexico_city, nine_to_five_is_fifteen_to_twentythree_utc_all_year)
{
    hours_t *h = compile("{'timezone':'America/Mexico_City','slotMinutes':60,'businessHours':{"
                         "'mon':[['09:00','17:00']],'wed':[['09:00','17:00']]}}");
    static const char *const july[] = {
        "2026-07-01T15:00Z", "2026-07-01T16:00Z", "2026-07-01T17:00Z", "2026-07-01T18:00Z",
        "2026-07-01T19:00Z", "2026-07-01T20:00Z", "2026-07-01T21:00Z", "2026-07-01T22:00Z"};
    assert_slots(h, "2026-07-01T06:00Z", "2026-07-02T06:00Z", july, N(july));
    cr_assert_eq(hours_open_until(h, at("2026-07-01T15:00Z"), WEEK_MS), at("2026-07-01T23:00Z"));
    cr_assert_not(hours_is_open(h, at("2026-07-01T14:59:59.999Z")));
    cr_assert_eq(count_slots(h, at("2026-01-07T15:00Z"), at("2026-01-07T23:00Z")), 8);
    /* The Monday after the first Sunday of April, which used to start DST. */
    cr_assert_not(hours_is_open(h, at("2026-04-06T14:30Z")), "08:30 CST, not 09:30 CDT");
    cr_assert(hours_is_open(h, at("2026-04-06T15:00Z")));
    hours_free(h);
}

/* ---- intervals crossing midnight, "24:00" ---- */

#define OVERNIGHT                                                                                  \
    "'timezone':'America/New_York','slotMinutes':60,'businessHours':{'fri':[['22:00','02:00']]}"

Test(hours_overnight, friday_night_runs_into_saturday)
{
    hours_t *h =
        compile("{" OVERNIGHT ",'capacity':{'weekly':{'fri':{'23:00':2},'sat':{'00:00':4}}}}");
    cr_assert_not(hours_is_open(h, at("2026-01-16T21:59-05:00")));
    cr_assert(hours_is_open(h, at("2026-01-16T22:00-05:00")));
    cr_assert(hours_is_open(h, at("2026-01-17T01:00-05:00")), "sat 01:00");
    cr_assert(hours_is_open(h, at("2026-01-17T01:59:59.999-05:00")));
    cr_assert_not(hours_is_open(h, at("2026-01-17T02:00-05:00")), "sat 02:00");
    cr_assert_eq(hours_open_until(h, at("2026-01-16T23:00-05:00"), WEEK_MS),
                 at("2026-01-17T02:00-05:00"));
    hours_slot_t s[8];
    cr_assert_eq(hours_slots(h, at("2026-01-16T20:00-05:00"), at("2026-01-17T04:00-05:00"), s, 8),
                 4);
    cr_assert_eq(s[0].start_ms, at("2026-01-16T22:00-05:00"));
    cr_assert_eq(s[1].capacity, 2, "fri 23:00");
    cr_assert_eq(s[2].start_ms, at("2026-01-17T00:00-05:00"));
    cr_assert_eq(s[2].capacity, 4, "the weekday of the slot's own date: sat 00:00");
    cr_assert_eq(s[3].capacity, 10);
    hours_free(h);
}

Test(hours_overnight, holiday_on_friday_closes_the_saturday_part)
{
    hours_t *h = compile("{" OVERNIGHT ",'holidays':['2026-01-16']}");
    cr_assert_not(hours_is_open(h, at("2026-01-16T23:00-05:00")));
    cr_assert_not(hours_is_open(h, at("2026-01-17T01:00-05:00")));
    cr_assert_eq(count_slots(h, at("2026-01-16T00:00-05:00"), at("2026-01-18T00:00-05:00")), 0);
    cr_assert_eq(hours_next_open(h, at("2026-01-16T12:00-05:00"), 14 * DAY_MS),
                 at("2026-01-23T22:00-05:00"));
    hours_free(h);

    /* A holiday on the saturday does not: the part after midnight belongs to friday. */
    h = compile("{" OVERNIGHT ",'holidays':['2026-01-17']}");
    cr_assert(hours_is_open(h, at("2026-01-17T01:00-05:00")));
    hours_free(h);
}

Test(hours_overnight, special_days_apply_to_their_own_date_only)
{
    hours_t *h = compile("{" OVERNIGHT ",'specialDays':{'2026-01-17':[['10:00','11:00']]}}");
    cr_assert(hours_is_open(h, at("2026-01-17T01:00-05:00")), "saturday's special day keeps "
                                                              "friday's night");
    cr_assert(hours_is_open(h, at("2026-01-17T10:30-05:00")));
    hours_free(h);

    h = compile("{" OVERNIGHT ",'specialDays':{'2026-01-16':[['09:00','10:00']]}}");
    cr_assert(hours_is_open(h, at("2026-01-16T09:30-05:00")));
    cr_assert_not(hours_is_open(h, at("2026-01-16T23:00-05:00")), "friday's hours replaced");
    cr_assert_not(hours_is_open(h, at("2026-01-17T01:00-05:00")));
    hours_free(h);
}

Test(hours_overnight, twenty_four_hundred_chains_into_the_next_day)
{
    hours_t *h = compile("{'timezone':'America/New_York','businessHours':{"
                         "'mon':[['22:00','24:00']],'tue':[['00:00','06:00']],"
                         "'wed':[['09:00','12:00'],['11:00','15:00']],"
                         "'thu':[['09:00','12:00'],['12:00','15:00']],"
                         "'sat':[['18:00','24:00']]}}");
    cr_assert(hours_is_open(h, at("2026-01-12T23:59:59.999-05:00")));
    cr_assert(hours_is_open(h, at("2026-01-13T00:00-05:00")));
    cr_assert_eq(hours_open_until(h, at("2026-01-12T23:00-05:00"), WEEK_MS),
                 at("2026-01-13T06:00-05:00"), "mon 22:00-24:00 + tue 00:00-06:00 is one period");
    cr_assert_eq(hours_open_until(h, at("2026-01-14T10:00-05:00"), WEEK_MS),
                 at("2026-01-14T15:00-05:00"), "overlapping intervals");
    cr_assert_eq(hours_open_until(h, at("2026-01-15T10:00-05:00"), WEEK_MS),
                 at("2026-01-15T15:00-05:00"), "adjacent intervals");
    cr_assert_eq(hours_open_until(h, at("2026-01-17T20:00-05:00"), WEEK_MS),
                 at("2026-01-18T00:00-05:00"), "sat 24:00 is sunday midnight");
    cr_assert_not(hours_is_open(h, at("2026-01-18T00:00-05:00")));
    cr_assert_eq(hours_open_until(h, at("2026-01-12T23:00-05:00"), HOUR_MS),
                 at("2026-01-13T00:00-05:00"), "capped");
    hours_free(h);
}

/* ---- holidays, special days, capacity ---- */

/* The example configuration of API.md. */
#define API_EXAMPLE                                                                                \
    "{'timezone':'America/New_York','slotMinutes':30,"                                             \
    "'capacity':{'default':10,'weekly':{'mon':{'09:00':20,'09:30':20}}},"                          \
    "'businessHours':{'mon':[['09:00','17:00']],'tue':[['09:00','17:00']],"                        \
    "'wed':[['09:00','17:00']],'thu':[['09:00','17:00']],"                                         \
    "'fri':[['09:00','12:00'],['13:00','17:00']],'sat':[],'sun':[]},"                              \
    "'holidays':['2026-12-25'],'specialDays':{'2026-12-24':[['09:00','12:00']]}}"

Test(hours_days, holiday_closes_all_day_and_special_day_replaces_hours)
{
    hours_t *h = compile(API_EXAMPLE);
    cr_assert_not(hours_is_open(h, at("2026-12-25T12:00-05:00")));
    cr_assert_eq(count_slots(h, at("2026-12-25T00:00-05:00"), at("2026-12-26T00:00-05:00")), 0);
    cr_assert(hours_is_open(h, at("2026-12-24T11:59-05:00")));
    cr_assert_not(hours_is_open(h, at("2026-12-24T12:00-05:00")));
    cr_assert_not(hours_is_open(h, at("2026-12-24T13:00-05:00")), "a thursday, but special");
    cr_assert_eq(count_slots(h, at("2026-12-24T00:00-05:00"), at("2026-12-25T00:00-05:00")), 6);
    cr_assert_eq(hours_next_open(h, at("2026-12-24T12:00-05:00"), 14 * DAY_MS),
                 at("2026-12-28T09:00-05:00"), "skips the holiday and the weekend");
    cr_assert_eq(hours_open_until(h, at("2026-12-18T10:00-05:00"), WEEK_MS),
                 at("2026-12-18T12:00-05:00"), "friday lunch closes");
    cr_assert_eq(hours_next_open(h, at("2026-12-18T12:30-05:00"), WEEK_MS),
                 at("2026-12-18T13:00-05:00"));
    cr_assert(hours_is_open(h, at("2026-12-23T16:59-05:00")));
    hours_free(h);
}

Test(hours_days, without_business_hours_open_24x7_but_holidays_apply)
{
    hours_t *h = compile("{'timezone':'America/New_York','holidays':['2026-12-25'],"
                         "'specialDays':{'2026-12-24':[['09:00','12:00']]}}");
    cr_assert(hours_is_open(h, at("2026-12-23T23:00-05:00")));
    cr_assert_eq(hours_open_until(h, at("2026-12-23T12:00-05:00"), WEEK_MS),
                 at("2026-12-24T00:00-05:00"));
    cr_assert_not(hours_is_open(h, at("2026-12-24T08:59-05:00")));
    cr_assert(hours_is_open(h, at("2026-12-24T09:00-05:00")));
    cr_assert_not(hours_is_open(h, at("2026-12-24T12:00-05:00")));
    cr_assert_not(hours_is_open(h, at("2026-12-25T12:00-05:00")));
    cr_assert_eq(hours_next_open(h, at("2026-12-24T12:00-05:00"), WEEK_MS),
                 at("2026-12-26T00:00-05:00"));
    cr_assert_eq(hours_open_until(h, at("2026-12-26T00:00-05:00"), WEEK_MS),
                 at("2027-01-02T00:00-05:00"), "then open for the whole 7-day cap");
    hours_free(h);
}

Test(hours_days, weekly_capacity_overrides_per_weekday_and_slot)
{
    hours_t *h =
        compile("{'timezone':'America/New_York','slotMinutes':30,"
                "'capacity':{'default':10,'weekly':{'mon':{'09:00':20,'09:30':0,'09:15':99},"
                "'tue':{'09:00':5}}},"
                "'businessHours':{'mon':[['09:00','11:00']],'tue':[['09:00','11:00']]}}");
    hours_slot_t s[16];
    size_t n = hours_slots(h, at("2026-01-12T00:00-05:00"), at("2026-01-14T00:00-05:00"), s, 16);
    cr_assert_eq(n, 8);
    static const int want[] = {20, 0, 10, 10, 5, 10, 10, 10};
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(s[i].capacity, want[i], "slot %zu capacity %d, want %d", i, s[i].capacity,
                     want[i]);
        cr_assert_eq(hours_slot_capacity(h, s[i].start_ms), want[i]);
    }
    cr_assert_eq(s[0].start_ms, at("2026-01-12T09:00-05:00"));
    cr_assert_eq(s[4].start_ms, at("2026-01-13T09:00-05:00"));
    cr_assert_eq(hours_slot_capacity(h, at("2026-01-19T09:00-05:00")), 20, "every monday");
    hours_free(h);
}

Test(hours_days, slots_respect_max_and_the_range)
{
    hours_t *h = compile(API_EXAMPLE);
    hours_slot_t s[3];
    cr_assert_eq(hours_slots(h, at("2026-01-12T00:00-05:00"), at("2026-01-13T00:00-05:00"), s, 3),
                 3);
    cr_assert_eq(s[2].start_ms, at("2026-01-12T10:00-05:00"));
    cr_assert_eq(hours_slots(h, at("2026-01-12T09:10-05:00"), at("2026-01-12T10:30-05:00"), s, 3),
                 2, "a slot starting before from is not listed; to is exclusive");
    cr_assert_eq(s[0].start_ms, at("2026-01-12T09:30-05:00"));
    cr_assert_eq(hours_slots(h, at("2026-01-12T10:00-05:00"), at("2026-01-12T09:00-05:00"), s, 3),
                 0);
    cr_assert_eq(hours_slots(h, at("2026-01-12T09:00-05:00"), at("2026-01-12T10:00-05:00"), s, 0),
                 0);
    hours_free(h);
}

/* ---- open_until, next_open, slot_start ---- */

Test(hours_queries, open_until_is_capped_for_a_service_that_never_closes)
{
    hours_t *h = compile("{'timezone':'UTC'}");
    int64_t t = at("2026-01-12T10:00Z");
    cr_assert_eq(hours_open_until(h, t, WEEK_MS), t + WEEK_MS);
    cr_assert_eq(hours_open_until(h, t, 0), t);
    cr_assert_eq(hours_open_until(h, t, INT64_MAX), t + HOURS_MAX_SPAN_MS);
    hours_free(h);

    h = compile("{'timezone':'America/New_York'}");
    t = at("2026-03-05T12:00Z");
    cr_assert_eq(hours_open_until(h, t, WEEK_MS), t + WEEK_MS, "across the spring-forward night");
    t = at("2026-10-29T12:00Z");
    cr_assert_eq(hours_open_until(h, t, WEEK_MS), t + WEEK_MS, "across the fall-back night");
    hours_free(h);

    h = compile("{'timezone':'America/New_York','holidays':['2026-03-10']}");
    cr_assert_eq(hours_open_until(h, at("2026-03-05T12:00Z"), WEEK_MS),
                 at("2026-03-10T00:00-04:00"));
    hours_free(h);
}

Test(hours_queries, next_open_from_a_closed_evening)
{
    hours_t *h = compile(API_EXAMPLE);
    cr_assert_eq(hours_next_open(h, at("2026-03-10T18:00-04:00"), WEEK_MS),
                 at("2026-03-11T09:00-04:00"));
    cr_assert_eq(hours_next_open(h, at("2026-03-10T18:00-04:00"), 15 * HOUR_MS),
                 at("2026-03-11T09:00-04:00"), "limit inclusive");
    cr_assert_eq(hours_next_open(h, at("2026-03-11T08:59:59.999-04:00"), WEEK_MS),
                 at("2026-03-11T09:00-04:00"));
    cr_assert_eq(hours_next_open(h, at("2026-03-10T18:00-04:00"), 15 * HOUR_MS - 1), -1);
    cr_assert_eq(hours_next_open(h, at("2026-03-11T10:00-04:00"), WEEK_MS),
                 at("2026-03-11T10:00-04:00"), "open: t itself");
    cr_assert_eq(hours_next_open(h, at("2026-03-06T18:00-05:00"), WEEK_MS),
                 at("2026-03-09T09:00-04:00"), "over a weekend with a DST change");
    hours_free(h);

    h = compile("{'timezone':'America/New_York','holidays':['2026-03-11'],"
                "'businessHours':{'mon':[['09:00','17:00']],'tue':[['09:00','17:00']],"
                "'wed':[['09:00','17:00']],'thu':[['09:00','17:00']]}}");
    cr_assert_eq(hours_next_open(h, at("2026-03-10T18:00-04:00"), WEEK_MS),
                 at("2026-03-12T09:00-04:00"), "skips the holiday");
    hours_free(h);

    h = compile("{'timezone':'America/New_York','businessHours':{}}");
    cr_assert_eq(hours_next_open(h, at("2026-03-10T18:00-04:00"), 14 * DAY_MS), -1);
    cr_assert_not(hours_is_open(h, at("2026-03-10T12:00-04:00")));
    hours_free(h);
}

Test(hours_queries, slot_start_across_transitions)
{
    hours_t *h = compile("{'timezone':'America/New_York','slotMinutes':30}");
    cr_assert_eq(hours_slot_start(h, at("2026-01-12T09:47-05:00")), at("2026-01-12T09:30-05:00"));
    cr_assert_eq(hours_slot_start(h, at("2026-01-12T09:30-05:00")), at("2026-01-12T09:30-05:00"));
    hours_free(h);

    h = compile("{'timezone':'America/New_York','slotMinutes':60}");
    cr_assert_eq(hours_slot_start(h, at("2026-11-01T05:30Z")), at("2026-11-01T05:00Z"),
                 "01:30 EDT is in the first 01:00 slot");
    cr_assert_eq(hours_slot_start(h, at("2026-11-01T06:30Z")), at("2026-11-01T06:00Z"),
                 "01:30 EST is in the second 01:00 slot");
    cr_assert_eq(hours_slot_start(h, at("2026-03-08T07:30Z")), at("2026-03-08T07:00Z"));
    cr_assert_eq(hours_slot_start(h, at("2026-03-08T06:59Z")), at("2026-03-08T06:00Z"));
    hours_free(h);

    h = compile("{'timezone':'Asia/Kolkata','slotMinutes':60}");
    cr_assert_eq(hours_slot_start(h, at("2026-07-06T04:10Z")), at("2026-07-06T03:30Z"));
    hours_free(h);
}

Test(hours_queries, unknown_time_zone_is_refused)
{
    svc_config_t cfg;
    char err[256] = "";
    hours_t *h = NULL;
    cr_assert_eq(svc_config_parse("svc", "{}", 2, &cfg, err, sizeof err), EG_OK);
    snprintf(cfg.timezone, sizeof cfg.timezone, "Mars/Olympus_Mons");
    cr_assert_eq(hours_compile(&cfg, &h, err, sizeof err), EG_EINVAL);
    cr_assert_null(h);
    cr_assert_not_null(strstr(err, "Mars/Olympus_Mons"), "%s", err);
    svc_config_free(&cfg);
}

Test(hours_queries, compile_and_free_leak_nothing)
{
    hours_t *h = compile(API_EXAMPLE);
    cr_assert_str_eq(hours_timezone(h), "America/New_York");
    hours_free(h);
    hours_free(NULL);
    eg_assert_no_leaks();
}

/* ---- cross-checks against brute force over a whole year ---- */

/* Hours that touch the DST hours of every zone below, with a night crossing midnight and days
 * off around transitions. */
static hours_t *mixed(const char *zone)
{
    char text[1024];
    snprintf(text, sizeof text,
             "{'timezone':'%s','slotMinutes':30,'businessHours':{"
             "'mon':[['08:00','20:00']],'tue':[['08:00','20:00']],'wed':[['08:00','20:00']],"
             "'thu':[['08:00','12:00'],['13:00','20:00']],'fri':[['08:00','24:00']],"
             "'sat':[['00:00','00:30'],['22:00','02:00']],'sun':[['01:00','03:30']]},"
             "'holidays':['2026-03-07','2026-10-24'],"
             "'specialDays':{'2026-04-04':[['23:00','02:30']],'2026-11-01':[['00:30','02:00']]}}",
             zone);
    return compile(text);
}

static const char *const zones[] = {"America/New_York",    "Europe/Berlin",
                                    "Australia/Lord_Howe", "Asia/Kolkata",
                                    "America/Mexico_City", "Europe/Dublin"};

Test(hours_year, slots_are_exactly_the_open_utc_half_hours, .timeout = 120)
{
    /* Every zone here has offsets in whole half hours, so the local half-hour grid is the UTC
     * half-hour grid: a slot is offered exactly when the service is open at a UTC :00 or :30. */
    static hours_slot_t s[20000];
    int64_t from = at("2026-01-01T00:00Z"), to = at("2027-01-01T00:00Z");
    for (size_t z = 0; z < N(zones); z++) {
        hours_t *h = mixed(zones[z]);
        size_t n = hours_slots(h, from, to, s, N(s));
        size_t k = 0;
        for (int64_t u = from; u < to; u += 30 * MIN_MS) {
            cr_assert_eq(hours_slot_start(h, u + 29 * MIN_MS), u, "%s: slot_start", zones[z]);
            if (!hours_is_open(h, u))
                continue;
            cr_assert_lt(k, n, "%s: open at %lld but no slot", zones[z], (long long)u);
            cr_assert_eq(s[k].start_ms, u, "%s: slot %zu", zones[z], k);
            k++;
        }
        cr_assert_eq(k, n, "%s: %zu slots, %zu open half hours", zones[z], n, k);
        hours_free(h);
    }
}

Test(hours_year, a_24x7_year_has_one_slot_per_real_half_hour)
{
    static hours_slot_t s[20000];
    for (size_t z = 0; z < N(zones); z++) {
        char text[128];
        snprintf(text, sizeof text, "{'timezone':'%s'}", zones[z]);
        hours_t *h = compile(text);
        size_t n = hours_slots(h, at("2026-01-01T00:00Z"), at("2027-01-01T00:00Z"), s, N(s));
        cr_assert_eq(n, 365 * 48, "%s: %zu", zones[z], n);
        hours_free(h);
    }
}

static int64_t brute_open_until(const hours_t *h, int64_t t, int64_t cap)
{
    int64_t u = t;
    while (u < t + cap && hours_is_open(h, u))
        u += MIN_MS;
    return u < t + cap ? u : t + cap;
}

static int64_t brute_next_open(const hours_t *h, int64_t t, int64_t limit)
{
    for (int64_t u = t; u <= t + limit; u += MIN_MS)
        if (hours_is_open(h, u))
            return u;
    return -1;
}

Test(hours_year, open_until_and_next_open_match_a_minute_scan_around_transitions, .timeout = 120)
{
    /* Windows around each zone's 2026 transitions (and around the holidays above). */
    static const char *const windows[] = {"2026-03-06T00:00Z", "2026-03-27T00:00Z",
                                          "2026-04-03T00:00Z", "2026-10-02T00:00Z",
                                          "2026-10-23T00:00Z", "2026-10-30T00:00Z"};
    for (size_t z = 0; z < N(zones); z++) {
        hours_t *h = mixed(zones[z]);
        for (size_t w = 0; w < N(windows); w++) {
            int64_t start = at(windows[w]);
            for (int64_t t = start; t < start + 3 * DAY_MS; t += 20 * MIN_MS) {
                cr_assert_eq(hours_open_until(h, t, DAY_MS), brute_open_until(h, t, DAY_MS),
                             "%s open_until at %lld", zones[z], (long long)t);
                cr_assert_eq(hours_next_open(h, t, DAY_MS), brute_next_open(h, t, DAY_MS),
                             "%s next_open at %lld", zones[z], (long long)t);
            }
        }
        hours_free(h);
    }
}
