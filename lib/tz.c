/* Time zones over GLib's GTimeZone, which reads the system tzdata package (current rules, and
 * the TZif footer rule for years past the last listed transition).
 *
 * A GTimeZone is a list of intervals, each with one UTC offset. UTC -> local is a lookup of the
 * interval containing the instant. Local -> UTC is the delicate direction: a wall time in a
 * spring-forward gap belongs to no interval, one in a fall-back overlap to two. GLib's
 * g_time_zone_find_interval answers a local time asked "as standard time" and "as daylight
 * time" with the interval of that kind containing it (or -1 in a gap); asking both ways and
 * keeping the answers that round-trip yields the 0, 1 or 2 instants. The two answers are sorted
 * by instant rather than by kind: in zones with negative DST (Europe/Dublin: winter is the
 * "daylight" period) the standard-time instant of an overlap is the earlier one.
 *
 * Civil dates are computed here (Howard Hinnant's algorithms) rather than with GDateTime, to
 * avoid an allocation per conversion. GTimeZone is immutable and its lookups only read, so a
 * handle is safe to share between threads. */
#include "engage/tz.h"

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage/mem.h"
#include "engage/timeutil.h"

#define TZ_NAME_MAX 64

struct eg_tz {
    GTimeZone *zone;
    char name[TZ_NAME_MAX + 1];
};

static bool name_ok(const char *name)
{
    return name && *name && strlen(name) <= TZ_NAME_MAX;
}

bool eg_tz_valid(const char *name)
{
    if (!name_ok(name))
        return false;
    GTimeZone *tz = g_time_zone_new_identifier(name);
    if (!tz)
        return false;
    g_time_zone_unref(tz);
    return true;
}

eg_tz_t *eg_tz_open(const char *name)
{
    if (!name_ok(name))
        return NULL;
    GTimeZone *zone = g_time_zone_new_identifier(name);
    if (!zone)
        return NULL;
    eg_tz_t *tz = eg_xcalloc(1, sizeof *tz);
    tz->zone = zone;
    snprintf(tz->name, sizeof tz->name, "%s", name);
    return tz;
}

void eg_tz_close(eg_tz_t *tz)
{
    if (!tz)
        return;
    g_time_zone_unref(tz->zone);
    free(tz);
}

const char *eg_tz_name(const eg_tz_t *tz)
{
    return tz->name;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Interval of the instant s (seconds, UTC) and its offset. */
static int interval_at(const eg_tz_t *tz, int64_t s)
{
    return g_time_zone_find_interval(tz->zone, G_TIME_TYPE_UNIVERSAL, (gint64)s);
}

static int offset_of(const eg_tz_t *tz, int interval)
{
    return (int)g_time_zone_get_offset(tz->zone, interval);
}

int eg_tz_offset(const eg_tz_t *tz, int64_t t_ms)
{
    return offset_of(tz, interval_at(tz, floor_div(t_ms, 1000)));
}

void eg_tz_to_local(const eg_tz_t *tz, int64_t t_ms, eg_local_t *out)
{
    int64_t s = floor_div(t_ms, 1000);
    int off = offset_of(tz, interval_at(tz, s));
    int64_t local = s + off;
    int64_t days = floor_div(local, 86400);
    int64_t sod = local - days * 86400;
    int64_t y;
    eg_civil_from_days(days, &y, &out->month, &out->day);
    out->year = (int)y;
    out->hour = (int)(sod / 3600);
    out->minute = (int)(sod / 60 % 60);
    out->second = (int)(sod % 60);
    out->ms = (int)(t_ms - s * 1000);
    int64_t wd = (days + 3) % 7; /* 1970-01-01 was a Thursday: Monday-based index 3 */
    out->weekday = (int)(wd < 0 ? wd + 7 : wd) + 1;
    out->offset_s = off;
}

int eg_tz_from_local(const eg_tz_t *tz, int y, int mo, int d, int h, int mi, int64_t out[2])
{
    if (mo < 1 || mo > 12)
        return 0;
    int64_t local =
        (eg_days_from_civil(y, mo, 1) + d - 1) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60;
    static const GTimeType kinds[2] = {G_TIME_TYPE_STANDARD, G_TIME_TYPE_DAYLIGHT};
    int n = 0;
    int seen = -1;
    for (int k = 0; k < 2; k++) {
        int i = g_time_zone_find_interval(tz->zone, kinds[k], (gint64)local);
        if (i < 0 || i == seen)
            continue;
        int64_t u = local - offset_of(tz, i);
        /* Keep only answers that are really in the interval GLib named: its lookup of local
         * times is heuristic at the edges, the instant -> interval lookup is exact. */
        if (interval_at(tz, u) != i)
            continue;
        seen = i;
        out[n++] = u * 1000;
    }
    if (n == 2 && out[0] > out[1]) {
        int64_t t = out[0];
        out[0] = out[1];
        out[1] = t;
    }
    return n;
}

int64_t eg_tz_next_transition(const eg_tz_t *tz, int64_t t_ms, int64_t limit_ms)
{
    if (limit_ms <= t_ms)
        return -1;
    int64_t lo = floor_div(t_ms, 1000);
    int64_t end = floor_div(limit_ms, 1000);
    int cur = interval_at(tz, lo);
    int off = offset_of(tz, cur);
    /* Intervals are numbered in time order, so "interval differs" is monotonic in time and a
     * binary search finds its first second. An interval change that keeps the offset (only the
     * abbreviation or the DST flag changes) is not a transition for callers: search on. */
    while (interval_at(tz, end) != cur) {
        int64_t hi = end;
        while (hi - lo > 1) {
            int64_t mid = lo + (hi - lo) / 2;
            if (interval_at(tz, mid) == cur)
                lo = mid;
            else
                hi = mid;
        }
        cur = interval_at(tz, hi);
        if (offset_of(tz, cur) != off)
            return hi * 1000;
        lo = hi;
    }
    return -1;
}

void eg_tz_format_local(const eg_tz_t *tz, int64_t t_ms, char out[EG_TZ_LOCAL_LEN])
{
    eg_local_t l;
    eg_tz_to_local(tz, t_ms, &l);
    /* Years outside 0-9999 do not fit ISO-8601's four digits: clamp, as eg_time_format_iso. */
    int year = l.year < 0 ? 0 : l.year > 9999 ? 9999 : l.year;
    int off = abs(l.offset_s);
    int oh = off / 3600 % 100, om = off / 60 % 60;
    snprintf(out, EG_TZ_LOCAL_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%03d%c%02d:%02d", year, l.month,
             l.day, l.hour, l.minute, l.second, l.ms, l.offset_s < 0 ? '-' : '+', oh, om);
}
