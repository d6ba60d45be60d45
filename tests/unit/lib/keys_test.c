/* lib/keys.c: API key generation, splitting, keyed hashing and comparison. */
#include <criterion/criterion.h>

#include <string.h>

#include "engage/keys.h"

static bool is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

#define GOOD_ID "0123456789abcdef"
#define GOOD_SECRET "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define GOOD_KEY GOOD_ID "." GOOD_SECRET

Test(keys, generate_has_the_key_shape)
{
    char key[EG_KEY_LEN + 1], id[EG_KEY_ID_LEN + 1];

    memset(key, 'X', sizeof key);
    memset(id, 'X', sizeof id);
    eg_key_generate(key, id);
    cr_assert_eq(strlen(key), 16 + 1 + 64);
    cr_assert_eq(strlen(id), 16);
    cr_assert(is_lower_hex(key, 16), "id part not hex: %s", key);
    cr_assert_eq(key[16], '.');
    cr_assert(is_lower_hex(key + 17, 64), "secret not hex: %s", key);
    cr_assert_eq(strncmp(key, id, 16), 0, "id %s is not the key's prefix %s", id, key);
}

Test(keys, generated_keys_differ)
{
    char k1[EG_KEY_LEN + 1], k2[EG_KEY_LEN + 1], i1[EG_KEY_ID_LEN + 1], i2[EG_KEY_ID_LEN + 1];

    eg_key_generate(k1, i1);
    eg_key_generate(k2, i2);
    cr_assert_str_neq(i1, i2);
    cr_assert_str_neq(k1 + 17, k2 + 17);
}

Test(keys, split_round_trips_a_generated_key)
{
    char key[EG_KEY_LEN + 1], id[EG_KEY_ID_LEN + 1];
    char sid[EG_KEY_ID_LEN + 1], secret[EG_KEY_SECRET_LEN + 1];

    eg_key_generate(key, id);
    cr_assert_eq(eg_key_split(key, sid, secret), EG_OK);
    cr_assert_str_eq(sid, id);
    cr_assert_str_eq(secret, key + 17);
    cr_assert_eq(strlen(secret), 64);
}

Test(keys, split_a_known_key)
{
    char sid[EG_KEY_ID_LEN + 1], secret[EG_KEY_SECRET_LEN + 1];

    cr_assert_eq(eg_key_split(GOOD_KEY, sid, secret), EG_OK);
    cr_assert_str_eq(sid, GOOD_ID);
    cr_assert_str_eq(secret, GOOD_SECRET);
}

Test(keys, split_rejects_wrong_shapes)
{
    const char *bad[] = {
        "",
        GOOD_ID GOOD_SECRET "0", /* no dot, right length */
        GOOD_ID GOOD_SECRET,     /* no dot */
        GOOD_ID "."
                "00112233",                 /* short secret */
        "0123456789abcde." GOOD_SECRET "0", /* short id, dot moved */
        "0123456789ABCDEF." GOOD_SECRET,    /* upper-case id */
        GOOD_ID "."
                "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff",
        GOOD_KEY "0",                    /* extra character */
        GOOD_KEY " ",                    /* trailing space */
        " " GOOD_KEY,                    /* leading space */
        GOOD_ID ":" GOOD_SECRET,         /* other separator */
        "0123456789abcdeg." GOOD_SECRET, /* non-hex in id */
        GOOD_ID "."
                "0011223344556677889gaabbccddeeff00112233445566778899aabbccddeeff",
        GOOD_ID ".."
                "0112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
        ".",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char sid[EG_KEY_ID_LEN + 1], secret[EG_KEY_SECRET_LEN + 1];
        cr_assert_eq(eg_key_split(bad[i], sid, secret), EG_EAUTH, "'%s' accepted", bad[i]);
    }
}

Test(keys, split_rejects_null)
{
    char sid[EG_KEY_ID_LEN + 1], secret[EG_KEY_SECRET_LEN + 1];

    cr_assert_eq(eg_key_split(NULL, sid, secret), EG_EAUTH);
}

Test(keys, hash_is_deterministic_hex_per_pepper)
{
    char h1[EG_KEY_HASH_HEX_LEN + 1], h2[EG_KEY_HASH_HEX_LEN + 1];

    cr_assert_eq(eg_key_hash_hex("pepper-1", GOOD_SECRET, h1), EG_OK);
    cr_assert_eq(eg_key_hash_hex("pepper-1", GOOD_SECRET, h2), EG_OK);
    cr_assert_str_eq(h1, h2);
    cr_assert_eq(strlen(h1), EG_KEY_HASH_HEX_LEN);
    cr_assert(is_lower_hex(h1, EG_KEY_HASH_HEX_LEN), "hash not hex: %s", h1);
    cr_assert_str_neq(h1, GOOD_SECRET, "hash is the secret in clear");
}

