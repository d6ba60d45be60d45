/* The calls voice-sim has in progress, kept in a min-heap ordered by the time of each call's
 * next progress step. Not thread-safe: only the simulator's loop thread touches it. */
#ifndef VOICE_SIM_CALLS_H
#define VOICE_SIM_CALLS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engage/ids.h"

/** One call being simulated. Strings are owned by the call. */
typedef struct {
    char *tenant;
    char *callback_id;
    char *attempt;
    char call_id[EG_UUID_STR_LEN + 1];
    const char *const *steps; /* static table from outcome_steps */
    size_t nsteps;
    size_t next;     /* index of the next step to report */
    int64_t due_ms;  /* CLOCK_MONOTONIC ms of the next step */
    char *vq;        /* owned; set for calls that queue for their virtual queue's agent */
    int holds_agent; /* this call has the agent (between AGENT_CONNECTED and CALL_ENDED) */
} call_t;

typedef struct {
    call_t **v;
    size_t n;
    size_t cap;
} calls_t;

/** A new call with copies of the strings and a fresh call id. Free with call_free. */
call_t *call_new(const char *tenant, const char *callback_id, const char *attempt,
                 const char *const *steps, size_t nsteps, int64_t due_ms);
/** Free a call. Accepts NULL. */
void call_free(call_t *c);

/** Add a call (the heap takes ownership). */
void calls_push(calls_t *h, call_t *c);
/** The call due first, or NULL when empty (borrowed; stays in the heap). */
call_t *calls_peek(const calls_t *h);
/** Remove and return the call due first (caller owns it), or NULL when empty. */
call_t *calls_pop(calls_t *h);
/** True when c is the call of tenant + callback_id + attempt (any attempt when attempt is NULL
 *  or empty). */
bool call_is(const call_t *c, const char *tenant, const char *callback_id, const char *attempt);
/** Remove and free every call of tenant + callback_id + attempt (any attempt when attempt is NULL
 *  or empty). Returns how many were removed. */
size_t calls_drop_callback(calls_t *h, const char *tenant, const char *callback_id,
                           const char *attempt);
/** Free every call and the heap's memory. */
void calls_free(calls_t *h);

#endif
