/* Day partitions of the history tables, and retention (see partitions.c for how and why). */
#ifndef ARCHIVER_PARTITIONS_H
#define ARCHIVER_PARTITIONS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engage/pg.h"
#include "engage/status.h"

/** Days of partitions kept ready around today (UTC): from today - BEFORE to today + AFTER. The
 *  booking horizon is at most 14 days, so a callback's day exists before it is booked. */
#define PART_DAYS_BEFORE 1
#define PART_DAYS_AFTER 15
/** History is kept this many days after its desired time (the same as the Redis records). */
#define PART_RETENTION_DAYS 14
/** GDPR tombstones outlive the JetStream events stream (15 days), which could replay an erased
 *  callback's events. */
#define PART_TOMBSTONE_DAYS 16

#define PART_MS_PER_DAY ((int64_t)86400000)

/** What one maintenance run did. */
typedef struct {
    int created;     /**< partitions created (attached) */
    long moved;      /**< rows moved out of a DEFAULT partition into a new one */
    int dropped;     /**< partitions dropped by retention */
    long purged;     /**< rows deleted from DEFAULT partitions by retention */
    long tombstones; /**< gdpr_erased rows purged */
} part_report_t;

/** The UTC day number (days since 1970-01-01) of a time in ms; floor division. */
int64_t part_day_of(int64_t ms);

/** "<table>_YYYYMMDD" for a day number into out. */
void part_name(char *out, size_t outlen, const char *table, int64_t day);

/** Parse a partition name made by part_name for table: true with *day set, false for any other
 *  name (the DEFAULT partition, a foreign table, a malformed date). */
bool part_parse(const char *table, const char *relname, int64_t *day);

/** Make sure every history table has its partitions for the days from part_day_of(now_ms) -
 *  PART_DAYS_BEFORE to + PART_DAYS_AFTER, moving rows of those days out of DEFAULT when there
 *  are any. Each partition is its own transaction under the maintenance advisory lock; the run
 *  goes on after a failed one and returns the first failure (the next run retries it). rep
 *  (caller's) is added to. pg borrowed, used by this thread only. */
eg_status_t part_ensure(eg_pg_t *pg, int64_t now_ms, part_report_t *rep);

/** Retention as of now_ms: drop every day partition whose whole day ended more than
 *  PART_RETENTION_DAYS before now_ms, delete DEFAULT rows of those days, and purge GDPR
 *  tombstones older than PART_TOMBSTONE_DAYS. Same transactions and locking as part_ensure. */
eg_status_t part_retain(eg_pg_t *pg, int64_t now_ms, part_report_t *rep);

#endif
