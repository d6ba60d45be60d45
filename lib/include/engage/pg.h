/* The PostgreSQL adapter: one connection (libpq inside), parameterised queries only, and the
 * numbered schema migrations applied under pg_advisory_lock.
 *
 * Threading: an eg_pg_t is NOT shared between threads; open one per thread. */
#ifndef ENGAGE_PG_H
#define ENGAGE_PG_H
#include <stdbool.h>
#include <stddef.h>
#include "engage/status.h"

typedef struct eg_pg eg_pg_t;
typedef struct eg_pg_res eg_pg_res_t;

/** Connect with a libpq DSN (key=value or postgres:// URI). EG_EUNAVAIL when unreachable. */
eg_status_t eg_pg_open(eg_pg_t **out, const char *dsn);
void eg_pg_close(eg_pg_t *pg);
/** A cheap round trip (SELECT 1). */
eg_status_t eg_pg_ping(eg_pg_t *pg);

/** Run one statement with $1..$n text parameters (NULL entry = SQL NULL). *res may be NULL
 *  when the rows are not wanted; otherwise the caller frees it with eg_pg_res_free.
 *  Statuses: unique violation EG_ECONFLICT; connection lost EG_EUNAVAIL (reconnected and retried
 *  once when outside a transaction); other errors EG_EIO (message in eg_pg_error). */
eg_status_t eg_pg_exec(eg_pg_t *pg, const char *sql, int nparams, const char *const *params,
                       eg_pg_res_t **res);

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
/** The highest migration version built into this binary. */
int eg_pg_migrations_latest(void);

/** Last error text (borrowed). */
const char *eg_pg_error(const eg_pg_t *pg);

#endif
