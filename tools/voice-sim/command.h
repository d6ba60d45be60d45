/* Command entries of the voice commands stream (docs/voice-stream.md), parsed from a stream
 * reply into a plain struct. No I/O. */
#ifndef VOICE_SIM_COMMAND_H
#define VOICE_SIM_COMMAND_H
#include <stdbool.h>

#include "engage/stream.h"

/* CMD_NONE: a pending entry deleted from the stream (only to acknowledge); CMD_INVALID: a dial
 * or cancel without the fields that say which callback it is about. */
typedef enum { CMD_NONE = 0, CMD_DIAL, CMD_CANCEL, CMD_INVALID, CMD_UNKNOWN } command_kind_t;

/** A command entry. Strings are borrowed from the batch it was parsed from. */
typedef struct {
    command_kind_t kind;
    const char *id;
    const char *type;
    const char *tenant;
    const char *callback_id;
    const char *attempt;
    const char *phone;
    const char *virtual_queue;
    char *count_key; /* owned: the voicesim:dials / voicesim:cancels field */
} command_t;

/** Parse one stream entry into c (strings borrowed from the entry's batch). False when it has no
 *  usable id, so it cannot even be acknowledged. Release with command_clear (also after false). */
bool command_parse(const eg_stream_entry_t *entry, command_t *c);

/** Free what command_parse allocated. */
void command_clear(command_t *c);

#endif
