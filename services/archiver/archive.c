/* The archiver's PostgreSQL writer: every lifecycle event becomes rows in the history tables
 * of migration 2, written so that a replay, a duplicate or a late event changes nothing wrong.
 *
 * The rules (the callback record an event carries is the state after the change):
 * - callbacks holds one row per callback, its latest version. An event whose version is newer
 *   than the row's (or that finds no row) upserts it; an older or equal version leaves it alone,
 *   so a late event never moves a callback's state backwards. The upsert repeats the check in
 *   its WHERE clause.
 * - All rows of one callback share one desired_time, the partition key, which is in every
 *   primary key: (id, desired_time), (callback_id, desired_time), (event_id, desired_time). So
 *   a newer event with another desired_time (a reschedule) first deletes the row under the old
 *   time and moves the callback's callback_data and callback_events rows to the new one.
 * - callback_data and callback_events rows are inserted under the desired_time the callback's
 *   row has after the step above: the newest event's own when it is newer than the row, the
 *   row's otherwise. That is what makes a replay harmless: an old event replayed after a
 *   reschedule lands on its existing row (ON CONFLICT DO NOTHING) instead of creating a second
 *   one under the old time, and it never drags the callback back to its old desired_time.
 * - callback_data is written once (ON CONFLICT DO NOTHING: the first event of the batch with
 *   user data wins), only when an event has user data.
 *
 * The outcome is the same whatever the order and however often events arrive, as long as a
 * callback's versions increase with its changes (the scheduler's compare-and-set guarantees
 * that).
 *
 * Set-based: a batch costs the same few statements whatever its size (up to the consumer's 200
 * events):
 *   BEGIN; SET LOCAL plan_cache_mode; lock; read; [3 moves, only when a callback is
 *   rescheduled]; upsert callbacks (when a callback has a newer version); insert callback_data
 *   (when there is user data); insert callback_events; COMMIT.
 * Each works over arrays (unnest of one array literal per column, eg_pg_array_t) and is a named
 * prepared statement, so PostgreSQL parses and plans it once per connection, and keeps that
 * plan: by default it would plan a prepared statement again on every call whose parameters make
 * a custom plan look cheaper, which the unnest of a short array always does, and such planning
 * opens every partition of the table each time (most of a small batch's cost). SET LOCAL
 * plan_cache_mode = force_generic_plan keeps the setting to the batch's transaction; other
 * statements on the connection are planned as before.
 *
 * The batch is grouped by callback in C first (the ids parsed, sorted), because one INSERT ...
 * ON CONFLICT DO UPDATE may not touch a row twice: the upsert gets one row per callback, its
 * newest event. Duplicate event ids need no such care (ON CONFLICT DO NOTHING keeps the first).
 *
 * Locks and GDPR: the transaction starts by taking a transaction-scoped advisory lock per
 * callback, in a fixed order (by hash), so two archivers that share the durable consumer never
 * interleave the read-then-write steps above for one callback, and never deadlock on each other.
 * Under those locks it reads, in one statement, the latest row of each callback and whether a
 * GDPR erase tombstoned it (gdpr_erased, migration 4); the events of a tombstoned callback are
 * dropped: its late events (the cancel the erase itself caused, a redelivery, a replay of the
 * stream) never bring its rows back. The erase (history.c) takes the same locks, so the two never
 * interleave. Tombstones are purged after the events stream's retention (partitions.c).
 *
 * Storage (migration 5): the from-state and a correlation id that is a canonical UUID have
 * columns of their own; any other correlation id goes into detail ({"corrId": ...}).
 *
 * Timestamps travel as integer milliseconds and become timestamptz through
 * to_timestamp(ms / 1000), which PostgreSQL rounds to whole microseconds, so a value read back
 * as epoch milliseconds compares exactly. */
#include "archive.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage/ids.h"
#include "engage/log.h"
#include "engage/mem.h"
#include "engage/states.h"

/* An upper bound for one array literal: a batch whose user data would pass it is written one
 * event at a time instead (archive_write), and one event is far below it. */
