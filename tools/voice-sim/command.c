/* Parsing of command entries: which command, which callback, and the field under which
 * voice-sim counts it in voicesim:dials or voicesim:cancels. */
#include "command.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage/mem.h"

static bool present(const char *v)
{
    return v != NULL && v[0] != '\0';
}

bool command_parse(const eg_stream_entry_t *e, command_t *c)
{
    memset(c, 0, sizeof(*c));
    if (e->id == NULL) {
        return false;
    }
    c->id = e->id;
    if (e->status == EG_ENOTFOUND) {
        /* A pending entry that was deleted from the stream meanwhile: only acknowledge it. */
        c->kind = CMD_NONE;
        return true;
    }
    /* A malformed entry has no fields: it is acknowledged as a command of unknown type. The
     * values are NUL-terminated at their length (lib/stream.h), so they read as C strings. */
    c->type = eg_stream_entry_field(e, "type", NULL);
    c->tenant = eg_stream_entry_field(e, "tenant", NULL);
    c->callback_id = eg_stream_entry_field(e, "callback_id", NULL);
    c->attempt = eg_stream_entry_field(e, "attempt", NULL);
    c->phone = eg_stream_entry_field(e, "phone", NULL);
    c->virtual_queue = eg_stream_entry_field(e, "virtual_queue", NULL);
    if (c->type != NULL && strcmp(c->type, "dial") == 0) {
        c->kind = present(c->tenant) && present(c->callback_id) && present(c->attempt)
                      ? CMD_DIAL
                      : CMD_INVALID;
    } else if (c->type != NULL && strcmp(c->type, "cancel") == 0) {
        c->kind = present(c->tenant) && present(c->callback_id) ? CMD_CANCEL : CMD_INVALID;
    } else {
        c->kind = CMD_UNKNOWN;
    }
    if (c->kind == CMD_DIAL || c->kind == CMD_CANCEL) {
        size_t len = strlen(c->tenant) + strlen(c->callback_id) +
                     (c->kind == CMD_DIAL ? strlen(c->attempt) + 1 : 0) + 2;
        c->count_key = eg_xmalloc(len);
        if (c->kind == CMD_DIAL) {
            snprintf(c->count_key, len, "%s:%s:%s", c->tenant, c->callback_id, c->attempt);
        } else {
            snprintf(c->count_key, len, "%s:%s", c->tenant, c->callback_id);
        }
    }
    return true;
}

void command_clear(command_t *c)
{
    free(c->count_key);
    c->count_key = NULL;
}
