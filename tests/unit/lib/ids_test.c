/* lib/ids.c: UUIDv7 generation (layout, ordering, embedded time) and parsing of any UUID. */
#include <criterion/criterion.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "engage/ids.h"
#include "engage/timeutil.h"

#define MANY 10000

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Asserts s is canonical lower-case 8-4-4-4-12 text. */
static void assert_canonical(const char *s)
{
    cr_assert_eq(strlen(s), EG_UUID_STR_LEN, "bad length: %s", s);
    for (size_t i = 0; i < EG_UUID_STR_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            cr_assert_eq(s[i], '-', "no hyphen at %zu: %s", i, s);
        else
            cr_assert(hexval(s[i]) >= 0, "not lower-case hex at %zu: %s", i, s);
    }
}

Test(ids, v7_has_version_7_and_rfc_variant)
{
    for (int i = 0; i < 100; i++) {
        eg_uuid_t id;
        char s[EG_UUID_STR_LEN + 1];

        eg_uuid_v7(&id);
        cr_assert_eq(id.b[6] >> 4, 7, "version nibble is %d", id.b[6] >> 4);
        cr_assert_eq(id.b[8] >> 6, 2, "variant bits are %d", id.b[8] >> 6);

        eg_uuid_format(&id, s);
        assert_canonical(s);
        cr_assert_eq(s[14], '7');
        cr_assert(strchr("89ab", s[19]) != NULL, "variant digit %c", s[19]);
    }
}

Test(ids, v7_str_is_canonical_and_valid)
{
    char s[EG_UUID_STR_LEN + 1];

    memset(s, 'X', sizeof s);
    eg_uuid_v7_str(s);
    assert_canonical(s);
    cr_assert_eq(s[14], '7');
    cr_assert(eg_uuid_valid(s));
}

Test(ids, many_v7_are_strictly_increasing_and_unique)
{
    char(*ids)[EG_UUID_STR_LEN + 1] = malloc(MANY * sizeof *ids);

    cr_assert_not_null(ids);
    for (int i = 0; i < MANY; i++)
        eg_uuid_v7_str(ids[i]);
    for (int i = 1; i < MANY; i++)
        cr_assert(strcmp(ids[i - 1], ids[i]) < 0, "id %d (%s) is not after id %d (%s)", i, ids[i],
                  i - 1, ids[i - 1]);
    /* Strictly increasing implies unique; check again with a sort so a wrap-around of the
     * sequence could not hide a duplicate. */
    qsort(ids, MANY, sizeof *ids, cmp_id);
    for (int i = 1; i < MANY; i++)
        cr_assert_str_neq(ids[i - 1], ids[i], "duplicate id %s", ids[i]);
    free(ids);
}

Test(ids, v7_ms_is_close_to_now)
{
    int64_t before = eg_now_ms();
    eg_uuid_t id;

    eg_uuid_v7(&id);
    int64_t after = eg_now_ms();
    int64_t ms = eg_uuid_v7_ms(&id);

    /* A counter overflow may borrow the next millisecond: allow a little slack after. */
    cr_assert_geq(ms, before - 1);
    cr_assert_leq(ms, after + 5);
}

Test(ids, v7_ms_reads_the_first_48_bits)
{
    eg_uuid_t id;

    cr_assert_eq(eg_uuid_parse("0192f0a3-7b2c-7def-8123-456789abcdef", 36, &id), EG_OK);
    cr_assert_eq(eg_uuid_v7_ms(&id), (int64_t)0x0192f0a37b2cLL);
}

Test(ids, parse_accepts_lower_upper_and_mixed_case)
{
    const char *lower = "0192f0a3-7b2c-7def-8123-456789abcdef";
    const char *upper = "0192F0A3-7B2C-7DEF-8123-456789ABCDEF";
    const char *mixed = "0192f0A3-7b2C-7DeF-8123-456789aBcDeF";
    eg_uuid_t a, b, c;

    cr_assert_eq(eg_uuid_parse(lower, strlen(lower), &a), EG_OK);
    cr_assert_eq(eg_uuid_parse(upper, strlen(upper), &b), EG_OK);
    cr_assert_eq(eg_uuid_parse(mixed, strlen(mixed), &c), EG_OK);
    cr_assert_arr_eq(a.b, b.b, 16);
    cr_assert_arr_eq(a.b, c.b, 16);
    cr_assert_eq(a.b[0], 0x01);
    cr_assert_eq(a.b[15], 0xef);
}

