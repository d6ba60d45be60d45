/* Commands to the voice platform (dial, cancel), written to its commands stream. */
#ifndef BRIDGE_COMMANDS_H
#define BRIDGE_COMMANDS_H
#include <stdbool.h>

#include "bridge.h"
#include "engage.pb-c.h"
#include "engage/store.h"

typedef struct {
    eg_store_t *voice;
    int script;
} commands_t;

eg_status_t commands_init(commands_t *c, eg_store_t *voice);
/** Write the command a dispatch stands for, at most once per callback and attempt (dial) or per
 *  callback (cancel). *written is false when it had been written before. */
eg_status_t commands_write(commands_t *c, const bridge_t *b, const Eg__Dispatch *d, bool *written);

/** The thread that consumes dispatches from JetStream and writes commands. */
void *commands_run(void *arg);

#endif
