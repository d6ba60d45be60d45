/* The voice platform's events stream, read with a consumer group. */
#ifndef BRIDGE_VOICE_EVENTS_H
#define BRIDGE_VOICE_EVENTS_H
#include <stdbool.h>
#include <stddef.h>

#include "bridge.h"
#include "engage/status.h"
#include "engage/store.h"

/** Fields read from one entry: enough to copy a malformed entry of up to this many fields to
 *  the dead-letter stream (a valid entry has at most VOICE_MAX_FIELDS). */
#define VOICE_READ_FIELDS 256
/** Limits of a valid entry (docs/voice-stream.md, "Encoding"). */
#define VOICE_MAX_FIELDS 32
#define VOICE_MAX_NAME 64
#define VOICE_MAX_VALUE (128 * 1024)

/** One entry's fields as (pointer, length) views, borrowed from the reply they were read from.
 *  Values are binary-safe; each is also NUL-terminated at its length (the reply's copy). */
typedef struct {
    const char *id;
    const char *names[VOICE_READ_FIELDS];
    size_t name_lens[VOICE_READ_FIELDS];
    const char *values[VOICE_READ_FIELDS];
    size_t lens[VOICE_READ_FIELDS];
    int n;     /**< fields kept in the arrays */
    int total; /**< fields in the entry (n, or more when it had over VOICE_READ_FIELDS) */
} voice_entry_t;

/** The value of the field called name (exact, binary-safe match), or NULL; *len (may be NULL)
 *  gets its length. The first one when the name repeats. */
const char *voice_field(const voice_entry_t *e, const char *name, size_t *len);

/** Parse one XREADGROUP entry reply ([id, [f, v, ...]]) into e. EG_EPROTO when malformed
 *  (e->id set when the id itself was readable), EG_ENOTFOUND (e->id set) for a pending entry
 *  deleted from the stream. */
eg_status_t voice_entry_parse(const eg_reply_t *entry, voice_entry_t *e);

/** Why an entry breaks the encoding rules every type shares (field count, name and value sizes,
 *  a repeated name, no type), written into why; false when it does not. */
bool voice_entry_problem(const voice_entry_t *e, char *why, size_t whylen);

/** The thread that reads voice events and applies them. */
void *voice_events_run(void *arg);

#endif
