/* Time zones from the system's tzdata, through GLib (not ICU: see DESIGN.md).
 *
 * A zone is an opaque handle: open it once (per service configuration, say) and use it from any
 * number of threads. Local times are wall-clock times of the zone; the conversions below say
 * explicitly what happens in a spring-forward gap (a wall time that never happens) and in a
 * fall-back overlap (a wall time that happens twice). Instants are milliseconds since the epoch,
 * UTC. */
#ifndef ENGAGE_TZ_H
#define ENGAGE_TZ_H
#include <stdbool.h>
#include <stdint.h>

/** Length of the buffer eg_tz_format_local writes, terminating NUL included. */
#define EG_TZ_LOCAL_LEN 40

/** True when name is a time zone the system's tzdata knows ("UTC", "America/New_York").
 *  Thread-safe. */
bool eg_tz_valid(const char *name);

/** A time zone (opaque). Immutable once opened. */
typedef struct eg_tz eg_tz_t;

/** Open the zone called name (an IANA identifier such as "Europe/Berlin", or "UTC").
 *  Returns NULL when name is NULL, empty, longer than 64 characters or unknown to the system's
 *  tzdata. The caller owns the handle and closes it with eg_tz_close. Opening is thread-safe;
 *  the handle is immutable, so every function taking a const eg_tz_t * may be called on it
 *  from many threads at once. */
eg_tz_t *eg_tz_open(const char *name);

/** Close a handle from eg_tz_open. Accepts NULL. No other thread may still be using it. */
void eg_tz_close(eg_tz_t *tz);

/** The zone's name as given to eg_tz_open (borrowed: valid until eg_tz_close). */
const char *eg_tz_name(const eg_tz_t *tz);

/** A broken-down local time. */
typedef struct {
    int year, month, day;     /**< local date; month 1-12, day 1-31 */
    int hour, minute, second; /**< local wall-clock time; hour 0-23 */
    int ms;                   /**< 0-999 */
    int weekday;              /**< 1 = Monday .. 7 = Sunday (ISO-8601) */
    int offset_s;             /**< UTC offset in effect at the instant, seconds east of UTC */
} eg_local_t;

/** The local time in tz of the instant t_ms (ms since the epoch, UTC; negative allowed).
 *  Writes *out; never fails. Thread-safe. */
void eg_tz_to_local(const eg_tz_t *tz, int64_t t_ms, eg_local_t *out);

/** The UTC offset in seconds (east positive) in effect at instant t_ms. Thread-safe. */
int eg_tz_offset(const eg_tz_t *tz, int64_t t_ms);

/** The UTC instants (ms) at which the local wall time y-mo-d h:mi:00 occurs, written to out in
 *  time order. Returns how many: 0 when the wall time falls in a spring-forward gap (it never
 *  happens), 1 normally, 2 when it falls in a fall-back overlap (the earlier instant first).
 *  mo must be 1-12; d, h and mi carry arithmetically (h = 24, mi = 0 is the next day's
 *  midnight). Thread-safe. */
int eg_tz_from_local(const eg_tz_t *tz, int y, int mo, int d, int h, int mi, int64_t out[2]);

/** The first instant after t_ms, and at most limit_ms, at which the zone's UTC offset changes
 *  (a DST transition or a change of standard time); -1 when there is none in (t_ms, limit_ms].
 *  Costs a binary search over the interval, so callers walking time should step from
 *  transition to transition rather than call this per minute. Thread-safe. */
int64_t eg_tz_next_transition(const eg_tz_t *tz, int64_t t_ms, int64_t limit_ms);

/** Format the instant t_ms as ISO-8601 local time with the zone's offset at that instant,
 *  millisecond precision: "2026-11-30T04:00:00.000-06:00" (UTC gives "+00:00"). Writes a
 *  NUL-terminated string of at most EG_TZ_LOCAL_LEN bytes to out. Thread-safe. */
void eg_tz_format_local(const eg_tz_t *tz, int64_t t_ms, char out[EG_TZ_LOCAL_LEN]);

#endif
