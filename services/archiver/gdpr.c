/* GDPR erase and export by phone number, for one tenant.
 *
 * The scheduler owns the live records (Redis) and is the only one that may change a callback's
 * state; the archiver owns the history (PostgreSQL). An erase therefore runs here, in this
 * order, so that nothing comes back whatever fails or arrives late:
 *   1. ask the scheduler which callbacks of the number it holds (a dry run that changes
 *      nothing; it refuses while one of them is with an agent, PROCESSING, since that call
 *      cannot be cancelled: the erase is then retried after the call);
 *   2. in PostgreSQL, tombstone those ids and every archived callback of the number, and delete
 *      their rows (history.c);
 *   3. ask the scheduler to erase: it cancels each active callback (an ordinary cancel: the
 *      voice platform gets its `cancel` command), then deletes the records and every index key
 *      of the number from Redis;
 *   4. PostgreSQL again, for the ids of step 3 and whatever was archived meanwhile; then the
 *      audit row, which holds a keyed hash of the number (BLAKE2b with ENGAGE_KEY_PEPPER), never
 *      the number, and the counts.
 * The cancel events of step 3 reach the archiver after step 2 committed the tombstones, so its
 * batches drop them (archive.c); a batch that was already writing one when step 2 began holds the
 * callback's lock, so step 2 waits for it and then deletes what it wrote. A crash between steps
 * leaves tombstones for every callback the scheduler still holds, so a retried erase finishes
 * the job: every step is idempotent.
 *
 * An export reads the scheduler's records (paged engage.sched.find) and the archive's rows with
 * their events and user data, and merges them by id, the scheduler's record winning. */
#include "gdpr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage/ids.h"
#include "engage/json.h"
#include "engage/keys.h"
#include "engage/log.h"
#include "engage/mem.h"
#include "engage/subjects.h"
#include "history.h"

#define SCHED_ERASE_TIMEOUT_MS 20000
#define SCHED_FIND_TIMEOUT_MS 5000
#define FIND_PAGE 50
#define FIND_MAX 1000 /* the scheduler scans at most this many ids of a number */
#define PHONE_MAX 32

static Eg__Status *new_status(eg_status_t st, const char *msg)
{
    Eg__Status *s = eg_xmalloc(sizeof *s);
    eg__status__init(s);
    s->code = (int32_t)st;
    if (msg != NULL && *msg)
        s->message = eg_xstrdup(msg);
    return s;
}

static bool request_ok(const Eg__GdprRequest *req, char *why, size_t whylen)
{
    if (!eg_uuid_valid(req->tenant_id)) {
        snprintf(why, whylen, "tenant_id: not a UUID");
        return false;
    }
    size_t len = strlen(req->phone);
    if (len == 0 || len > PHONE_MAX) {
        snprintf(why, whylen, "phone: 1 to %d characters", PHONE_MAX);
        return false;
    }
    return true;
}

/* The scheduler's half of an erase (dry run or not). On EG_OK *out is the caller's; otherwise
 * why holds the scheduler's message or the transport failure. */
static eg_status_t sched_erase(const gdpr_ctx_t *ctx, const Eg__GdprRequest *req, bool dry_run,
                               const char *corr, Eg__GdprEraseReply **out, char *why, size_t whylen)
{
    Eg__GdprRequest r = *req;
    r.dry_run = dry_run;
    size_t n = eg__gdpr_request__get_packed_size(&r);
    uint8_t *buf = eg_xmalloc(n ? n : 1);
    void *raw = NULL;
    size_t raw_len = 0;
    *out = NULL;
    eg__gdpr_request__pack(&r, buf);
    eg_status_t st = eg_bus_request(ctx->bus, EG_SUBJ_GDPR_ERASE, buf, n, corr,
                                    SCHED_ERASE_TIMEOUT_MS, &raw, &raw_len);
    free(buf);
    if (st != EG_OK) {
        snprintf(why, whylen, "the scheduler did not answer; retry");
        return EG_EUNAVAIL;
    }
    Eg__GdprEraseReply *rep = eg__gdpr_erase_reply__unpack(NULL, raw_len, raw);
    free(raw);
    if (rep == NULL || rep->status == NULL) {
        eg__gdpr_erase_reply__free_unpacked(rep, NULL);
        snprintf(why, whylen, "the scheduler answered something unreadable");
        return EG_EPROTO;
    }
    st = (eg_status_t)rep->status->code;
    if (st != EG_OK) {
        snprintf(why, whylen, "%s", rep->status->message);
        eg__gdpr_erase_reply__free_unpacked(rep, NULL);
        return st;
    }
    for (size_t i = 0; i < rep->n_ids; i++) {
        if (!eg_uuid_valid(rep->ids[i])) {
            eg__gdpr_erase_reply__free_unpacked(rep, NULL);
            snprintf(why, whylen, "the scheduler answered an id that is not a UUID");
            return EG_EPROTO;
        }
    }
    *out = rep;
    return EG_OK;
}