Test(ids, parse_accepts_v4_and_other_versions)
{
    const char *ok[] = {
        "f47ac10b-58cc-4372-a567-0e02b2c3d479", /* v4 */
        "6ba7b810-9dad-11d1-80b4-00c04fd430c8", /* v1 */
        "00000000-0000-0000-0000-000000000000", /* nil */
        "ffffffff-ffff-ffff-ffff-ffffffffffff", /* max */
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        eg_uuid_t id;
        cr_assert_eq(eg_uuid_parse(ok[i], strlen(ok[i]), &id), EG_OK, "%s refused", ok[i]);
        cr_assert(eg_uuid_valid(ok[i]), "%s not valid", ok[i]);
    }
}

Test(ids, parse_rejects_malformed)
{
    const char *bad[] = {
        "",
        "f47ac10b-58cc-4372-a567-0e02b2c3d47",   /* 35 */
        "f47ac10b-58cc-4372-a567-0e02b2c3d4790", /* 37 */
        "f47ac10b58cc4372a5670e02b2c3d479",      /* no hyphens */
        "f47ac10b-58cc4-372-a567-0e02b2c3d479",  /* hyphen moved */
        "f47ac10b_58cc_4372_a567_0e02b2c3d479",  /* other separator */
        "f47ac10g-58cc-4372-a567-0e02b2c3d479",  /* 'g' */
        "f47ac10b-58cc-4372-a567-0e02b2c3d47 ",  /* space */
        "{47ac10b-58cc-4372-a567-0e02b2c3d479}", /* braces */
        "f47ac10b-58cc-4372-a567+0e02b2c3d479",  /* '+' */
        "-f47ac10b-58cc-4372-a567-0e02b2c3d47",  /* leading hyphen */
        "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        eg_uuid_t id;
        cr_assert_eq(eg_uuid_parse(bad[i], strlen(bad[i]), &id), EG_EINVAL, "'%s' accepted",
                     bad[i]);
        cr_assert_not(eg_uuid_valid(bad[i]), "'%s' valid", bad[i]);
    }
    cr_assert_not(eg_uuid_valid(NULL));
}

Test(ids, parse_honours_len_not_nul)
{
    /* A valid id followed by more bytes: only the first 36 are looked at when len says so,
     * and a len that does not match is refused. */
    const char *s = "f47ac10b-58cc-4372-a567-0e02b2c3d479EXTRA";
    eg_uuid_t id;

    cr_assert_eq(eg_uuid_parse(s, 36, &id), EG_OK);
    cr_assert_eq(eg_uuid_parse(s, strlen(s), &id), EG_EINVAL);
    cr_assert_eq(eg_uuid_parse(s, 35, &id), EG_EINVAL);
    cr_assert_eq(eg_uuid_parse(NULL, 36, &id), EG_EINVAL);
}

Test(ids, format_of_parse_is_lower_case_of_input)
{
    const char *in[] = {
        "F47AC10B-58CC-4372-A567-0E02B2C3D479",
        "0192f0A3-7b2C-7DeF-8123-456789aBcDeF",
        "00000000-0000-0000-0000-000000000000",
        "abcdef01-2345-6789-abcd-ef0123456789",
    };
    for (size_t i = 0; i < sizeof in / sizeof *in; i++) {
        eg_uuid_t id;
        char out[EG_UUID_STR_LEN + 1], want[EG_UUID_STR_LEN + 1];

        for (size_t j = 0; j <= EG_UUID_STR_LEN; j++)
            want[j] = (char)tolower((unsigned char)in[i][j]);
        cr_assert_eq(eg_uuid_parse(in[i], strlen(in[i]), &id), EG_OK);
        eg_uuid_format(&id, out);
        cr_assert_str_eq(out, want);
    }
}

Test(ids, format_then_parse_round_trips_v7)
{
    for (int i = 0; i < 100; i++) {
        eg_uuid_t a, b;
        char s[EG_UUID_STR_LEN + 1];

        eg_uuid_v7(&a);
        eg_uuid_format(&a, s);
        cr_assert_eq(eg_uuid_parse(s, strlen(s), &b), EG_OK);
        cr_assert_arr_eq(a.b, b.b, 16);
    }
}

Test(ids, random_bytes_fill_the_buffer)
{
    unsigned char a[64], b[64], zero[64] = {0};

    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    eg_random_bytes(a, sizeof a);
    eg_random_bytes(b, sizeof b);
    /* 512 random bits equal to zero or to another draw: never, in practice. */
    cr_assert_arr_neq(a, zero, sizeof a);
    cr_assert_arr_neq(a, b, sizeof a);
}
