/* Outcome selection for voice-sim: the table that lets tests and demos pick how a call goes by
 * choosing the last two digits of the number they book (see main.c for the whole table). */
#include "outcome.h"

#include <string.h>

static const char *const answer_steps[] = {"DIALING", "PERSON", "AGENT_CONNECTED", "CALL_ENDED"};
static const char *const busy_steps[] = {"DIALING", "BUSY"};
static const char *const noanswer_steps[] = {"DIALING", "NO_ANSWER"};
static const char *const machine_steps[] = {"DIALING", "ANSWERING_MACHINE"};
static const char *const no_agent_steps[] = {"DIALING", "PERSON", "CALL_ENDED"};
static const char *const fail_steps[] = {"DIALING", "FAILED"};

static const char *const all_results[] = {"DIALING", "PERSON",    "AGENT_CONNECTED",   "CALL_ENDED",
                                          "BUSY",    "NO_ANSWER", "ANSWERING_MACHINE", "FAILED"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
    const char *name;
    outcome_t outcome;
} names[] = {
    {"answer", OUTCOME_ANSWER},   {"busy", OUTCOME_BUSY}, {"noanswer", OUTCOME_NOANSWER},
    {"machine", OUTCOME_MACHINE}, {"fail", OUTCOME_FAIL},
};

bool outcome_parse(const char *name, outcome_t *out)
{
    for (size_t i = 0; name != NULL && i < COUNT(names); i++) {
        if (strcmp(name, names[i].name) == 0) {
            *out = names[i].outcome;
            return true;
        }
    }
    return false;
}

const char *outcome_name(outcome_t o)
{
    if (o == OUTCOME_NO_AGENT) {
        return "no-agent";
    }
    if (o == OUTCOME_AGENT_QUEUE) {
        return "agent-queue";
    }
    if (o == OUTCOME_LOST) {
        return "lost";
    }
    for (size_t i = 0; i < COUNT(names); i++) {
        if (names[i].outcome == o) {
            return names[i].name;
        }
    }
    return "?";
}

outcome_t outcome_for(const char *phone, long attempt, outcome_t def)
{
    int last[2] = {-1, -1}; /* the last two digits seen, [0] the earlier one */

    /* Only digits count, so "+1 555 123-4591" and "+15551234591" behave the same. */
    for (const char *p = phone; p != NULL && *p != '\0'; p++) {
        if (*p >= '0' && *p <= '9') {
            last[0] = last[1];
            last[1] = *p - '0';
        }
    }
    if (last[0] != 9) {
        return def;
    }
    switch (last[1]) {
    case 1:
        return OUTCOME_BUSY;
    case 2:
        return OUTCOME_NOANSWER;
    case 3:
        return OUTCOME_MACHINE;
    case 4:
        return attempt <= 1 ? OUTCOME_BUSY : OUTCOME_ANSWER;
    case 5:
        return OUTCOME_NO_AGENT;
    case 6:
        return OUTCOME_FAIL;
    case 7:
        return OUTCOME_AGENT_QUEUE;
    case 8:
        return attempt <= 1 ? OUTCOME_LOST : OUTCOME_ANSWER;
    default:
        return def;
    }
}

size_t outcome_steps(outcome_t o, const char *const **steps)
{
    switch (o) {
    case OUTCOME_BUSY:
        *steps = busy_steps;
        return COUNT(busy_steps);
    case OUTCOME_NOANSWER:
        *steps = noanswer_steps;
        return COUNT(noanswer_steps);
    case OUTCOME_MACHINE:
        *steps = machine_steps;
        return COUNT(machine_steps);
    case OUTCOME_NO_AGENT:
        *steps = no_agent_steps;
        return COUNT(no_agent_steps);
    case OUTCOME_FAIL:
        *steps = fail_steps;
        return COUNT(fail_steps);
    case OUTCOME_LOST:
        *steps = NULL;
        return 0;
    case OUTCOME_ANSWER:
    default:
        *steps = answer_steps;
        return COUNT(answer_steps);
    }
}

size_t outcome_all_results(const char *const **results)
{
    *results = all_results;
    return COUNT(all_results);
}
