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

/** Append one entry (nfields name/value pairs, NUL-terminated strings, borrowed) to stream,
 *  unless the key guard was set before: the guard is set NX with a ttl of guard_ttl_ms (decimal
 *  text) in the same Lua step, so an entry handled twice writes once. *written is false when the
 *  guard existed. EG_EPROTO (a script error such as WRONGTYPE) when stream is not a stream. The
 *  stream is capped like the commands stream (MAXLEN ~ 1000000). */
eg_status_t commands_append(commands_t *c, const char *guard, const char *guard_ttl_ms,
                            const char *stream, const char *const *fields, size_t nfields,
                            bool *written);

/** The thread that consumes dispatches from JetStream and writes commands. */
void *commands_run(void *arg);

#endif
