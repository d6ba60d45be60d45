/* The archiver's PostgreSQL writer: every lifecycle event becomes rows in the history tables
 * of migration 2, written so that a replay, a duplicate or a late event changes nothing wrong.
 *
 * The rules, per event (the callback record it carries is the state after the change):
 * - callbacks holds one row per callback, its latest version. An event whose version is newer
 *   than the row's (or that finds no row) upserts it; an older or equal version leaves it alone,
 *   so a late event never moves a callback's state backwards. The upsert repeats the check in
 *   its WHERE clause.
 * - All rows of one callback share one desired_time, the partition key, which is in every
 *   primary key: (id, desired_time), (callback_id, desired_time), (event_id, desired_time). So
 *   a newer event with another desired_time (a reschedule) first deletes the row under the old
 *   time and moves the callback's callback_data and callback_events rows to the new one.
 * - callback_data and callback_events rows are inserted under the desired_time the callback's
 *   row has after the step above: the event's own for a newer event, the row's for an older
 *   one. That is what makes a replay harmless: an old event replayed after a reschedule lands on
 *   its existing row (ON CONFLICT DO NOTHING) instead of creating a second one under the old
 *   time, and it never drags the callback back to its old desired_time.
 * - callback_data is written once (ON CONFLICT DO NOTHING), only when the event has user data.
 *
 * The outcome is the same whatever the order and however often events arrive, as long as a
 * callback's versions increase with its changes (the scheduler's compare-and-set guarantees
 * that).
 *
 * A batch is one transaction. It starts by taking a transaction-scoped advisory lock per
 * callback, in a fixed order (by hash), so two archivers that share the durable consumer never
 * interleave the read-then-write steps above for one callback, and never deadlock on each other.
 *
 * Timestamps travel as integer milliseconds in text parameters and become timestamptz through
 * to_timestamp(ms / 1000), which PostgreSQL rounds to whole microseconds, so a value read back
 * as epoch milliseconds compares exactly. */
#include "archive.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage/buf.h"
#include "engage/ids.h"
#include "engage/log.h"
#include "engage/states.h"

/* First key of the two-key advisory locks: "EGAR", so they cannot meet other users' locks. */
#define LOCK_CLASS "1162297682"
/* An upper bound for the lock statement's array text (200 ids take about 7.5 KB). */
#define LOCK_ARRAY_MAX (1024 * 1024)

#define TS(n) "to_timestamp($" #n "::double precision / 1000)"

static const char SQL_LOCK[] =
    "SELECT pg_advisory_xact_lock(" LOCK_CLASS ", h) "
    "FROM (SELECT DISTINCT hashtext(x) AS h FROM unnest($1::text[]) AS x ORDER BY h) AS s";

static const char SQL_CURRENT[] =
    "SELECT version, (extract(epoch FROM desired_time) * 1000)::bigint "
    "FROM callbacks WHERE id = $1 ORDER BY version DESC LIMIT 1";

/* A reschedule: the callback's rows leave their old desired_time. */
static const char *const SQL_MOVE[] = {
    "DELETE FROM callbacks WHERE id = $1 AND desired_time <> " TS(2),
    "UPDATE callback_data SET desired_time = " TS(
        2) " WHERE callback_id = $1 AND desired_time <> " TS(2),
    "UPDATE callback_events SET desired_time = " TS(
        2) " WHERE callback_id = $1 AND desired_time <> " TS(2),
};

static const char SQL_UPSERT[] =
    "INSERT INTO callbacks (id, tenant_id, service, phone, desired_time, state, reason, attempts, "
    "version, created_at, updated_at) "
    "VALUES ($1, $2, $3, $4, " TS(5) ", $6, $7, $8, $9, " TS(10) ", " TS(
        11) ") "
            "ON CONFLICT (id, desired_time) DO UPDATE SET tenant_id = EXCLUDED.tenant_id, "
            "service = EXCLUDED.service, phone = EXCLUDED.phone, state = EXCLUDED.state, "
            "reason = EXCLUDED.reason, attempts = EXCLUDED.attempts, version = EXCLUDED.version, "
            "created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at "
            "WHERE callbacks.version < EXCLUDED.version";

static const char SQL_DATA[] = "INSERT INTO callback_data (callback_id, desired_time, user_data) "
                               "VALUES ($1, " TS(2) ", $3::jsonb) ON CONFLICT DO NOTHING";

static const char SQL_EVENT[] =
    "INSERT INTO callback_events (event_id, callback_id, desired_time, state, reason, at, "
    "attempt, detail) "
    "VALUES ($1, $2, " TS(3) ", $4, $5, " TS(
        6) ", $7, "
           "NULLIF(jsonb_strip_nulls(jsonb_build_object('from', $8::text, 'corrId', $9::text)), "
           "'{}'::jsonb)) "
           "ON CONFLICT DO NOTHING";

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
 * violations (class 23). eg_pg_error starts with the SQLSTATE of a server error. */
static bool data_error(const eg_pg_t *pg)
{
    const char *e = eg_pg_error(pg);

    return strncmp(e, "22", 2) == 0 || strncmp(e, "23", 2) == 0;
}

