/* Allocation wrappers: out of memory is not a condition Engage recovers from, so it aborts
 * with a message instead of threading OOM branches through every caller. */
#include "engage/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
    fprintf(stderr, "engage: out of memory allocating %zu bytes\n", n);
    abort();
}

void *eg_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *eg_xcalloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p)
        oom(count * n);
    return p;
}

void *eg_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *eg_xstrdup(const char *s)
{
    if (!s)
        return NULL;
    return eg_xstrndup(s, strlen(s));
}

char *eg_xstrndup(const char *s, size_t n)
{
    char *p = eg_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}
