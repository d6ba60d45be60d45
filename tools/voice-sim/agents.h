/* Single-agent virtual queues for numbers ending in 97: each virtual queue has one agent, so
 * its calls are served one after another, at a known rate (one per talk time). Tests use it to
 * check the estimated wait time against a real queue. Not thread-safe (the loop thread only). */
#ifndef VOICE_SIM_AGENTS_H
#define VOICE_SIM_AGENTS_H
#include <stdbool.h>

#include "calls.h"

typedef struct agents agents_t;

agents_t *agents_new(void);
void agents_free(agents_t *a);

/** Take c's queue's agent: true when it was free (c now holds it); false when busy (c waits in
 *  the queue's line; the agents keep it until it gets the agent). */
bool agents_take(agents_t *a, call_t *c);

/** c, holding its agent, ended: the agent goes to the next call in line, returned (or NULL). */
call_t *agents_release(agents_t *a, call_t *c);

/** A cancel: drop every waiting call of the callback's attempt (any attempt when attempt is NULL
 *  or empty; freed), and free the agent when that call held it. Returns the next call that now
 *  gets the agent, or NULL. *dropped counts the calls removed. */
call_t *agents_cancel(agents_t *a, const char *tenant, const char *callback_id, const char *attempt,
                      size_t *dropped);

#endif
