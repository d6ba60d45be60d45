/* Reading and erasing the PostgreSQL history.
 *
 * Search pages a tenant's callbacks newest first (created_at, then id: the index of migration
 * 5, read backwards). Every filter is a parameter that may be NULL ("$2::text IS NULL OR
 * service = $2"): libpq's unnamed statements are planned with their actual values, so the NULL
 * branches fold away and a desired-time range prunes partitions. Two ways to page: offset (the
 * admin search) and a cursor (created time and id of the last row seen; the export), which
 * stays correct and cheap however deep it goes.
 *
 * Erase is the PostgreSQL half of a GDPR erase (gdpr.c runs the whole). In one transaction it
 * settles the set of callbacks (the ids the caller gives, plus every callback of the number in
 * callbacks), locks them as the archiver's batches do (archive.c: class "EGAR", hashtext of the
 * canonical id, in hash order), writes a tombstone per id, deletes their rows from the three
 * tables and, when asked, the audit row. Holding the batches' locks makes the tombstones and the
 * deletes atomic with respect to any batch: a batch that got its locks first commits before the
 * erase deletes, and a batch after it sees the tombstones.
 *
 * Timestamps travel as epoch milliseconds in text, as in archive.c. */
#include "history.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage/buf.h"
#include "engage/ids.h"
#include "engage/log.h"
#include "engage/mem.h"
#include "engage/states.h"

#define MS(col) "(extract(epoch FROM " col ") * 1000)::bigint"
#define TS(n) "to_timestamp($" #n "::bigint::double precision / 1000)"
#define IDS_MAX_TEXT (1024 * 1024)

/* The columns every row query selects, in history_row_callback's order. */
#define ROW_COLUMNS                                                                                \
    "c.id::text, c.tenant_id::text, c.service, c.phone, " MS(                                      \
        "c.desired_time") ", c.state, "                                                            \
                          "coalesce(c.reason, ''), c.attempts, c.version, " MS(                    \
                              "c.created_at") ", " MS("c.updated_at")

static const char SQL_SEARCH_WHERE[] =
    " FROM callbacks c WHERE c.tenant_id = $1::uuid"
    " AND ($2::text IS NULL OR c.service = $2)"
    " AND ($3::text IS NULL OR c.state = $3)"
    " AND ($4::text IS NULL OR c.phone = $4)"
    " AND ($5::bigint IS NULL OR c.desired_time >= " TS(
        5) ")"
           " AND ($6::bigint IS NULL OR c.desired_time < " TS(
               6) ")"
                  " AND ($7::bigint IS NULL OR c.created_at >= " TS(
                      7) ")"
                         " AND ($8::bigint IS NULL OR c.created_at < " TS(
                             8) ")"
                                " AND ($9::bigint IS NULL OR (c.created_at, c.id) < (" TS(
                                    9) ", $10::uuid))";

static int reason_from_name(const char *name)
{
    for (int i = 1; name != NULL && *name && *eg_reason_name(i); i++)
        if (strcmp(eg_reason_name(i), name) == 0)
            return i;
    return 0;
}

static int64_t value_i64(const eg_pg_res_t *res, int row, int col)
{
    const char *v = eg_pg_value(res, row, col);
    return v != NULL ? strtoll(v, NULL, 10) : 0;
}

static char *value_dup(const eg_pg_res_t *res, int row, int col)
{
    const char *v = eg_pg_value(res, row, col);
    return eg_xstrdup(v != NULL ? v : "");
}

Eg__Callback *history_row_callback(const eg_pg_res_t *res, int row)
{
    Eg__Callback *cb = eg_xmalloc(sizeof *cb);
    eg__callback__init(cb);
    cb->id = value_dup(res, row, 0);
    cb->tenant_id = value_dup(res, row, 1);
    cb->service = value_dup(res, row, 2);
    cb->phone = value_dup(res, row, 3);
    cb->desired_time_ms = value_i64(res, row, 4);
    int state = eg_state_from_name(eg_pg_value(res, row, 5));
    cb->state = state > 0 ? (Eg__State)state : EG__STATE__STATE_UNSPECIFIED;
    cb->reason = (Eg__Reason)reason_from_name(eg_pg_value(res, row, 6));
    cb->attempts = (uint32_t)value_i64(res, row, 7);
    cb->version = (uint64_t)value_i64(res, row, 8);
    cb->created_ms = value_i64(res, row, 9);
    cb->updated_ms = value_i64(res, row, 10);
    return cb;
}

/* A time bound as a parameter: NULL for 0 (unbounded). */
static const char *bound(char *buf, size_t len, int64_t ms)
{
    if (ms == 0)
        return NULL;
    snprintf(buf, len, "%" PRId64, ms);
    return buf;
}

