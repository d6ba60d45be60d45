/* The callback state machine. Each voice-platform result maps to one move of DESIGN.md's table:
 *
 *   DIALING, AGENT_RESERVED                 QUEUED -> ROUTING
 *   PERSON, CONNECTED (customer answered)   QUEUED/ROUTING -> ROUTING, attempt marked answered
 *   AGENT_CONNECTED                         QUEUED/ROUTING -> PROCESSING
 *   CALL_ENDED                              PROCESSING -> COMPLETED AGENT_CONNECTED;
 *                                           answered, no agent -> COMPLETED FAIL_AGENT_CONNECT;
 *                                           not answered -> as NO_ANSWER
 *   BUSY, NO_ANSWER, ANSWERING_MACHINE      attempts left -> SCHEDULED after the retry delay;
 *                                           none left -> COMPLETED FAIL_CALL_TO_CUSTOMER
 *   FAX, ERROR_TONE, FAILED                 COMPLETED FAIL_CALL_TO_CUSTOMER
 *   no change until watch_ms (TIMEOUT)      as CALL_ENDED, but a retry is due at once
 *
 * A result for another attempt than the current one, or for a completed callback, is stale and
 * ignored, so redelivered and late entries never move a callback backwards. */
#include "lifecycle.h"

#include <stdlib.h>
#include <string.h>

#include "engage/mem.h"

static const char *const results[] = {"DIALING",   "AGENT_RESERVED",  "PERSON",
                                      "CONNECTED", "AGENT_CONNECTED", "CALL_ENDED",
                                      "BUSY",      "NO_ANSWER",       "ANSWERING_MACHINE",
                                      "FAX",       "ERROR_TONE",      "FAILED"};

bool lc_result_known(const char *result)
{
    for (size_t i = 0; result && i < sizeof results / sizeof *results; i++)
        if (strcmp(result, results[i]) == 0)
            return true;
    return false;
}

