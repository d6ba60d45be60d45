/* The PostgreSQL adapter: one connection (libpq inside), parameterised queries only, and the
 * numbered schema migrations applied under pg_advisory_lock.
 *
 * Threading: an eg_pg_t is NOT shared between threads; open one per thread. */
#ifndef ENGAGE_PG_H
#define ENGAGE_PG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "engage/buf.h"
#include "engage/status.h"

typedef struct eg_pg eg_pg_t;
typedef struct eg_pg_res eg_pg_res_t;

/** Connect with a libpq DSN (key=value or postgres:// URI). A DSN may list several hosts
 *  (host=a,b port=1,2) with target_session_attrs (read-write for writers, prefer-standby for
 *  history reads): every connect and reconnect walks them in order, so the handle follows a
 *  promotion. EG_EUNAVAIL when unreachable (or no listed host fits target_session_attrs). */
eg_status_t eg_pg_open(eg_pg_t **out, const char *dsn);
void eg_pg_close(eg_pg_t *pg);
/** A cheap round trip (SELECT 1). */
eg_status_t eg_pg_ping(eg_pg_t *pg);

/** Run one statement with $1..$n text parameters (NULL entry = SQL NULL). *res may be NULL
 *  when the rows are not wanted; otherwise the caller frees it with eg_pg_res_free.
 *  Statuses: unique violation EG_ECONFLICT; connection lost EG_EUNAVAIL (reconnected and retried
 *  once when outside a transaction), and so is a session that is up but of no use: SQLSTATE
 *  class 08, 57P01..57P03 (shutdown, cannot connect now) and 25006 (read-only: a write on a
 *  standby); other errors EG_EIO (message in eg_pg_error). */
eg_status_t eg_pg_exec(eg_pg_t *pg, const char *sql, int nparams, const char *const *params,
                       eg_pg_res_t **res);

/** Run one statement as eg_pg_exec does, through a named prepared statement: the first call on
 *  a connection (and the first after a reconnect) prepares sql under name, later calls only bind
 *  and execute it, so PostgreSQL parses and plans it once per session instead of on every call.
 *  name (borrowed, copied) stands for sql: one name, one statement text (EG_EINVAL when a name
 *  comes back with another text). Parameter types come from the casts in sql ($1::uuid[]).
 *  Statuses, results and reconnects as eg_pg_exec; a statement the server has lost (DEALLOCATE)
 *  is prepared again. */
eg_status_t eg_pg_exec_prepared(eg_pg_t *pg, const char *name, const char *sql, int nparams,
                                const char *const *params, eg_pg_res_t **res);

int eg_pg_rows(const eg_pg_res_t *res);
int eg_pg_cols(const eg_pg_res_t *res);
/** Value at row, col as text (borrowed from res), NULL for SQL NULL. */
const char *eg_pg_value(const eg_pg_res_t *res, int row, int col);
/** Rows changed by an INSERT/UPDATE/DELETE. */
long eg_pg_affected(const eg_pg_res_t *res);
void eg_pg_res_free(eg_pg_res_t *res);

eg_status_t eg_pg_begin(eg_pg_t *pg);
eg_status_t eg_pg_commit(eg_pg_t *pg);
eg_status_t eg_pg_rollback(eg_pg_t *pg);

/** Apply every built-in migration not yet applied, in order, each in its own transaction,
 *  under a session advisory lock so concurrent starters wait and then find nothing to do.
 *  Applied versions are recorded in schema_migrations. *applied (may be NULL) = how many ran. */
eg_status_t eg_pg_migrate(eg_pg_t *pg, int *applied);
/** Apply the migrations at a service's start: open a connection of its own to dsn (borrowed),
 *  eg_pg_migrate, close; up to tries times, delay_ms apart, so the service may start before
 *  PostgreSQL does. Logs how many migrations ran and each failed try (a warning; the caller
 *  says what giving up means). EG_OK, or the last try's status (EG_EUNAVAIL when PostgreSQL never
 * answered). */
eg_status_t eg_pg_migrate_retry(const char *dsn, int tries, int delay_ms);
/** The highest migration version built into this binary. */
int eg_pg_migrations_latest(void);

/** A PostgreSQL array literal under construction, "{...}", to pass a list of values as one text
 *  parameter of a set-based statement (INSERT ... SELECT ... FROM unnest($1::uuid[],
 *  $2::text[])). Elements are quoted and escaped, so any text arrives verbatim. Errors latch: after
 *  a failed append (the literal would pass max bytes: EG_ETOOBIG) every call does nothing and
 *  eg_pg_array_text returns NULL. A plain value the caller owns; not thread-safe. */
typedef struct {
    eg_buf_t buf;
    size_t n;       /**< elements added */
    eg_status_t st; /**< first failure, EG_OK so far */
    bool closed;    /**< eg_pg_array_text has closed it */
} eg_pg_array_t;

/** Start an empty array whose literal may grow to max bytes. */
void eg_pg_array_init(eg_pg_array_t *a, size_t max);
/** Append one element: value (borrowed, copied) or, for NULL, SQL NULL. */
void eg_pg_array_add(eg_pg_array_t *a, const char *value);
/** Append one integer element. */
void eg_pg_array_add_i64(eg_pg_array_t *a, int64_t value);
/** Close the literal and return it (borrowed from a, valid until a is reset or freed); NULL
 *  when an append failed. No element may be added after. */
const char *eg_pg_array_text(eg_pg_array_t *a);
/** EG_OK, or the first failure (EG_ETOOBIG). */
eg_status_t eg_pg_array_status(const eg_pg_array_t *a);
/** How many elements were added. */
size_t eg_pg_array_count(const eg_pg_array_t *a);
/** Empty it for reuse, keeping its memory and its max. */
void eg_pg_array_reset(eg_pg_array_t *a);
/** Free its memory. Accepts an array freed already. */
void eg_pg_array_free(eg_pg_array_t *a);

/** Last error text (borrowed). */
const char *eg_pg_error(const eg_pg_t *pg);

#endif