#define ARRAY_MAX ((size_t)64 * 1024 * 1024)

/* For the batch's transaction: keep each prepared statement's plan (see the top of the file). */
static const char SQL_GENERIC[] = "SET LOCAL plan_cache_mode = force_generic_plan";

/* First key of the two-key advisory locks: "EGAR", so they cannot meet other users' locks. The
 * ids are hashed in canonical form, as the GDPR erase locks them (history.c). */
static const char SQL_LOCK[] =
    "SELECT pg_advisory_xact_lock(1162297682, h) "
    "FROM (SELECT DISTINCT hashtext(x::text) AS h FROM unnest($1::uuid[]) AS x ORDER BY h) AS s";

/* Per callback of the batch (in the order of $1): the version and desired time of its latest
 * row (NULL without one), and whether a GDPR erase tombstoned it. */
static const char SQL_READ[] =
    "SELECT i.n, c.version, (extract(epoch FROM c.desired_time) * 1000)::bigint, "
    "e.callback_id IS NOT NULL "
    "FROM unnest($1::uuid[]) WITH ORDINALITY AS i(id, n) "
    "LEFT JOIN LATERAL (SELECT version, desired_time FROM callbacks WHERE id = i.id "
    "ORDER BY version DESC LIMIT 1) AS c ON true "
    "LEFT JOIN gdpr_erased e ON e.callback_id = i.id";

/* A reschedule: the callbacks' rows leave their old desired_time ($1 ids, $2 new times). */
static const char SQL_MOVE_CALLBACKS[] =
    "DELETE FROM callbacks t USING unnest($1::uuid[], $2::bigint[]) AS m(id, ms) "
    "WHERE t.id = m.id AND t.desired_time <> to_timestamp(m.ms::double precision / 1000)";
static const char SQL_MOVE_DATA[] =
    "UPDATE callback_data t SET desired_time = to_timestamp(m.ms::double precision / 1000) "
    "FROM unnest($1::uuid[], $2::bigint[]) AS m(id, ms) WHERE t.callback_id = m.id "
    "AND t.desired_time <> to_timestamp(m.ms::double precision / 1000)";
static const char SQL_MOVE_EVENTS[] =
    "UPDATE callback_events t SET desired_time = to_timestamp(m.ms::double precision / 1000) "
    "FROM unnest($1::uuid[], $2::bigint[]) AS m(id, ms) WHERE t.callback_id = m.id "
    "AND t.desired_time <> to_timestamp(m.ms::double precision / 1000)";
static const char *const SQL_MOVE[][2] = {
    {"archive_move_callbacks", SQL_MOVE_CALLBACKS},
    {"archive_move_data", SQL_MOVE_DATA},
    {"archive_move_events", SQL_MOVE_EVENTS},
};

/* The columns of each statement's arrays, in the order of its parameters. */
enum {
    U_ID,
    U_TENANT,
    U_SERVICE,
    U_PHONE,
    U_DESIRED,
    U_STATE,
    U_REASON,
    U_ATTEMPTS,
    U_VERSION,
    U_CREATED,
    U_UPDATED,
    U_COLS
};
enum { D_ID, D_DESIRED, D_DATA, D_COLS };
enum {
    E_ID,
    E_CALLBACK,
    E_DESIRED,
    E_STATE,
    E_REASON,
    E_AT,
    E_ATTEMPT,
    E_FROM,
    E_CORR,
    E_CORR_TEXT,
    E_COLS
};

