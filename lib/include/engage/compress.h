/* Compression of stored text (user data in callback records): zlib's deflate behind two calls,
 * so zlib's types stay in lib/. */
#ifndef ENGAGE_COMPRESS_H
#define ENGAGE_COMPRESS_H
#include <stddef.h>
#include <stdint.h>

#include "engage/status.h"

/** Deflate n bytes of in into a malloc'd *out (*outlen bytes). EG_EFULL when the result would
 *  not be smaller than the input (then nothing is allocated: store the input as it is). */
eg_status_t eg_deflate(const void *in, size_t n, uint8_t **out, size_t *outlen);

/** Inflate what eg_deflate wrote into a malloc'd, NUL-terminated *out (*outlen bytes, the NUL
 *  not counted). EG_EINVAL when in is not a complete deflate stream or inflates beyond max. */
eg_status_t eg_inflate(const void *in, size_t n, size_t max, char **out, size_t *outlen);

#endif