eg_status_t history_search(eg_pg_t *pg, const Eg__ArchiveSearchRequest *req,
                           Eg__ArchiveSearchReply **out, char *why, size_t whylen)
{
    char b5[24], b6[24], b7[24], b8[24], b9[24], lim[16], off[16];
    eg_pg_res_t *res = NULL;
    eg_buf_t sql;
    eg_status_t st = EG_OK;
    *out = NULL;

    if (!eg_uuid_valid(req->tenant_id)) {
        snprintf(why, whylen, "tenant_id: not a UUID");
        return EG_EINVAL;
    }
    if (req->state < 0 || (req->state > 0 && eg_state_from_name(eg_state_name(req->state)) < 1)) {
        snprintf(why, whylen, "state: unknown state %d", req->state);
        return EG_EINVAL;
    }
    if (req->limit < 0 || req->limit > HISTORY_SEARCH_MAX || req->offset < 0) {
        snprintf(why, whylen, "limit: 1 to %d; offset: 0 or more", HISTORY_SEARCH_MAX);
        return EG_EINVAL;
    }
    bool cursor = req->before_id[0] != '\0';
    if (cursor && !eg_uuid_valid(req->before_id)) {
        snprintf(why, whylen, "before_id: not a UUID");
        return EG_EINVAL;
    }
    snprintf(lim, sizeof lim, "%d", req->limit > 0 ? req->limit : HISTORY_SEARCH_DEFAULT);
    snprintf(off, sizeof off, "%d", cursor ? 0 : req->offset);
    snprintf(b9, sizeof b9, "%" PRId64, req->before_created_ms);
    const char *p[12] = {req->tenant_id,
                         req->service[0] ? req->service : NULL,
                         req->state > 0 ? eg_state_name(req->state) : NULL,
                         req->phone[0] ? req->phone : NULL,
                         bound(b5, sizeof b5, req->desired_from_ms),
                         bound(b6, sizeof b6, req->desired_to_ms),
                         bound(b7, sizeof b7, req->created_from_ms),
                         bound(b8, sizeof b8, req->created_to_ms),
                         cursor ? b9 : NULL,
                         cursor ? req->before_id : NULL,
                         lim,
                         off};

    Eg__ArchiveSearchReply *r = eg_xmalloc(sizeof *r);
    eg__archive_search_reply__init(r);
    eg_buf_init(&sql, 8192);
    eg_buf_puts(&sql, "SELECT " ROW_COLUMNS);
    eg_buf_puts(&sql, SQL_SEARCH_WHERE);
    eg_buf_puts(&sql, " ORDER BY c.created_at DESC, c.id DESC LIMIT $11::int OFFSET $12::int");
    /* The page and the total from one snapshot: a row committed between the two statements
     * would otherwise be counted but not listed. */
    if (req->with_total)
        st = eg_pg_exec(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, NULL);
    if (st == EG_OK)
        st = eg_pg_exec(pg, sql.data, 12, p, &res);
    if (st == EG_OK && eg_pg_rows(res) > 0) {
        r->n_callbacks = (size_t)eg_pg_rows(res);
        r->callbacks = eg_xcalloc(r->n_callbacks, sizeof *r->callbacks);
        for (int i = 0; i < eg_pg_rows(res); i++)
            r->callbacks[i] = history_row_callback(res, i);
    }
    eg_pg_res_free(res);
    res = NULL;
    if (st == EG_OK && req->with_total) {
        eg_buf_reset(&sql);
        eg_buf_puts(&sql, "SELECT count(*)");
        eg_buf_puts(&sql, SQL_SEARCH_WHERE);
        st = eg_pg_exec(pg, sql.data, 10, p, &res);
        if (st == EG_OK && eg_pg_rows(res) == 1)
            r->total = value_i64(res, 0, 0);
        eg_pg_res_free(res);
    }
    if (req->with_total) {
        if (st == EG_OK)
            st = eg_pg_commit(pg);
        else
            eg_pg_rollback(pg);
    }
    eg_buf_free(&sql);
    if (st != EG_OK) {
        snprintf(why, whylen, "history store unavailable");
        eg_log_warn("history search failed: %s", eg_pg_error(pg));
        eg__archive_search_reply__free_unpacked(r, NULL);
        return st;
    }
    *out = r;
    return EG_OK;
}

/* ---- export ---- */

static const char SQL_EXPORT_ROWS[] = "SELECT " ROW_COLUMNS ", coalesce(d.user_data::text, '') "
                                      "FROM callbacks c LEFT JOIN callback_data d "
                                      "ON d.callback_id = c.id AND d.desired_time = c.desired_time "
                                      "WHERE c.tenant_id = $1::uuid AND c.phone = $2 "
                                      "ORDER BY c.created_at DESC, c.id DESC LIMIT $3::int";

