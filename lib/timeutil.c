/* UTC clock, ISO-8601 parsing/formatting and civil-date arithmetic. Parsing is strict: a
 * timestamp without an explicit offset is refused, because "local" on the server means nothing to
 * a client. Day numbers use Howard Hinnant's days_from_civil / civil_from_days algorithms (no
 * tables, exact before the epoch too); lib/tz.c and the archiver's partitions count days with
 * them, so there is one calendar in the code. */
#include "engage/timeutil.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t eg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t eg_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void eg_time_format_iso(int64_t ms, char out[EG_ISO_LEN + 1])
{
    int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    int msec = (int)(ms - secs * 1000);
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    /* Years past 9999 do not fit the fixed width: clamp rather than truncate mid-field. */
    int year = tm.tm_year + 1900;
    if (year > 9999)
        year = 9999;
    if (year < 0)
        year = 0;
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", year, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, msec);
    memcpy(out, tmp, EG_ISO_LEN);
    out[EG_ISO_LEN] = '\0';
}

int64_t eg_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void eg_civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int eg_days_in_month(int64_t y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

static int digits(const char *s, size_t len, size_t pos, size_t n, int *out)
{
    int v = 0;
    if (pos + n > len)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = s[pos + i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *out = v;
    return 0;
}

eg_status_t eg_time_parse_iso(const char *s, size_t len, int64_t *out_ms)
{
    int y, mo, d, h, mi, sec = 0, msec = 0;
    size_t p = 0;
    if (digits(s, len, 0, 4, &y) || len < 16 || s[4] != '-' || digits(s, len, 5, 2, &mo) ||
        s[7] != '-' || digits(s, len, 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        digits(s, len, 11, 2, &h) || s[13] != ':' || digits(s, len, 14, 2, &mi))
        return EG_EINVAL;
    p = 16;
    if (p < len && s[p] == ':') {
        if (digits(s, len, p + 1, 2, &sec))
            return EG_EINVAL;
        p += 3;
        if (p < len && (s[p] == '.' || s[p] == ',')) {
            p++;
            size_t nd = 0;
            int scale = 100;
            while (p < len && s[p] >= '0' && s[p] <= '9') {
                if (nd < 3) {
                    msec += (s[p] - '0') * scale;
                    scale /= 10;
                }
                nd++;
                p++;
            }
            if (nd == 0)
                return EG_EINVAL;
        }
    }
    if (mo < 1 || mo > 12 || d < 1 || d > eg_days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59)
        return EG_EINVAL;
    int offset_min = 0;
    if (p >= len)
        return EG_EINVAL;
    if (s[p] == 'Z' || s[p] == 'z') {
        p++;
    } else if (s[p] == '+' || s[p] == '-') {
        int sign = s[p] == '-' ? -1 : 1, oh, om;
        p++;
        if (digits(s, len, p, 2, &oh))
            return EG_EINVAL;
        p += 2;
        if (p < len && s[p] == ':')
            p++;
        if (digits(s, len, p, 2, &om))
            return EG_EINVAL;
        p += 2;
        if (oh > 18 || om > 59)
            return EG_EINVAL;
        offset_min = sign * (oh * 60 + om);
    } else {
        return EG_EINVAL;
    }
    if (p != len)
        return EG_EINVAL;
    int64_t days = eg_days_from_civil(y, mo, d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - (int64_t)offset_min * 60;
    *out_ms = secs * 1000 + msec;
    return EG_OK;
}

eg_status_t eg_date_parse(const char *s, size_t len, int64_t *day)
{
    int y, m, d;
    if (!s || len != 10 || digits(s, len, 0, 4, &y) || s[4] != '-' || digits(s, len, 5, 2, &m) ||
        s[7] != '-' || digits(s, len, 8, 2, &d))
        return EG_EINVAL;
    if (m < 1 || m > 12 || d < 1 || d > eg_days_in_month(y, m))
        return EG_EINVAL;
    *day = eg_days_from_civil(y, m, d);
    return EG_OK;
}
