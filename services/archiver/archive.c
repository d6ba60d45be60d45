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
 * Under those locks it reads the GDPR tombstones (gdpr_erased, migration 4) of the batch's
 * callbacks and drops their events: an erased callback's late events (the cancel the erase
 * itself caused, a redelivery, a replay of the stream) never bring its rows back. The erase
 * (history.c) takes the same locks, so the two never interleave.
 *
 * Statements: a batch reads the latest rows of all its callbacks at once (after the locks, so
 * nothing changes them meanwhile) and keeps that view up to date as it writes; an event then
 * costs the upsert (when newer), the user data (when it has any) and its event row.
 *
 * Timestamps travel as integer milliseconds in text parameters and become timestamptz through
 * to_timestamp(ms / 1000), which PostgreSQL rounds to whole microseconds, so a value read back
 * as epoch milliseconds compares exactly. */
#include "archive.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engage/buf.h"
#include "engage/ids.h"
#include "engage/log.h"
#include "engage/mem.h"
#include "engage/states.h"

/* First key of the two-key advisory locks: "EGAR", so they cannot meet other users' locks. */
#define LOCK_CLASS "1162297682"
/* An upper bound for the lock statement's array text (200 ids take about 7.5 KB). */
#define LOCK_ARRAY_MAX (1024 * 1024)

#define TS(n) "to_timestamp($" #n "::double precision / 1000)"

/* The ids are hashed in canonical form (lower case), as the GDPR erase locks them
 * (history.c), so both meet on the same locks whatever case an event spells its id in. */
static const char SQL_LOCK[] =
    "SELECT pg_advisory_xact_lock(" LOCK_CLASS ", h) "
    "FROM (SELECT DISTINCT hashtext(x::uuid::text) AS h FROM unnest($1::text[]) AS x "
    "ORDER BY h) AS s";

/* Callbacks of the batch erased by a GDPR request: their events are dropped. */
static const char SQL_ERASED[] =
    "SELECT callback_id::text FROM gdpr_erased WHERE callback_id = ANY($1::uuid[])";

/* The latest row of each callback of the batch: read once per batch, after the locks. */
static const char SQL_CURRENT[] =
    "SELECT DISTINCT ON (id) id::text, version, (extract(epoch FROM desired_time) * 1000)::bigint "
    "FROM callbacks WHERE id = ANY($1::uuid[]) ORDER BY id, version DESC";

/* What the batch knows of one callback's row: read with SQL_CURRENT, then kept up to date as
 * the batch writes, so an event costs no read of its own. Events of one callback share one. */
typedef struct {
    bool exists;
    long long version;
    char desired[24]; /* epoch ms as text */
} current_t;

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

/* Lock every callback of the batch for the rest of the transaction, read the latest row of each
 * into cur (of[i] is event i's entry, shared by the events of one callback), and mark in
 * erased[] the events of callbacks a GDPR erase has tombstoned. Read after the locks, the
 * tombstones are those of every erase that committed before: an erase holds the same locks while it
 * writes them, so it either finished before this batch looks, or waits until the batch committed
 * and then deletes what the batch wrote. */
static eg_status_t lock_callbacks(eg_pg_t *pg, const Eg__Event *const *events, size_t n,
                                  bool *erased, current_t *cur, current_t **of)
{
    eg_buf_t arr;
    eg_pg_res_t *res = NULL;
    eg_status_t st = EG_OK;

    eg_buf_init(&arr, LOCK_ARRAY_MAX);
    /* Ids passed archive_event_check: UUIDs need no quoting inside an array literal. */
    st = eg_buf_puts(&arr, "{");
    for (size_t i = 0; i < n && st == EG_OK; i++) {
        erased[i] = false;
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
        if (st == EG_OK) {
            st = eg_pg_exec(pg, SQL_ERASED, 1, params, &res);
        }
    }
    for (int r = 0; st == EG_OK && r < eg_pg_rows(res); r++) {
        const char *id = eg_pg_value(res, r, 0);
        for (size_t i = 0; id != NULL && i < n; i++) {
            if (strcasecmp(events[i]->callback->id, id) == 0) {
                erased[i] = true;
            }
        }
    }
    eg_pg_res_free(res);
    res = NULL;

    /* Events of one callback share the entry of its first event. */
    for (size_t i = 0; i < n; i++) {
        of[i] = &cur[i];
        for (size_t j = 0; j < i; j++) {
            if (strcasecmp(events[i]->callback->id, events[j]->callback->id) == 0) {
                of[i] = of[j];
                break;
            }
        }
    }
    if (st == EG_OK) {
        const char *params[1] = {arr.data};
        st = eg_pg_exec(pg, SQL_CURRENT, 1, params, &res);
    }
    for (int r = 0; st == EG_OK && r < eg_pg_rows(res); r++) {
        const char *id = eg_pg_value(res, r, 0);
        const char *v = eg_pg_value(res, r, 1);
        const char *d = eg_pg_value(res, r, 2);
        for (size_t i = 0; id != NULL && i < n; i++) {
            if (of[i] == &cur[i] && strcasecmp(events[i]->callback->id, id) == 0) {
                cur[i].exists = true;
                cur[i].version = v != NULL ? strtoll(v, NULL, 10) : 0;
                snprintf(cur[i].desired, sizeof cur[i].desired, "%s", d != NULL ? d : "");
            }
        }
    }
    eg_pg_res_free(res);
    eg_buf_free(&arr);
    return st;
}

static eg_status_t write_event(eg_pg_t *pg, const Eg__Event *ev, current_t *cur)
{
    const Eg__Callback *cb = ev->callback;
    eg_status_t st = EG_OK;
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

    if (cur->exists) {
        snprintf(current, sizeof current, "%s", cur->desired);
        newer = cur->version < 0 || (unsigned long long)cur->version < cb->version;
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
        cur->exists = true;
        cur->version = (long long)cb->version;
        snprintf(cur->desired, sizeof cur->desired, "%s", desired);
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
    return st;
}

eg_status_t archive_write_batch(eg_pg_t *pg, const Eg__Event *const *events, size_t n,
                                bool *permanent)
{
    eg_status_t st = EG_OK;
    bool *erased = NULL;
    current_t *cur = NULL, **of = NULL;

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
    erased = eg_xcalloc(n, sizeof *erased);
    cur = eg_xcalloc(n, sizeof *cur);
    of = eg_xcalloc(n, sizeof *of);
    st = lock_callbacks(pg, events, n, erased, cur, of);
    for (size_t i = 0; i < n && st == EG_OK; i++) {
        if (erased[i]) {
            eg_log_set_corr(events[i]->corr_id);
            eg_log_info("event %s of callback %s dropped: the callback was erased (GDPR)",
                        events[i]->event_id, events[i]->callback->id);
            eg_log_set_corr(NULL);
            continue;
        }
        st = write_event(pg, events[i], of[i]);
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
    free(erased);
    free(cur);
    free(of);
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
