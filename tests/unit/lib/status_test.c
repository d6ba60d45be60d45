/* lib/status.c: every status has a stable name and an HTTP code; the API's mapping. */
#include <criterion/criterion.h>

#include <string.h>

#include "engage/status.h"

Test(status, every_status_has_a_distinct_name)
{
    for (int i = 0; i < EG_STATUS_COUNT; i++) {
        const char *name = eg_status_str((eg_status_t)i);
        cr_assert_not_null(name, "status %d has no name", i);
        cr_assert_eq(strncmp(name, "EG_", 3), 0, "status %d named '%s'", i, name);
        cr_assert_str_neq(name, "EG_UNKNOWN", "status %d has no name", i);
        for (int j = 0; j < i; j++)
            cr_assert_str_neq(name, eg_status_str((eg_status_t)j), "statuses %d and %d share %s", i,
                              j, name);
    }
}

Test(status, names_match_the_enum)
{
    cr_assert_str_eq(eg_status_str(EG_OK), "EG_OK");
    cr_assert_str_eq(eg_status_str(EG_EINVAL), "EG_EINVAL");
    cr_assert_str_eq(eg_status_str(EG_ENOTFOUND), "EG_ENOTFOUND");
    cr_assert_str_eq(eg_status_str(EG_EFULL), "EG_EFULL");
    cr_assert_str_eq(eg_status_str(EG_EAUTH), "EG_EAUTH");
    cr_assert_str_eq(eg_status_str(EG_EUNAVAIL), "EG_EUNAVAIL");
    cr_assert_str_eq(eg_status_str(EG_EINTERNAL), "EG_EINTERNAL");
}

Test(status, every_status_has_an_http_code)
{
    for (int i = 0; i < EG_STATUS_COUNT; i++) {
        int code = eg_status_http((eg_status_t)i);
        cr_assert(code >= 200 && code <= 599, "status %s maps to %d", eg_status_str(i), code);
        if (i != EG_OK)
            cr_assert_geq(code, 400, "error %s maps to success %d", eg_status_str(i), code);
    }
}

Test(status, api_mapping)
{
    cr_assert_eq(eg_status_http(EG_OK), 200);
    cr_assert_eq(eg_status_http(EG_EINVAL), 400);
    cr_assert_eq(eg_status_http(EG_ENOTFOUND), 404);
    cr_assert_eq(eg_status_http(EG_EAUTH), 401);
    cr_assert_eq(eg_status_http(EG_EFORBIDDEN), 403);
    cr_assert_eq(eg_status_http(EG_EFULL), 429);
    cr_assert_eq(eg_status_http(EG_EUNAVAIL), 503);
    cr_assert_eq(eg_status_http(EG_ETIMEOUT), 503);
    cr_assert_eq(eg_status_http(EG_ETOOBIG), 413);
    cr_assert_eq(eg_status_http(EG_EINTERNAL), 500);
}

Test(status, out_of_range_is_unknown_and_500)
{
    cr_assert_str_eq(eg_status_str(EG_STATUS_COUNT), "EG_UNKNOWN");
    cr_assert_str_eq(eg_status_str((eg_status_t)-1), "EG_UNKNOWN");
    cr_assert_str_eq(eg_status_str((eg_status_t)1000), "EG_UNKNOWN");
    cr_assert_eq(eg_status_http(EG_STATUS_COUNT), 500);
    cr_assert_eq(eg_status_http((eg_status_t)-1), 500);
}
