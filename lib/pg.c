/* The PostgreSQL adapter: the one place that talks libpq.
 *
 * An eg_pg_t owns one PGconn. Statements run through PQexecParams with text parameters only, so
 * values never become SQL text. Results are classified into eg_status_t: unique violation
 * (SQLSTATE 23505) is EG_ECONFLICT, a lost connection EG_EUNAVAIL, anything else EG_EIO. The
 * stored error text is the SQLSTATE and the primary message only: the DETAIL line of a
 * constraint error quotes the offending values, which are user data and must not reach logs;
 * for the same reason data exceptions (SQLSTATE class 22) keep only their SQLSTATE.
 *
 * Lost connections: when the connection is bad and no transaction is open, the connection is
 * reset (PQreset) and the statement sent once more. Inside a transaction there is nothing to
 * retry (the server rolled it back), so the call fails with EG_EUNAVAIL and the transaction stays
 * marked open until the caller ends it with eg_pg_commit or eg_pg_rollback; both end it on any
 * outcome, and the next statement reconnects. The open-transaction flag follows the server's own
 * view (PQtransactionStatus) after every statement, so a BEGIN sent through eg_pg_exec counts
 * too. As with Redis, a retried statement may already have committed before the connection
 * broke; Engage's writes are idempotent (keyed on ids, version compare-and-set) for that reason.
 *
 * Failover: a DSN may name several hosts ("host=a,b port=1,2 target_session_attrs=read-write");
 * libpq walks them on every connect and PQreset, so a reconnect after the primary died lands on
 * whichever host is primary now (the promoted standby), and fails with EG_EUNAVAIL while none
 * is. Some errors leave the socket up although the session is of no use: a statement on a
 * standby (25006 read_only_sql_transaction), the server shutting down (57P01..57P03), class 08.
 * They count as a lost connection (EG_EUNAVAIL, the session marked stale): outside a
 * transaction the session is replaced and the statement sent once more, as above; inside one
 * the call fails and the next statement after the caller's commit or rollback reconnects.
 *
 * Every session sets client_min_messages=warning and installs a notice processor that drops
 * notices, so "relation already exists, skipping" and the like never reach stderr.
 *
 * Prepared statements (eg_pg_exec_prepared): the handle remembers which names it has prepared on
 * the current session. A statement is prepared on its first use, and again after a reconnect
 * (PQreset starts a new session, so the list is emptied) or after the server lost it (SQLSTATE
 * 26000, e.g. DEALLOCATE ALL): outside a transaction that statement is prepared and sent once
 * more at once; inside one the call fails (the transaction is aborted anyway) and the next call
 * prepares it. Preparing is not transactional, so a rollback does not undo it.
 *
 * Array literals (eg_pg_array_*) let a caller pass a list of values as one text parameter, for
 * set-based statements over unnest($1::uuid[], $2::text[], ...). Every text element is quoted
 * and its quotes and backslashes escaped, so any value arrives verbatim, as with a plain
 * parameter.
 *
 * Migrations (migrations.c) run under a session advisory lock: concurrent starters queue on the
 * lock, then read schema_migrations and find nothing left to do. Each migration runs with its
 * version row in one transaction. After the lock is taken nothing is retried on a new session,
 * since a reconnect would silently drop the lock. A service applies them at start with
 * eg_pg_migrate_retry, which opens a connection of its own and tries again for a while, so the
 * services may start before PostgreSQL accepts connections. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "engage/log.h"
#include "engage/mem.h"
#include "engage/pg.h"
#include "migrations.h"

/* pg_advisory_lock key for migrations: "Engage" in ASCII. Database-wide, not per schema. */
#define MIGRATION_LOCK_KEY "76340483155813"

/* A statement prepared on the current session. */
typedef struct {
    char *name;
    char *sql;
} prepared_t;

struct eg_pg {
    PGconn *conn;
    bool in_tx;
    bool stale; /* the session is still up but must be replaced (see session_lost) */
    char err[512];
    prepared_t *prepared;
    size_t nprepared;
};

struct eg_pg_res {
    PGresult *r;
};