Test(keys, hash_differs_by_pepper_and_by_secret)
{
    char a[EG_KEY_HASH_HEX_LEN + 1], b[EG_KEY_HASH_HEX_LEN + 1], c[EG_KEY_HASH_HEX_LEN + 1];
    char other[] = GOOD_SECRET;

    other[63] = other[63] == '0' ? '1' : '0';
    cr_assert_eq(eg_key_hash_hex("pepper-1", GOOD_SECRET, a), EG_OK);
    cr_assert_eq(eg_key_hash_hex("pepper-2", GOOD_SECRET, b), EG_OK);
    cr_assert_eq(eg_key_hash_hex("pepper-1", other, c), EG_OK);
    cr_assert_str_neq(a, b, "pepper does not change the hash");
    cr_assert_str_neq(a, c, "secret does not change the hash");
}

Test(keys, hash_matches_a_known_answer)
{
    /* BLAKE2b-256 keyed with BLAKE2b-256(pepper), computed independently (Python hashlib):
     * stored hashes must stay valid across builds. */
    char h[EG_KEY_HASH_HEX_LEN + 1];

    cr_assert_eq(eg_key_hash_hex("pepper-1", GOOD_SECRET, h), EG_OK);
    cr_assert_str_eq(h, "a5083713d1f51906fb08848a9a3dfaf40df17822e79d0a1241fabb6d09d5b07b");
}

Test(keys, hash_is_keyed_not_plain)
{
    /* The keyed hash must not be the unkeyed hash of the secret: otherwise the pepper would
     * add nothing. */
    char keyed[EG_KEY_HASH_HEX_LEN + 1], plain[EG_KEY_HASH_HEX_LEN + 1];

    cr_assert_eq(eg_key_hash_hex("pepper-1", GOOD_SECRET, keyed), EG_OK);
    eg_hash_hex(GOOD_SECRET, strlen(GOOD_SECRET), plain);
    cr_assert_str_neq(keyed, plain);
}

Test(keys, long_peppers_work)
{
    char p1[300], p2[300], a[EG_KEY_HASH_HEX_LEN + 1], b[EG_KEY_HASH_HEX_LEN + 1];

    memset(p1, 'p', sizeof p1 - 1);
    p1[sizeof p1 - 1] = '\0';
    memcpy(p2, p1, sizeof p2);
    p2[290] = 'q'; /* differs only past any 64-byte key limit */
    cr_assert_eq(eg_key_hash_hex(p1, GOOD_SECRET, a), EG_OK);
    cr_assert_eq(eg_key_hash_hex(p2, GOOD_SECRET, b), EG_OK);
    cr_assert_str_neq(a, b);
}

Test(keys, empty_or_null_pepper_is_refused)
{
    char h[EG_KEY_HASH_HEX_LEN + 1];

    cr_assert_eq(eg_key_hash_hex("", GOOD_SECRET, h), EG_EINVAL);
    cr_assert_eq(eg_key_hash_hex(NULL, GOOD_SECRET, h), EG_EINVAL);
    cr_assert_eq(eg_key_hash_hex("pepper", NULL, h), EG_EINVAL);
}

Test(keys, unkeyed_hash_is_deterministic_and_sensitive)
{
    char a[EG_KEY_HASH_HEX_LEN + 1], b[EG_KEY_HASH_HEX_LEN + 1], c[EG_KEY_HASH_HEX_LEN + 1];

    eg_hash_hex("abc", 3, a);
    eg_hash_hex("abc", 3, b);
    eg_hash_hex("abd", 3, c);
    cr_assert_str_eq(a, b);
    cr_assert_str_neq(a, c);
    cr_assert_eq(strlen(a), EG_KEY_HASH_HEX_LEN);
    /* BLAKE2b-256 of "abc", a published test value. */
    cr_assert_str_eq(a, "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
}

Test(keys, equal_compares_exactly_len_bytes)
{
    cr_assert(eg_key_equal("abcdef", "abcdef", 6));
    cr_assert_not(eg_key_equal("abcdef", "abcdeF", 6));
    cr_assert_not(eg_key_equal("abcdef", "Abcdef", 6));
    cr_assert(eg_key_equal("abcdef", "abcxyz", 3));
    cr_assert(eg_key_equal("", "", 0));
}

Test(keys, equal_matches_hash_of_the_same_secret)
{
    char stored[EG_KEY_HASH_HEX_LEN + 1], presented[EG_KEY_HASH_HEX_LEN + 1];
    char wrong[EG_KEY_HASH_HEX_LEN + 1];

    cr_assert_eq(eg_key_hash_hex("pep", GOOD_SECRET, stored), EG_OK);
    cr_assert_eq(eg_key_hash_hex("pep", GOOD_SECRET, presented), EG_OK);
    cr_assert_eq(eg_key_hash_hex("pep", "ff" GOOD_SECRET, wrong), EG_OK);
    cr_assert(eg_key_equal(stored, presented, EG_KEY_HASH_HEX_LEN));
    cr_assert_not(eg_key_equal(stored, wrong, EG_KEY_HASH_HEX_LEN));
}
