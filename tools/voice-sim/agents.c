/* Single-agent virtual queues (see agents.h). A small list of queues, each with its busy flag,
 * the callback that holds the agent, and a FIFO of calls waiting for it. */
#include "agents.h"

#include <stdlib.h>
#include <string.h>

#include "engage/mem.h"

typedef struct queue {
    struct queue *next;
    char *vq;
    call_t *holder; /* the call with the agent (owned by the calls heap), NULL when free */
    call_t **line;
    size_t n, cap;
} queue_t;

struct agents {
    queue_t *head;
};

agents_t *agents_new(void)
{
    return eg_xcalloc(1, sizeof(agents_t));
}

void agents_free(agents_t *a)
{
    if (!a)
        return;
    while (a->head) {
        queue_t *q = a->head;
        a->head = q->next;
        for (size_t i = 0; i < q->n; i++)
            call_free(q->line[i]);
        free(q->line);
        free(q->vq);
        free(q);
    }
    free(a);
}

static queue_t *queue_of(agents_t *a, const char *vq)
{
    for (queue_t *q = a->head; q; q = q->next)
        if (strcmp(q->vq, vq) == 0)
            return q;
    queue_t *q = eg_xcalloc(1, sizeof *q);
    q->vq = eg_xstrdup(vq);
    q->next = a->head;
    a->head = q;
    return q;
}

/* Give the free agent of q to the first call in line, if any. */
static call_t *next_in_line(queue_t *q)
{
    if (q->holder || q->n == 0)
        return NULL;
    call_t *c = q->line[0];
    memmove(q->line, q->line + 1, (q->n - 1) * sizeof *q->line);
    q->n--;
    q->holder = c;
    c->holds_agent = 1;
    return c;
}

bool agents_take(agents_t *a, call_t *c)
{
    queue_t *q = queue_of(a, c->vq ? c->vq : "");
    if (!q->holder) {
        q->holder = c;
        c->holds_agent = 1;
        return true;
    }
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 8;
        q->line = eg_xrealloc(q->line, q->cap * sizeof *q->line);
    }
    q->line[q->n++] = c;
    return false;
}

call_t *agents_release(agents_t *a, call_t *c)
{
    queue_t *q = queue_of(a, c->vq ? c->vq : "");
    q->holder = NULL;
    c->holds_agent = 0;
    return next_in_line(q);
}

call_t *agents_cancel(agents_t *a, const char *tenant, const char *callback_id, const char *attempt,
                      size_t *dropped)
{
    call_t *next = NULL;
    *dropped = 0;
    for (queue_t *q = a->head; q; q = q->next) {
        size_t k = 0;
        for (size_t i = 0; i < q->n; i++) {
            call_t *c = q->line[i];
            if (call_is(c, tenant, callback_id, attempt)) {
                call_free(c);
                (*dropped)++;
            } else {
                q->line[k++] = c;
            }
        }
        q->n = k;
        if (q->holder && call_is(q->holder, tenant, callback_id, attempt)) {
            q->holder = NULL; /* the call itself is in the heap: the caller drops it */
            if (!next)
                next = next_in_line(q);
        }
    }
    return next;
}
