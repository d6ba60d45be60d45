/* The transition script (services/scheduler/callback_store.c, run by cb_store_transition)
 * against the suite's redis-server. Its promises: a write is a compare-and-set against the
 * blob the writer read (a writer that lost a race changes nothing and says so), the outbox
 * entry of a change is written in the same step as the change, and a completion gives back
 * the slot place (when asked) and the number's live count, so that the number and the slot
 * can be booked again. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "callback_fixtures.h"
#include "store_keys.h"

/* Every key name these tests read, from the store's own key builder (store_keys.h). */
static void key_of(char *out, size_t n, const char *tenant, store_family_t family, const char *rest)
{
    char *k = store_key(family, tenant, rest);
    cr_assert(strlen(k) < n, "key %s does not fit", k);
    snprintf(out, n, "%s", k);
    free(k);
}

static long long outbox_len(tenant_store_t *t)
{
    char k[200];
    key_of(k, sizeof k, t->tenant, STORE_OUTBOX, NULL);
    return ask_int(t->store, "XLEN", k, NULL);
}

static long long live_count(tenant_store_t *t, const char *phone)
{
    char k[200];
    key_of(k, sizeof k, t->tenant, STORE_NUMBER, phone);
    return ask_int(t->store, "HGET", k, "a:" SERVICE);
}

/* A callback booked into a slot of capacity 2, and the blob a writer reads back from it. */
static char *a_booked_callback(tenant_store_t *t, booking_t *b, size_t *blob_len)
{
    a_callback(b, t->tenant, PHONE_ANA, SLOT_10H);
    booked(t, b, a_service_slot_of(2));
    char *blob = stored_blob(t, b->id, blob_len);
    cr_assert_not_null(blob);
    return blob;
}

static eg_status_t transition(tenant_store_t *t, const char *old, size_t old_len,
                              const booking_t *prev, const booking_t *next, int release_slot)
{
    return cb_store_transition(t->store, &t->scripts, old, old_len, &prev->cb, &next->cb, &next->ev,
                               release_slot, NULL);
}

Test(transition_script, a_writer_with_a_stale_blob_gets_a_conflict_and_changes_nothing)
{
    tenant_store_t t;
    a_tenant_store(&t);
    booking_t b, queued, cancelled;
    size_t read_len;
    char *read = a_booked_callback(&t, &b, &read_len);

    /* Two writers read the same blob; the first one's change wins. */
    a_change_of(&queued, &b, EG__STATE__STATE_QUEUED);
    cr_assert_eq(transition(&t, read, read_len, &b, &queued, 0), EG_OK);
    size_t won_len;
    char *won = stored_blob(&t, b.id, &won_len);
    long long events = outbox_len(&t);

    a_change_of(&cancelled, &b, EG__STATE__STATE_COMPLETED);
    cancelled.cb.reason = EG__REASON__REASON_CANCELLED;
    eg_status_t st = transition(&t, read, read_len, &b, &cancelled, 1);
    cr_assert_eq(st, EG_ECONFLICT, "%s", eg_status_str(st));

    size_t now_len;
    char *now = stored_blob(&t, b.id, &now_len);
    cr_assert_not_null(now);
    cr_expect(now_len == won_len && memcmp(now, won, won_len) == 0,
              "the record is the first writer's");
    cr_expect_eq(outbox_len(&t), events, "no outbox entry for the refused change");
    cr_expect_eq(slot_used(&t, SLOT_10H), 1, "the slot place is still held");
    cr_expect_eq(live_count(&t, PHONE_ANA), 1, "still live");
    char k[200];
    key_of(k, sizeof k, t.tenant, STORE_QUEUE, SERVICE);
    cr_expect_eq(ask_int(t.store, "ZCARD", k, NULL), 1, "still queued");
    free(read);
    free(won);
    free(now);
    close_tenant_store(&t);
}

Test(transition_script, a_vanished_record_is_a_conflict_and_nothing_is_written)
{
    tenant_store_t t;
    a_tenant_store(&t);
    booking_t b, queued;
    size_t read_len;
    char *read = a_booked_callback(&t, &b, &read_len);
    char k[200];
    key_of(k, sizeof k, t.tenant, STORE_RECORD, b.id);
    cr_assert_eq(ask_int(t.store, "DEL", k, NULL), 1); /* expired, or erased (GDPR) */

    a_change_of(&queued, &b, EG__STATE__STATE_QUEUED);
    cr_expect_eq(transition(&t, read, read_len, &b, &queued, 0), EG_ECONFLICT);
    size_t len;
    cr_expect_null(stored_blob(&t, b.id, &len), "not written back");
    cr_expect_eq(outbox_len(&t), 1, "only the create's event");
    free(read);
    close_tenant_store(&t);
}

