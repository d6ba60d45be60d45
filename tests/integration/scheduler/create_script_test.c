/* The create script (services/scheduler/callback_store.c, run by cb_store_create) against the
 * suite's redis-server: one atomic step that checks the Idempotency-Key, the id, the number's
 * limits and the slot's capacity, and only then writes the record, its indexes, the slot
 * counter and exactly one outbox entry. A refused create must write nothing at all: a client
 * told "full" or "limit" retries, and a half-written callback would be dialled anyway. */
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

/* Whether any key of the number exists (its HASH of ids and live counts). */
static bool number_known(tenant_store_t *t, const char *phone)
{
    char k[200];
    key_of(k, sizeof k, t->tenant, STORE_NUMBER, phone);
    return ask_int(t->store, "EXISTS", k, NULL) == 1;
}

static bool idem_key_set(tenant_store_t *t, const char *idem)
{
    char k[300];
    key_of(k, sizeof k, t->tenant, STORE_IDEM, idem);
    return !ask_nil(t->store, "GET", k, NULL);
}

static eg_status_t try_create(tenant_store_t *t, booking_t *b, cb_create_opts_t opts,
                              cb_create_result_t *res)
{
    return cb_store_create(t->store, &t->scripts, &b->cb, &b->ev, &opts, res, NULL);
}

Test(create_script, a_create_writes_the_record_its_indexes_one_slot_place_and_one_event)
{
    tenant_store_t t;
    a_tenant_store(&t);
    booking_t b;
    a_callback(&b, t.tenant, PHONE_ANA, SLOT_10H);
    booked(&t, &b, a_service_slot_of(3));

    Eg__Callback *got = NULL;
    cr_assert_eq(cb_store_get(t.store, t.tenant, b.id, &got, NULL, NULL), EG_OK, "record");
    cr_expect_str_eq(got->id, b.id);
    cr_expect_str_eq(got->tenant_id, t.tenant);
    cr_expect_str_eq(got->phone, PHONE_ANA);
    cr_expect_eq(got->state, EG__STATE__STATE_SCHEDULED);
    cr_expect_eq(got->desired_time_ms, SLOT_10H);
    cr_expect_str_eq(got->user_data_json, b.cb.user_data_json);
    eg__callback__free_unpacked(got, NULL);

    cr_expect_eq(slot_used(&t, SLOT_10H), 1, "the slot counter took one place");
    char k[200];
    key_of(k, sizeof k, t.tenant, STORE_DUE, SERVICE);
    cr_expect_eq(ask_int(t.store, "ZSCORE", k, b.id), SLOT_10H, "due at its slot");
    key_of(k, sizeof k, t.tenant, STORE_NUMBER, PHONE_ANA);
    cr_expect_eq(ask_int(t.store, "HGET", k, "a:" SERVICE), 1, "the number's live count");
    char field[60];
    snprintf(field, sizeof field, "i:%s", b.id);
    cr_expect_eq(ask_int(t.store, "HGET", k, field), b.cb.created_ms, "the number knows the id");

    cr_expect_eq(outbox_len(&t), 1, "exactly one outbox entry");
    char evid[64];
    key_of(k, sizeof k, t.tenant, STORE_OUTBOX, NULL);
    Eg__Event *ev = outbox_last_event(t.store, k, evid, sizeof evid);
    cr_expect_str_eq(evid, b.event_id);
    cr_expect_str_eq(ev->event_id, b.event_id);
    cr_assert_not_null(ev->callback);
    cr_expect_str_eq(ev->callback->id, b.id);
    cr_expect_eq(ev->callback->state, EG__STATE__STATE_SCHEDULED);
    eg__event__free_unpacked(ev, NULL);
    close_tenant_store(&t);
}

Test(create_script, a_full_slot_refuses_with_its_count_and_writes_nothing)
{
    tenant_store_t t;
    a_tenant_store(&t);
    booking_t first, second;
    a_callback(&first, t.tenant, PHONE_ANA, SLOT_10H);
    booked(&t, &first, a_service_slot_of(1));

    a_callback(&second, t.tenant, PHONE_BEN, SLOT_10H);
    cb_create_result_t res;
    eg_status_t st =
        try_create(&t, &second, with_idempotency_key(a_service_slot_of(1), "full-1"), &res);
    cr_assert_eq(st, EG_EFULL, "%s", eg_status_str(st));
    cr_expect_eq(res.count, 1, "the places booked in the slot (what the API reports)");

    size_t len;
    cr_expect_null(stored_blob(&t, second.id, &len), "no record");
    cr_expect_eq(slot_used(&t, SLOT_10H), 1, "the counter is unchanged");
    cr_expect_eq(outbox_len(&t), 1, "no outbox entry beyond the first create's");
    cr_expect(!number_known(&t, PHONE_BEN), "nothing of the refused number");
    cr_expect(!idem_key_set(&t, "full-1"), "the key is not spent: a retry may still book");
    char k[200];
    key_of(k, sizeof k, t.tenant, STORE_DUE, SERVICE);
    cr_expect_eq(ask_int(t.store, "ZCARD", k, NULL), 1, "not in the due index");
    close_tenant_store(&t);
}

