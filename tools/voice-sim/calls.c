/* A binary min-heap of calls keyed by the time of their next step. Each call sits in the heap
 * exactly once, however many steps it has left: the loop pops it when due, reports one step and
 * pushes it back with its next time, so the heap holds one entry per call in progress and the
 * steps of one call can never overtake each other. A cancel filters the array and rebuilds the
 * heap: linear, which is fine for the few thousand calls a simulator ever holds at once. */
#include "calls.h"

#include <stdlib.h>
#include <string.h>

#include "engage/mem.h"

call_t *call_new(const char *tenant, const char *callback_id, const char *attempt,
                 const char *const *steps, size_t nsteps, int64_t due_ms)
{
    call_t *c = eg_xcalloc(1, sizeof(*c));
    c->tenant = eg_xstrdup(tenant);
    c->callback_id = eg_xstrdup(callback_id);
    c->attempt = eg_xstrdup(attempt);
    eg_uuid_v7_str(c->call_id);
    c->steps = steps;
    c->nsteps = nsteps;
    c->due_ms = due_ms;
    return c;
}

void call_free(call_t *c)
{
    if (c == NULL) {
        return;
    }
    free(c->tenant);
    free(c->callback_id);
    free(c->attempt);
    free(c->vq);
    free(c);
}

static void swap(calls_t *h, size_t a, size_t b)
{
    call_t *t = h->v[a];
    h->v[a] = h->v[b];
    h->v[b] = t;
}

static void sift_up(calls_t *h, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h->v[parent]->due_ms <= h->v[i]->due_ms) {
            break;
        }
        swap(h, parent, i);
        i = parent;
    }
}

static void sift_down(calls_t *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1;
        size_t r = l + 1;
        size_t m = i;
        if (l < h->n && h->v[l]->due_ms < h->v[m]->due_ms) {
            m = l;
        }
        if (r < h->n && h->v[r]->due_ms < h->v[m]->due_ms) {
            m = r;
        }
        if (m == i) {
            break;
        }
        swap(h, i, m);
        i = m;
    }
}

/* Take element i out of the heap and return it. */
static call_t *remove_at(calls_t *h, size_t i)
{
    call_t *c = h->v[i];
    h->n--;
    if (i != h->n) {
        h->v[i] = h->v[h->n];
        sift_down(h, i);
        sift_up(h, i);
    }
    return c;
}

void calls_push(calls_t *h, call_t *c)
{
    if (h->n == h->cap) {
        h->cap = h->cap == 0 ? 64 : h->cap * 2;
        h->v = eg_xrealloc(h->v, h->cap * sizeof(*h->v));
    }
    h->v[h->n] = c;
    sift_up(h, h->n);
    h->n++;
}

call_t *calls_peek(const calls_t *h)
{
    return h->n > 0 ? h->v[0] : NULL;
}

call_t *calls_pop(calls_t *h)
{
    return h->n > 0 ? remove_at(h, 0) : NULL;
}

bool call_is(const call_t *c, const char *tenant, const char *callback_id, const char *attempt)
{
    return strcmp(c->tenant, tenant) == 0 && strcmp(c->callback_id, callback_id) == 0 &&
           (attempt == NULL || attempt[0] == '\0' || strcmp(c->attempt, attempt) == 0);
}

size_t calls_drop_callback(calls_t *h, const char *tenant, const char *callback_id,
                           const char *attempt)
{
    size_t kept = 0;

    /* Keep the others in place, then rebuild the heap property bottom-up (O(n)). */
    for (size_t i = 0; i < h->n; i++) {
        call_t *c = h->v[i];
        if (call_is(c, tenant, callback_id, attempt)) {
            call_free(c);
        } else {
            h->v[kept++] = c;
        }
    }
    size_t dropped = h->n - kept;
    h->n = kept;
    for (size_t i = h->n / 2; dropped > 0 && i-- > 0;) {
        sift_down(h, i);
    }
    return dropped;
}

void calls_free(calls_t *h)
{
    for (size_t i = 0; i < h->n; i++) {
        call_free(h->v[i]);
    }
    free(h->v);
    h->v = NULL;
    h->n = 0;
    h->cap = 0;
}
