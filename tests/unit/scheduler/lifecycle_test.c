/* The callback state machine: every row of DESIGN.md's table, and the stale cases that must
 * never move a callback backwards. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "lifecycle.h"

static const lc_retry_t retry = {.max_attempts = 3, .delay_s = 60};
#define NOW 1800000000000LL

/* A dispatched callback (QUEUED, attempt n), built the way the scheduler builds one. */
static Eg__Callback *queued(int attempts)
{
    Eg__Callback *cb = malloc(sizeof *cb);
    eg__callback__init(cb);
    cb->state = EG__STATE__STATE_SCHEDULED;
    cb->version = 1;
    for (int i = 0; i < attempts; i++)
        lc_dispatch(cb, NOW - 1000);
    return cb;
}

static void drop(Eg__Callback *cb)
{
    lc_free_attempts(cb);
    free(cb);
}

/* Apply results in order to a fresh copy; returns the verdict of the last one. */
static lc_verdict_t feed(Eg__Callback *cb, uint32_t attempt, const char *const *results, size_t n)
{
    lc_verdict_t v = LC_IGNORE;
    for (size_t i = 0; i < n; i++) {
        Eg__Callback next = *cb;
        eg_status_t st;
        v = lc_on_progress(cb, attempt, results[i], &retry, NOW, &next, &st);
        cr_assert_eq(st, EG_OK, "%s refused", results[i]);
        if (v == LC_APPLY)
            *cb = next;
    }
    return v;
}

Test(lifecycle, answered_call_goes_to_agent_connected)
{
    Eg__Callback *cb = queued(1);
    cr_assert_eq(cb->state, EG__STATE__STATE_QUEUED);
    cr_assert_eq(cb->attempts, 1);
    const char *seq[] = {"DIALING"};
    feed(cb, 1, seq, 1);
    cr_expect_eq(cb->state, EG__STATE__STATE_ROUTING);
    const char *seq2[] = {"PERSON"};
    feed(cb, 1, seq2, 1);
    cr_expect_eq(cb->state, EG__STATE__STATE_ROUTING);
    cr_expect(cb->attempt_log[0]->answered, "the attempt records the customer answered");
    const char *seq3[] = {"AGENT_CONNECTED"};
    feed(cb, 1, seq3, 1);
    cr_expect_eq(cb->state, EG__STATE__STATE_PROCESSING);
    const char *seq4[] = {"CALL_ENDED"};
    feed(cb, 1, seq4, 1);
    cr_expect_eq(cb->state, EG__STATE__STATE_COMPLETED);
    cr_expect_eq(cb->reason, EG__REASON__REASON_AGENT_CONNECTED);
    cr_expect_str_eq(cb->attempt_log[0]->result, "CALL_ENDED");
    cr_expect_eq(cb->version, 6, "one version per change (dispatch + 4 results)");
    drop(cb);
}

Test(lifecycle, busy_with_attempts_left_is_rescheduled_after_the_delay)
{
    Eg__Callback *cb = queued(1);
    const char *seq[] = {"DIALING", "BUSY"};
    feed(cb, 1, seq, 2);
    cr_expect_eq(cb->state, EG__STATE__STATE_SCHEDULED);
    cr_expect_eq(cb->due_ms, NOW + 60000);
    cr_expect_eq(cb->reason, EG__REASON__REASON_NONE);
    drop(cb);
}

Test(lifecycle, no_answer_and_machine_on_last_attempt_fail_the_call)
{
    const char *results[] = {"NO_ANSWER", "ANSWERING_MACHINE", "BUSY"};
    for (size_t i = 0; i < 3; i++) {
        Eg__Callback *cb = queued(3);
        feed(cb, 3, &results[i], 1);
        cr_expect_eq(cb->state, EG__STATE__STATE_COMPLETED, "%s", results[i]);
        cr_expect_eq(cb->reason, EG__REASON__REASON_FAIL_CALL_TO_CUSTOMER);
        drop(cb);
    }
}

