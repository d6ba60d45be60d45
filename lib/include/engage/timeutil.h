/* Wall-clock and ISO-8601 helpers (UTC). Local-time rules live in tz.h. */
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

#endif
