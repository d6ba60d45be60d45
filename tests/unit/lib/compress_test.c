/* Deflate/inflate of stored text. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage/compress.h"

Test(compress, json_round_trips_and_shrinks)
{
    char json[2048];
    size_t n = 0;
    n += (size_t)snprintf(json, sizeof json, "{");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(json + n, sizeof json - n, "%s\"field%d\":\"value %d\"", i ? "," : "",
                              i, i * 7);
    n += (size_t)snprintf(json + n, sizeof json - n, "}");
    uint8_t *z = NULL;
    size_t zlen = 0;
    cr_assert_eq(eg_deflate(json, n, &z, &zlen), EG_OK);
    cr_expect_lt(zlen, n / 2, "typical JSON at least halves (%zu of %zu)", zlen, n);
    char *back = NULL;
    size_t blen = 0;
    cr_assert_eq(eg_inflate(z, zlen, 1 << 20, &back, &blen), EG_OK);
    cr_expect_eq(blen, n);
    cr_expect_str_eq(back, json, "inflated text is NUL-terminated and equal");
    free(back);
    /* A limit below the real size refuses instead of truncating. */
    cr_expect_eq(eg_inflate(z, zlen, n - 1, &back, &blen), EG_EINVAL);
    free(z);
}

Test(compress, incompressible_input_is_left_as_it_is)
{
    uint8_t noise[64], *z = NULL;
    size_t zlen = 0;
    for (size_t i = 0; i < sizeof noise; i++)
        noise[i] = (uint8_t)(i * 151 + 89);
    cr_expect_eq(eg_deflate("ab", 2, &z, &zlen), EG_EFULL, "too short to gain");
    cr_expect_null(z);
    cr_expect_eq(eg_deflate("", 0, &z, &zlen), EG_EFULL);
}

Test(compress, garbage_does_not_inflate)
{
    char *out = NULL;
    size_t n = 0;
    cr_expect_eq(eg_inflate("not deflate at all", 18, 1024, &out, &n), EG_EINVAL);
    cr_expect_null(out);
}
