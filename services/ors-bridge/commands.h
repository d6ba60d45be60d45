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
/** Write the command a dispatch stands for, at most once per callback and attempt (dial, and
 *  cancel: a cancel is per attempt too). *written is false when it had been written before. */
eg_status_t commands_write(commands_t *c, const bridge_t *b, const Eg__Dispatch *d, bool *written);

/** Append one entry (nfields name/value pairs, NUL-terminated strings, borrowed) to stream,
 *  unless the guard was set before: the guard (stored under commands_guard_key) is set with a
 *  ttl of guard_ttl_ms (decimal text) after the XADD in the same Lua step, so an entry handled
 *  twice writes once, and a failed XADD leaves no guard. *written is false when the
 *  guard existed. EG_EPROTO (a script error such as WRONGTYPE) when stream is not a stream. The
 *  stream is capped like the commands stream (MAXLEN ~ 1000000). */
eg_status_t commands_append(commands_t *c, const char *guard, const char *guard_ttl_ms,
                            const char *stream, const char *const *fields, size_t nfields,
                            bool *written);

/** The key a guard named `guard` is stored under for `stream` (malloc'd; the caller frees):
 *  in the stream's hash slot, so that the write's two keys share one slot on Redis Cluster.
 *  "engage:dialed:T:ID:1" for stream "engage:voice:commands" is
 *  "engage:{engage:voice:commands}:dialed:T:ID:1". A stream name with braces but no valid hash
 *  tag cannot be matched that way: the guard is then used as it is (fine outside a cluster). */
char *commands_guard_key(const char *stream, const char *guard);

/** The thread that consumes dispatches from JetStream and writes commands. */
void *commands_run(void *arg);

#endif