static const char SQL_UPSERT[] =
    "INSERT INTO callbacks (id, tenant_id, service, phone, desired_time, state, reason, attempts, "
    "version, created_at, updated_at) "
    "SELECT u.id, u.tenant_id, u.service, u.phone, "
    "to_timestamp(u.desired::double precision / 1000), u.state, u.reason, u.attempts, u.version, "
    "to_timestamp(u.created::double precision / 1000), "
    "to_timestamp(u.updated::double precision / 1000) "
    "FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::bigint[], $6::text[], "
    "$7::text[], $8::integer[], $9::bigint[], $10::bigint[], $11::bigint[]) "
    "AS u(id, tenant_id, service, phone, desired, state, reason, attempts, version, created, "
    "updated) "
    "ON CONFLICT (id, desired_time) DO UPDATE SET tenant_id = EXCLUDED.tenant_id, "
    "service = EXCLUDED.service, phone = EXCLUDED.phone, state = EXCLUDED.state, "
    "reason = EXCLUDED.reason, attempts = EXCLUDED.attempts, version = EXCLUDED.version, "
    "created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at "
    "WHERE callbacks.version < EXCLUDED.version";

static const char SQL_DATA[] =
    "INSERT INTO callback_data (callback_id, desired_time, user_data) "
    "SELECT u.id, to_timestamp(u.desired::double precision / 1000), u.data::jsonb "
    "FROM unnest($1::uuid[], $2::bigint[], $3::text[]) AS u(id, desired, data) "
    "ON CONFLICT DO NOTHING";

static const char SQL_EVENTS[] =
    "INSERT INTO callback_events (event_id, callback_id, desired_time, state, reason, at, "
    "attempt, from_state, corr_id, detail) "
    "SELECT u.event_id, u.callback_id, to_timestamp(u.desired::double precision / 1000), "
    "u.state, u.reason, to_timestamp(u.at::double precision / 1000), u.attempt, u.from_state, "
    "u.corr_id, CASE WHEN u.corr_text IS NOT NULL THEN jsonb_build_object('corrId', u.corr_text) "
    "END "
    "FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::text[], $6::bigint[], "
    "$7::integer[], $8::text[], $9::uuid[], $10::text[]) "
    "AS u(event_id, callback_id, desired, state, reason, at, attempt, from_state, corr_id, "
    "corr_text) "
    "ON CONFLICT DO NOTHING";

#define MAX_COLS 11

/* One statement's parameters, one array literal per column. */
typedef struct {
    eg_pg_array_t col[MAX_COLS];
    int n;
} cols_t;

static void cols_init(cols_t *c, int n)
{
    c->n = n;
    for (int i = 0; i < n; i++) {
        eg_pg_array_init(&c->col[i], ARRAY_MAX);
    }
}

static void cols_free(cols_t *c)
{
    for (int i = 0; i < c->n; i++) {
        eg_pg_array_free(&c->col[i]);
    }
}

/* Run the prepared statement name over the columns: EG_ETOOBIG when a literal did not fit. */
static eg_status_t cols_exec(eg_pg_t *pg, const char *name, const char *sql, cols_t *c)
{
    const char *params[MAX_COLS];

    for (int i = 0; i < c->n; i++) {
        params[i] = eg_pg_array_text(&c->col[i]);
        if (params[i] == NULL) {
            return eg_pg_array_status(&c->col[i]);
        }
    }
    return eg_pg_exec_prepared(pg, name, sql, c->n, params, NULL);
}

static void add_u64(eg_pg_array_t *a, uint64_t v)
{
    char num[24];
    snprintf(num, sizeof num, "%" PRIu64, v);
    eg_pg_array_add(a, num);
}

/* What the batch knows of one callback. */
typedef struct {
    eg_uuid_t key;        /* its id, parsed */
    const Eg__Event *win; /* its newest event in the batch (the first of that version) */
    bool erased;          /* a GDPR erase tombstoned it: its events are dropped */
    bool exists;          /* it has a row */
    long long version;    /* the row's version */
    int64_t desired_ms;   /* the row's desired time */
    int64_t target_ms;    /* where its rows are after this batch */
} cb_t;

typedef struct {
    eg_uuid_t key;
    size_t event;
} by_id_t;

static int by_id_cmp(const void *a, const void *b)
{
    const by_id_t *x = a, *y = b;
    int c = memcmp(x->key.b, y->key.b, sizeof x->key.b);
    if (c != 0) {
        return c;
    }
    return x->event < y->event ? -1 : x->event > y->event;
}