Test(create_script, the_per_number_active_limit_refuses_with_the_count)
{
    tenant_store_t t;
    a_tenant_store(&t);
    cb_create_opts_t two_live = at_most_active_per_number(no_slot(), 2);
    booking_t b[3];
    for (int i = 0; i < 2; i++) {
        a_callback(&b[i], t.tenant, PHONE_ANA, SLOT_10H + i * HOUR_MS);
        booked(&t, &b[i], two_live);
    }
    a_callback(&b[2], t.tenant, PHONE_ANA, SLOT_12H);
    cb_create_result_t res;
    eg_status_t st = try_create(&t, &b[2], two_live, &res);
    cr_assert_eq(st, EG_ELIMIT, "%s", eg_status_str(st));
    cr_expect_eq(res.limit_kind, CB_LIMIT_ACTIVE);
    cr_expect_eq(res.count, 2);

    size_t len;
    cr_expect_null(stored_blob(&t, b[2].id, &len), "no record");
    cr_expect_eq(outbox_len(&t), 2, "no outbox entry for the refused create");
    char k[200];
    key_of(k, sizeof k, t.tenant, STORE_NUMBER, PHONE_ANA);
    cr_expect_eq(ask_int(t.store, "HGET", k, "a:" SERVICE), 2, "the live count is unchanged");
    cr_expect_eq(ask_int(t.store, "HLEN", k, NULL), 3, "two ids and the live count, no more");

    booking_t other;
    a_callback(&other, t.tenant, PHONE_BEN, SLOT_12H);
    cr_expect_eq(try_create(&t, &other, two_live, &res), EG_OK, "another number is not limited");
    close_tenant_store(&t);
}

Test(create_script, the_per_day_limit_refuses_with_the_count_and_forgets_creates_after_24_hours)
{
    tenant_store_t t;
    a_tenant_store(&t);
    cb_create_opts_t two_a_day = at_most_per_number_per_day(no_slot(), 2);
    booking_t old, b[3];
    a_callback(&old, t.tenant, PHONE_ANA, SLOT_10H);
    old.cb.created_ms -= DAY_MS + HOUR_MS; /* booked 25 hours ago: no longer counts */
    old.cb.updated_ms = old.cb.created_ms;
    booked(&t, &old, two_a_day);
    for (int i = 0; i < 2; i++) {
        a_callback(&b[i], t.tenant, PHONE_ANA, SLOT_11H);
        booked(&t, &b[i], two_a_day);
    }
    a_callback(&b[2], t.tenant, PHONE_ANA, SLOT_12H);
    cb_create_result_t res;
    eg_status_t st = try_create(&t, &b[2], two_a_day, &res);
    cr_assert_eq(st, EG_ELIMIT, "%s", eg_status_str(st));
    cr_expect_eq(res.limit_kind, CB_LIMIT_PER_DAY);
    cr_expect_eq(res.count, 2, "the creates of the last 24 hours");

    size_t len;
    cr_expect_null(stored_blob(&t, b[2].id, &len), "no record");
    cr_expect_eq(outbox_len(&t), 3, "no outbox entry for the refused create");
    char k[200];
    key_of(k, sizeof k, t.tenant, STORE_NUMBER, PHONE_ANA);
    cr_expect_eq(ask_int(t.store, "HGET", k, "a:" SERVICE), 3, "the live count is unchanged");
    close_tenant_store(&t);
}

Test(create_script, the_same_idempotency_key_answers_the_first_id_and_writes_nothing_new)
{
    tenant_store_t t;
    a_tenant_store(&t);
    cb_create_opts_t keyed = with_idempotency_key(a_service_slot_of(5), "order-A-17");
    booking_t first, retry;
    a_callback(&first, t.tenant, PHONE_ANA, SLOT_10H);
    booked(&t, &first, keyed);
    cr_expect(idem_key_set(&t, "order-A-17"));

    a_callback(&retry, t.tenant, PHONE_ANA, SLOT_10H); /* the api drew a new id for the retry */
    cb_create_result_t res;
    eg_status_t st = try_create(&t, &retry, keyed, &res);
    cr_assert_eq(st, EG_OK, "%s", eg_status_str(st));
    cr_expect(res.replayed, "a replay");
    cr_expect_str_eq(res.existing_id, first.id, "the first create's id");

    size_t len;
    cr_expect_null(stored_blob(&t, retry.id, &len), "no second record");
    cr_expect_eq(slot_used(&t, SLOT_10H), 1, "one place, not two");
    cr_expect_eq(outbox_len(&t), 1, "one event, not two");
    char k[200];
    key_of(k, sizeof k, t.tenant, STORE_NUMBER, PHONE_ANA);
    cr_expect_eq(ask_int(t.store, "HGET", k, "a:" SERVICE), 1, "one live callback");
    close_tenant_store(&t);
}

Test(create_script, an_existing_id_is_refused_and_nothing_changes)
{
    tenant_store_t t;
    a_tenant_store(&t);
    booking_t first, again;
    a_callback(&first, t.tenant, PHONE_ANA, SLOT_10H);
    booked(&t, &first, a_service_slot_of(5));
    size_t before_len, after_len;
    char *before = stored_blob(&t, first.id, &before_len);
    cr_assert_not_null(before);

    /* Another create under the same id: another number, slot and data. */
    a_callback(&again, t.tenant, PHONE_BEN, SLOT_11H);
    memcpy(again.id, first.id, sizeof again.id);
    again.cb.user_data_json = "{\"order\":\"B-2\"}";
    cb_create_result_t res;
    eg_status_t st = try_create(&t, &again, a_service_slot_of(5), &res);
    cr_assert_eq(st, EG_ECONFLICT, "%s", eg_status_str(st));

    char *after = stored_blob(&t, first.id, &after_len);
    cr_assert_not_null(after);
    cr_expect(before_len == after_len && memcmp(before, after, before_len) == 0,
              "the record is the first one");
    cr_expect_eq(slot_used(&t, SLOT_10H), 1);
    cr_expect_eq(slot_used(&t, SLOT_11H), 0, "no place taken in the other slot");
    cr_expect_eq(outbox_len(&t), 1, "no second event");
    cr_expect(!number_known(&t, PHONE_BEN), "the other number was not touched");
    free(before);
    free(after);
    close_tenant_store(&t);
}