Test(lifecycle, permanent_failures_complete_at_once)
{
    const char *results[] = {"FAX", "ERROR_TONE", "FAILED"};
    for (size_t i = 0; i < 3; i++) {
        Eg__Callback *cb = queued(1);
        feed(cb, 1, &results[i], 1);
        cr_expect_eq(cb->state, EG__STATE__STATE_COMPLETED, "%s", results[i]);
        cr_expect_eq(cb->reason, EG__REASON__REASON_FAIL_CALL_TO_CUSTOMER);
        drop(cb);
    }
}

Test(lifecycle, answered_but_no_agent_is_fail_agent_connect)
{
    Eg__Callback *cb = queued(1);
    const char *seq[] = {"DIALING", "CONNECTED", "CALL_ENDED"};
    feed(cb, 1, seq, 3);
    cr_expect_eq(cb->state, EG__STATE__STATE_COMPLETED);
    cr_expect_eq(cb->reason, EG__REASON__REASON_FAIL_AGENT_CONNECT);
    drop(cb);
}

Test(lifecycle, call_ended_unanswered_counts_as_no_answer)
{
    Eg__Callback *cb = queued(1);
    const char *seq[] = {"DIALING", "CALL_ENDED"};
    feed(cb, 1, seq, 2);
    cr_expect_eq(cb->state, EG__STATE__STATE_SCHEDULED, "retried");
    drop(cb);
}

Test(lifecycle, stale_and_late_results_are_ignored)
{
    Eg__Callback *cb = queued(2);
    Eg__Callback next = *cb;
    eg_status_t st;
    cr_expect_eq(lc_on_progress(cb, 1, "AGENT_CONNECTED", &retry, NOW, &next, &st), LC_IGNORE,
                 "a result of attempt 1 after attempt 2 was dialled");
    const char *seq[] = {"DIALING", "AGENT_CONNECTED", "CALL_ENDED"};
    feed(cb, 2, seq, 3);
    cr_assert_eq(cb->state, EG__STATE__STATE_COMPLETED);
    const char *late[] = {"BUSY", "DIALING", "PERSON", "CALL_ENDED"};
    for (size_t i = 0; i < 4; i++) {
        next = *cb;
        cr_expect_eq(lc_on_progress(cb, 2, late[i], &retry, NOW, &next, &st), LC_IGNORE,
                     "%s after COMPLETED", late[i]);
    }
    /* A repeated DIALING after ROUTING changes nothing. */
    Eg__Callback *c2 = queued(1);
    const char *d[] = {"DIALING"};
    feed(c2, 1, d, 1);
    next = *c2;
    cr_expect_eq(lc_on_progress(c2, 1, "DIALING", &retry, NOW, &next, &st), LC_IGNORE);
    /* BUSY while the agent talks is ignored. */
    const char *p[] = {"AGENT_CONNECTED"};
    feed(c2, 1, p, 1);
    next = *c2;
    cr_expect_eq(lc_on_progress(c2, 1, "BUSY", &retry, NOW, &next, &st), LC_IGNORE);
    drop(cb);
    drop(c2);
}

Test(lifecycle, unknown_result_is_refused)
{
    Eg__Callback *cb = queued(1);
    Eg__Callback next = *cb;
    eg_status_t st;
    cr_expect_eq(lc_on_progress(cb, 1, "SINGING", &retry, NOW, &next, &st), LC_IGNORE);
    cr_expect_eq(st, EG_EINVAL);
    cr_expect(!lc_result_known("busy"), "results are upper case");
    cr_expect(lc_result_known("ANSWERING_MACHINE"));
    drop(cb);
}

