/* The reschedule script (services/scheduler/callback_store.c, run by cb_store_reschedule)
 * against the suite's redis-server: moving a SCHEDULED callback to another slot takes a place
 * in the new slot and gives back the one in the old slot in the same step, refuses (moving
 * nothing) when the new slot is full, and is a compare-and-set like every write. */
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

/* next: prev moved to the slot starting at slot_ms (its new desired and due time). */
static void moved_to(booking_t *next, const booking_t *prev, int64_t slot_ms)
{
    a_change_of(next, prev, EG__STATE__STATE_SCHEDULED);
    next->cb.desired_time_ms = slot_ms;
    next->cb.due_ms = slot_ms;
    next->cb.slot_start_ms = slot_ms;
}

static eg_status_t reschedule(tenant_store_t *t, const char *old, size_t old_len,
                              const booking_t *prev, const booking_t *next, int capacity, int *used)
{
    return cb_store_reschedule(t->store, &t->scripts, old, old_len, &prev->cb, &next->cb, capacity,
                               &next->ev, used, NULL);
}

Test(reschedule_script, the_place_moves_from_the_old_slot_to_the_new_one)
{
    tenant_store_t t;
    a_tenant_store(&t);
    booking_t b, stays, later;
    a_callback(&b, t.tenant, PHONE_ANA, SLOT_10H);
    booked(&t, &b, a_service_slot_of(2));
    a_callback(&stays, t.tenant, PHONE_BEN, SLOT_10H);
    booked(&t, &stays, a_service_slot_of(2));
    size_t read_len;
    char *read = stored_blob(&t, b.id, &read_len);
    cr_assert_eq(slot_used(&t, SLOT_10H), 2);

    moved_to(&later, &b, SLOT_12H);
    int used = -1;
    eg_status_t st = reschedule(&t, read, read_len, &b, &later, 2, &used);
    cr_assert_eq(st, EG_OK, "%s", eg_status_str(st));
    cr_expect_eq(slot_used(&t, SLOT_10H), 1, "the old slot gave back one place");
    cr_expect_eq(slot_used(&t, SLOT_12H), 1, "the new slot took one");

    Eg__Callback *got = NULL;
    cr_assert_eq(cb_store_get(t.store, t.tenant, b.id, &got, NULL, NULL), EG_OK);
    cr_expect_eq(got->desired_time_ms, SLOT_12H);
    cr_expect_eq(got->slot_start_ms, SLOT_12H);
    eg__callback__free_unpacked(got, NULL);
    char k[200], evid[64];
    key_of(k, sizeof k, t.tenant, STORE_DUE, SERVICE);
    cr_expect_eq(ask_int(t.store, "ZSCORE", k, b.id), SLOT_12H, "due at the new time");
    cr_expect_eq(outbox_len(&t), 3, "one event for the move");
    key_of(k, sizeof k, t.tenant, STORE_OUTBOX, NULL);
    Eg__Event *ev = outbox_last_event(t.store, k, evid, sizeof evid);
    cr_expect_str_eq(ev->event_id, later.event_id);
    cr_expect_eq(ev->callback->desired_time_ms, SLOT_12H);
    eg__event__free_unpacked(ev, NULL);
    free(read);
    close_tenant_store(&t);
}

Test(reschedule_script, the_last_place_of_a_slot_given_back_leaves_it_empty_and_bookable)
{
    tenant_store_t t;
    a_tenant_store(&t);
    booking_t b, later, newcomer;
    a_callback(&b, t.tenant, PHONE_ANA, SLOT_10H);
    booked(&t, &b, a_service_slot_of(1));
    size_t read_len;
    char *read = stored_blob(&t, b.id, &read_len);

    moved_to(&later, &b, SLOT_11H);
    cr_assert_eq(reschedule(&t, read, read_len, &b, &later, 1, NULL), EG_OK);
    cr_expect_eq(slot_used(&t, SLOT_10H), 0);
    a_callback(&newcomer, t.tenant, PHONE_BEN, SLOT_10H);
    cb_create_result_t res;
    cb_create_opts_t one = a_service_slot_of(1);
    cr_expect_eq(cb_store_create(t.store, &t.scripts, &newcomer.cb, &newcomer.ev, &one, &res, NULL),
                 EG_OK, "the freed place can be booked");
    free(read);
    close_tenant_store(&t);
}

Test(reschedule_script, a_full_target_slot_refuses_and_moves_nothing)
{
    tenant_store_t t;
    a_tenant_store(&t);
    booking_t b, occupant, later;
    a_callback(&b, t.tenant, PHONE_ANA, SLOT_10H);
    booked(&t, &b, a_service_slot_of(1));
    a_callback(&occupant, t.tenant, PHONE_BEN, SLOT_12H);
    booked(&t, &occupant, a_service_slot_of(1));
    size_t read_len;
    char *read = stored_blob(&t, b.id, &read_len);
    long long events = outbox_len(&t);

    moved_to(&later, &b, SLOT_12H);
    int used = -1;
    eg_status_t st = reschedule(&t, read, read_len, &b, &later, 1, &used);
    cr_assert_eq(st, EG_EFULL, "%s", eg_status_str(st));
    cr_expect_eq(used, 1, "the places booked in the target slot");

    cr_expect_eq(slot_used(&t, SLOT_10H), 1, "the old slot keeps its place");
    cr_expect_eq(slot_used(&t, SLOT_12H), 1, "the target slot is unchanged");
    size_t now_len;
    char *now = stored_blob(&t, b.id, &now_len);
    cr_assert_not_null(now);
    cr_expect(now_len == read_len && memcmp(now, read, read_len) == 0, "the record is unchanged");
    char k[200];
    key_of(k, sizeof k, t.tenant, STORE_DUE, SERVICE);
    cr_expect_eq(ask_int(t.store, "ZSCORE", k, b.id), SLOT_10H, "still due at the old time");
    cr_expect_eq(outbox_len(&t), events, "no event");
    free(read);
    free(now);
    close_tenant_store(&t);
}

Test(reschedule_script, a_stale_blob_is_a_conflict_and_moves_nothing)
{
    tenant_store_t t;
    a_tenant_store(&t);
    booking_t b, first_move, second_move;
    a_callback(&b, t.tenant, PHONE_ANA, SLOT_10H);
    booked(&t, &b, a_service_slot_of(3));
    size_t read_len;
    char *read = stored_blob(&t, b.id, &read_len);

    moved_to(&first_move, &b, SLOT_11H);
    cr_assert_eq(reschedule(&t, read, read_len, &b, &first_move, 3, NULL), EG_OK);
    long long events = outbox_len(&t);
    moved_to(&second_move, &b, SLOT_12H); /* read the same blob: lost the race */
    cr_expect_eq(reschedule(&t, read, read_len, &b, &second_move, 3, NULL), EG_ECONFLICT);
    cr_expect_eq(slot_used(&t, SLOT_10H), 0);
    cr_expect_eq(slot_used(&t, SLOT_11H), 1, "the first move holds");
    cr_expect_eq(slot_used(&t, SLOT_12H), 0, "the lost one took no place");
    cr_expect_eq(outbox_len(&t), events, "no event for the lost move");
    free(read);
    close_tenant_store(&t);
}