/* Lock every callback of the batch for the rest of the transaction. */
static eg_status_t lock_callbacks(eg_pg_t *pg, const Eg__Event *const *events, size_t n)
{
    eg_buf_t arr;
    eg_status_t st = EG_OK;

    eg_buf_init(&arr, LOCK_ARRAY_MAX);
    /* Ids passed archive_event_check: UUIDs need no quoting inside an array literal. */
    st = eg_buf_puts(&arr, "{");
    for (size_t i = 0; i < n && st == EG_OK; i++) {
        if (i > 0) {
            st = eg_buf_puts(&arr, ",");
        }
        if (st == EG_OK) {
            st = eg_buf_puts(&arr, events[i]->callback->id);
        }
    }
    if (st == EG_OK) {
        st = eg_buf_puts(&arr, "}");
    }
    if (st == EG_OK) {
        const char *params[1] = {arr.data};
        st = eg_pg_exec(pg, SQL_LOCK, 1, params, NULL);
    }
    eg_buf_free(&arr);
    return st;
}

static eg_status_t write_event(eg_pg_t *pg, const Eg__Event *ev)
{
    const Eg__Callback *cb = ev->callback;
    eg_pg_res_t *res = NULL;
    eg_status_t st;
    char desired[24], created[24], updated[24], at[24], version[24], attempts[16];
    char current[24] = "";
    const char *target = desired;
    const char *reason = eg_reason_name(cb->reason);
    bool newer = true;

    snprintf(desired, sizeof desired, "%" PRId64, cb->desired_time_ms);
    snprintf(created, sizeof created, "%" PRId64, cb->created_ms);
    snprintf(updated, sizeof updated, "%" PRId64, cb->updated_ms);
    snprintf(at, sizeof at, "%" PRId64, ev->at_ms);
    snprintf(version, sizeof version, "%" PRIu64, cb->version);
    snprintf(attempts, sizeof attempts, "%" PRIu32, cb->attempts);

    const char *p_id[1] = {cb->id};
    st = eg_pg_exec(pg, SQL_CURRENT, 1, p_id, &res);
    if (st != EG_OK) {
        goto out;
    }
    if (eg_pg_rows(res) > 0) {
        const char *v = eg_pg_value(res, 0, 0);
        const char *d = eg_pg_value(res, 0, 1);
        long long row_version = v != NULL ? strtoll(v, NULL, 10) : 0;

        snprintf(current, sizeof current, "%s", d != NULL ? d : "");
        newer = row_version < 0 || (unsigned long long)row_version < cb->version;
        if (!newer) {
            target = current;
        }
    }

    if (newer && current[0] != '\0' && strcmp(current, desired) != 0) {
        const char *p_move[2] = {cb->id, desired};
        for (size_t i = 0; i < sizeof SQL_MOVE / sizeof SQL_MOVE[0] && st == EG_OK; i++) {
            st = eg_pg_exec(pg, SQL_MOVE[i], 2, p_move, NULL);
        }
        if (st != EG_OK) {
            goto out;
        }
    }

    if (newer) {
        const char *p_cb[11] = {cb->id,
                                cb->tenant_id,
                                cb->service,
                                cb->phone,
                                desired,
                                eg_state_name(cb->state),
                                reason[0] != '\0' ? reason : NULL,
                                attempts,
                                version,
                                created,
                                updated};
        st = eg_pg_exec(pg, SQL_UPSERT, 11, p_cb, NULL);
        if (st != EG_OK) {
            goto out;
        }
    }

    if (cb->user_data_json != NULL && cb->user_data_json[0] != '\0') {
        const char *p_data[3] = {cb->id, target, cb->user_data_json};
        st = eg_pg_exec(pg, SQL_DATA, 3, p_data, NULL);
        if (st != EG_OK) {
            goto out;
        }
    }

    const char *p_ev[9] = {
        ev->event_id,
        cb->id,
        target,
        eg_state_name(cb->state),
        reason[0] != '\0' ? reason : NULL,
        at,
        attempts,
        ev->from_state != EG__STATE__STATE_UNSPECIFIED ? eg_state_name(ev->from_state) : NULL,
        ev->corr_id != NULL && ev->corr_id[0] != '\0' ? ev->corr_id : NULL};
    st = eg_pg_exec(pg, SQL_EVENT, 9, p_ev, NULL);

out:
    eg_pg_res_free(res);
    return st;
}

eg_status_t archive_write_batch(eg_pg_t *pg, const Eg__Event *const *events, size_t n,
                                bool *permanent)
{
    eg_status_t st = EG_OK;

    if (permanent != NULL) {
        *permanent = false;
    }
    if (n == 0) {
        goto out;
    }
    st = eg_pg_begin(pg);
    if (st != EG_OK) {
        goto out;
    }
    st = lock_callbacks(pg, events, n);
    for (size_t i = 0; i < n && st == EG_OK; i++) {
        st = write_event(pg, events[i]);
    }
    if (st == EG_OK) {
        st = eg_pg_commit(pg);
    }
out:
    if (st != EG_OK) {
        if (permanent != NULL) {
            *permanent = st != EG_EUNAVAIL && data_error(pg);
        }
        /* After a failed COMMIT this sends a harmless ROLLBACK outside a transaction; after a
         * lost connection it sends nothing. */
        eg_pg_rollback(pg);
    }
    return st;
}

/* Log what became of one event that did not go in. */
static void log_outcome(const eg_pg_t *pg, const Eg__Event *ev, archive_outcome_t outcome,
                        eg_status_t st)
{
    eg_log_set_corr(ev->corr_id);
    if (outcome == ARCHIVE_REJECT) {
        eg_log_error("dropping event %s of callback %s (tenant %s): the database refuses it: %s",
                     ev->event_id, ev->callback->id, ev->callback->tenant_id, eg_pg_error(pg));
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
                eg_status_str(st), eg_pg_error(pg));
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
