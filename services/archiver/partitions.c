/* Day partitions of the history tables, and retention.
 *
 * callbacks, callback_data and callback_events (migration 2) are RANGE-partitioned on
 * desired_time, each with a DEFAULT partition <table>_default so that an insert always finds a
 * home. The archiver keeps one partition per UTC day, <table>_YYYYMMDD, for the days from
 * yesterday to 15 days ahead (PART_DAYS_BEFORE, PART_DAYS_AFTER), creating them at start and
 * every hour, so a day's partition normally exists long before its first row arrives and
 * DEFAULT stays empty.
 *
 * Rows can still reach DEFAULT for a day that gets a partition later: a desired time past the
 * window, a replay of old history, the first days of a deployment, or partitions dropped by hand.
 * PostgreSQL refuses to create a partition whose range has rows in DEFAULT, so every partition is
 * made the same way, in one transaction, whether DEFAULT has rows of its day or not (one path,
 * exercised every day):
 *   1. CREATE TABLE <name> (LIKE <table> INCLUDING DEFAULTS), plus a CHECK constraint of the
 *      day's range, which lets ATTACH skip scanning the new table, with the table's storage
 *      parameters (STORAGE below: a partition inherits none, and a partitioned table has none);
 *   2. move the day's rows: DELETE FROM <table>_default ... RETURNING *, inserted into <name>;
 *   3. ALTER TABLE <table> ATTACH PARTITION <name> FOR VALUES FROM (day) TO (day + 1), which
 *      verifies that DEFAULT holds no row of the range any more and builds the parent's indexes
 *      (primary key included) on the new table; then the CHECK constraint is dropped.
 * A failure anywhere rolls the day back whole; the next run tries again.
 *
 * Retention: a partition whose whole day ended more than PART_RETENTION_DAYS before now is
 * dropped (DROP TABLE: no row deletes, no bloat), and DEFAULT rows of such days are deleted.
 * GDPR tombstones (gdpr_erased) are purged once older than the events stream's retention.
 * Redis records expire on their own at desired time + 14 days (scheduler/callback_store.c).
 *
 * Concurrency: each step is a transaction that first takes a transaction-scoped advisory lock
 * (class "EGPM", key 1), so two archivers never create, move or drop at the same time; the
 * second one re-checks under the lock and finds the work done. lock_timeout bounds the wait for
 * the table locks that ATTACH and DROP need (ACCESS EXCLUSIVE on the DEFAULT partition or on the
 * dropped table, SHARE UPDATE EXCLUSIVE on the parent), so a long report query can delay a step
 * but never queue the archiver's inserts behind it for long; a step that times out is retried
 * on the next run.
 *
 * DDL takes no parameters: partition names and bounds are formatted here from day numbers,
 * never from input, and a name read back from the catalog is used only after part_parse has
 * accepted it (<table>_ and eight digits of a valid date), rebuilt from the parsed day. */
#include "partitions.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage/log.h"
#include "engage/mem.h"
#include "engage/timeutil.h"

/* pg_advisory_xact_lock(class, key): "EGPM", apart from the archiver's per-callback locks. */
#define MAINT_LOCK "SELECT pg_advisory_xact_lock(1162301517, 1)"
#define LOCK_TIMEOUT "SET LOCAL lock_timeout = '5s'"
#define MAX_PARTS 4096

static const char *const TABLES[] = {"callbacks", "callback_data", "callback_events"};
#define NTABLES (sizeof TABLES / sizeof TABLES[0])
/* Each table's partition storage parameters, as migration 5 set them on the partitions that
 * existed: the archiver updates a callbacks row about four times, and with 30% of each page left
 * free those updates are HOT (no new index entries, old versions pruned in place). */
static const char *const STORAGE[NTABLES] = {" WITH (fillfactor = 70)", "", ""};

static const char SQL_PARTS[] = "SELECT c.relname FROM pg_inherits i "
                                "JOIN pg_class c ON c.oid = i.inhrelid "
                                "WHERE i.inhparent = to_regclass($1)";