Test(transition_script, the_change_and_exactly_one_outbox_entry_of_its_event_are_one_step)
{
    tenant_store_t t;
    a_tenant_store(&t);
    booking_t b, queued;
    size_t read_len;
    char *read = a_booked_callback(&t, &b, &read_len);
    long long before = outbox_len(&t);

    a_change_of(&queued, &b, EG__STATE__STATE_QUEUED);
    queued.ev.dispatch = true;
    queued.ev.corr_id = "corr-transition";
    cr_assert_eq(transition(&t, read, read_len, &b, &queued, 0), EG_OK);

    cr_expect_eq(outbox_len(&t), before + 1, "exactly one new outbox entry");
    char k[200], evid[64];
    key_of(k, sizeof k, t.tenant, STORE_OUTBOX, NULL);
    Eg__Event *ev = outbox_last_event(t.store, k, evid, sizeof evid);
    cr_expect_str_eq(evid, queued.event_id, "the entry names the event");
    cr_expect_str_eq(ev->event_id, queued.event_id);
    cr_expect_str_eq(ev->corr_id, "corr-transition");
    cr_expect_eq(ev->at_ms, queued.ev.at_ms);
    cr_expect_eq(ev->from_state, EG__STATE__STATE_SCHEDULED);
    cr_expect(ev->dispatch);
    cr_assert_not_null(ev->callback);
    cr_expect_str_eq(ev->callback->id, b.id);
    cr_expect_eq(ev->callback->state, EG__STATE__STATE_QUEUED);
    cr_expect_eq(ev->callback->version, queued.cb.version);
    eg__event__free_unpacked(ev, NULL);

    Eg__Callback *got = NULL;
    cr_assert_eq(cb_store_get(t.store, t.tenant, b.id, &got, NULL, NULL), EG_OK);
    cr_expect_eq(got->state, EG__STATE__STATE_QUEUED, "the record changed with it");
    eg__callback__free_unpacked(got, NULL);
    key_of(k, sizeof k, t.tenant, STORE_DUE, SERVICE);
    cr_expect(ask_nil(t.store, "ZSCORE", k, b.id), "left the due index");
    key_of(k, sizeof k, t.tenant, STORE_QUEUE, SERVICE);
    cr_expect(!ask_nil(t.store, "ZSCORE", k, b.id), "entered the queue");
    free(read);
    close_tenant_store(&t);
}

Test(transition_script, a_completion_releases_the_slot_place_when_asked_and_the_live_count)
{
    tenant_store_t t;
    a_tenant_store(&t);
    booking_t b, done;
    size_t read_len;
    char *read = a_booked_callback(&t, &b, &read_len);
    cr_assert_eq(slot_used(&t, SLOT_10H), 1);
    cr_assert_eq(live_count(&t, PHONE_ANA), 1);

    a_change_of(&done, &b, EG__STATE__STATE_COMPLETED);
    done.cb.reason = EG__REASON__REASON_CANCELLED;
    cr_assert_eq(transition(&t, read, read_len, &b, &done, 1), EG_OK);
    cr_expect_eq(slot_used(&t, SLOT_10H), 0, "the place is free again");
    char k[200];
    key_of(k, sizeof k, t.tenant, STORE_NUMBER, PHONE_ANA);
    cr_expect(ask_nil(t.store, "HGET", k, "a:" SERVICE), "no live callback of the number left");
    char field[60];
    snprintf(field, sizeof field, "i:%s", b.id);
    cr_expect(!ask_nil(t.store, "HGET", k, field), "the number still finds the callback");
    key_of(k, sizeof k, t.tenant, STORE_DUE, SERVICE);
    cr_expect(ask_nil(t.store, "ZSCORE", k, b.id), "no longer due");
    free(read);
    close_tenant_store(&t);
}

Test(transition_script, a_completion_not_asked_to_release_keeps_the_slot_place)
{
    tenant_store_t t;
    a_tenant_store(&t);
    booking_t b, other, done;
    size_t read_len;
    char *read = a_booked_callback(&t, &b, &read_len);
    a_callback(&other, t.tenant, PHONE_ANA, SLOT_11H); /* a second live callback of the number */
    booked(&t, &other, no_slot());
    cr_assert_eq(live_count(&t, PHONE_ANA), 2);

    /* A callback that was dialled has used its slot: the place is not handed out again. */
    a_change_of(&done, &b, EG__STATE__STATE_COMPLETED);
    done.cb.reason = EG__REASON__REASON_AGENT_CONNECTED;
    cr_assert_eq(transition(&t, read, read_len, &b, &done, 0), EG_OK);
    cr_expect_eq(slot_used(&t, SLOT_10H), 1, "the place stays taken");
    cr_expect_eq(live_count(&t, PHONE_ANA), 1, "one live callback of the number left");
    free(read);
    close_tenant_store(&t);
}