static void set_error(eg_pg_t *pg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_error(eg_pg_t *pg, const char *fmt, ...)
{
    va_list ap;
    size_t n = 0;
    bool space = false;

    va_start(ap, fmt);
    vsnprintf(pg->err, sizeof(pg->err), fmt, ap);
    va_end(ap);
    /* libpq messages span lines with tabs and end in a newline: make them one line. */
    for (size_t i = 0; pg->err[i] != '\0'; i++) {
        char c = pg->err[i];
        if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
            space = true;
            continue;
        }
        if (space && n > 0) {
            pg->err[n++] = ' ';
        }
        space = false;
        pg->err[n++] = c;
    }
    pg->err[n] = '\0';
}

static void drop_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static bool tx_open(const PGconn *conn)
{
    PGTransactionStatusType ts = PQtransactionStatus(conn);
    return ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR;
}

/* Per-session settings, after connecting and after every reset. */
static eg_status_t session_setup(eg_pg_t *pg)
{
    eg_status_t st = EG_OK;
    PGresult *r;

    PQsetNoticeProcessor(pg->conn, drop_notice, NULL);
    r = PQexec(pg->conn, "SET client_min_messages = warning");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        set_error(pg, "session setup: %s", PQerrorMessage(pg->conn));
        st = PQstatus(pg->conn) == CONNECTION_BAD ? EG_EUNAVAIL : EG_EIO;
    }
    PQclear(r);
    return st;
}

/* The session's prepared statements are gone (a new session, or the caller's close). */
static void forget_prepared(eg_pg_t *pg)
{
    for (size_t i = 0; i < pg->nprepared; i++) {
        free(pg->prepared[i].name);
        free(pg->prepared[i].sql);
    }
    free(pg->prepared);
    pg->prepared = NULL;
    pg->nprepared = 0;
}

static void forget_one(eg_pg_t *pg, size_t i)
{
    free(pg->prepared[i].name);
    free(pg->prepared[i].sql);
    pg->prepared[i] = pg->prepared[--pg->nprepared];
}

/* Index of name among the prepared statements, or -1. */
static long find_prepared(const eg_pg_t *pg, const char *name)
{
    for (size_t i = 0; i < pg->nprepared; i++) {
        if (strcmp(pg->prepared[i].name, name) == 0) {
            return (long)i;
        }
    }
    return -1;
}

static eg_status_t reset(eg_pg_t *pg)
{
    eg_status_t st;

    PQreset(pg->conn);
    forget_prepared(pg);
    pg->in_tx = false;
    pg->stale = false;
    if (PQstatus(pg->conn) != CONNECTION_OK) {
        set_error(pg, "reconnect: %s", PQerrorMessage(pg->conn));
        eg_log_warn("postgres: %s", pg->err);
        st = EG_EUNAVAIL;
        goto out;
    }
    st = session_setup(pg);
out:
    return st;
}

/* SQLSTATEs that say this session cannot serve the caller any more, though libpq may still
 * count the connection as good: class 08 (connection exceptions), 57P01..57P03 (an
 * administrator's or the server's shutdown, "cannot connect now" while it starts or stops), and
 * 25006 read_only_sql_transaction, which a read-write statement gets on a standby (a DSN
 * without target_session_attrs=read-write, or a server that went read-only under us). A new
 * session is what helps: libpq then walks the DSN's hosts again and target_session_attrs picks
 * the one that is primary now. */
static bool session_lost(const char *state)
{
    return strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
           strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0 ||
           strcmp(state, "25006") == 0;
}

/* Store the error of a failed result and map it to a status. */
static eg_status_t classify(eg_pg_t *pg, const PGresult *r)
{
    const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r != NULL ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;

    if (state == NULL || msg == NULL) {
        /* Not a server error: an empty query, COPY, or a client-side failure. */
        set_error(pg, "%s (%s)", PQresStatus(PQresultStatus(r)), PQerrorMessage(pg->conn));
    } else if (strncmp(state, "22", 2) == 0) {
        /* Data exceptions quote the offending input ("invalid input syntax for type uuid:
         * \"...\""), which is user data. */
        set_error(pg, "%s: invalid data (message withheld, it may quote the value)", state);
    } else {
        set_error(pg, "%s: %s", state, msg);
    }
    if (state != NULL && strcmp(state, "23505") == 0) {
        return EG_ECONFLICT;
    }
    if (state != NULL && session_lost(state)) {
        pg->stale = true;
        return EG_EUNAVAIL;
    }
    return EG_EIO;
}

static bool result_ok(const PGresult *r)
{
    ExecStatusType es = PQresultStatus(r);
    return es == PGRES_COMMAND_OK || es == PGRES_TUPLES_OK;
}