/* The number's hash for the audit log: keyed with the pepper when there is one. */
static const char *phone_hash(const gdpr_ctx_t *ctx, const char *phone,
                              char out[EG_KEY_HASH_HEX_LEN + 1])
{
    if (ctx->pepper != NULL && *ctx->pepper && eg_key_hash_hex(ctx->pepper, phone, out) == EG_OK)
        return "blake2b-keyed";
    eg_hash_hex(phone, strlen(phone), out);
    return "blake2b";
}

/* How many distinct ids two erase steps touched. */
static size_t union_count(const history_erased_t *a, const history_erased_t *b)
{
    size_t n = a->n_ids;
    for (size_t i = 0; i < b->n_ids; i++) {
        bool seen = false;
        for (size_t j = 0; j < a->n_ids && !seen; j++)
            seen = strcmp(b->ids[i], a->ids[j]) == 0;
        n += !seen;
    }
    return n;
}

Eg__GdprEraseReply *gdpr_erase(const gdpr_ctx_t *ctx, eg_pg_t *pg, const Eg__GdprRequest *req,
                               const char *corr_id)
{
    Eg__GdprEraseReply *reply = eg_xmalloc(sizeof *reply);
    Eg__GdprEraseReply *dry = NULL, *done = NULL;
    history_erased_t first = {0}, second = {0};
    char why[256] = "", masked[24], hash[EG_KEY_HASH_HEX_LEN + 1];
    eg_status_t st = EG_EINVAL;
    eg__gdpr_erase_reply__init(reply);
    eg_log_mask_phone(req->phone, masked, sizeof masked);

    if (!request_ok(req, why, sizeof why))
        goto out;
    /* 1 */
    st = sched_erase(ctx, req, true, corr_id, &dry, why, sizeof why);
    if (st != EG_OK)
        goto out;
    /* 2 */
    st = history_erase(pg, req->tenant_id, req->phone, (const char *const *)dry->ids, dry->n_ids,
                       NULL, NULL, &first);
    if (st != EG_OK) {
        snprintf(why, sizeof why, "history store unavailable; retry");
        goto out;
    }
    /* 3 */
    st = sched_erase(ctx, req, false, corr_id, &done, why, sizeof why);
    if (st != EG_OK)
        goto out;
    /* 4 */
    st = history_erase(pg, req->tenant_id, req->phone, (const char *const *)done->ids, done->n_ids,
                       NULL, NULL, &second);
    if (st != EG_OK) {
        snprintf(why, sizeof why, "history store unavailable; retry");
        goto out;
    }
    reply->callbacks = (int32_t)union_count(&first, &second);
    reply->cancelled = done->cancelled;
    reply->redis_deleted = done->redis_deleted;
    reply->rows_callbacks = first.rows_callbacks + second.rows_callbacks;
    reply->rows_data = first.rows_data + second.rows_data;
    reply->rows_events = first.rows_events + second.rows_events;

    eg_json_t *detail = eg_json_object(), *rows = eg_json_object();
    const char *alg = phone_hash(ctx, req->phone, hash);
    eg_json_set_str(detail, "phoneHash", hash);
    eg_json_set_str(detail, "hashAlgorithm", alg);
    eg_json_set_int(detail, "callbacks", reply->callbacks);
    eg_json_set_int(detail, "cancelled", reply->cancelled);
    eg_json_set_int(detail, "redisDeleted", reply->redis_deleted);
    eg_json_set_int(rows, "callbacks", reply->rows_callbacks);
    eg_json_set_int(rows, "callbackData", reply->rows_data);
    eg_json_set_int(rows, "callbackEvents", reply->rows_events);
    eg_json_set(detail, "rows", rows);
    char *text = eg_json_dump(detail, NULL);
    eg_json_free(detail);
    st = history_audit(pg, req->tenant_id, req->actor[0] ? req->actor : NULL, "gdpr.erase", text);
    free(text);
    if (st != EG_OK) {
        /* Erased, but not recorded: answer a failure so the caller retries, which records it. */
        eg_log_error("GDPR erase of %s for tenant %s done but its audit row failed: %s", masked,
                     req->tenant_id, eg_pg_error(pg));
        snprintf(why, sizeof why, "erased, but the audit log could not be written; retry");
        goto out;
    }
    eg_log_info("GDPR erase of %s for tenant %s: %d callback(s), %d cancelled, %d Redis "
                "record(s), %ld/%ld/%ld PostgreSQL row(s)",
                masked, req->tenant_id, reply->callbacks, reply->cancelled, reply->redis_deleted,
                (long)reply->rows_callbacks, (long)reply->rows_data, (long)reply->rows_events);
out:
    if (st != EG_OK)
        eg_log_warn("GDPR erase of %s for tenant %s: %s (%s)", masked, req->tenant_id,
                    eg_status_str(st), why);
    reply->status = new_status(st, st == EG_OK ? NULL : why);
    eg__gdpr_erase_reply__free_unpacked(dry, NULL);
    eg__gdpr_erase_reply__free_unpacked(done, NULL);
    history_ids_free(&first);
    history_ids_free(&second);
    return reply;
}

