/* Requests to the archiver, and find over live records and history.
 *
 * Find merges two sources. The scheduler knows every callback still in Redis (until desired time
 * + 14 days) with its current state; the archive knows every callback of the 14 days kept, a
 * moment behind. So the scheduler's records are read whole (all of the number's, at most 1,000,
 * in pages of 100), the archive is asked for the newest offset + limit + (live records) rows
 * matching the filters, and the union is sorted newest first (created time, then id) with the
 * scheduler's record kept for an id both know. That many archive rows always suffice for the page:
 * at most one per live record is replaced, so at least offset + limit rows remain, all newer than
 * any row not read. The total is exact unless the archive holds more rows than were read; then
 * it adds the archive's count of the rest (which may count a few the scheduler has in another
 * state). When the archiver does not answer, find answers from the live records alone and says
 * so (partial). */
#include "history_client.h"

#include <stdatomic.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engage/bus.h"
#include "engage/log.h"
#include "engage/mem.h"
#include "engage/subjects.h"
#include "engage/timeutil.h"
#include "sched_client.h"

/* find answers from the live records alone rather than wait long for a missing archiver */
#define SEARCH_TIMEOUT_MS 1500
#define NO_RESPONDERS_MS 3000
#define FIND_PAGE 100
#define FIND_MAX 1000 /* the scheduler scans at most this many ids of a number */
#define ARCHIVE_ROWS_MAX 5000

eg_status_t archive_call(api_t *api, const char *subject, const void *data, size_t len,
                         const char *corr_id, int timeout_ms, void **reply, size_t *reply_len)
{
    int64_t deadline = eg_mono_ms() + timeout_ms;
    /* "No responders" is retried for a restarting archiver, but only briefly: a long timeout is
     * for a slow answer (a GDPR erase), not for an archiver that is not there. */
    int64_t retry_until =
        eg_mono_ms() + (timeout_ms < NO_RESPONDERS_MS ? timeout_ms : NO_RESPONDERS_MS);
    eg_status_t st;
    for (;;) {
        int64_t left = deadline - eg_mono_ms();
        st = !atomic_load(&api->bus_ready)
                 ? EG_EUNAVAIL
                 : eg_bus_request(api->bus, subject, data, len, corr_id,
                                  (int)(left > 50 ? left : 50), reply, reply_len);
        if (st != EG_EUNAVAIL || eg_mono_ms() + 100 >= retry_until)
            break;
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (st != EG_OK) {
        eg_log_warn("the archiver did not answer %s: %s", subject, eg_status_str(st));
        st = EG_EUNAVAIL;
    }
    return st;
}

/* Every live record of the number (service filter only), appended to *cbs. */
static eg_status_t live_records(api_t *api, const Eg__FindRequest *fr, const char *corr,
                                Eg__Callback ***cbs, size_t *n)
{
    for (int offset = 0; offset < FIND_MAX;) {
        Eg__FindRequest q = *fr;
        q.state = 0;
        q.limit = FIND_PAGE;
        q.offset = offset;
        uint8_t buf[512];
        size_t len = eg__find_request__get_packed_size(&q);
        if (len > sizeof buf)
            return EG_EINVAL;
        eg__find_request__pack(&q, buf);
        void *raw = NULL;
        size_t raw_len = 0;
        if (sched_call(api, EG_SUBJ_FIND, buf, len, corr, &raw, &raw_len) != EG_OK)
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
            r->callbacks[i] = NULL; /* moved */
        }
        size_t got = r->n_callbacks;
        int total = r->total;
        eg__find_reply__free_unpacked(r, NULL);
        offset += (int)got;
        if (got < FIND_PAGE || offset >= total)
            break;
    }
    return EG_OK;
}

