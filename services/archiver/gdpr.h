/* GDPR erase and export by phone number, for one tenant (see gdpr.c for the order of steps). */
#ifndef ARCHIVER_GDPR_H
#define ARCHIVER_GDPR_H
#include "engage.pb-c.h"
#include "engage/bus.h"
#include "engage/pg.h"

/** What the GDPR operations use besides the worker's PostgreSQL connection. Borrowed. */
typedef struct {
    eg_bus_t *bus;      /**< to reach the scheduler (thread-safe) */
    const char *pepper; /**< ENGAGE_KEY_PEPPER: keys the number's hash in the audit log */
} gdpr_ctx_t;

/** Erase every callback of req->phone for req->tenant_id: cancel the active ones and delete the
 *  Redis records (the scheduler), delete the PostgreSQL rows with tombstones, write the audit
 *  row. Returns the answer (free with eg__gdpr_erase_reply__free_unpacked), status set.
 *  corr_id borrowed (may be NULL). pg is the calling thread's. */
Eg__GdprEraseReply *gdpr_erase(const gdpr_ctx_t *ctx, eg_pg_t *pg, const Eg__GdprRequest *req,
                               const char *corr_id);

/** Every callback of the number: the scheduler's active records and the PostgreSQL history,
 *  with events and user data, newest first. An audit row records the export. Returns the answer
 *  (free with eg__gdpr_export_reply__free_unpacked), status set. */
Eg__GdprExportReply *gdpr_export(const gdpr_ctx_t *ctx, eg_pg_t *pg, const Eg__GdprRequest *req,
                                 const char *corr_id);

#endif
