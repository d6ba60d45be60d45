/* The wire names of callback states and reasons (upper case, as GES names them). */
#ifndef ENGAGE_STATES_H
#define ENGAGE_STATES_H

/** "SCHEDULED", "QUEUED", ... for an eg.State value; "UNKNOWN" when out of range. */
const char *eg_state_name(int state);
/** "AGENT_CONNECTED", "CANCELLED", ... for an eg.Reason value; "" for none. */
const char *eg_reason_name(int reason);
/** The eg.State value of a name, or -1. */
int eg_state_from_name(const char *name);

#endif