Test(lifecycle, cancel_allowed_until_processing)
{
    Eg__Callback *cb = queued(1);
    Eg__Callback next = *cb;
    cr_expect_eq(lc_cancel(cb, NOW, &next), EG_OK);
    cr_expect_eq(next.state, EG__STATE__STATE_COMPLETED);
    cr_expect_eq(next.reason, EG__REASON__REASON_CANCELLED);
    const char *p[] = {"AGENT_CONNECTED"};
    feed(cb, 1, p, 1);
    next = *cb;
    cr_expect_eq(lc_cancel(cb, NOW, &next), EG_ESTATE, "PROCESSING is not cancellable");
    drop(cb);
}

Test(lifecycle, dispatch_counts_attempts_and_logs_each)
{
    Eg__Callback *cb = queued(3);
    cr_expect_eq(cb->attempts, 3);
    cr_expect_eq(cb->n_attempt_log, 3);
    for (uint32_t i = 0; i < 3; i++)
        cr_expect_eq(cb->attempt_log[i]->number, i + 1);
    drop(cb);
}

Test(lifecycle, expire_and_defer)
{
    Eg__Callback *cb = queued(0);
    cb->expiry_ms = NOW;
    Eg__Callback next = *cb;
    lc_expire(cb, NOW + 1, &next);
    cr_expect_eq(next.state, EG__STATE__STATE_COMPLETED);
    cr_expect_eq(next.reason, EG__REASON__REASON_FAIL_TIMEOUT_TTL);
    cr_expect_eq(next.version, cb->version + 1);
    next = *cb;
    lc_defer(cb, NOW + 3600000, NOW, &next);
    cr_expect_eq(next.state, EG__STATE__STATE_SCHEDULED, "still waiting");
    cr_expect_eq(next.due_ms, NOW + 3600000);
    cr_expect_eq(next.version, cb->version + 1);
    drop(cb);
}

/* ---- the customer called in on their own (call.inbound from the callback's number) ---- */

Test(lifecycle, customer_contact_completes_scheduled_queued_and_routing_callbacks)
{
    /* SCHEDULED, never dialled. */
    Eg__Callback *cb = queued(0);
    Eg__Callback next = *cb;
    cr_expect_eq(lc_customer_contacted(cb, NOW, &next), EG_OK);
    cr_expect_eq(next.state, EG__STATE__STATE_COMPLETED);
    cr_expect_eq(next.reason, EG__REASON__REASON_CUSTOMER_CONTACTED);
    cr_expect_eq(next.version, cb->version + 1, "one new version");
    cr_expect_eq(next.updated_ms, NOW);
    drop(cb);

    /* QUEUED (handed to the platform), then ROUTING (being dialled). */
    cb = queued(1);
    next = *cb;
    cr_expect_eq(lc_customer_contacted(cb, NOW, &next), EG_OK, "QUEUED");
    cr_expect_eq(next.reason, EG__REASON__REASON_CUSTOMER_CONTACTED);
    const char *d[] = {"DIALING"};
    feed(cb, 1, d, 1);
    cr_assert_eq(cb->state, EG__STATE__STATE_ROUTING);
    next = *cb;
    cr_expect_eq(lc_customer_contacted(cb, NOW, &next), EG_OK, "ROUTING");
    cr_expect_eq(next.state, EG__STATE__STATE_COMPLETED);
    drop(cb);

    /* Waiting for a retry (SCHEDULED after a busy attempt). */
    cb = queued(1);
    const char *busy[] = {"DIALING", "BUSY"};
    feed(cb, 1, busy, 2);
    cr_assert_eq(cb->state, EG__STATE__STATE_SCHEDULED);
    next = *cb;
    cr_expect_eq(lc_customer_contacted(cb, NOW, &next), EG_OK, "SCHEDULED for a retry");
    cr_expect_eq(next.reason, EG__REASON__REASON_CUSTOMER_CONTACTED);
    drop(cb);
}

