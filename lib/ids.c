/* UUIDs. New ids are version 7: 48 bits of Unix milliseconds, then a counter seeded at random
 * each millisecond, so ids sort by creation time and stay unique and increasing within one
 * process even when many are made in the same millisecond. Randomness comes from libsodium. */
#include "engage/ids.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "engage/timeutil.h"

static pthread_mutex_t v7_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t last_ms;
static uint64_t last_seq; /* 74 bits would be overkill: 62 bits of rand_b + 12 of rand_a */

static void init_sodium(void)
{
    if (sodium_init() < 0)
        abort();
}

void eg_random_bytes(void *buf, size_t n)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_sodium);
    randombytes_buf(buf, n);
}

void eg_uuid_v7(eg_uuid_t *out)
{
    uint8_t rnd[10];
    eg_random_bytes(rnd, sizeof rnd);
    int64_t ms = eg_now_ms();
    uint64_t seq;

    pthread_mutex_lock(&v7_lock);
    if (ms <= last_ms) {
        ms = last_ms;
        seq = last_seq + 1;
    } else {
        /* A fresh random start, leaving headroom so the counter rarely overflows. */
        seq = ((uint64_t)rnd[0] << 24 | (uint64_t)rnd[1] << 16 | (uint64_t)rnd[2] << 8 | rnd[3]) &
              0x7fffffffULL;
    }
    if (seq >> 42) { /* counter exhausted: borrow the next millisecond */
        ms++;
        seq = 0;
    }
    last_ms = ms;
    last_seq = seq;
    pthread_mutex_unlock(&v7_lock);

    uint64_t ums = (uint64_t)ms;
    for (int i = 0; i < 6; i++)
        out->b[i] = (uint8_t)(ums >> (40 - 8 * i));
    /* 12 bits of rand_a and 30 top bits of rand_b carry the counter (42 bits). */
    out->b[6] = (uint8_t)(0x70 | ((seq >> 38) & 0x0f));
    out->b[7] = (uint8_t)(seq >> 30);
    out->b[8] = (uint8_t)(0x80 | ((seq >> 24) & 0x3f));
    out->b[9] = (uint8_t)(seq >> 16);
    out->b[10] = (uint8_t)(seq >> 8);
    out->b[11] = (uint8_t)seq;
    memcpy(out->b + 12, rnd + 4, 4);
}

void eg_uuid_format(const eg_uuid_t *id, char out[EG_UUID_STR_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    size_t p = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[p++] = '-';
        out[p++] = hex[id->b[i] >> 4];
        out[p++] = hex[id->b[i] & 15];
    }
    out[p] = '\0';
}

void eg_uuid_v7_str(char out[EG_UUID_STR_LEN + 1])
{
    eg_uuid_t id;
    eg_uuid_v7(&id);
    eg_uuid_format(&id, out);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

eg_status_t eg_uuid_parse(const char *s, size_t len, eg_uuid_t *out)
{
    if (!s || len != EG_UUID_STR_LEN)
        return EG_EINVAL;
    size_t p = 0;
    for (int i = 0; i < 16; i++) {
        if (p == 8 || p == 13 || p == 18 || p == 23) {
            if (s[p] != '-')
                return EG_EINVAL;
            p++;
        }
        int hi = hexval(s[p]), lo = hexval(s[p + 1]);
        if (hi < 0 || lo < 0)
            return EG_EINVAL;
        out->b[i] = (uint8_t)(hi << 4 | lo);
        p += 2;
    }
    return EG_OK;
}

int eg_uuid_valid(const char *s)
{
    eg_uuid_t id;
    return s && eg_uuid_parse(s, strlen(s), &id) == EG_OK;
}

int64_t eg_uuid_v7_ms(const eg_uuid_t *id)
{
    uint64_t ms = 0;
    for (int i = 0; i < 6; i++)
        ms = ms << 8 | id->b[i];
    return (int64_t)ms;
}