static bool has_sqlstate(const PGresult *r, const char *code)
{
    const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    return state != NULL && strcmp(state, code) == 0;
}

/* Execute the prepared statement name, preparing it first when this session has not. The
 * result (of the PREPARE when that failed) is the caller's to PQclear. */
static PGresult *exec_prepared(eg_pg_t *pg, const char *name, const char *sql, int nparams,
                               const char *const *params)
{
    PGresult *r = NULL;

    for (int attempt = 0; attempt < 2; attempt++) {
        if (find_prepared(pg, name) < 0) {
            r = PQprepare(pg->conn, name, sql, nparams, NULL);
            if (!result_ok(r)) {
                return r;
            }
            PQclear(r);
            pg->prepared = eg_xrealloc(pg->prepared, (pg->nprepared + 1) * sizeof(*pg->prepared));
            pg->prepared[pg->nprepared].name = eg_xstrdup(name);
            pg->prepared[pg->nprepared].sql = eg_xstrdup(sql);
            pg->nprepared++;
        }
        r = PQexecPrepared(pg->conn, name, nparams, params, NULL, NULL, 0);
        if (result_ok(r) || !has_sqlstate(r, "26000")) {
            return r;
        }
        /* The server no longer has it: prepare it again, at once when no transaction is open
         * (inside one, the failure has aborted it; the next call prepares). */
        long i = find_prepared(pg, name);
        if (i >= 0) {
            forget_one(pg, (size_t)i);
        }
        if (tx_open(pg->conn)) {
            return r;
        }
        PQclear(r);
        r = NULL;
    }
    return r;
}

/* Run one statement (through the prepared statement name when it is non-NULL). With retry, a
 * bad connection outside a transaction is reset and the statement sent once more. On EG_OK *out
 * (when out is non-NULL) is the result to PQclear. */
static eg_status_t run_stmt(eg_pg_t *pg, const char *name, const char *sql, int nparams,
                            const char *const *params, bool retry, PGresult **out)
{
    eg_status_t st = EG_EUNAVAIL;
    PGresult *r = NULL;

    if (out != NULL) {
        *out = NULL;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        if (PQstatus(pg->conn) == CONNECTION_BAD || pg->stale) {
            if (pg->in_tx || !retry) {
                set_error(pg, "connection lost%s",
                          pg->in_tx ? " inside a transaction" : "; not retried");
                st = EG_EUNAVAIL;
                goto out;
            }
            st = reset(pg);
            if (st != EG_OK) {
                goto out;
            }
        }
        if (name != NULL) {
            r = exec_prepared(pg, name, sql, nparams, params);
        } else {
            r = PQexecParams(pg->conn, sql, nparams, NULL, params, NULL, NULL, 0);
        }
        if (result_ok(r)) {
            pg->in_tx = tx_open(pg->conn);
            st = EG_OK;
            goto out;
        }
        if (PQstatus(pg->conn) != CONNECTION_BAD) {
            bool was_in_tx = pg->in_tx;
            st = classify(pg, r);
            pg->in_tx = tx_open(pg->conn);
            if (st != EG_EUNAVAIL || was_in_tx || !retry) {
                goto out;
            }
            /* The session is lost though the socket is not (see session_lost), and the
             * statement did not run: send it once more on a new session. */
            eg_log_warn("postgres: %s; reconnecting", pg->err);
            PQclear(r);
            r = NULL;
            continue;
        }
        set_error(pg, "connection lost: %s", PQerrorMessage(pg->conn));
        eg_log_warn("postgres: %s", pg->err);
        PQclear(r);
        r = NULL;
        st = EG_EUNAVAIL;
        if (pg->in_tx || !retry) {
            goto out;
        }
    }
out:
    if (st == EG_OK && out != NULL) {
        *out = r;
        r = NULL;
    }
    PQclear(r);
    return st;
}

static eg_status_t run(eg_pg_t *pg, const char *sql, int nparams, const char *const *params,
                       bool retry, PGresult **out)
{
    return run_stmt(pg, NULL, sql, nparams, params, retry, out);
}

