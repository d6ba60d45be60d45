/* The callback state machine (../shared/DESIGN.md, "Data"): what a voice-platform result does to
 * a callback. Plain functions over the protobuf record; no I/O, so every path is unit-tested. */
#ifndef SCHED_LIFECYCLE_H
#define SCHED_LIFECYCLE_H
#include <stdbool.h>
#include <stdint.h>

#include "engage.pb-c.h"
#include "engage/status.h"

typedef struct {
    int max_attempts; /**< total dial attempts, the first included */
    int delay_s;      /**< wait before a retry */
    int timeout_s;    /**< an attempt with no word for this long is given up (lc_watch) */
} lc_retry_t;

typedef enum {
    LC_IGNORE = 0, /**< stale, duplicate or irrelevant: acknowledge and change nothing */
    LC_APPLY,      /**< write *next (a modified copy of the record) */
} lc_verdict_t;

/** True when result is one of the call.progress results of the voice stream contract. */
bool lc_result_known(const char *result);

/** Decide what a call.progress result for attempt does to cb. On LC_APPLY, next (a copy of cb
 *  made by the caller) is modified in place: state, reason, due time, attempt log, version,
 *  updated time. EG_EINVAL (and LC_IGNORE) for an unknown result. */
lc_verdict_t lc_on_progress(const Eg__Callback *cb, uint32_t attempt, const char *result,
                            const lc_retry_t *retry, int64_t now_ms, Eg__Callback *next,
                            eg_status_t *st);

/** Make next the dispatched version of cb (SCHEDULED or new -> QUEUED, one more attempt). The
 *  attempt log grows by one entry, allocated with malloc (free with lc_free_attempts on a
 *  record that is not protobuf-c owned; protobuf-c frees it on owned ones). */
void lc_dispatch(Eg__Callback *next, int64_t now_ms);

/** Cancel: COMPLETED CANCELLED unless PROCESSING or COMPLETED (EG_ESTATE). */
eg_status_t lc_cancel(const Eg__Callback *cb, int64_t now_ms, Eg__Callback *next);

/** Expired before it could be served: COMPLETED FAIL_TIMEOUT_TTL. */
void lc_expire(const Eg__Callback *cb, int64_t now_ms, Eg__Callback *next);

/** A due callback found its service closed: it stays SCHEDULED, due at due_ms (the next
 *  opening). */
void lc_defer(const Eg__Callback *cb, int64_t due_ms, int64_t now_ms, Eg__Callback *next);

/** The result written into the attempt log when an attempt is given up for lack of progress. */
#define LC_RESULT_TIMEOUT "TIMEOUT"

/** True in a dialled state: QUEUED, ROUTING or PROCESSING. */
bool lc_live(Eg__State state);

/** Set next->watch_ms, the time its attempt is given up on if nothing changes: a dialled
 *  callback (QUEUED, ROUTING, PROCESSING) is watched from every change of state or attempt
 *  (prev NULL for a new record) for timeout_ms; any other state is not watched (0). */
void lc_watch(const Eg__Callback *prev, Eg__Callback *next, int64_t timeout_ms);

/** The voice platform said nothing about the current attempt until cb->watch_ms (it lost the
 *  call, or crashed): the attempt ends with result TIMEOUT, read like a CALL_ENDED without
 *  detail — PROCESSING completes AGENT_CONNECTED (an agent had it), an answered call
 *  FAIL_AGENT_CONNECT, otherwise it is retried at once while attempts remain, else COMPLETED
 *  FAIL_CALL_TO_CUSTOMER. LC_IGNORE when cb is not dialled or not yet at its watch time. */
lc_verdict_t lc_attempt_timeout(const Eg__Callback *cb, const lc_retry_t *retry, int64_t now_ms,
                                Eg__Callback *next);

/** True when this change gave up the attempt (lc_attempt_timeout): the voice platform is told to
 *  cancel it. */
bool lc_gave_up(Eg__State from, const Eg__Callback *next);

/** A due callback found its service closed and the service completes such callbacks
 *  (closedAtDispatch "complete"): COMPLETED FAIL_ERROR with a message saying so. */
void lc_closed(const Eg__Callback *cb, int64_t now_ms, Eg__Callback *next);

/** Free an attempt log built with lc_dispatch on a stack record. */
void lc_free_attempts(Eg__Callback *cb);

/** The customer reached the contact center on their own (a call.inbound from the callback's
 *  number): COMPLETED CUSTOMER_CONTACTED unless an agent already has the callback (PROCESSING) or
 *  it is COMPLETED (EG_ESTATE, next untouched). SCHEDULED, QUEUED and ROUTING callbacks complete;
 *  the event's cancel_voice tells the voice platform to stop dialling. */
eg_status_t lc_customer_contacted(const Eg__Callback *cb, int64_t now_ms, Eg__Callback *next);

#endif