static const char SQL_EXISTS[] = "SELECT to_regclass($1) IS NOT NULL";

int64_t part_day_of(int64_t ms)
{
    int64_t day = ms / PART_MS_PER_DAY;
    if (ms % PART_MS_PER_DAY < 0)
        day--;
    return day;
}

void part_name(char *out, size_t outlen, const char *table, int64_t day)
{
    int64_t y;
    int m, d;
    eg_civil_from_days(day, &y, &m, &d);
    snprintf(out, outlen, "%s_%04" PRId64 "%02d%02d", table, y, m, d);
}

/* '<YYYY-MM-DD> 00:00:00+00': a day's start as a timestamptz literal. */
static void day_literal(char *out, size_t outlen, int64_t day)
{
    int64_t y;
    int m, d;
    eg_civil_from_days(day, &y, &m, &d);
    snprintf(out, outlen, "%04" PRId64 "-%02d-%02d 00:00:00+00", y, m, d);
}

bool part_parse(const char *table, const char *relname, int64_t *day)
{
    size_t tl = strlen(table);
    if (strncmp(relname, table, tl) != 0 || relname[tl] != '_' || strlen(relname) != tl + 9)
        return false;
    const char *p = relname + tl + 1;
    for (int i = 0; i < 8; i++)
        if (p[i] < '0' || p[i] > '9')
            return false;
    int y = (p[0] - '0') * 1000 + (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0');
    int m = (p[4] - '0') * 10 + (p[5] - '0');
    int d = (p[6] - '0') * 10 + (p[7] - '0');
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > eg_days_in_month(y, m))
        return false; /* 31 February and the like too */
    *day = eg_days_from_civil(y, m, d);
    return true;
}

/* The day numbers of table's day partitions (sorted ascending), at most max. */
static eg_status_t list_days(eg_pg_t *pg, const char *table, int64_t *days, size_t max, size_t *n)
{
    eg_pg_res_t *res = NULL;
    const char *p[1] = {table};
    *n = 0;
    eg_status_t st = eg_pg_exec(pg, SQL_PARTS, 1, p, &res);
    for (int i = 0; st == EG_OK && i < eg_pg_rows(res) && *n < max; i++) {
        int64_t day;
        const char *name = eg_pg_value(res, i, 0);
        if (name != NULL && part_parse(table, name, &day))
            days[(*n)++] = day;
    }
    eg_pg_res_free(res);
    for (size_t i = 1; i < *n; i++) /* insertion sort: a few dozen entries */
        for (size_t j = i; j > 0 && days[j - 1] > days[j]; j--) {
            int64_t t = days[j];
            days[j] = days[j - 1];
            days[j - 1] = t;
        }
    return st;
}

static bool has_day(const int64_t *days, size_t n, int64_t day)
{
    for (size_t i = 0; i < n; i++)
        if (days[i] == day)
            return true;
    return false;
}

/* Begin a maintenance transaction: the advisory lock and a bounded lock wait. */
static eg_status_t begin_maint(eg_pg_t *pg)
{
    eg_status_t st = eg_pg_begin(pg);
    if (st == EG_OK)
        st = eg_pg_exec(pg, LOCK_TIMEOUT, 0, NULL, NULL);
    if (st == EG_OK)
        st = eg_pg_exec(pg, MAINT_LOCK, 0, NULL, NULL);
    return st;
}

static eg_status_t end_maint(eg_pg_t *pg, eg_status_t st)
{
    if (st == EG_OK)
        st = eg_pg_commit(pg);
    else
        eg_pg_rollback(pg);
    return st;
}

