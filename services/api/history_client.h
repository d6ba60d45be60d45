/* Requests from the api to the archiver (engage.archive.*), and the find that covers history:
 * the scheduler's live records merged with the archive's rows. */
#ifndef API_HISTORY_CLIENT_H
#define API_HISTORY_CLIENT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "engage.pb-c.h"
#include "engage/status.h"

/** Send a request to the archiver and wait up to timeout_ms for the answer. While no archiver
 *  is subscribed ("no responders") it tries again every 100 ms for up to 3 s (a restart). On
 *  EG_OK *reply (free()) holds the answer; otherwise EG_EUNAVAIL. */
eg_status_t archive_call(api_t *api, const char *subject, const void *data, size_t len,
                         const char *corr_id, int timeout_ms, void **reply, size_t *reply_len);

/** The result of history_find. */
typedef struct {
    Eg__Callback **callbacks; /**< the page, newest first (owned; free with history_find_free) */
    size_t n;
    int64_t total; /**< matches before paging (approximate past 5,000 archived rows) */
    bool partial;  /**< the archiver did not answer: live records only */
} history_find_t;

/** A tenant's callbacks for fr->phone (and fr->service, fr->state when set), newest first,
 *  paged by fr->limit and fr->offset: the scheduler's records (Redis) and the archive's
 *  (PostgreSQL), one entry per id, the scheduler's record winning (it is never behind). EG_OK,
 *  or EG_EUNAVAIL when the scheduler did not answer. fr borrowed. */
eg_status_t history_find(api_t *api, const Eg__FindRequest *fr, const char *corr_id,
                         history_find_t *out);
void history_find_free(history_find_t *f);

#endif