/* Group events[0..n) by callback: *cbs (caller frees) gets one entry per callback, in id order,
 * and of[i] the entry of event i. Ids passed archive_event_check, so they parse. */
static size_t group(const Eg__Event *const *events, size_t n, cb_t **cbs, size_t *of)
{
    by_id_t *keys = eg_xcalloc(n, sizeof *keys);
    size_t ncb = 0;

    for (size_t i = 0; i < n; i++) {
        const char *id = events[i]->callback->id;
        eg_uuid_parse(id, strlen(id), &keys[i].key);
        keys[i].event = i;
    }
    qsort(keys, n, sizeof *keys, by_id_cmp);
    *cbs = eg_xcalloc(n, sizeof **cbs);
    for (size_t k = 0; k < n; k++) {
        const Eg__Event *ev = events[keys[k].event];
        if (k == 0 || memcmp(keys[k].key.b, keys[k - 1].key.b, sizeof keys[k].key.b) != 0) {
            cb_t *c = &(*cbs)[ncb++];
            c->key = keys[k].key;
            c->win = ev;
        }
        cb_t *c = &(*cbs)[ncb - 1];
        /* Events of one callback come in batch order: the first of the highest version wins. */
        if (ev->callback->version > c->win->callback->version) {
            c->win = ev;
        }
        of[keys[k].event] = ncb - 1;
    }
    free(keys);
    return ncb;
}

/* Lock the batch's callbacks for the rest of the transaction and read what is known of each
 * (see SQL_READ). Read after the locks, the tombstones are those of every erase that committed
 * before: an erase holds the same locks while it writes them, so it either finished before this
 * batch looks, or waits until the batch committed and then deletes what the batch wrote. */
static eg_status_t lock_and_read(eg_pg_t *pg, cb_t *cbs, size_t ncb)
{
    eg_pg_array_t ids;
    eg_pg_res_t *res = NULL;
    eg_status_t st;
    char id[EG_UUID_STR_LEN + 1];

    eg_pg_array_init(&ids, ARRAY_MAX);
    for (size_t i = 0; i < ncb; i++) {
        eg_uuid_format(&cbs[i].key, id);
        eg_pg_array_add(&ids, id);
    }
    const char *params[1] = {eg_pg_array_text(&ids)};
    st = eg_pg_array_status(&ids);
    if (st == EG_OK) {
        st = eg_pg_exec_prepared(pg, "archive_lock", SQL_LOCK, 1, params, NULL);
    }
    if (st == EG_OK) {
        st = eg_pg_exec_prepared(pg, "archive_read", SQL_READ, 1, params, &res);
    }
    for (int r = 0; st == EG_OK && r < eg_pg_rows(res); r++) {
        const char *ord = eg_pg_value(res, r, 0);
        long long k = ord != NULL ? strtoll(ord, NULL, 10) : 0;
        if (k < 1 || (size_t)k > ncb) {
            continue;
        }
        cb_t *c = &cbs[k - 1];
        const char *v = eg_pg_value(res, r, 1);
        const char *d = eg_pg_value(res, r, 2);
        const char *e = eg_pg_value(res, r, 3);
        c->exists = v != NULL;
        c->version = v != NULL ? strtoll(v, NULL, 10) : 0;
        c->desired_ms = d != NULL ? strtoll(d, NULL, 10) : 0;
        c->erased = e != NULL && strcmp(e, "t") == 0;
    }
    eg_pg_res_free(res);
    eg_pg_array_free(&ids);
    return st;
}

/* Decide, per callback, whether its newest event updates the row and where its rows go; then
 * move the rows of rescheduled callbacks. */