/* ---- export ---- */

/* Every live record of the number, from the scheduler's find, page by page. On EG_OK
 * (*cbs)[0..*n) are the caller's (eg__callback__free_unpacked each, free the array). */
static eg_status_t sched_records(const gdpr_ctx_t *ctx, const Eg__GdprRequest *req,
                                 const char *corr, Eg__Callback ***cbs, size_t *n)
{
    eg_status_t st = EG_OK;
    *cbs = NULL;
    *n = 0;
    for (int offset = 0; offset < FIND_MAX;) {
        Eg__FindRequest fr = EG__FIND_REQUEST__INIT;
        fr.tenant_id = req->tenant_id;
        fr.phone = req->phone;
        fr.limit = FIND_PAGE;
        fr.offset = offset;
        size_t len = eg__find_request__get_packed_size(&fr);
        uint8_t *buf = eg_xmalloc(len ? len : 1);
        void *raw = NULL;
        size_t raw_len = 0;
        eg__find_request__pack(&fr, buf);
        st = eg_bus_request(ctx->bus, EG_SUBJ_FIND, buf, len, corr, SCHED_FIND_TIMEOUT_MS, &raw,
                            &raw_len);
        free(buf);
        if (st != EG_OK)
            return EG_EUNAVAIL;
        Eg__FindReply *r = eg__find_reply__unpack(NULL, raw_len, raw);
        free(raw);
        if (r == NULL || r->status == NULL || r->status->code != EG_OK) {
            eg__find_reply__free_unpacked(r, NULL);
            return EG_EUNAVAIL;
        }
        *cbs = eg_xrealloc(*cbs, (*n + r->n_callbacks + 1) * sizeof **cbs);
        for (size_t i = 0; i < r->n_callbacks; i++) {
            (*cbs)[(*n)++] = r->callbacks[i];
            r->callbacks[i] = NULL; /* moved: free_unpacked skips NULL entries */
        }
        size_t got = r->n_callbacks;
        int total = r->total;
        eg__find_reply__free_unpacked(r, NULL);
        offset += (int)got;
        if (got < FIND_PAGE || offset >= total)
            break;
    }
    return st;
}