eg_status_t eg_pg_open(eg_pg_t **out, const char *dsn)
{
    eg_status_t st;
    eg_pg_t *pg = NULL;

    *out = NULL;
    if (dsn == NULL) {
        st = EG_EINVAL;
        goto out;
    }
    pg = eg_xcalloc(1, sizeof(*pg));
    pg->conn = PQconnectdb(dsn);
    if (pg->conn == NULL) {
        eg_log_warn("postgres: cannot allocate a connection");
        st = EG_EUNAVAIL;
        goto out;
    }
    if (PQstatus(pg->conn) != CONNECTION_OK) {
        /* libpq's message names host and port, never the password. */
        set_error(pg, "%s", PQerrorMessage(pg->conn));
        eg_log_warn("postgres: connect failed: %s", pg->err);
        st = EG_EUNAVAIL;
        goto out;
    }
    st = session_setup(pg);
    if (st != EG_OK) {
        goto out;
    }
    *out = pg;
    pg = NULL;
out:
    eg_pg_close(pg);
    return st;
}

void eg_pg_close(eg_pg_t *pg)
{
    if (pg == NULL) {
        return;
    }
    if (pg->conn != NULL) {
        PQfinish(pg->conn);
    }
    forget_prepared(pg);
    free(pg);
}

eg_status_t eg_pg_ping(eg_pg_t *pg)
{
    return run(pg, "SELECT 1", 0, NULL, true, NULL);
}

eg_status_t eg_pg_exec(eg_pg_t *pg, const char *sql, int nparams, const char *const *params,
                       eg_pg_res_t **res)
{
    eg_status_t st;
    PGresult *r = NULL;

    if (res != NULL) {
        *res = NULL;
    }
    if (sql == NULL || nparams < 0 || (nparams > 0 && params == NULL)) {
        st = EG_EINVAL;
        goto out;
    }
    st = run(pg, sql, nparams, params, true, res != NULL ? &r : NULL);
    if (st != EG_OK || res == NULL) {
        goto out;
    }
    *res = eg_xmalloc(sizeof(**res));
    (*res)->r = r;
out:
    return st;
}

eg_status_t eg_pg_exec_prepared(eg_pg_t *pg, const char *name, const char *sql, int nparams,
                                const char *const *params, eg_pg_res_t **res)
{
    eg_status_t st;
    PGresult *r = NULL;
    long i;

    if (res != NULL) {
        *res = NULL;
    }
    if (name == NULL || name[0] == '\0' || sql == NULL || nparams < 0 ||
        (nparams > 0 && params == NULL)) {
        st = EG_EINVAL;
        goto out;
    }
    i = find_prepared(pg, name);
    if (i >= 0 && strcmp(pg->prepared[i].sql, sql) != 0) {
        set_error(pg, "prepared statement %s reused for another statement", name);
        st = EG_EINVAL;
        goto out;
    }
    st = run_stmt(pg, name, sql, nparams, params, true, res != NULL ? &r : NULL);
    if (st != EG_OK || res == NULL) {
        goto out;
    }
    *res = eg_xmalloc(sizeof(**res));
    (*res)->r = r;
out:
    return st;
}

int eg_pg_rows(const eg_pg_res_t *res)
{
    return res != NULL ? PQntuples(res->r) : 0;
}

int eg_pg_cols(const eg_pg_res_t *res)
{
    return res != NULL ? PQnfields(res->r) : 0;
}

const char *eg_pg_value(const eg_pg_res_t *res, int row, int col)
{
    if (res == NULL || row < 0 || col < 0 || row >= PQntuples(res->r) || col >= PQnfields(res->r) ||
        PQgetisnull(res->r, row, col)) {
        return NULL;
    }
    return PQgetvalue(res->r, row, col);
}

long eg_pg_affected(const eg_pg_res_t *res)
{
    const char *n;

    if (res == NULL) {
        return 0;
    }
    n = PQcmdTuples(res->r);
    return n[0] != '\0' ? strtol(n, NULL, 10) : 0;
}

void eg_pg_res_free(eg_pg_res_t *res)
{
    if (res == NULL) {
        return;
    }
    PQclear(res->r);
    free(res);
}

eg_status_t eg_pg_begin(eg_pg_t *pg)
{
    if (pg->in_tx) {
        set_error(pg, "BEGIN inside an open transaction");
        return EG_ESTATE;
    }
    return run(pg, "BEGIN", 0, NULL, true, NULL);
}

