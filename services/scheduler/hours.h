/* Business hours, holidays, special days and the slot grid of a callback service, in the
 * service's time zone (GLib over the system tzdata). Plain functions over a compiled
 * configuration: no I/O, unit-tested across DST transitions.
 *
 * Semantics:
 * - Wall-clock rules. Intervals ["HH:MM","HH:MM"] are local wall-clock times of a local date.
 *   An interval whose end is not after its start runs past midnight into the next date (the
 *   part after midnight still belongs to the date it started on: a holiday on that date closes
 *   it, a special day on the next date does not). "24:00" as an end means midnight.
 * - For a local date: a holiday -> closed all day; else a special day -> its intervals; else the
 *   weekday's intervals (absent or empty weekday -> closed). No businessHours at all -> open
 *   24x7 (holidays and special days still apply).
 * - An instant is open when its local wall-clock time falls in an interval [start, end). On a
 *   spring-forward day the skipped wall times never happen; on a fall-back day a repeated wall
 *   time is open (or not) for both instants.
 * - Slots: the grid starts at each local midnight, every slotMinutes of wall-clock time. A slot
 *   exists once per real instant its start maps to: a start inside a spring-forward gap does
 *   not exist; a start inside a fall-back overlap exists twice (two UTC instants). A slot is
 *   offered when the service is open at its start. Its capacity is capacity.weekly[weekday of
 *   its local date][its "HH:MM"] when given, else capacity.default. */
#ifndef SCHED_HOURS_H
#define SCHED_HOURS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engage/status.h"
#include "service_config.h"

/** Compiled hours (opaque). Keeps no reference to the svc_config_t it was compiled from, and is
 *  immutable once compiled: every query below may run from many threads at once. */
typedef struct hours hours_t;

/** Longest stretch of time one query walks: cap_ms and limit_ms above it, and slot ranges
 *  longer than it, are cut to it (about 10 years; keeps a query on a never-closing service
 *  bounded). */
#define HOURS_MAX_SPAN_MS (INT64_C(3653) * 86400000)

/** Compile a validated configuration (cfg->raw holds businessHours, holidays, specialDays,
 *  capacity.weekly). EG_EINVAL with err when the time zone is unknown. Free with hours_free. */
eg_status_t hours_compile(const svc_config_t *cfg, hours_t **out, char *err, size_t errlen);
void hours_free(hours_t *h);

/** Is the service open at instant t (UTC ms)? */
bool hours_is_open(const hours_t *h, int64_t t_ms);

/** End (UTC ms) of the open period containing t, following adjacent intervals across
 *  midnight; t itself when closed at t; at most t + cap_ms. */
int64_t hours_open_until(const hours_t *h, int64_t t_ms, int64_t cap_ms);

/** The first instant >= t at which the service is open (t when open at t); -1 when it does not
 *  open within limit_ms. */
int64_t hours_next_open(const hours_t *h, int64_t t_ms, int64_t limit_ms);

/** Start (UTC ms) of the slot containing instant t. */
int64_t hours_slot_start(const hours_t *h, int64_t t_ms);

/** Configured capacity of the slot starting at slot_start_ms. */
int hours_slot_capacity(const hours_t *h, int64_t slot_start_ms);

typedef struct {
    int64_t start_ms; /**< UTC instant the slot starts */
    int capacity;     /**< configured capacity */
} hours_slot_t;

/** The offered (open) slots whose start is in [from_ms, to_ms), in time order, at most max.
 *  Returns how many were written to out. */
size_t hours_slots(const hours_t *h, int64_t from_ms, int64_t to_ms, hours_slot_t *out, size_t max);

/** The service's time zone name (borrowed). */
const char *hours_timezone(const hours_t *h);

#endif
