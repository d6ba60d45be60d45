/* The simulated call outcomes: which call.progress results a dial produces, chosen from the
 * dialled number. Plain functions over constant tables; no I/O. */
#ifndef VOICE_SIM_OUTCOME_H
#define VOICE_SIM_OUTCOME_H
#include <stdbool.h>
#include <stddef.h>

typedef enum {
    OUTCOME_ANSWER = 0,  /* DIALING, PERSON, AGENT_CONNECTED, CALL_ENDED */
    OUTCOME_BUSY,        /* DIALING, BUSY */
    OUTCOME_NOANSWER,    /* DIALING, NO_ANSWER */
    OUTCOME_MACHINE,     /* DIALING, ANSWERING_MACHINE */
    OUTCOME_NO_AGENT,    /* DIALING, PERSON, CALL_ENDED: the customer hangs up before an agent */
    OUTCOME_FAIL,        /* DIALING, FAILED: a permanent failure */
    OUTCOME_AGENT_QUEUE, /* DIALING, PERSON, then waits for its virtual queue's one agent:
                            AGENT_CONNECTED, and CALL_ENDED after the talk time */
    OUTCOME_LOST         /* nothing at all: the platform lost the call */
} outcome_t;

/** Parse a configured default outcome: "answer", "busy", "noanswer", "machine" or "fail".
 *  False (and *out untouched) for anything else. */
bool outcome_parse(const char *name, outcome_t *out);

/** The name of an outcome ("answer", ...). Never NULL. */
const char *outcome_name(outcome_t o);

/** The outcome of dialling phone (borrowed; NULL allowed) on the given attempt (1-based),
 *  from the last two digits of the number; def for numbers without a special suffix. */
outcome_t outcome_for(const char *phone, long attempt, outcome_t def);

/** The results, in order, that an outcome reports. *steps points at a static table. */
size_t outcome_steps(outcome_t o, const char *const **steps);

/** Every result name outcome_steps can return (static table), for registering metrics. */
size_t outcome_all_results(const char *const **results);

#endif
