/* API keys: "<key id>.<secret>". The id finds the stored record; the secret is checked
 * against a keyed BLAKE2b hash (server-side pepper). Keys are never stored in clear. */
#ifndef ENGAGE_KEYS_H
#define ENGAGE_KEYS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "engage/status.h"

#define EG_KEY_ID_LEN 16     /**< hex characters of a key id */
#define EG_KEY_SECRET_LEN 64 /**< hex characters of a secret */
#define EG_KEY_LEN (EG_KEY_ID_LEN + 1 + EG_KEY_SECRET_LEN)
#define EG_KEY_HASH_LEN 32
#define EG_KEY_HASH_HEX_LEN (EG_KEY_HASH_LEN * 2)

/** A fresh key: writes the whole key into key (EG_KEY_LEN + 1) and its id into id
 *  (EG_KEY_ID_LEN + 1). */
void eg_key_generate(char key[EG_KEY_LEN + 1], char id[EG_KEY_ID_LEN + 1]);

/** Split a presented key into id and secret (copied, NUL-terminated). EG_EAUTH when it does
 *  not have the shape of a key (so callers answer 401 without a lookup). */
eg_status_t eg_key_split(const char *key, char id[EG_KEY_ID_LEN + 1],
                         char secret[EG_KEY_SECRET_LEN + 1]);

/** Keyed BLAKE2b of the secret with the pepper, as lower-case hex (EG_KEY_HASH_HEX_LEN + 1). */
eg_status_t eg_key_hash_hex(const char *pepper, const char *secret,
                            char out[EG_KEY_HASH_HEX_LEN + 1]);

/** Unkeyed BLAKE2b of any bytes as hex: a cache key that does not hold a secret in clear. */
void eg_hash_hex(const void *data, size_t len, char out[EG_KEY_HASH_HEX_LEN + 1]);

/** Constant-time comparison of two equal-length strings. */
bool eg_key_equal(const char *a, const char *b, size_t len);

#endif