Test(lifecycle, customer_contact_leaves_processing_and_completed_alone)
{
    Eg__Callback *cb = queued(1);
    const char *p[] = {"AGENT_CONNECTED"};
    feed(cb, 1, p, 1);
    cr_assert_eq(cb->state, EG__STATE__STATE_PROCESSING);
    Eg__Callback next = *cb;
    cr_expect_eq(lc_customer_contacted(cb, NOW, &next), EG_ESTATE, "an agent has it");
    cr_expect_eq(next.state, EG__STATE__STATE_PROCESSING, "unchanged");
    cr_expect_eq(next.version, cb->version, "unchanged");
    const char *end[] = {"CALL_ENDED"};
    feed(cb, 1, end, 1);
    cr_assert_eq(cb->state, EG__STATE__STATE_COMPLETED);
    next = *cb;
    cr_expect_eq(lc_customer_contacted(cb, NOW, &next), EG_ESTATE, "already completed");
    cr_expect_eq(next.reason, EG__REASON__REASON_AGENT_CONNECTED, "the first reason stays");
    drop(cb);
}

Test(lifecycle, results_after_customer_contact_are_stale)
{
    Eg__Callback *cb = queued(1);
    Eg__Callback next = *cb;
    cr_assert_eq(lc_customer_contacted(cb, NOW, &next), EG_OK);
    *cb = next;
    const char *late[] = {"DIALING", "PERSON", "AGENT_CONNECTED", "BUSY", "CALL_ENDED"};
    for (size_t i = 0; i < 5; i++) {
        eg_status_t st;
        next = *cb;
        cr_expect_eq(lc_on_progress(cb, 1, late[i], &retry, NOW, &next, &st), LC_IGNORE,
                     "%s after CUSTOMER_CONTACTED", late[i]);
    }
    cr_expect_eq(cb->reason, EG__REASON__REASON_CUSTOMER_CONTACTED);
    drop(cb);
}

/* ---- attempts the voice platform never reports on (lc_watch, lc_attempt_timeout) ---- */

#define TIMEOUT_MS 60000

/* A queued callback watched the way the scheduler watches one. */
static Eg__Callback *watched_queued(int attempts)
{
    Eg__Callback *cb = queued(attempts);
    cb->updated_ms = NOW - 1000;
    lc_watch(NULL, cb, TIMEOUT_MS);
    return cb;
}

/* Give up cb's attempt at time at; returns the verdict and applies it. */
static lc_verdict_t time_out(Eg__Callback *cb, int64_t at)
{
    Eg__Callback next = *cb;
    lc_verdict_t v = lc_attempt_timeout(cb, &retry, at, &next);
    if (v == LC_APPLY) {
        Eg__State from = cb->state;
        lc_watch(cb, &next, TIMEOUT_MS);
        *cb = next;
        cr_expect(lc_gave_up(from, cb), "giving up tells the voice platform to cancel");
    }
    return v;
}

Test(lifecycle, a_dialled_callback_is_watched_from_each_change_of_state)
{
    Eg__Callback *cb = watched_queued(1);
    cr_expect_eq(cb->watch_ms, NOW - 1000 + TIMEOUT_MS, "watched from the dispatch");
    Eg__Callback next = *cb;
    eg_status_t st;
    cr_assert_eq(lc_on_progress(cb, 1, "DIALING", &retry, NOW, &next, &st), LC_APPLY);
    lc_watch(cb, &next, TIMEOUT_MS);
    cr_expect_eq(next.watch_ms, NOW + TIMEOUT_MS, "ROUTING: watched again from now");
    *cb = next;
    cr_assert_eq(lc_on_progress(cb, 1, "PERSON", &retry, NOW + 5000, &next, &st), LC_APPLY);
    lc_watch(cb, &next, TIMEOUT_MS);
    cr_expect_eq(next.watch_ms, NOW + TIMEOUT_MS, "same state: the watch time stays");
    *cb = next;
    const char *rest[] = {"AGENT_CONNECTED", "CALL_ENDED"};
    feed(cb, 1, rest, 2);
    next = *cb;
    lc_watch(NULL, &next, TIMEOUT_MS);
    cr_expect_eq(next.watch_ms, 0, "a completed callback is not watched");
    drop(cb);
}

