/* Business hours, holidays, special days and the slot grid of a callback service (semantics in
 * hours.h).
 *
 * How it works. The configuration is compiled once into tables: per weekday a sorted list of
 * spans in minutes from local midnight (an interval crossing midnight becomes one span ending
 * past 1440, so "fri 22:00-02:00" is [1320, 1560) of the friday), a sorted table of holiday
 * dates, a sorted table of special days with their spans, and a dense weekday x slot capacity
 * table. Dates are day numbers (days since 1970-01-01).
 *
 * All rules are wall-clock rules, so they are evaluated on "wall time": the local date and time
 * written as milliseconds since 1970-01-01T00:00 of that calendar, as if it were UTC. Whether a
 * wall time is open needs only the spans of its date and of the day before (whose overnight
 * spans reach into it). Real time maps to wall time as wall = t + offset(t): between two DST
 * transitions of the zone the offset is constant and the map is a plain shift, so every walk
 * over real time goes segment by segment (eg_tz_next_transition) and, inside a segment, jumps
 * from span boundary to span boundary in wall time. A spring-forward transition makes wall time
 * jump over the gap; a fall-back transition makes it run through the overlap a second time, so
 * a slot start there is found once in each of the two segments. Nothing walks minute by
 * minute. */
#include "hours.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage/json.h"
#include "engage/mem.h"
#include "engage/timeutil.h"
#include "engage/tz.h"

#define MIN_MS INT64_C(60000)
#define DAY_MS INT64_C(86400000)
#define DAY_MIN 1440

/* A span of wall-clock minutes from the local midnight of the date it belongs to: start in
 * [0, 1440), end in (start, start + 1440]. */
typedef struct {
    int32_t start, end;
} span_t;

typedef struct {
    size_t off, n; /* into hours.spans */
} span_list_t;

typedef struct {
    int64_t day;
    span_list_t spans;
} special_t;

struct hours {
    eg_tz_t *tz;
    int64_t step_ms; /* slot length */
    int slots_per_day;
    span_t *spans; /* every span list points into this pool */
    size_t nspans, spans_cap;
    span_list_t week[7]; /* 0 = mon */
    int64_t *holidays;   /* sorted day numbers */
    size_t nholidays;
    special_t *specials; /* sorted by day */
    size_t nspecials;
    int *capacity; /* [weekday * slots_per_day + slot index] */
};

