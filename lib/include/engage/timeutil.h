/* Wall-clock and ISO-8601 helpers (UTC), and the one civil-date arithmetic (proleptic Gregorian
 * calendar, day 0 = 1970-01-01) that every module counting days uses. Local-time rules live in
 * tz.h. Everything here is pure and thread-safe except the clocks, which read the system's. */
#ifndef ENGAGE_TIMEUTIL_H
#define ENGAGE_TIMEUTIL_H
#include <stddef.h>
#include <stdint.h>
#include "engage/status.h"

#define EG_ISO_LEN 24 /**< "2026-11-28T19:00:00.000Z" */

/** Milliseconds since the epoch (CLOCK_REALTIME). */
int64_t eg_now_ms(void);
/** Milliseconds of CLOCK_MONOTONIC, for measuring durations. */
int64_t eg_mono_ms(void);
/** Format ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" into out (EG_ISO_LEN + 1 bytes). */
void eg_time_format_iso(int64_t ms, char out[EG_ISO_LEN + 1]);
/** Parse ISO-8601 "YYYY-MM-DDTHH:MM[:SS[.fff]]" followed by "Z" or "+hh:mm"/"-hh:mm"
 *  (or "+hhmm"). A time without an offset is EG_EINVAL: the caller names the rule. */
eg_status_t eg_time_parse_iso(const char *s, size_t len, int64_t *out_ms);

/** The day number (days since 1970-01-01, negative before) of the date y-m-d, m in 1..12. A day
 *  d past the end of its month counts on into the next months (y-m-1 plus d - 1 days). */
int64_t eg_days_from_civil(int64_t y, int m, int d);
/** The date of day number days: the inverse of eg_days_from_civil for real dates. */
void eg_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
/** Days in month m (1..12) of year y: 28 to 31 (leap years by the Gregorian rule). */
int eg_days_in_month(int64_t y, int m);
/** Parse a calendar date "YYYY-MM-DD" of len bytes (a real date: no 31 February) into its day
 *  number. EG_EINVAL for anything else; *day is left alone then. */
eg_status_t eg_date_parse(const char *s, size_t len, int64_t *day);

#endif