Test(lifecycle, an_attempt_with_no_word_is_retried_at_once_when_attempts_remain)
{
    Eg__Callback *cb = watched_queued(1);
    cr_expect_eq(time_out(cb, cb->watch_ms - 1), LC_IGNORE, "not before its watch time");
    int64_t at = cb->watch_ms;
    cr_assert_eq(time_out(cb, at), LC_APPLY);
    cr_expect_eq(cb->state, EG__STATE__STATE_SCHEDULED);
    cr_expect_eq(cb->due_ms, at, "due at once, not after the retry delay");
    cr_expect_eq(cb->watch_ms, 0);
    cr_expect_str_eq(cb->attempt_log[0]->result, LC_RESULT_TIMEOUT);
    cr_expect_eq(cb->attempt_log[0]->ended_ms, at);
    /* A late result of the given-up attempt changes nothing. */
    const char *late[] = {"AGENT_CONNECTED"};
    cr_expect_eq(feed(cb, 1, late, 1), LC_IGNORE);
    cr_expect_eq(cb->state, EG__STATE__STATE_SCHEDULED);
    drop(cb);
}

Test(lifecycle, the_last_attempt_with_no_word_fails_the_call)
{
    Eg__Callback *cb = watched_queued(3);
    cr_assert_eq(time_out(cb, cb->watch_ms + 1), LC_APPLY);
    cr_expect_eq(cb->state, EG__STATE__STATE_COMPLETED);
    cr_expect_eq(cb->reason, EG__REASON__REASON_FAIL_CALL_TO_CUSTOMER);
    drop(cb);
}

Test(lifecycle, an_answered_call_with_no_agent_word_fails_the_agent_leg)
{
    Eg__Callback *cb = watched_queued(1);
    const char *seq[] = {"DIALING", "PERSON"};
    feed(cb, 1, seq, 2);
    lc_watch(NULL, cb, TIMEOUT_MS);
    cr_assert_eq(time_out(cb, cb->watch_ms), LC_APPLY);
    cr_expect_eq(cb->state, EG__STATE__STATE_COMPLETED);
    cr_expect_eq(cb->reason, EG__REASON__REASON_FAIL_AGENT_CONNECT);
    drop(cb);
}

Test(lifecycle, a_call_with_an_agent_and_no_end_completes_as_connected)
{
    Eg__Callback *cb = watched_queued(1);
    const char *seq[] = {"DIALING", "PERSON", "AGENT_CONNECTED"};
    feed(cb, 1, seq, 3);
    cr_assert_eq(cb->state, EG__STATE__STATE_PROCESSING);
    cb->watch_ms = NOW + 10;
    cr_assert_eq(time_out(cb, NOW + 10), LC_APPLY);
    cr_expect_eq(cb->state, EG__STATE__STATE_COMPLETED);
    cr_expect_eq(cb->reason, EG__REASON__REASON_AGENT_CONNECTED);
    drop(cb);
}

Test(lifecycle, scheduled_and_unwatched_callbacks_never_time_out)
{
    Eg__Callback *cb = queued(0);
    cr_expect_eq(time_out(cb, NOW + 365LL * 86400000), LC_IGNORE, "SCHEDULED");
    drop(cb);
    cb = queued(1); /* dialled but never watched (watch_ms 0) */
    cr_expect_eq(time_out(cb, NOW + 365LL * 86400000), LC_IGNORE, "no watch time");
    drop(cb);
    /* A BUSY retry is not a give-up: no cancel for it. */
    cb = watched_queued(1);
    const char *seq[] = {"DIALING", "BUSY"};
    feed(cb, 1, seq, 2);
    cr_expect_not(lc_gave_up(EG__STATE__STATE_ROUTING, cb));
    drop(cb);
}
