/* The archiver's PostgreSQL writer: lifecycle events into callbacks, callback_data and
 * callback_events, idempotently (see archive.c for the rules). */
#ifndef ARCHIVER_ARCHIVE_H
#define ARCHIVER_ARCHIVE_H
#include <stdbool.h>
#include <stddef.h>

#include "engage.pb-c.h"
#include "engage/pg.h"
#include "engage/status.h"

/** What became of one event of a batch. */
typedef enum {
    ARCHIVE_DONE = 0, /**< committed (or already there): acknowledge it */
    ARCHIVE_RETRY,    /**< not written for a reason that may pass: redeliver it later */
    ARCHIVE_REJECT,   /**< the database refuses its data and always will: drop it */
} archive_outcome_t;

/** Check what can be checked without the database: the event carries a callback, and the event,
 *  callback and tenant ids are UUIDs. False, with a reason in why, for an event that can never
 *  be written. ev borrowed. */
bool archive_event_check(const Eg__Event *ev, char *why, size_t whylen);

/** Write events[0..n) (borrowed; each passed archive_event_check) in one transaction on pg,
 *  with the outcome of writing them one by one in order, in a handful of set-based statements
 *  whatever n is; events of callbacks in gdpr_erased are dropped (and count as done). EG_OK once
 *  committed. On failure the transaction is rolled back and the status is EG_EUNAVAIL
 *  (connection lost), EG_ETOOBIG (the batch's values do not fit the statements' array
 *  parameters: write fewer at a time) or EG_EIO; *permanent (may be NULL) tells whether a retry
 *  of the same events cannot fix it: the database refused the data itself (SQLSTATE class 22 or
 *  23), or a single event is too big. */
eg_status_t archive_write_batch(eg_pg_t *pg, const Eg__Event *const *events, size_t n,
                                bool *permanent);

/** Write events[0..n) as archive_write_batch does; when the batch fails on an error other than a
 *  lost connection, write each event in a transaction of its own so that one bad event cannot
 *  hold back the others. outcomes[0..n) (caller's array) says what became of each. Returns the
 *  status of the whole-batch attempt (EG_OK when every event went in with it). Not thread-safe
 *  on one pg (an eg_pg_t belongs to one thread). */
eg_status_t archive_write(eg_pg_t *pg, const Eg__Event *const *events, size_t n,
                          archive_outcome_t *outcomes);

#endif