/* Does a relation of this name exist (on the search path)? */
static eg_status_t rel_exists(eg_pg_t *pg, const char *name, bool *exists)
{
    eg_pg_res_t *res = NULL;
    const char *p[1] = {name};
    eg_status_t st = eg_pg_exec(pg, SQL_EXISTS, 1, p, &res);
    *exists = st == EG_OK && eg_pg_rows(res) == 1 && eg_pg_value(res, 0, 0) != NULL &&
              strcmp(eg_pg_value(res, 0, 0), "t") == 0;
    eg_pg_res_free(res);
    return st;
}

/* Create and attach table's partition of one day (see the top of the file). */
static eg_status_t create_day(eg_pg_t *pg, const char *table, const char *storage, int64_t day,
                              part_report_t *rep)
{
    char name[96], from[40], to[40], sql[512];
    eg_pg_res_t *res = NULL;
    bool exists = false;
    long moved = 0;
    part_name(name, sizeof name, table, day);
    day_literal(from, sizeof from, day);
    day_literal(to, sizeof to, day + 1);

    eg_status_t st = begin_maint(pg);
    if (st == EG_OK)
        st = rel_exists(pg, name, &exists); /* another archiver was first */
    if (st != EG_OK || exists)
        goto out;
    snprintf(sql, sizeof sql,
             "CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS, CONSTRAINT %s_range CHECK "
             "(desired_time >= '%s' AND desired_time < '%s'))%s",
             name, table, name, from, to, storage);
    st = eg_pg_exec(pg, sql, 0, NULL, NULL);
    if (st == EG_OK) {
        const char *p[2] = {from, to};
        snprintf(sql, sizeof sql,
                 "WITH moved AS (DELETE FROM %s_default WHERE desired_time >= $1::timestamptz "
                 "AND desired_time < $2::timestamptz RETURNING *) "
                 "INSERT INTO %s SELECT * FROM moved",
                 table, name);
        st = eg_pg_exec(pg, sql, 2, p, &res);
        moved = eg_pg_affected(res);
    }
    if (st == EG_OK) {
        snprintf(sql, sizeof sql,
                 "ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM ('%s') TO "
                 "('%s')",
                 table, name, from, to);
        st = eg_pg_exec(pg, sql, 0, NULL, NULL);
    }
    if (st == EG_OK) {
        snprintf(sql, sizeof sql, "ALTER TABLE %s DROP CONSTRAINT %s_range", name, name);
        st = eg_pg_exec(pg, sql, 0, NULL, NULL);
    }
out:
    eg_pg_res_free(res);
    st = end_maint(pg, st);
    if (st != EG_OK) {
        eg_log_warn("partition %s: not created (%s: %s); the next run retries", name,
                    eg_status_str(st), eg_pg_error(pg));
    } else if (!exists) {
        rep->created++;
        rep->moved += moved;
        if (moved > 0)
            eg_log_info("partition %s created; %ld row(s) moved into it from %s_default", name,
                        moved, table);
        else
            eg_log_info("partition %s created", name);
    }
    return st;
}

eg_status_t part_ensure(eg_pg_t *pg, int64_t now_ms, part_report_t *rep)
{
    int64_t today = part_day_of(now_ms);
    int64_t *days = eg_xcalloc(MAX_PARTS, sizeof *days);
    eg_status_t first = EG_OK;
    for (size_t t = 0; t < NTABLES; t++) {
        size_t n = 0;
        eg_status_t st = list_days(pg, TABLES[t], days, MAX_PARTS, &n);
        if (st != EG_OK) {
            eg_log_warn("cannot list the partitions of %s: %s", TABLES[t], eg_pg_error(pg));
            if (first == EG_OK)
                first = st;
            continue;
        }
        for (int64_t day = today - PART_DAYS_BEFORE; day <= today + PART_DAYS_AFTER; day++) {
            if (has_day(days, n, day))
                continue;
            st = create_day(pg, TABLES[t], STORAGE[t], day, rep);
            if (st != EG_OK && first == EG_OK)
                first = st;
        }
    }
    free(days);
    return first;
}

