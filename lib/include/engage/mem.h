/* Allocation that aborts with a message on out-of-memory, as redis and h2o do. */
#ifndef ENGAGE_MEM_H
#define ENGAGE_MEM_H
#include <stddef.h>

void *eg_xmalloc(size_t n);
void *eg_xcalloc(size_t count, size_t n);
void *eg_xrealloc(void *p, size_t n);
/** Copy of a NUL-terminated string; NULL in gives NULL out. Caller frees. */
char *eg_xstrdup(const char *s);
/** Copy of the first n bytes of s, NUL-terminated. Caller frees. */
char *eg_xstrndup(const char *s, size_t n);

#endif