static bool is(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

static Eg__Attempt *current_attempt(Eg__Callback *cb)
{
    for (size_t i = cb->n_attempt_log; i > 0; i--)
        if (cb->attempt_log[i - 1]->number == cb->attempts)
            return cb->attempt_log[i - 1];
    return NULL;
}

static void set_result(Eg__Callback *next, const char *result, int64_t now, bool ended)
{
    Eg__Attempt *a = current_attempt(next);
    if (!a)
        return;
    /* Records here are protobuf-c owned with the system allocator, so strings are malloc'd
     * and the default empty string is the one that must not be freed. */
    if (a->result && a->result != protobuf_c_empty_string)
        free(a->result);
    a->result = eg_xstrdup(result);
    if (ended)
        a->ended_ms = now;
}

static void finish(Eg__Callback *next, Eg__Reason reason)
{
    next->state = EG__STATE__STATE_COMPLETED;
    next->reason = reason;
}

/* A failed dial: retry while attempts remain, else give up. */
static void failed_dial(const Eg__Callback *cb, const lc_retry_t *retry, int64_t now,
                        Eg__Callback *next)
{
    if ((int)cb->attempts < retry->max_attempts) {
        next->state = EG__STATE__STATE_SCHEDULED;
        next->due_ms = now + (int64_t)retry->delay_s * 1000;
    } else {
        finish(next, EG__REASON__REASON_FAIL_CALL_TO_CUSTOMER);
    }
}

lc_verdict_t lc_on_progress(const Eg__Callback *cb, uint32_t attempt, const char *result,
                            const lc_retry_t *retry, int64_t now_ms, Eg__Callback *next,
                            eg_status_t *st)
{
    *st = EG_OK;
    if (!lc_result_known(result)) {
        *st = EG_EINVAL;
        return LC_IGNORE;
    }
    if (cb->state == EG__STATE__STATE_COMPLETED || cb->state == EG__STATE__STATE_SCHEDULED ||
        attempt != cb->attempts)
        return LC_IGNORE;
    bool live = cb->state == EG__STATE__STATE_QUEUED || cb->state == EG__STATE__STATE_ROUTING;
    const Eg__Attempt *cur = current_attempt((Eg__Callback *)cb);
    bool answered = cur && cur->answered;

    if (is(result, "DIALING") || is(result, "AGENT_RESERVED")) {
        if (cb->state != EG__STATE__STATE_QUEUED)
            return LC_IGNORE;
        next->state = EG__STATE__STATE_ROUTING;
    } else if (is(result, "PERSON") || is(result, "CONNECTED")) {
        if (!live || answered)
            return LC_IGNORE;
        next->state = EG__STATE__STATE_ROUTING;
        Eg__Attempt *a = current_attempt(next);
        if (a)
            a->answered = true;
    } else if (is(result, "AGENT_CONNECTED")) {
        if (!live)
            return LC_IGNORE;
        next->state = EG__STATE__STATE_PROCESSING;
    } else if (is(result, "CALL_ENDED")) {
        if (cb->state == EG__STATE__STATE_PROCESSING)
            finish(next, EG__REASON__REASON_AGENT_CONNECTED);
        else if (answered)
            finish(next, EG__REASON__REASON_FAIL_AGENT_CONNECT);
        else
            failed_dial(cb, retry, now_ms, next);
    } else if (is(result, "BUSY") || is(result, "NO_ANSWER") || is(result, "ANSWERING_MACHINE")) {
        if (!live)
            return LC_IGNORE;
        failed_dial(cb, retry, now_ms, next);
    } else { /* FAX, ERROR_TONE, FAILED: permanent */
        if (!live)
            return LC_IGNORE;
        finish(next, EG__REASON__REASON_FAIL_CALL_TO_CUSTOMER);
    }
    set_result(next, result, now_ms,
               next->state == EG__STATE__STATE_COMPLETED ||
                   next->state == EG__STATE__STATE_SCHEDULED);
    next->updated_ms = now_ms;
    next->version = cb->version + 1;
    return LC_APPLY;
}

bool lc_live(Eg__State state)
{
    return state == EG__STATE__STATE_QUEUED || state == EG__STATE__STATE_ROUTING ||
           state == EG__STATE__STATE_PROCESSING;
}

void lc_watch(const Eg__Callback *prev, Eg__Callback *next, int64_t timeout_ms)
{
    if (!lc_live(next->state))
        next->watch_ms = 0;
    else if (!prev || prev->state != next->state || prev->attempts != next->attempts ||
             !next->watch_ms)
        next->watch_ms = next->updated_ms + timeout_ms;
}

lc_verdict_t lc_attempt_timeout(const Eg__Callback *cb, const lc_retry_t *retry, int64_t now_ms,
                                Eg__Callback *next)
{
    if (!lc_live(cb->state) || !cb->watch_ms || cb->watch_ms > now_ms)
        return LC_IGNORE;
    const Eg__Attempt *cur = current_attempt((Eg__Callback *)cb);
    if (cb->state == EG__STATE__STATE_PROCESSING)
        finish(next, EG__REASON__REASON_AGENT_CONNECTED);
    else if (cur && cur->answered)
        finish(next, EG__REASON__REASON_FAIL_AGENT_CONNECT);
    else if ((int)cb->attempts < retry->max_attempts) {
        next->state = EG__STATE__STATE_SCHEDULED;
        next->due_ms = now_ms; /* the platform lost it: try again at once */
    } else
        finish(next, EG__REASON__REASON_FAIL_CALL_TO_CUSTOMER);
    set_result(next, LC_RESULT_TIMEOUT, now_ms, true);
    next->updated_ms = now_ms;
    next->version = cb->version + 1;
    return LC_APPLY;
}

bool lc_gave_up(Eg__State from, const Eg__Callback *next)
{
    if (!lc_live(from) || lc_live(next->state))
        return false;
    const Eg__Attempt *cur = current_attempt((Eg__Callback *)next);
    return cur && cur->result && strcmp(cur->result, LC_RESULT_TIMEOUT) == 0;
}

void lc_dispatch(Eg__Callback *next, int64_t now_ms)
{
    next->state = EG__STATE__STATE_QUEUED;
    next->reason = EG__REASON__REASON_NONE;
    next->attempts++;
    next->due_ms = now_ms;
    next->updated_ms = now_ms;
    next->version++;
    Eg__Attempt *a = eg_xmalloc(sizeof *a);
    eg__attempt__init(a);
    a->number = next->attempts;
    a->dialed_ms = now_ms;
    next->attempt_log =
        eg_xrealloc(next->attempt_log, (next->n_attempt_log + 1) * sizeof *next->attempt_log);
    next->attempt_log[next->n_attempt_log++] = a;
}

eg_status_t lc_cancel(const Eg__Callback *cb, int64_t now_ms, Eg__Callback *next)
{
    if (cb->state == EG__STATE__STATE_PROCESSING || cb->state == EG__STATE__STATE_COMPLETED)
        return EG_ESTATE;
    finish(next, EG__REASON__REASON_CANCELLED);
    next->updated_ms = now_ms;
    next->version = cb->version + 1;
    return EG_OK;
}

void lc_expire(const Eg__Callback *cb, int64_t now_ms, Eg__Callback *next)
{
    finish(next, EG__REASON__REASON_FAIL_TIMEOUT_TTL);
    next->updated_ms = now_ms;
    next->version = cb->version + 1;
}

void lc_defer(const Eg__Callback *cb, int64_t due_ms, int64_t now_ms, Eg__Callback *next)
{
    next->due_ms = due_ms;
    next->updated_ms = now_ms;
    next->version = cb->version + 1;
}

void lc_closed(const Eg__Callback *cb, int64_t now_ms, Eg__Callback *next)
{
    finish(next, EG__REASON__REASON_FAIL_ERROR);
    if (next->message && next->message != protobuf_c_empty_string)
        free(next->message);
    next->message = eg_xstrdup("the service was closed when the callback fell due");
    next->updated_ms = now_ms;
    next->version = cb->version + 1;
}

void lc_free_attempts(Eg__Callback *cb)
{
    for (size_t i = 0; i < cb->n_attempt_log; i++) {
        if (cb->attempt_log[i]->result != protobuf_c_empty_string)
            free(cb->attempt_log[i]->result);
        free(cb->attempt_log[i]);
    }
    free(cb->attempt_log);
    cb->attempt_log = NULL;
    cb->n_attempt_log = 0;
}

eg_status_t lc_customer_contacted(const Eg__Callback *cb, int64_t now_ms, Eg__Callback *next)
{
    if (cb->state == EG__STATE__STATE_PROCESSING || cb->state == EG__STATE__STATE_COMPLETED)
        return EG_ESTATE;
    finish(next, EG__REASON__REASON_CUSTOMER_CONTACTED);
    next->updated_ms = now_ms;
    next->version = cb->version + 1;
    return EG_OK;
}
