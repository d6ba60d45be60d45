/* zlib deflate/inflate of whole buffers; see compress.h. */
#include "engage/compress.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "engage/mem.h"

eg_status_t eg_deflate(const void *in, size_t n, uint8_t **out, size_t *outlen)
{
    uLongf cap = compressBound((uLong)n);
    if (n == 0 || cap == 0)
        return EG_EFULL;
    uint8_t *buf = eg_xmalloc(cap);
    /* Level 1: user data is written at every change of a record, so speed matters more than
     * the last few percent. */
    if (compress2(buf, &cap, (const Bytef *)in, (uLong)n, 1) != Z_OK || cap >= n) {
        free(buf);
        return EG_EFULL;
    }
    *out = buf;
    *outlen = cap;
    return EG_OK;
}

eg_status_t eg_inflate(const void *in, size_t n, size_t max, char **out, size_t *outlen)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit(&z) != Z_OK)
        return EG_EINVAL;
    size_t cap = n * 4 + 64 < max ? n * 4 + 64 : max;
    char *buf = eg_xmalloc(cap + 1);
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    int rc = Z_OK;
    while (rc == Z_OK) {
        if (z.total_out == cap) {
            if (cap >= max) {
                rc = Z_BUF_ERROR;
                break;
            }
            cap = cap * 2 < max ? cap * 2 : max;
            buf = eg_xrealloc(buf, cap + 1);
        }
        z.next_out = (Bytef *)buf + z.total_out;
        z.avail_out = (uInt)(cap - z.total_out);
        rc = inflate(&z, Z_NO_FLUSH);
    }
    size_t got = z.total_out;
    inflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(buf);
        return EG_EINVAL;
    }
    buf[got] = '\0';
    *out = buf;
    *outlen = got;
    return EG_OK;
}