/* Drop one day partition. */
static eg_status_t drop_day(eg_pg_t *pg, const char *table, int64_t day, part_report_t *rep)
{
    char name[96], sql[160];
    part_name(name, sizeof name, table, day);
    snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s", name);
    eg_status_t st = begin_maint(pg);
    if (st == EG_OK)
        st = eg_pg_exec(pg, sql, 0, NULL, NULL);
    st = end_maint(pg, st);
    if (st == EG_OK) {
        rep->dropped++;
        eg_log_info("retention: partition %s dropped", name);
    } else {
        eg_log_warn("retention: partition %s not dropped (%s: %s); the next run retries", name,
                    eg_status_str(st), eg_pg_error(pg));
    }
    return st;
}

/* Run one statement with one parameter in a maintenance transaction; rows it changed. */
static eg_status_t exec_maint(eg_pg_t *pg, const char *sql, const char *param, long *affected)
{
    eg_pg_res_t *res = NULL;
    const char *p[1] = {param};
    eg_status_t st = begin_maint(pg);
    if (st == EG_OK)
        st = eg_pg_exec(pg, sql, 1, p, &res);
    *affected = st == EG_OK ? eg_pg_affected(res) : 0;
    eg_pg_res_free(res);
    return end_maint(pg, st);
}

eg_status_t part_retain(eg_pg_t *pg, int64_t now_ms, part_report_t *rep)
{
    /* A day is past retention once its end is PART_RETENTION_DAYS or more before now: with
     * cutoff the first day that is still kept, that is every day before cutoff. */
    int64_t cutoff = part_day_of(now_ms - PART_RETENTION_DAYS * PART_MS_PER_DAY);
    int64_t *days = eg_xcalloc(MAX_PARTS, sizeof *days);
    char cutoff_lit[40], tomb_lit[40], sql[160];
    eg_status_t first = EG_OK, st;
    day_literal(cutoff_lit, sizeof cutoff_lit, cutoff);
    for (size_t t = 0; t < NTABLES; t++) {
        size_t n = 0;
        long deleted = 0;
        st = list_days(pg, TABLES[t], days, MAX_PARTS, &n);
        if (st != EG_OK) {
            eg_log_warn("cannot list the partitions of %s: %s", TABLES[t], eg_pg_error(pg));
            if (first == EG_OK)
                first = st;
            continue;
        }
        for (size_t i = 0; i < n && days[i] < cutoff; i++) {
            st = drop_day(pg, TABLES[t], days[i], rep);
            if (st != EG_OK && first == EG_OK)
                first = st;
        }
        snprintf(sql, sizeof sql, "DELETE FROM %s_default WHERE desired_time < $1::timestamptz",
                 TABLES[t]);
        st = exec_maint(pg, sql, cutoff_lit, &deleted);
        if (st != EG_OK) {
            eg_log_warn("retention: rows of %s_default not deleted (%s: %s)", TABLES[t],
                        eg_status_str(st), eg_pg_error(pg));
            if (first == EG_OK)
                first = st;
        } else if (deleted > 0) {
            rep->purged += deleted;
            eg_log_info("retention: %ld row(s) before %s deleted from %s_default", deleted,
                        cutoff_lit, TABLES[t]);
        }
    }
    free(days);

    /* Tombstones: timestamp arithmetic in ms, as the clock hook shifts now_ms. */
    long purged = 0;
    snprintf(tomb_lit, sizeof tomb_lit, "%" PRId64, now_ms - PART_TOMBSTONE_DAYS * PART_MS_PER_DAY);
    st = exec_maint(pg,
                    "DELETE FROM gdpr_erased WHERE erased_at < "
                    "to_timestamp($1::double precision / 1000)",
                    tomb_lit, &purged);
    if (st != EG_OK) {
        eg_log_warn("retention: GDPR tombstones not purged (%s: %s)", eg_status_str(st),
                    eg_pg_error(pg));
        if (first == EG_OK)
            first = st;
    }
    rep->tombstones += purged;
    return first;
}