static eg_status_t plan_and_move(eg_pg_t *pg, cb_t *cbs, size_t ncb, bool *newer)
{
    cols_t m;
    eg_status_t st = EG_OK;

    cols_init(&m, 2);
    for (size_t i = 0; i < ncb; i++) {
        cb_t *c = &cbs[i];
        const Eg__Callback *w = c->win->callback;
        newer[i] = !c->erased &&
                   (!c->exists || c->version < 0 || (unsigned long long)c->version < w->version);
        c->target_ms = newer[i] ? w->desired_time_ms : c->desired_ms;
        if (newer[i] && c->exists && c->desired_ms != w->desired_time_ms) {
            eg_pg_array_add(&m.col[0], w->id);
            eg_pg_array_add_i64(&m.col[1], w->desired_time_ms);
        }
    }
    for (size_t i = 0; eg_pg_array_count(&m.col[0]) > 0 && st == EG_OK && i < 3; i++) {
        st = cols_exec(pg, SQL_MOVE[i][0], SQL_MOVE[i][1], &m);
    }
    cols_free(&m);
    return st;
}

static eg_status_t upsert_callbacks(eg_pg_t *pg, const cb_t *cbs, size_t ncb, const bool *newer)
{
    cols_t u;
    eg_status_t st = EG_OK;
    char attempts[16];

    cols_init(&u, U_COLS);
    for (size_t i = 0; i < ncb; i++) {
        if (!newer[i]) {
            continue;
        }
        const Eg__Callback *cb = cbs[i].win->callback;
        const char *reason = eg_reason_name(cb->reason);
        snprintf(attempts, sizeof attempts, "%" PRIu32, cb->attempts);
        eg_pg_array_add(&u.col[U_ID], cb->id);
        eg_pg_array_add(&u.col[U_TENANT], cb->tenant_id);
        eg_pg_array_add(&u.col[U_SERVICE], cb->service);
        eg_pg_array_add(&u.col[U_PHONE], cb->phone);
        eg_pg_array_add_i64(&u.col[U_DESIRED], cb->desired_time_ms);
        eg_pg_array_add(&u.col[U_STATE], eg_state_name(cb->state));
        eg_pg_array_add(&u.col[U_REASON], reason[0] != '\0' ? reason : NULL);
        eg_pg_array_add(&u.col[U_ATTEMPTS], attempts);
        add_u64(&u.col[U_VERSION], cb->version);
        eg_pg_array_add_i64(&u.col[U_CREATED], cb->created_ms);
        eg_pg_array_add_i64(&u.col[U_UPDATED], cb->updated_ms);
    }
    if (eg_pg_array_count(&u.col[U_ID]) > 0) {
        st = cols_exec(pg, "archive_upsert", SQL_UPSERT, &u);
    }
    cols_free(&u);
    return st;
}

/* A correlation id kept as a uuid: a UUID in canonical (lower-case) form, so that it reads back
 * exactly as it was sent. */
static bool corr_is_uuid(const char *corr)
{
    if (!eg_uuid_valid(corr)) {
        return false;
    }
    for (const char *p = corr; *p != '\0'; p++) {
        if (*p >= 'A' && *p <= 'F') {
            return false;
        }
    }
    return true;
}

/* The user data and event rows of every event that is not dropped, under its callback's
 * target time. */