/* An event's detail as it was always shown: {"from": ..., "corrId": ...}. Since migration 5 both
 * have columns of their own, and detail holds only a correlation id that is not a UUID (and the
 * whole detail of rows written before). */
static const char SQL_EXPORT_EVENTS[] =
    "SELECT callback_id::text, event_id::text, state, coalesce(reason, ''), " MS(
        "at") ", coalesce(attempt, 0), "
              "coalesce(nullif(coalesce(detail, '{}') || jsonb_strip_nulls(jsonb_build_object("
              "'from', from_state, 'corrId', corr_id)), '{}')::text, '') "
              "FROM callback_events WHERE callback_id = ANY($1::uuid[]) "
              "ORDER BY callback_id, at, event_id";

/* "{id,id,...}" of the records' ids (UUIDs need no quoting). */
static eg_status_t ids_array(eg_buf_t *b, const char *const *ids, size_t n)
{
    eg_status_t st = eg_buf_puts(b, "{");
    for (size_t i = 0; i < n && st == EG_OK; i++) {
        if (i > 0)
            st = eg_buf_puts(b, ",");
        if (st == EG_OK)
            st = eg_buf_puts(b, ids[i]);
    }
    if (st == EG_OK)
        st = eg_buf_puts(b, "}");
    return st;
}

static Eg__HistoryEvent *row_event(const eg_pg_res_t *res, int row)
{
    Eg__HistoryEvent *e = eg_xmalloc(sizeof *e);
    eg__history_event__init(e);
    e->event_id = value_dup(res, row, 1);
    e->state = value_dup(res, row, 2);
    e->reason = value_dup(res, row, 3);
    e->at_ms = value_i64(res, row, 4);
    e->attempt = (uint32_t)value_i64(res, row, 5);
    e->detail_json = value_dup(res, row, 6);
    return e;
}

eg_status_t history_export(eg_pg_t *pg, const char *tenant, const char *phone,
                           Eg__HistoryRecord ***records, size_t *n)
{
    char lim[16];
    eg_pg_res_t *res = NULL;
    eg_buf_t arr;
    *records = NULL;
    *n = 0;
    snprintf(lim, sizeof lim, "%d", HISTORY_PHONE_MAX);
    const char *p[3] = {tenant, phone, lim};
    eg_status_t st = eg_pg_exec(pg, SQL_EXPORT_ROWS, 3, p, &res);
    if (st != EG_OK || eg_pg_rows(res) == 0) {
        eg_pg_res_free(res);
        return st;
    }
    size_t count = (size_t)eg_pg_rows(res);
    Eg__HistoryRecord **recs = eg_xcalloc(count, sizeof *recs);
    const char **ids = eg_xcalloc(count, sizeof *ids);
    for (size_t i = 0; i < count; i++) {
        recs[i] = eg_xmalloc(sizeof *recs[i]);
        eg__history_record__init(recs[i]);
        recs[i]->callback = history_row_callback(res, (int)i);
        recs[i]->callback->user_data_json = value_dup(res, (int)i, 11);
        ids[i] = recs[i]->callback->id;
    }
    eg_pg_res_free(res);
    res = NULL;

    eg_buf_init(&arr, IDS_MAX_TEXT);
    st = ids_array(&arr, ids, count);
    if (st == EG_OK) {
        const char *pe[1] = {arr.data};
        st = eg_pg_exec(pg, SQL_EXPORT_EVENTS, 1, pe, &res);
    }
    /* Rows come grouped by callback; attach each group to its record. */
    for (int row = 0; st == EG_OK && row < eg_pg_rows(res); row++) {
        const char *cid = eg_pg_value(res, row, 0);
        for (size_t i = 0; cid != NULL && i < count; i++) {
            if (strcmp(recs[i]->callback->id, cid) != 0)
                continue;
            Eg__HistoryRecord *rec = recs[i];
            rec->events = eg_xrealloc(rec->events, (rec->n_events + 1) * sizeof *rec->events);
            rec->events[rec->n_events++] = row_event(res, row);
            break;
        }
    }
    eg_pg_res_free(res);
    eg_buf_free(&arr);
    free(ids);
    if (st != EG_OK) {
        for (size_t i = 0; i < count; i++)
            eg__history_record__free_unpacked(recs[i], NULL);
        free(recs);
        return st;
    }
    *records = recs;
    *n = count;
    return EG_OK;
}

/* ---- erase ---- */

/* The set to erase: the given ids and every callback of the number; never an id whose row
 * belongs to another tenant (the given ids come from the tenant's own index, so that would be a
 * bug, but a bug must not cross tenants). */