/* Newest first: created time, then id (UUIDv7 ids grow with time). */
static int by_created_desc(const void *a, const void *b)
{
    const Eg__Callback *x = (*(Eg__HistoryRecord *const *)a)->callback;
    const Eg__Callback *y = (*(Eg__HistoryRecord *const *)b)->callback;
    if (x->created_ms != y->created_ms)
        return x->created_ms < y->created_ms ? 1 : -1;
    return -strcmp(x->id, y->id);
}

Eg__GdprExportReply *gdpr_export(const gdpr_ctx_t *ctx, eg_pg_t *pg, const Eg__GdprRequest *req,
                                 const char *corr_id)
{
    Eg__GdprExportReply *reply = eg_xmalloc(sizeof *reply);
    Eg__HistoryRecord **recs = NULL;
    Eg__Callback **live = NULL;
    size_t nrecs = 0, nlive = 0;
    char why[160] = "", masked[24], hash[EG_KEY_HASH_HEX_LEN + 1];
    eg_status_t st = EG_EINVAL;
    eg__gdpr_export_reply__init(reply);
    eg_log_mask_phone(req->phone, masked, sizeof masked);

    if (!request_ok(req, why, sizeof why))
        goto out;
    st = sched_records(ctx, req, corr_id, &live, &nlive);
    if (st != EG_OK) {
        snprintf(why, sizeof why, "the scheduler did not answer; retry");
        goto out;
    }
    st = history_export(pg, req->tenant_id, req->phone, &recs, &nrecs);
    if (st != EG_OK) {
        snprintf(why, sizeof why, "history store unavailable; retry");
        goto out;
    }
    /* Merge: the scheduler's record replaces the archive's row of the same id. */
    recs = eg_xrealloc(recs, (nrecs + nlive + 1) * sizeof *recs);
    for (size_t i = 0; i < nlive; i++) {
        Eg__HistoryRecord *rec = NULL;
        for (size_t j = 0; j < nrecs && rec == NULL; j++)
            if (strcmp(recs[j]->callback->id, live[i]->id) == 0)
                rec = recs[j];
        if (rec == NULL) {
            rec = eg_xmalloc(sizeof *rec);
            eg__history_record__init(rec);
            recs[nrecs++] = rec;
        } else {
            eg__callback__free_unpacked(rec->callback, NULL);
        }
        rec->callback = live[i];
        rec->active = true;
        live[i] = NULL;
    }
    qsort(recs, nrecs, sizeof *recs, by_created_desc);
    reply->records = recs;
    reply->n_records = nrecs;
    recs = NULL;

    char detail[256];
    const char *alg = phone_hash(ctx, req->phone, hash);
    snprintf(detail, sizeof detail,
             "{\"phoneHash\":\"%s\",\"hashAlgorithm\":\"%s\",\"callbacks\":%zu}", hash, alg,
             reply->n_records);
    if (history_audit(pg, req->tenant_id, req->actor[0] ? req->actor : NULL, "gdpr.export",
                      detail) != EG_OK) {
        st = EG_EUNAVAIL;
        snprintf(why, sizeof why, "the audit log could not be written; retry");
        goto out;
    }
    eg_log_info("GDPR export of %s for tenant %s: %zu callback(s)", masked, req->tenant_id,
                reply->n_records);
out:
    if (st != EG_OK) {
        eg_log_warn("GDPR export of %s for tenant %s: %s (%s)", masked, req->tenant_id,
                    eg_status_str(st), why);
        for (size_t i = 0; i < reply->n_records; i++)
            eg__history_record__free_unpacked(reply->records[i], NULL);
        free(reply->records);
        reply->records = NULL;
        reply->n_records = 0;
    }
    reply->status = new_status(st, st == EG_OK ? NULL : why);
    for (size_t i = 0; i < nlive; i++)
        eg__callback__free_unpacked(live[i], NULL);
    free(live);
    for (size_t i = 0; recs != NULL && i < nrecs; i++)
        eg__history_record__free_unpacked(recs[i], NULL);
    free(recs);
    return reply;
}
