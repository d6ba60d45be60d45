/* Parsing of command entries: which command, which callback, and the field under which
 * voice-sim counts it in voicesim:dials or voicesim:cancels. */
#include "command.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage/mem.h"

/* The value of field name in an entry's field array (borrowed), or NULL. */
static const char *field(const eg_reply_t *fields, const char *name)
{
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const eg_reply_t *k = fields->element[i];
        const eg_reply_t *v = fields->element[i + 1];
        if (k->type == EG_REPLY_STRING && v->type == EG_REPLY_STRING && strcmp(k->str, name) == 0) {
            return v->str;
        }
    }
    return NULL;
}

static bool present(const char *v)
{
    return v != NULL && v[0] != '\0';
}

bool command_parse(const eg_reply_t *e, command_t *c)
{
    memset(c, 0, sizeof(*c));
    if (e->type != EG_REPLY_ARRAY || e->elements < 2 || e->element[0]->type != EG_REPLY_STRING) {
        return false;
    }
    c->id = e->element[0]->str;
    const eg_reply_t *f = e->element[1];
    if (f->type != EG_REPLY_ARRAY) {
        /* A pending entry that was deleted from the stream meanwhile: only acknowledge it. */
        c->kind = CMD_NONE;
        return true;
    }
    c->type = field(f, "type");
    c->tenant = field(f, "tenant");
    c->callback_id = field(f, "callback_id");
    c->attempt = field(f, "attempt");
    c->phone = field(f, "phone");
    c->virtual_queue = field(f, "virtual_queue");
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
