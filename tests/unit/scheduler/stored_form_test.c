/* The stored form of a callback record: user data deflated, and back exactly. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "callback_store.h"

Test(stored_form, long_user_data_is_deflated_and_comes_back_unchanged)
{
    char json[4096];
    size_t n = (size_t)snprintf(json, sizeof json, "{\"note\":\"");
    for (int i = 0; i < 200; i++)
        n += (size_t)snprintf(json + n, sizeof json - n, "order %d, ", i);
    snprintf(json + n, sizeof json - n, "\"}");
    Eg__Callback cb = EG__CALLBACK__INIT;
    cb.id = "01936f3e-0000-7000-8000-000000000001";
    cb.phone = "+15550100";
    cb.user_data_json = json;
    size_t len = 0, plain = eg__callback__get_packed_size(&cb);
    uint8_t *blob = cb_store_pack(&cb, &len);
    cr_expect_lt(len, plain / 2, "stored %zu bytes for %zu of protobuf", len, plain);
    Eg__Callback *back = cb_store_unpack("t-1", cb.id, blob, len);
    cr_assert_not_null(back);
    cr_expect_str_eq(back->user_data_json, json);
    cr_expect_str_eq(back->id, cb.id, "the id comes back from the key");
    cr_expect_str_eq(back->tenant_id, "t-1");
    cr_expect_eq(back->user_data_z.len, 0, "the deflated copy is not handed on");
    cr_expect_str_eq(back->phone, cb.phone);
    eg__callback__free_unpacked(back, NULL);
    free(blob);
}

Test(stored_form, short_user_data_is_stored_as_it_is)
{
    Eg__Callback cb = EG__CALLBACK__INIT;
    cb.id = "01936f3e-0000-7000-8000-000000000002";
    cb.user_data_json = "{\"a\":1}";
    size_t len = 0;
    uint8_t *blob = cb_store_pack(&cb, &len);
    cr_expect_eq(len, eg__callback__get_packed_size(&cb) - 38, "the id is not stored");
    Eg__Callback *back = cb_store_unpack("t-2", cb.id, blob, len);
    cr_assert_not_null(back);
    cr_expect_str_eq(back->user_data_json, "{\"a\":1}");
    eg__callback__free_unpacked(back, NULL);
    free(blob);
    cr_expect_null(cb_store_unpack("t", "i", "\xff\xff\xff", 3), "garbage is refused");
}