eg_status_t eg_pg_commit(eg_pg_t *pg)
{
    eg_status_t st;
    PGresult *r = NULL;

    st = run(pg, "COMMIT", 0, NULL, false, &r);
    if (st == EG_OK && strcmp(PQcmdStatus(r), "ROLLBACK") == 0) {
        /* COMMIT of a transaction that already failed succeeds as a ROLLBACK. */
        set_error(pg, "transaction had failed; COMMIT rolled it back");
        st = EG_EIO;
    }
    PQclear(r);
    /* The transaction is over whatever happened: committed, rolled back, or lost with the
     * connection. The next statement reconnects if needed. */
    pg->in_tx = false;
    return st;
}

eg_status_t eg_pg_rollback(eg_pg_t *pg)
{
    eg_status_t st;

    if (PQstatus(pg->conn) == CONNECTION_BAD || pg->stale) {
        /* The server has already rolled back (or will, when the next statement replaces the
         * session); there is nothing to send. */
        pg->in_tx = false;
        st = EG_OK;
        goto out;
    }
    st = run(pg, "ROLLBACK", 0, NULL, false, NULL);
    pg->in_tx = false;
out:
    return st;
}

int eg_pg_migrations_latest(void)
{
    size_t n;
    const eg_migration_t *m = eg_migrations(&n);

    return n > 0 ? m[n - 1].version : 0;
}

/* Apply one migration and record it, in one transaction; no reconnects (the lock would go). */
static eg_status_t apply(eg_pg_t *pg, const eg_migration_t *m)
{
    eg_status_t st;
    PGresult *r = NULL;
    char version[16];
    const char *params[2];

    st = run(pg, "BEGIN", 0, NULL, false, NULL);
    if (st != EG_OK) {
        goto out;
    }
    /* Fixed, multi-statement SQL from migrations.c: PQexec, not PQexecParams. */
    r = PQexec(pg->conn, m->sql);
    if (!result_ok(r)) {
        char why[sizeof(pg->err)];
        if (PQstatus(pg->conn) == CONNECTION_BAD) {
            set_error(pg, "connection lost: %s", PQerrorMessage(pg->conn));
            st = EG_EUNAVAIL;
        } else {
            /* A lost session stays EG_EUNAVAIL (the caller's retry may find the primary). */
            st = classify(pg, r) == EG_EUNAVAIL ? EG_EUNAVAIL : EG_EIO;
        }
        memcpy(why, pg->err, sizeof(why));
        set_error(pg, "migration %d (%s): %s", m->version, m->name, why);
        goto out;
    }
    snprintf(version, sizeof(version), "%d", m->version);
    params[0] = version;
    params[1] = m->name;
    st = run(pg, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2, params, false,
             NULL);
    if (st != EG_OK) {
        goto out;
    }
    st = eg_pg_commit(pg);
out:
    PQclear(r);
    if (st != EG_OK && pg->in_tx) {
        eg_pg_rollback(pg);
    }
    return st;
}

eg_status_t eg_pg_migrate(eg_pg_t *pg, int *applied)
{
    eg_status_t st;
    PGresult *r = NULL;
    bool locked = false;
    int n = 0;
    long current;
    size_t count;
    const eg_migration_t *m = eg_migrations(&count);

    if (applied != NULL) {
        *applied = 0;
    }
    if (pg->in_tx) {
        set_error(pg, "migrate inside an open transaction");
        st = EG_ESTATE;
        goto out;
    }
    st = run(pg, "SELECT pg_advisory_lock(" MIGRATION_LOCK_KEY ")", 0, NULL, true, NULL);
    if (st != EG_OK) {
        goto out;
    }
    locked = true;
    st = run(pg,
             "CREATE TABLE IF NOT EXISTS schema_migrations ("
             "version integer PRIMARY KEY, name text, "
             "applied_at timestamptz DEFAULT now())",
             0, NULL, false, NULL);
    if (st != EG_OK) {
        goto out;
    }
    st = run(pg, "SELECT coalesce(max(version), 0) FROM schema_migrations", 0, NULL, false, &r);
    if (st != EG_OK) {
        goto out;
    }
    current = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    if (current > eg_pg_migrations_latest()) {
        eg_log_warn("postgres: schema version %ld is newer than this binary's %d", current,
                    eg_pg_migrations_latest());
    }
    for (size_t i = 0; i < count; i++) {
        if (m[i].version <= current) {
            continue;
        }
        st = apply(pg, &m[i]);
        if (st != EG_OK) {
            eg_log_error("postgres: %s", pg->err);
            goto out;
        }
        eg_log_info("postgres: applied migration %d (%s)", m[i].version, m[i].name);
        n++;
    }
out:
    PQclear(r);
    if (locked && PQstatus(pg->conn) == CONNECTION_OK) {
        /* A lost session has released the lock already. */
        PGresult *u = PQexec(pg->conn, "SELECT pg_advisory_unlock(" MIGRATION_LOCK_KEY ")");
        PQclear(u);
    }
    if (applied != NULL) {
        *applied = n;
    }
    return st;
}