static const char *const weekday_names[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* Monday-based weekday index of a day number (1970-01-01 was a Thursday). */
static int weekday_of(int64_t day)
{
    int64_t wd = (day + 3) % 7;
    return (int)(wd < 0 ? wd + 7 : wd);
}

/* Clamp a caller's span of time to [0, HOURS_MAX_SPAN_MS] and add it to t without overflow. */
static int64_t span_end(int64_t t, int64_t span)
{
    if (span < 0)
        span = 0;
    if (span > HOURS_MAX_SPAN_MS)
        span = HOURS_MAX_SPAN_MS;
    return t > INT64_MAX - span ? INT64_MAX : t + span;
}

static int64_t offset_ms(const hours_t *h, int64_t t)
{
    return (int64_t)eg_tz_offset(h->tz, t) * 1000;
}

/* ---- compiling the configuration ---- */

/* Minutes of "HH:MM" (end: "24:00" allowed), or -1. */
static int hhmm_minutes(const char *s, bool end)
{
    if (!s || strlen(s) != 5 || s[2] != ':')
        return -1;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9'))
            return -1;
    int hh = (s[0] - '0') * 10 + (s[1] - '0'), mm = (s[3] - '0') * 10 + (s[4] - '0');
    if (mm > 59 || hh > 24 || (hh == 24 && (!end || mm != 0)))
        return -1;
    return hh * 60 + mm;
}

/* Day number of "YYYY-MM-DD", or false. */
static bool parse_date(const char *s, int64_t *day)
{
    return s && eg_date_parse(s, strlen(s), day) == EG_OK;
}

static int span_cmp(const void *a, const void *b)
{
    const span_t *x = a, *y = b;
    return (x->start > y->start) - (x->start < y->start);
}

static int day_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int special_cmp(const void *a, const void *b)
{
    return day_cmp(&((const special_t *)a)->day, &((const special_t *)b)->day);
}

static void push_span(hours_t *h, int32_t start, int32_t end)
{
    if (h->nspans == h->spans_cap) {
        h->spans_cap = h->spans_cap ? h->spans_cap * 2 : 16;
        h->spans = eg_xrealloc(h->spans, h->spans_cap * sizeof *h->spans);
    }
    h->spans[h->nspans++] = (span_t){start, end};
}

/* Append the intervals of a JSON list [["HH:MM","HH:MM"], ...] to the pool, sorted. */
static eg_status_t compile_list(hours_t *h, const eg_json_t *list, const char *path,
                                span_list_t *out, char *err, size_t errlen)
{
    out->off = h->nspans;
    out->n = 0;
    for (size_t i = 0; i < eg_json_array_size(list); i++) {
        const eg_json_t *iv = eg_json_array_get(list, i);
        int s = hhmm_minutes(eg_json_str(eg_json_array_get(iv, 0)), false);
        int e = hhmm_minutes(eg_json_str(eg_json_array_get(iv, 1)), true);
        if (eg_json_array_size(iv) != 2 || s < 0 || e < 0) {
            snprintf(err, errlen, "%s[%zu] must be [\"HH:MM\", \"HH:MM\"]", path, i);
            return EG_EINVAL;
        }
        /* An end not after the start runs past midnight ("22:00"-"02:00", "00:00"-"00:00"). */
        push_span(h, s, e > s ? e : e + DAY_MIN);
        out->n++;
    }
    qsort(h->spans + out->off, out->n, sizeof *h->spans, span_cmp);
    return EG_OK;
}

static eg_status_t compile_week(hours_t *h, const eg_json_t *bh, char *err, size_t errlen)
{
    if (!bh) {
        /* No businessHours: every date is open all day (holidays and special days still
         * apply), i.e. one span [00:00, 24:00) per weekday. */
        push_span(h, 0, DAY_MIN);
        for (int d = 0; d < 7; d++)
            h->week[d] = (span_list_t){0, 1};
        return EG_OK;
    }
    for (int d = 0; d < 7; d++) {
        char path[32];
        const eg_json_t *list = eg_json_get(bh, weekday_names[d]);
        snprintf(path, sizeof path, "businessHours.%s", weekday_names[d]);
        h->week[d] = (span_list_t){h->nspans, 0};
        if (list && compile_list(h, list, path, &h->week[d], err, errlen) != EG_OK)
            return EG_EINVAL;
    }
    return EG_OK;
}

static eg_status_t compile_days(hours_t *h, const eg_json_t *root, char *err, size_t errlen)
{
    const eg_json_t *hol = eg_json_get(root, "holidays");
    size_t n = eg_json_array_size(hol);
    h->holidays = eg_xcalloc(n ? n : 1, sizeof *h->holidays);
    for (size_t i = 0; i < n; i++) {
        if (!parse_date(eg_json_str(eg_json_array_get(hol, i)), &h->holidays[i])) {
            snprintf(err, errlen, "holidays[%zu] must be a date \"YYYY-MM-DD\"", i);
            return EG_EINVAL;
        }
    }
    h->nholidays = n;
    qsort(h->holidays, n, sizeof *h->holidays, day_cmp);

    const eg_json_t *sd = eg_json_get(root, "specialDays");
    n = eg_json_object_size(sd);
    h->specials = eg_xcalloc(n ? n : 1, sizeof *h->specials);
    void *it = NULL;
    const char *date;
    eg_json_t *list;
    while (eg_json_object_next(sd, &it, &date, &list)) {
        special_t *s = &h->specials[h->nspecials];
        char path[48];
        if (!parse_date(date, &s->day)) {
            snprintf(err, errlen, "specialDays.%.12s is not a date \"YYYY-MM-DD\"", date);
            return EG_EINVAL;
        }
        snprintf(path, sizeof path, "specialDays.%s", date);
        if (compile_list(h, list, path, &s->spans, err, errlen) != EG_OK)
            return EG_EINVAL;
        h->nspecials++;
    }
    qsort(h->specials, h->nspecials, sizeof *h->specials, special_cmp);
    return EG_OK;
}

/* capacity.weekly overrides on the slot grid; a key that is not a slot start ("09:15" with
 * 30-minute slots) names no slot and is ignored. */
static void compile_capacity(hours_t *h, const svc_config_t *cfg)
{
    size_t cells = (size_t)7 * (size_t)h->slots_per_day;
    h->capacity = eg_xmalloc(cells * sizeof *h->capacity);
    for (size_t i = 0; i < cells; i++)
        h->capacity[i] = cfg->capacity_default;
    const eg_json_t *weekly = eg_json_get(eg_json_get(cfg->raw, "capacity"), "weekly");
    int slot_min = (int)(h->step_ms / MIN_MS);
    for (int d = 0; d < 7; d++) {
        const eg_json_t *slots = eg_json_get(weekly, weekday_names[d]);
        void *it = NULL;
        const char *hhmm;
        eg_json_t *v;
        while (eg_json_object_next(slots, &it, &hhmm, &v)) {
            int m = hhmm_minutes(hhmm, false);
            if (m >= 0 && m % slot_min == 0 && eg_json_is_integer(v))
                h->capacity[d * h->slots_per_day + m / slot_min] = (int)eg_json_int(v);
        }
    }
}

eg_status_t hours_compile(const svc_config_t *cfg, hours_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (cfg->slot_minutes <= 0 || DAY_MIN % cfg->slot_minutes != 0) {
        snprintf(err, errlen, "slotMinutes must divide 1440 (a day) evenly");
        return EG_EINVAL;
    }
    eg_tz_t *tz = eg_tz_open(cfg->timezone);
    if (!tz) {
        snprintf(err, errlen, "timezone: '%.40s' is not a known time zone", cfg->timezone);
        return EG_EINVAL;
    }
    hours_t *h = eg_xcalloc(1, sizeof *h);
    h->tz = tz;
    h->step_ms = cfg->slot_minutes * MIN_MS;
    h->slots_per_day = DAY_MIN / cfg->slot_minutes;
    const eg_json_t *bh = cfg->open_24x7 ? NULL : eg_json_get(cfg->raw, "businessHours");
    eg_status_t st = compile_week(h, bh, err, errlen);
    if (st == EG_OK)
        st = compile_days(h, cfg->raw, err, errlen);
    if (st != EG_OK) {
        hours_free(h);
        return st;
    }
    compile_capacity(h, cfg);
    *out = h;
    return EG_OK;
}

void hours_free(hours_t *h)
{
    if (!h)
        return;
    eg_tz_close(h->tz);
    free(h->spans);
    free(h->holidays);
    free(h->specials);
    free(h->capacity);
    free(h);
}

const char *hours_timezone(const hours_t *h)
{
    return eg_tz_name(h->tz);
}

/* ---- wall-time rules ---- */

/* The spans of a local date: none on a holiday, else the special day's, else the weekday's. */
static span_list_t day_spans(const hours_t *h, int64_t day)
{
    if (bsearch(&day, h->holidays, h->nholidays, sizeof *h->holidays, day_cmp))
        return (span_list_t){0, 0};
    special_t key = {.day = day};
    const special_t *s = bsearch(&key, h->specials, h->nspecials, sizeof *h->specials, special_cmp);
    if (s)
        return s->spans;
    return h->week[weekday_of(day)];
}

/* Is wall time w open? If so, *end is the latest end among the spans containing it. */
static bool wall_open(const hours_t *h, int64_t w, int64_t *end)
{
    int64_t today = floor_div(w, DAY_MS);
    bool open = false;
    for (int64_t day = today - 1; day <= today; day++) {
        span_list_t l = day_spans(h, day);
        int64_t base = day * DAY_MS;
        for (size_t i = 0; i < l.n; i++) {
            const span_t *s = &h->spans[l.off + i];
            int64_t a = base + s->start * MIN_MS, b = base + s->end * MIN_MS;
            if (a <= w && w < b && (!open || b > *end)) {
                *end = b;
                open = true;
            }
        }
    }
    return open;
}

/* End of the open run of wall time containing the open wall time w: span ends chained while
 * the end itself is open (mon 22:00-24:00 then tue 00:00-06:00 is one run). Stops once at or
 * past limit. */
static int64_t wall_run_end(const hours_t *h, int64_t w, int64_t limit)
{
    int64_t end = w;
    int64_t next;
    wall_open(h, w, &end);
    while (end < limit && wall_open(h, end, &next))
        end = next;
    return end;
}

/* The first span start after the closed wall time w and before limit, walking dates forward. */
static bool wall_next_start(const hours_t *h, int64_t w, int64_t limit, int64_t *start)
{
    for (int64_t day = floor_div(w, DAY_MS); day * DAY_MS < limit; day++) {
        span_list_t l = day_spans(h, day);
        for (size_t i = 0; i < l.n; i++) {
            int64_t a = day * DAY_MS + h->spans[l.off + i].start * MIN_MS;
            if (a > w) { /* spans are sorted by start: the first one after w is the earliest */
                if (a >= limit)
                    return false;
                *start = a;
                return true;
            }
        }
    }
    return false;
}

/* End of the segment of constant offset that contains t, capped at limit. */
static int64_t segment_end(const hours_t *h, int64_t t, int64_t limit)
{
    int64_t tr = eg_tz_next_transition(h->tz, t, limit);
    return tr < 0 ? limit : tr;
}

/* ---- queries ---- */

bool hours_is_open(const hours_t *h, int64_t t_ms)
{
    int64_t end;
    return wall_open(h, t_ms + offset_ms(h, t_ms), &end);
}

int64_t hours_open_until(const hours_t *h, int64_t t_ms, int64_t cap_ms)
{
    int64_t limit = span_end(t_ms, cap_ms);
    int64_t t = t_ms;
    for (;;) {
        int64_t off = offset_ms(h, t);
        int64_t end;
        if (!wall_open(h, t + off, &end))
            return t;
        int64_t seg = segment_end(h, t, limit);
        int64_t wall_end = wall_run_end(h, t + off, seg + off);
        if (wall_end < seg + off)
            return wall_end - off;
        if (seg >= limit)
            return limit;
        /* Open up to the transition: whether it stays open depends on the wall time the clock
         * shows after it (a gap may jump past the end, an overlap may jump back before the
         * start). */
        t = seg;
    }
}

int64_t hours_next_open(const hours_t *h, int64_t t_ms, int64_t limit_ms)
{
    if (limit_ms < 0)
        return -1;
    int64_t limit = span_end(t_ms, limit_ms);
    int64_t t = t_ms;
    for (;;) {
        int64_t off = offset_ms(h, t);
        int64_t start;
        if (wall_open(h, t + off, &start))
            return t;
        if (t >= limit)
            return -1;
        int64_t seg = segment_end(h, t, limit);
        if (wall_next_start(h, t + off, seg + off, &start))
            return start - off;
        t = seg;
    }
}

int64_t hours_slot_start(const hours_t *h, int64_t t_ms)
{
    int64_t t = t_ms;
    for (;;) {
        int64_t off = offset_ms(h, t);
        int64_t start = floor_div(t + off, h->step_ms) * h->step_ms - off;
        int64_t tr = eg_tz_next_transition(h->tz, start, t);
        if (tr < 0)
            return start;
        /* The grid point lies before the last transition up to t: that wall time was shown
         * (if at all) under the other offset. The slot is the last one started before the
         * transition. */
        int64_t later;
        while ((later = eg_tz_next_transition(h->tz, tr, t)) >= 0)
            tr = later;
        t = tr - 1;
    }
}

static int capacity_at_wall(const hours_t *h, int64_t w)
{
    int64_t day = floor_div(w, DAY_MS);
    int idx = (int)((w - day * DAY_MS) / h->step_ms);
    return h->capacity[weekday_of(day) * h->slots_per_day + idx];
}

int hours_slot_capacity(const hours_t *h, int64_t slot_start_ms)
{
    return capacity_at_wall(h, slot_start_ms + offset_ms(h, slot_start_ms));
}

size_t hours_slots(const hours_t *h, int64_t from_ms, int64_t to_ms, hours_slot_t *out, size_t max)
{
    size_t n = 0;
    int64_t to = min64(to_ms, span_end(from_ms, HOURS_MAX_SPAN_MS));
    for (int64_t t = from_ms; t < to && n < max;) {
        int64_t off = offset_ms(h, t);
        int64_t seg = segment_end(h, t, to);
        /* Inside the segment wall time runs over [t + off, seg + off): visit its open runs and
         * the grid points inside them. */
        int64_t w = t + off, wend = seg + off;
        while (w < wend) {
            int64_t end;
            if (!wall_open(h, w, &end) && !wall_next_start(h, w, wend, &w))
                break;
            end = min64(wall_run_end(h, w, wend), wend);
            int64_t g = -floor_div(-w, h->step_ms) * h->step_ms; /* first grid point >= w */
            for (; g < end; g += h->step_ms) {
                out[n++] = (hours_slot_t){g - off, capacity_at_wall(h, g)};
                if (n == max)
                    return n;
            }
            w = end;
        }
        t = seg;
    }
    return n;
}