static eg_status_t insert_rows(eg_pg_t *pg, const Eg__Event *const *events, size_t n,
                               const cb_t *cbs, const size_t *of)
{
    cols_t d, e;
    eg_status_t st = EG_OK;
    char attempt[16];

    cols_init(&d, D_COLS);
    cols_init(&e, E_COLS);
    for (size_t i = 0; i < n; i++) {
        const cb_t *c = &cbs[of[i]];
        const Eg__Event *ev = events[i];
        const Eg__Callback *cb = ev->callback;
        if (c->erased) {
            continue;
        }
        if (cb->user_data_json != NULL && cb->user_data_json[0] != '\0') {
            eg_pg_array_add(&d.col[D_ID], cb->id);
            eg_pg_array_add_i64(&d.col[D_DESIRED], c->target_ms);
            eg_pg_array_add(&d.col[D_DATA], cb->user_data_json);
        }
        const char *reason = eg_reason_name(cb->reason);
        const char *corr = ev->corr_id != NULL && ev->corr_id[0] != '\0' ? ev->corr_id : NULL;
        bool corr_uuid = corr != NULL && corr_is_uuid(corr);
        snprintf(attempt, sizeof attempt, "%" PRIu32, cb->attempts);
        eg_pg_array_add(&e.col[E_ID], ev->event_id);
        eg_pg_array_add(&e.col[E_CALLBACK], cb->id);
        eg_pg_array_add_i64(&e.col[E_DESIRED], c->target_ms);
        eg_pg_array_add(&e.col[E_STATE], eg_state_name(cb->state));
        eg_pg_array_add(&e.col[E_REASON], reason[0] != '\0' ? reason : NULL);
        eg_pg_array_add_i64(&e.col[E_AT], ev->at_ms);
        eg_pg_array_add(&e.col[E_ATTEMPT], attempt);
        eg_pg_array_add(&e.col[E_FROM], ev->from_state != EG__STATE__STATE_UNSPECIFIED
                                            ? eg_state_name(ev->from_state)
                                            : NULL);
        eg_pg_array_add(&e.col[E_CORR], corr_uuid ? corr : NULL);
        eg_pg_array_add(&e.col[E_CORR_TEXT], corr_uuid ? NULL : corr);
    }
    if (eg_pg_array_count(&d.col[D_ID]) > 0) {
        st = cols_exec(pg, "archive_data", SQL_DATA, &d);
    }
    if (st == EG_OK && eg_pg_array_count(&e.col[E_ID]) > 0) {
        st = cols_exec(pg, "archive_events", SQL_EVENTS, &e);
    }
    cols_free(&d);
    cols_free(&e);
    return st;
}

bool archive_event_check(const Eg__Event *ev, char *why, size_t whylen)
{
    const Eg__Callback *cb = ev->callback;

    if (!eg_uuid_valid(ev->event_id)) {
        snprintf(why, whylen, "the event id is not a UUID");
        return false;
    }
    if (cb == NULL) {
        snprintf(why, whylen, "the event carries no callback");
        return false;
    }
    if (!eg_uuid_valid(cb->id)) {
        snprintf(why, whylen, "the callback id is not a UUID");
        return false;
    }
    if (!eg_uuid_valid(cb->tenant_id)) {
        snprintf(why, whylen, "the tenant id is not a UUID");
        return false;
    }
    return true;
}

/* The database refused the data itself: data exceptions (class 22) and integrity constraint
 * violations (class 23). eg_pg_error starts with the SQLSTATE of a server error. Not a
 * partition constraint (23514 "violates partition constraint"): a row routed to a DEFAULT
 * partition while the maintenance thread attached that day's partition fails so once, and goes
 * into the new partition when retried; the history tables have no other CHECK constraint. */
static bool data_error(const eg_pg_t *pg)
{
    const char *e = eg_pg_error(pg);

    if (strncmp(e, "23514", 5) == 0 && strstr(e, "partition constraint") != NULL) {
        return false;
    }
    return strncmp(e, "22", 2) == 0 || strncmp(e, "23", 2) == 0;
}