/* The archive's newest rows for the filters; NULL when the archiver did not answer. */
static Eg__ArchiveSearchReply *archived(api_t *api, const Eg__FindRequest *fr, int rows,
                                        const char *corr)
{
    Eg__ArchiveSearchRequest q = EG__ARCHIVE_SEARCH_REQUEST__INIT;
    q.tenant_id = fr->tenant_id;
    q.phone = fr->phone;
    q.service = fr->service;
    q.state = fr->state;
    q.limit = rows;
    q.with_total = true;
    uint8_t buf[512];
    size_t len = eg__archive_search_request__get_packed_size(&q);
    if (len > sizeof buf)
        return NULL;
    eg__archive_search_request__pack(&q, buf);
    void *raw = NULL;
    size_t raw_len = 0;
    if (archive_call(api, EG_SUBJ_ARCHIVE_SEARCH, buf, len, corr, SEARCH_TIMEOUT_MS, &raw,
                     &raw_len) != EG_OK)
        return NULL;
    Eg__ArchiveSearchReply *r = eg__archive_search_reply__unpack(NULL, raw_len, raw);
    free(raw);
    if (r == NULL || r->status == NULL || r->status->code != EG_OK) {
        if (r != NULL)
            eg_log_warn("archive search failed: %s", r->status ? r->status->message : "no status");
        eg__archive_search_reply__free_unpacked(r, NULL);
        return NULL;
    }
    return r;
}

static int newest_first(const void *a, const void *b)
{
    const Eg__Callback *x = *(Eg__Callback *const *)a, *y = *(Eg__Callback *const *)b;
    if (x->created_ms != y->created_ms)
        return x->created_ms < y->created_ms ? 1 : -1;
    return -strcmp(x->id, y->id);
}

eg_status_t history_find(api_t *api, const Eg__FindRequest *fr, const char *corr_id,
                         history_find_t *out)
{
    Eg__Callback **live = NULL, **all = NULL;
    size_t nlive = 0, nall = 0;
    memset(out, 0, sizeof *out);
    eg_status_t st = live_records(api, fr, corr_id, &live, &nlive);
    if (st != EG_OK)
        goto out;
    int rows = fr->offset + fr->limit + (int)nlive;
    Eg__ArchiveSearchReply *arch =
        archived(api, fr, rows < ARCHIVE_ROWS_MAX ? rows : ARCHIVE_ROWS_MAX, corr_id);
    out->partial = arch == NULL;
    size_t narch = arch ? arch->n_callbacks : 0;
    all = eg_xcalloc(nlive + narch + 1, sizeof *all);
    for (size_t i = 0; i < nlive; i++) {
        if (fr->state == 0 || (int)live[i]->state == fr->state) {
            all[nall++] = live[i];
            live[i] = NULL;
        }
    }
    for (size_t i = 0; i < narch; i++) {
        bool known = false;
        for (size_t j = 0; j < nlive && !known; j++) {
            const char *id = live[j] ? live[j]->id : NULL;
            known = id != NULL && strcmp(id, arch->callbacks[i]->id) == 0;
        }
        for (size_t j = 0; j < nall && !known; j++)
            known = strcmp(all[j]->id, arch->callbacks[i]->id) == 0;
        if (!known) {
            all[nall++] = arch->callbacks[i];
            arch->callbacks[i] = NULL;
        }
    }
    qsort(all, nall, sizeof *all, newest_first);
    out->total = (int64_t)nall;
    if (arch != NULL && arch->total > (int64_t)narch)
        out->total += arch->total - (int64_t)narch;
    eg__archive_search_reply__free_unpacked(arch, NULL);

    size_t from = (size_t)fr->offset < nall ? (size_t)fr->offset : nall;
    size_t count = nall - from < (size_t)fr->limit ? nall - from : (size_t)fr->limit;
    out->callbacks = eg_xcalloc(count + 1, sizeof *out->callbacks);
    for (size_t i = 0; i < nall; i++) {
        if (i >= from && i < from + count)
            out->callbacks[out->n++] = all[i];
        else
            eg__callback__free_unpacked(all[i], NULL);
    }
out:
    for (size_t i = 0; i < nlive; i++)
        eg__callback__free_unpacked(live[i], NULL);
    free(live);
    free(all);
    return st;
}

void history_find_free(history_find_t *f)
{
    for (size_t i = 0; i < f->n; i++)
        eg__callback__free_unpacked(f->callbacks[i], NULL);
    free(f->callbacks);
    f->callbacks = NULL;
    f->n = 0;
}
