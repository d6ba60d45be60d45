/* UUIDs: version 7 for new ids (time-ordered), and parsing of any syntactically valid UUID. */
#ifndef ENGAGE_IDS_H
#define ENGAGE_IDS_H
#include <stddef.h>
#include <stdint.h>
#include "engage/status.h"

#define EG_UUID_STR_LEN 36

typedef struct {
    uint8_t b[16];
} eg_uuid_t;

/** A new UUIDv7; ids made by one process are strictly increasing. Thread-safe. */
void eg_uuid_v7(eg_uuid_t *out);
/** Canonical lower-case text, NUL-terminated, into out (37 bytes). */
void eg_uuid_format(const eg_uuid_t *id, char out[EG_UUID_STR_LEN + 1]);
/** A new UUIDv7 as text. */
void eg_uuid_v7_str(char out[EG_UUID_STR_LEN + 1]);
/** Parse 8-4-4-4-12 hex (either case, any version). EG_EINVAL otherwise. */
eg_status_t eg_uuid_parse(const char *s, size_t len, eg_uuid_t *out);
/** True when s (NUL-terminated) is a syntactically valid UUID. */
int eg_uuid_valid(const char *s);
/** Milliseconds since the epoch carried by a v7 id. */
int64_t eg_uuid_v7_ms(const eg_uuid_t *id);

/** Fill buf with cryptographically secure random bytes. */
void eg_random_bytes(void *buf, size_t n);

#endif