static const char SQL_ERASE_SET[] =
    "SELECT x::text FROM (SELECT unnest($1::uuid[]) AS x "
    "UNION SELECT id FROM callbacks WHERE tenant_id = $2::uuid AND phone = $3) AS s "
    "WHERE NOT EXISTS (SELECT 1 FROM callbacks o WHERE o.id = s.x AND o.tenant_id <> $2::uuid) "
    "ORDER BY 1";

static const char SQL_ERASE_LOCK[] =
    "SELECT pg_advisory_xact_lock(1162297682, h) "
    "FROM (SELECT DISTINCT hashtext(x::text) AS h FROM unnest($1::uuid[]) AS x ORDER BY h) AS s";

static const char SQL_ERASE_TOMBSTONE[] =
    "INSERT INTO gdpr_erased (callback_id, tenant_id) "
    "SELECT x, $2::uuid FROM unnest($1::uuid[]) AS x ON CONFLICT DO NOTHING";

static const char *const SQL_ERASE_DELETE[] = {
    "DELETE FROM callbacks WHERE id = ANY($1::uuid[])",
    "DELETE FROM callback_data WHERE callback_id = ANY($1::uuid[])",
    "DELETE FROM callback_events WHERE callback_id = ANY($1::uuid[])",
};

static const char SQL_AUDIT[] = "INSERT INTO audit_log (tenant_id, actor, action, detail) "
                                "VALUES ($1::uuid, $2, $3, $4::jsonb)";

void history_ids_free(history_erased_t *e)
{
    for (size_t i = 0; i < e->n_ids; i++)
        free(e->ids[i]);
    free(e->ids);
    e->ids = NULL;
    e->n_ids = 0;
}

eg_status_t history_erase(eg_pg_t *pg, const char *tenant, const char *phone,
                          const char *const *ids, size_t n, const char *actor,
                          const char *audit_json, history_erased_t *out)
{
    eg_buf_t given, set;
    eg_pg_res_t *res = NULL;
    long *counts[3] = {&out->rows_callbacks, &out->rows_data, &out->rows_events};
    memset(out, 0, sizeof *out);
    eg_buf_init(&given, IDS_MAX_TEXT);
    eg_buf_init(&set, IDS_MAX_TEXT);

    eg_status_t st = ids_array(&given, ids, n);
    if (st == EG_OK)
        st = eg_pg_begin(pg);
    if (st != EG_OK)
        goto out;
    const char *ps[3] = {given.data, tenant, phone};
    st = eg_pg_exec(pg, SQL_ERASE_SET, 3, ps, &res);
    if (st == EG_OK && eg_pg_rows(res) > 0) {
        out->n_ids = (size_t)eg_pg_rows(res);
        out->ids = eg_xcalloc(out->n_ids, sizeof *out->ids);
        for (size_t i = 0; i < out->n_ids; i++)
            out->ids[i] = value_dup(res, (int)i, 0);
    }
    eg_pg_res_free(res);
    res = NULL;
    if (st == EG_OK)
        st = ids_array(&set, (const char *const *)out->ids, out->n_ids);
    const char *p1[2] = {set.data, tenant};
    if (st == EG_OK && out->n_ids > 0)
        st = eg_pg_exec(pg, SQL_ERASE_LOCK, 1, p1, NULL);
    if (st == EG_OK && out->n_ids > 0)
        st = eg_pg_exec(pg, SQL_ERASE_TOMBSTONE, 2, p1, NULL);
    for (size_t i = 0; st == EG_OK && out->n_ids > 0 && i < 3; i++) {
        st = eg_pg_exec(pg, SQL_ERASE_DELETE[i], 1, p1, &res);
        *counts[i] = eg_pg_affected(res);
        eg_pg_res_free(res);
        res = NULL;
    }
    if (st == EG_OK && audit_json != NULL) {
        const char *pa[4] = {tenant, actor, "gdpr.erase", audit_json};
        st = eg_pg_exec(pg, SQL_AUDIT, 4, pa, NULL);
    }
    if (st == EG_OK)
        st = eg_pg_commit(pg);
out:
    if (st != EG_OK) {
        eg_log_warn("GDPR erase in PostgreSQL failed: %s", eg_pg_error(pg));
        eg_pg_rollback(pg);
        history_ids_free(out);
    }
    eg_buf_free(&given);
    eg_buf_free(&set);
    return st;
}

eg_status_t history_audit(eg_pg_t *pg, const char *tenant, const char *actor, const char *action,
                          const char *detail_json)
{
    const char *p[4] = {tenant, actor, action, detail_json};
    return eg_pg_exec(pg, SQL_AUDIT, 4, p, NULL);
}
