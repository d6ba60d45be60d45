/* API keys. A key is "<16 hex id>.<64 hex secret>"; only the id and a keyed BLAKE2b hash of
 * the secret (libsodium crypto_generichash, keyed with the server's pepper) are ever stored.
 * The pepper is hashed to the generic-hash key size first, so any length of pepper works. */
#include "engage/keys.h"

#include <sodium.h>
#include <string.h>

#include "engage/ids.h"

static void to_hex(const uint8_t *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void eg_key_generate(char key[EG_KEY_LEN + 1], char id[EG_KEY_ID_LEN + 1])
{
    uint8_t raw_id[EG_KEY_ID_LEN / 2], raw_secret[EG_KEY_SECRET_LEN / 2];
    eg_random_bytes(raw_id, sizeof raw_id);
    eg_random_bytes(raw_secret, sizeof raw_secret);
    to_hex(raw_id, sizeof raw_id, id);
    memcpy(key, id, EG_KEY_ID_LEN);
    key[EG_KEY_ID_LEN] = '.';
    to_hex(raw_secret, sizeof raw_secret, key + EG_KEY_ID_LEN + 1);
    sodium_memzero(raw_secret, sizeof raw_secret);
}

static int all_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return 1;
}

eg_status_t eg_key_split(const char *key, char id[EG_KEY_ID_LEN + 1],
                         char secret[EG_KEY_SECRET_LEN + 1])
{
    if (!key || strlen(key) != EG_KEY_LEN || key[EG_KEY_ID_LEN] != '.' ||
        !all_hex(key, EG_KEY_ID_LEN) || !all_hex(key + EG_KEY_ID_LEN + 1, EG_KEY_SECRET_LEN))
        return EG_EAUTH;
    memcpy(id, key, EG_KEY_ID_LEN);
    id[EG_KEY_ID_LEN] = '\0';
    memcpy(secret, key + EG_KEY_ID_LEN + 1, EG_KEY_SECRET_LEN);
    secret[EG_KEY_SECRET_LEN] = '\0';
    return EG_OK;
}

eg_status_t eg_key_hash_hex(const char *pepper, const char *secret,
                            char out[EG_KEY_HASH_HEX_LEN + 1])
{
    if (!pepper || !*pepper || !secret)
        return EG_EINVAL;
    if (sodium_init() < 0)
        return EG_EINTERNAL;
    uint8_t k[crypto_generichash_KEYBYTES], h[EG_KEY_HASH_LEN];
    crypto_generichash(k, sizeof k, (const unsigned char *)pepper, strlen(pepper), NULL, 0);
    crypto_generichash(h, sizeof h, (const unsigned char *)secret, strlen(secret), k, sizeof k);
    to_hex(h, sizeof h, out);
    sodium_memzero(k, sizeof k);
    return EG_OK;
}

void eg_hash_hex(const void *data, size_t len, char out[EG_KEY_HASH_HEX_LEN + 1])
{
    uint8_t h[EG_KEY_HASH_LEN];
    if (sodium_init() < 0)
        memset(h, 0, sizeof h);
    crypto_generichash(h, sizeof h, data, len, NULL, 0);
    to_hex(h, sizeof h, out);
}

bool eg_key_equal(const char *a, const char *b, size_t len)
{
    return sodium_memcmp(a, b, len) == 0;
}
