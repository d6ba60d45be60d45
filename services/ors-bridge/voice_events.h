/* The voice platform's events stream, read with a consumer group. */
#ifndef BRIDGE_VOICE_EVENTS_H
#define BRIDGE_VOICE_EVENTS_H
#include <stdbool.h>
#include <stddef.h>

#include "bridge.h"
#include "engage/status.h"
#include "engage/stream.h"

/** A dead-letter copy keeps at most this many fields of an entry (a valid entry has at most
 *  VOICE_MAX_FIELDS). */
#define VOICE_READ_FIELDS 256
/** Limits of a valid entry (docs/voice-stream.md, "Encoding"). */
#define VOICE_MAX_FIELDS 32
#define VOICE_MAX_NAME 64
#define VOICE_MAX_VALUE (128 * 1024)

/** Why an entry breaks the encoding rules every type shares (field count, name and value sizes,
 *  a repeated name, no type), written into why; false when it does not. */
bool voice_entry_problem(const eg_stream_entry_t *e, char *why, size_t whylen);

/** The thread that reads voice events and applies them. */
void *voice_events_run(void *arg);

#endif
