/* A growable byte buffer with a hard maximum size (like curl's dynbuf). */
#ifndef ENGAGE_BUF_H
#define ENGAGE_BUF_H
#include <stddef.h>
#include "engage/status.h"

typedef struct {
    char *data; /**< always NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
    size_t max; /**< appends that would pass this fail with EG_ETOOBIG */
} eg_buf_t;

/** Prepare an empty buffer that may grow to max bytes. */
void eg_buf_init(eg_buf_t *b, size_t max);
/** Append n bytes. EG_ETOOBIG (buffer unchanged) past the maximum. */
eg_status_t eg_buf_append(eg_buf_t *b, const void *p, size_t n);
/** Append a NUL-terminated string. */
eg_status_t eg_buf_puts(eg_buf_t *b, const char *s);
/** Append printf-style. */
eg_status_t eg_buf_printf(eg_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Empty the buffer, keeping its memory. */
void eg_buf_reset(eg_buf_t *b);
/** Hand the data to the caller (who frees it with free()); the buffer is empty after. */
char *eg_buf_steal(eg_buf_t *b, size_t *len);
/** Free the data. Accepts a buffer never appended to. */
void eg_buf_free(eg_buf_t *b);

#endif
