/* A bounded growable buffer. It doubles its capacity as it grows and refuses to pass its
 * maximum, so building output from untrusted input can never grow without limit. */
#include "engage/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage/mem.h"

void eg_buf_init(eg_buf_t *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

static eg_status_t reserve(eg_buf_t *b, size_t extra)
{
    if (b->len > b->max || extra > b->max - b->len)
        return EG_ETOOBIG;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return EG_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->data = eg_xrealloc(b->data, cap);
    b->cap = cap;
    return EG_OK;
}

eg_status_t eg_buf_append(eg_buf_t *b, const void *p, size_t n)
{
    eg_status_t st = reserve(b, n);
    if (st != EG_OK)
        return st;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return EG_OK;
}

eg_status_t eg_buf_puts(eg_buf_t *b, const char *s)
{
    return eg_buf_append(b, s, strlen(s));
}

eg_status_t eg_buf_printf(eg_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return EG_EINVAL;
    eg_status_t st = reserve(b, (size_t)n);
    if (st != EG_OK)
        return st;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return EG_OK;
}

void eg_buf_reset(eg_buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

char *eg_buf_steal(eg_buf_t *b, size_t *len)
{
    char *d = b->data ? b->data : eg_xstrdup("");
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return d;
}

void eg_buf_free(eg_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}
