/* Names of callback states and reasons, indexed by their protobuf enum values. */
#include "engage/states.h"

#include <string.h>

static const char *const state_names[] = {"UNSPECIFIED", "SCHEDULED",  "QUEUED",
                                          "ROUTING",     "PROCESSING", "COMPLETED"};
static const char *const reason_names[] = {"",
                                           "AGENT_CONNECTED",
                                           "CANCELLED",
                                           "FAIL_CALL_TO_CUSTOMER",
                                           "FAIL_TIMEOUT_TTL",
                                           "FAIL_AGENT_CONNECT",
                                           "CUSTOMER_CONTACTED",
                                           "FAIL_ERROR"};

const char *eg_state_name(int state)
{
    if (state < 0 || (size_t)state >= sizeof state_names / sizeof *state_names)
        return "UNKNOWN";
    return state_names[state];
}

const char *eg_reason_name(int reason)
{
    if (reason < 0 || (size_t)reason >= sizeof reason_names / sizeof *reason_names)
        return "";
    return reason_names[reason];
}

int eg_state_from_name(const char *name)
{
    for (size_t i = 1; name && i < sizeof state_names / sizeof *state_names; i++)
        if (strcmp(state_names[i], name) == 0)
            return (int)i;
    return -1;
}
