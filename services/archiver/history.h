/* Reading and erasing the PostgreSQL history: the queries behind search, list and export, and
 * the PostgreSQL half of a GDPR erase (see history.c). */
#ifndef ARCHIVER_HISTORY_H
#define ARCHIVER_HISTORY_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engage.pb-c.h"
#include "engage/pg.h"
#include "engage/status.h"

/** The most rows one search answers (a NATS message stays well under its 1 MiB limit). */
#define HISTORY_SEARCH_MAX 5000
#define HISTORY_SEARCH_DEFAULT 100
/** The most callbacks one number's export or erase handles in one request. */
#define HISTORY_PHONE_MAX 10000

/** Search a tenant's callbacks (req borrowed). On EG_OK *out holds the callbacks, newest first
 *  (free with eg__archive_search_reply__free_unpacked(*out, NULL)); its status is not set. On
 *  EG_EINVAL why says which field is wrong. */
eg_status_t history_search(eg_pg_t *pg, const Eg__ArchiveSearchRequest *req,
                           Eg__ArchiveSearchReply **out, char *why, size_t whylen);

/** The archived callbacks of a tenant's number with their events and user data, newest first.
 *  On EG_OK *records[0..*n) are the caller's (free each with eg__history_record__free_unpacked
 *  and the array with free()). */
eg_status_t history_export(eg_pg_t *pg, const char *tenant, const char *phone,
                           Eg__HistoryRecord ***records, size_t *n);

/** What one history_erase did. */
typedef struct {
    char **ids; /**< the callbacks erased (malloc'd; free with history_ids_free) */
    size_t n_ids;
    long rows_callbacks, rows_data, rows_events;
} history_erased_t;

/** Erase from PostgreSQL, in one transaction, the callbacks ids[0..n) (UUID text, borrowed) and
 *  every callback of (tenant, phone) in callbacks: tombstone them in gdpr_erased (so the
 *  archiver drops their late events) and delete their rows from callbacks, callback_data and
 *  callback_events. The ids are locked as the archiver's batches lock them. When audit_json is
 *  not NULL an audit_log row (action gdpr.erase, actor, audit_json as detail) is written in the
 *  same transaction. Idempotent. out (caller's) is filled. */
eg_status_t history_erase(eg_pg_t *pg, const char *tenant, const char *phone,
                          const char *const *ids, size_t n, const char *actor,
                          const char *audit_json, history_erased_t *out);

void history_ids_free(history_erased_t *e);

/** Write one audit_log row (tenant, actor, action, detail JSON text) on its own. */
eg_status_t history_audit(eg_pg_t *pg, const char *tenant, const char *actor, const char *action,
                          const char *detail_json);

/** A Callback built from a callbacks row's columns (the order of history.c's ROW_COLUMNS),
 *  allocated with malloc so that protobuf-c's free_unpacked frees it. */
Eg__Callback *history_row_callback(const eg_pg_res_t *res, int row);

#endif