eg_status_t archive_write_batch(eg_pg_t *pg, const Eg__Event *const *events, size_t n,
                                bool *permanent)
{
    eg_status_t st = EG_OK;
    cb_t *cbs = NULL;
    size_t *of = NULL, ncb = 0;
    bool *newer = NULL;

    if (permanent != NULL) {
        *permanent = false;
    }
    if (n == 0) {
        goto out;
    }
    of = eg_xcalloc(n, sizeof *of);
    ncb = group(events, n, &cbs, of);
    newer = eg_xcalloc(ncb, sizeof *newer);
    st = eg_pg_begin(pg);
    if (st == EG_OK) {
        st = eg_pg_exec(pg, SQL_GENERIC, 0, NULL, NULL);
    }
    if (st == EG_OK) {
        st = lock_and_read(pg, cbs, ncb);
    }
    if (st == EG_OK) {
        st = plan_and_move(pg, cbs, ncb, newer);
    }
    if (st == EG_OK) {
        st = upsert_callbacks(pg, cbs, ncb, newer);
    }
    if (st == EG_OK) {
        st = insert_rows(pg, events, n, cbs, of);
    }
    if (st == EG_OK) {
        st = eg_pg_commit(pg);
    }
    for (size_t i = 0; st == EG_OK && i < n; i++) {
        if (cbs[of[i]].erased) {
            eg_log_set_corr(events[i]->corr_id);
            eg_log_info("event %s of callback %s dropped: the callback was erased (GDPR)",
                        events[i]->event_id, events[i]->callback->id);
            eg_log_set_corr(NULL);
        }
    }
out:
    if (st != EG_OK) {
        if (permanent != NULL) {
            /* A literal too big for one event will be too big every time; otherwise only what
             * the database refused. */
            *permanent =
                st == EG_ETOOBIG || ((st == EG_EIO || st == EG_ECONFLICT) && data_error(pg));
        }
        /* After a failed COMMIT this sends a harmless ROLLBACK outside a transaction; after a
         * lost connection it sends nothing. */
        eg_pg_rollback(pg);
    }
    free(cbs);
    free(of);
    free(newer);
    return st;
}

/* Log what became of one event that did not go in. */
static void log_outcome(const eg_pg_t *pg, const Eg__Event *ev, archive_outcome_t outcome,
                        eg_status_t st)
{
    eg_log_set_corr(ev->corr_id);
    if (outcome == ARCHIVE_REJECT) {
        eg_log_error("dropping event %s of callback %s (tenant %s): the database refuses it: %s",
                     ev->event_id, ev->callback->id, ev->callback->tenant_id,
                     st == EG_ETOOBIG ? "too big" : eg_pg_error(pg));
    } else {
        eg_log_warn("event %s of callback %s (tenant %s) not written (%s: %s); it will be "
                    "redelivered",
                    ev->event_id, ev->callback->id, ev->callback->tenant_id, eg_status_str(st),
                    eg_pg_error(pg));
    }
    eg_log_set_corr(NULL);
}

eg_status_t archive_write(eg_pg_t *pg, const Eg__Event *const *events, size_t n,
                          archive_outcome_t *outcomes)
{
    bool permanent = false;
    eg_status_t st = archive_write_batch(pg, events, n, &permanent);

    if (st == EG_OK) {
        for (size_t i = 0; i < n; i++) {
            outcomes[i] = ARCHIVE_DONE;
        }
        return st;
    }
    if (n == 1) {
        outcomes[0] = permanent ? ARCHIVE_REJECT : ARCHIVE_RETRY;
        log_outcome(pg, events[0], outcomes[0], st);
        return st;
    }
    if (st == EG_EUNAVAIL) {
        eg_log_warn("postgres unavailable: a batch of %zu events will be redelivered (%s)", n,
                    eg_pg_error(pg));
        for (size_t i = 0; i < n; i++) {
            outcomes[i] = ARCHIVE_RETRY;
        }
        return st;
    }

    /* Find the event(s) the database refuses: each alone, in its own transaction. */
    eg_log_warn("a batch of %zu events failed (%s: %s); writing them one by one", n,
                eg_status_str(st), st == EG_ETOOBIG ? "too big" : eg_pg_error(pg));
    for (size_t i = 0; i < n; i++) {
        eg_status_t one = archive_write_batch(pg, &events[i], 1, &permanent);

        if (one == EG_OK) {
            outcomes[i] = ARCHIVE_DONE;
            continue;
        }
        if (one == EG_EUNAVAIL) {
            eg_log_warn("postgres unavailable: %zu events will be redelivered (%s)", n - i,
                        eg_pg_error(pg));
            for (size_t j = i; j < n; j++) {
                outcomes[j] = ARCHIVE_RETRY;
            }
            break;
        }
        outcomes[i] = permanent ? ARCHIVE_REJECT : ARCHIVE_RETRY;
        log_outcome(pg, events[i], outcomes[i], one);
    }
    return st;
}
