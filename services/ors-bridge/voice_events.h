/* The voice platform's events stream, read with a consumer group. */
#ifndef BRIDGE_VOICE_EVENTS_H
#define BRIDGE_VOICE_EVENTS_H
#include <stddef.h>

#include "bridge.h"
#include "engage/status.h"
#include "engage/store.h"

/** One entry's fields, borrowed from the reply they were read from. */
typedef struct {
    const char *id;
    const char *names[32];
    const char *values[32];
    size_t lens[32];
    int n;
} voice_entry_t;

/** The value of a field, or NULL. */
const char *voice_field(const voice_entry_t *e, const char *name);

/** Parse one XREADGROUP entry reply ([id, [f, v, ...]]) into e. EG_EPROTO when malformed,
 *  EG_ENOTFOUND (e->id set) for a pending entry deleted from the stream. */
eg_status_t voice_entry_parse(const eg_reply_t *entry, voice_entry_t *e);

/** The thread that reads voice events and applies them. */
void *voice_events_run(void *arg);

#endif