eg_status_t eg_pg_migrate_retry(const char *dsn, int tries, int delay_ms)
{
    eg_status_t st = EG_EUNAVAIL;

    for (int i = 0; i < tries && st != EG_OK; i++) {
        eg_pg_t *pg = NULL;
        int applied = 0;
        st = eg_pg_open(&pg, dsn);
        if (st == EG_OK) {
            st = eg_pg_migrate(pg, &applied);
        }
        if (st == EG_OK && applied) {
            eg_log_info("applied %d schema migration(s)", applied);
        }
        if (st != EG_OK) {
            eg_log_warn("migrations failed (%s): %s%s", eg_status_str(st),
                        pg ? eg_pg_error(pg) : "no connection", i + 1 < tries ? "; retrying" : "");
        }
        eg_pg_close(pg);
        if (st != EG_OK && i + 1 < tries) {
            struct timespec ts = {.tv_sec = delay_ms / 1000,
                                  .tv_nsec = (long)(delay_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    return st;
}

void eg_pg_array_init(eg_pg_array_t *a, size_t max)
{
    eg_buf_init(&a->buf, max);
    a->n = 0;
    a->closed = false;
    a->st = eg_buf_append(&a->buf, "{", 1);
}

void eg_pg_array_add(eg_pg_array_t *a, const char *value)
{
    const char *run_start;

    if (a->st != EG_OK || a->closed) {
        a->st = a->st != EG_OK ? a->st : EG_ESTATE;
        return;
    }
    if (a->n++ > 0) {
        a->st = eg_buf_append(&a->buf, ",", 1);
    }
    if (value == NULL) {
        if (a->st == EG_OK) {
            a->st = eg_buf_append(&a->buf, "NULL", 4);
        }
        return;
    }
    if (a->st == EG_OK) {
        a->st = eg_buf_append(&a->buf, "\"", 1);
    }
    /* Runs of ordinary bytes at once; a backslash before each quote and backslash. */
    run_start = value;
    for (const char *p = value; a->st == EG_OK; p++) {
        if (*p != '\0' && *p != '"' && *p != '\\') {
            continue;
        }
        a->st = eg_buf_append(&a->buf, run_start, (size_t)(p - run_start));
        if (*p == '\0') {
            break;
        }
        if (a->st == EG_OK) {
            char esc[2] = {'\\', *p};
            a->st = eg_buf_append(&a->buf, esc, 2);
        }
        run_start = p + 1;
    }
    if (a->st == EG_OK) {
        a->st = eg_buf_append(&a->buf, "\"", 1);
    }
}

void eg_pg_array_add_i64(eg_pg_array_t *a, int64_t value)
{
    char num[24];

    snprintf(num, sizeof(num), "%" PRId64, value);
    eg_pg_array_add(a, num);
}

const char *eg_pg_array_text(eg_pg_array_t *a)
{
    if (a->st == EG_OK && !a->closed) {
        a->st = eg_buf_append(&a->buf, "}", 1);
        a->closed = true;
    }
    return a->st == EG_OK ? a->buf.data : NULL;
}

eg_status_t eg_pg_array_status(const eg_pg_array_t *a)
{
    return a->st;
}

size_t eg_pg_array_count(const eg_pg_array_t *a)
{
    return a->n;
}

void eg_pg_array_reset(eg_pg_array_t *a)
{
    eg_buf_reset(&a->buf);
    a->n = 0;
    a->closed = false;
    a->st = eg_buf_append(&a->buf, "{", 1);
}

void eg_pg_array_free(eg_pg_array_t *a)
{
    eg_buf_free(&a->buf);
    a->n = 0;
    a->closed = false;
}

const char *eg_pg_error(const eg_pg_t *pg)
{
    if (pg == NULL) {
        return "no connection";
    }
    return pg->err;
}
