/* Redis Streams consumer groups, and the parsing of stream replies.
 *
 * A handle is one consumer of one group on one stream, over a borrowed eg_store_t (which owns
 * the connection and reconnects it). Reading follows the at-least-once pattern of consumer
 * groups: an entry read with > stays in the consumer's pending list until XACK, so a consumer
 * that restarts (a new handle, same consumer name) first reads its pending entries from id 0,
 * and only when such a read comes back empty switches to >. Any failed read switches back, so
 * whatever a failure left unacknowledged is read again before anything newer.
 *
 * A group can vanish under a running consumer: Redis restarted without persistence, or an
 * operator deleted the key. Every command then answers NOGROUP; the handle creates the group
 * again (MKSTREAM, from the configured start id), warns once per loss, and retries the read.
 *
 * Claiming uses XAUTOCLAIM with its cursor kept in the handle. A Redis older than 6.2 answers
 * "unknown command": the handle warns once and claims nothing from then on.
 *
 * Parsing turns a stream reply into an array of entries whose ids, names and values are
 * (ptr, len) views into the eg_reply_t, which the batch owns; nothing is copied and nothing is
 * written into the reply. A malformed entry gets its own status, so the caller can still
 * acknowledge or dead-letter it by id; only a reply of the wrong overall shape fails the batch.
 * Values are user data and are never logged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage/log.h"
#include "engage/mem.h"
#include "engage/stream.h"

#define DEFAULT_COUNT 100
#define CURSOR_MAX 64

struct eg_stream {
    eg_store_t *store; /* borrowed */
    char *stream, *group, *consumer, *start_id;
    char read_count[16], claim_count[16];
    bool pending;  /* the next read is of our pending entries (id 0) */
    bool lost;     /* NOGROUP was seen and logged; cleared once the group exists again */
    bool no_claim; /* this Redis has no XAUTOCLAIM (warned) */
    char cursor[CURSOR_MAX];
    char err[256];
};

/* ---- parsing -------------------------------------------------------------------------------- */

void eg_stream_batch_clear(eg_stream_batch_t *b)
{
    if (b == NULL) {
        return;
    }
    eg_reply_free(b->reply);
    free(b->entries);
    free(b->fields);
    memset(b, 0, sizeof(*b));
}

/* The field array of an entry when it is a well-formed [id, [name, value, ...]], else NULL. */
static const eg_reply_t *entry_fields(const eg_reply_t *e)
{
    if (e->type != EG_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != EG_REPLY_STRING) {
        return NULL;
    }
    const eg_reply_t *f = e->element[1];
    if (f->type != EG_REPLY_ARRAY || f->elements % 2 != 0) {
        return NULL;
    }
    for (size_t i = 0; i < f->elements; i++) {
        if (f->element[i]->type != EG_REPLY_STRING) {
            return NULL;
        }
    }
    return f;
}

/* Fill out from an array of entries borrowed from out->reply (already set). */
static void parse_entries(const eg_reply_t *arr, eg_stream_batch_t *out)
{
    size_t nfields = 0, used = 0;

    for (size_t i = 0; i < arr->elements; i++) {
        const eg_reply_t *f = entry_fields(arr->element[i]);
        nfields += f != NULL ? f->elements / 2 : 0;
    }
    out->n = arr->elements;
    out->entries = out->n > 0 ? eg_xcalloc(out->n, sizeof(*out->entries)) : NULL;
    out->fields = nfields > 0 ? eg_xcalloc(nfields, sizeof(*out->fields)) : NULL;
    for (size_t i = 0; i < arr->elements; i++) {
        const eg_reply_t *e = arr->element[i];
        eg_stream_entry_t *x = &out->entries[i];
        const eg_reply_t *f = entry_fields(e);

        x->status = EG_EPROTO;
        if (e->type == EG_REPLY_NIL) {
            x->status = EG_ENOTFOUND; /* a claimed id whose entry was deleted (Redis 6.2) */
            continue;
        }
        if (e->type == EG_REPLY_ARRAY && e->elements >= 1 &&
            e->element[0]->type == EG_REPLY_STRING) {
            x->id = e->element[0]->str;
            x->id_len = e->element[0]->len;
        }
        if (f == NULL) {
            if (x->id != NULL && e->elements == 2 && e->element[1]->type == EG_REPLY_NIL) {
                x->status = EG_ENOTFOUND; /* pending, but deleted from the stream meanwhile */
            }
            continue;
        }
        x->status = EG_OK;
        x->fields = &out->fields[used];
        x->nfields = f->elements / 2;
        for (size_t k = 0; k < f->elements; k += 2) {
            eg_stream_field_t *v = &out->fields[used++];
            v->name = f->element[k]->str;
            v->name_len = f->element[k]->len;
            v->value = f->element[k + 1]->str;
            v->value_len = f->element[k + 1]->len;
        }
    }
}

/* Take reply into out and parse the entries array arr inside it (EG_EPROTO when not an array). */
static eg_status_t adopt(eg_reply_t *reply, const eg_reply_t *arr, eg_stream_batch_t *out)
{
    if (arr == NULL || arr->type != EG_REPLY_ARRAY) {
        eg_reply_free(reply);
        return EG_EPROTO;
    }
    out->reply = reply;
    parse_entries(arr, out);
    return EG_OK;
}

eg_status_t eg_stream_parse_range(eg_reply_t *reply, eg_stream_batch_t *out)
{
    eg_stream_batch_clear(out);
    return adopt(reply, reply, out);
}

eg_status_t eg_stream_parse_read(eg_reply_t *reply, eg_stream_batch_t *out)
{
    eg_stream_batch_clear(out);
    if (reply != NULL && reply->type == EG_REPLY_NIL) {
        eg_reply_free(reply);
        return EG_OK;
    }
    const eg_reply_t *arr = NULL;
    if (reply != NULL && reply->type == EG_REPLY_ARRAY && reply->elements == 1 &&
        reply->element[0]->type == EG_REPLY_ARRAY && reply->element[0]->elements == 2) {
        arr = reply->element[0]->element[1];
    }
    return adopt(reply, arr, out);
}

const char *eg_stream_entry_field(const eg_stream_entry_t *e, const char *name, size_t *len)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < e->nfields; i++) {
        const eg_stream_field_t *f = &e->fields[i];
        if (f->name_len == n && memcmp(f->name, name, n) == 0) {
            if (len != NULL) {
                *len = f->value_len;
            }
            return f->value;
        }
    }
    return NULL;
}

/* ---- the consumer handle -------------------------------------------------------------------- */

static bool named(const char *s)
{
    return s != NULL && s[0] != '\0';
}

eg_status_t eg_stream_open(eg_stream_t **out, eg_store_t *store, const eg_stream_opts_t *opts)
{
    *out = NULL;
    if (store == NULL || opts == NULL || !named(opts->stream) || !named(opts->group) ||
        !named(opts->consumer) || (opts->start_id != NULL && !named(opts->start_id)) ||
        opts->read_count < 0 || opts->claim_count < 0) {
        return EG_EINVAL;
    }
    eg_stream_t *s = eg_xcalloc(1, sizeof(*s));
    s->store = store;
    s->stream = eg_xstrdup(opts->stream);
    s->group = eg_xstrdup(opts->group);
    s->consumer = eg_xstrdup(opts->consumer);
    s->start_id = eg_xstrdup(opts->start_id != NULL ? opts->start_id : "0");
    snprintf(s->read_count, sizeof(s->read_count), "%d",
             opts->read_count > 0 ? opts->read_count : DEFAULT_COUNT);
    snprintf(s->claim_count, sizeof(s->claim_count), "%d",
             opts->claim_count > 0 ? opts->claim_count : DEFAULT_COUNT);
    s->pending = true;
    snprintf(s->cursor, sizeof(s->cursor), "0-0");
    *out = s;
    return EG_OK;
}

void eg_stream_close(eg_stream_t *s)
{
    if (s == NULL) {
        return;
    }
    free(s->stream);
    free(s->group);
    free(s->consumer);
    free(s->start_id);
    free(s);
}

static bool is_error(const eg_reply_t *r, const char *prefix)
{
    size_t n = strlen(prefix);
    return r != NULL && r->type == EG_REPLY_ERROR && r->str != NULL && r->len >= n &&
           memcmp(r->str, prefix, n) == 0;
}

/* Run a command; a failure's text is kept for eg_stream_error. *reply is set on EG_OK and on a
 * refusal (EG_EPROTO), and the caller frees it. */
static eg_status_t run(eg_stream_t *s, int argc, const char **argv, eg_reply_t **reply)
{
    eg_status_t st = eg_store_command(s->store, argc, argv, NULL, reply);
    if (st != EG_OK) {
        snprintf(s->err, sizeof(s->err), "%s on %s: %s", argv[0], s->stream,
                 eg_store_error(s->store));
    }
    return st;
}

eg_status_t eg_stream_create_group(eg_stream_t *s)
{
    const char *argv[] = {"XGROUP", "CREATE", s->stream, s->group, s->start_id, "MKSTREAM"};
    eg_reply_t *r = NULL;
    eg_status_t st = run(s, 6, argv, &r);

    if (st == EG_EPROTO && is_error(r, "BUSYGROUP")) {
        st = EG_OK;
    }
    if (st == EG_OK) {
        s->lost = false;
    }
    eg_reply_free(r);
    return st;
}

/* A NOGROUP answer: the group (or the whole key) is gone. Create it again, warning once per
 * loss; our pending entries went with it. */
static eg_status_t recover(eg_stream_t *s)
{
    if (!s->lost) {
        eg_log_warn("stream %s: consumer group %s is gone (NOGROUP); creating it again", s->stream,
                    s->group);
        s->lost = true;
    }
    s->pending = false;
    return eg_stream_create_group(s);
}

eg_status_t eg_stream_read(eg_stream_t *s, int block_ms, eg_stream_batch_t *out)
{
    char block[16];
    eg_reply_t *r = NULL;
    eg_status_t st = EG_EINVAL;
    bool pending = s->pending;

    eg_stream_batch_clear(out);
    snprintf(block, sizeof(block), "%d", block_ms);
    for (int attempt = 0; attempt < 2; attempt++) {
        const char *argv[11] = {"XREADGROUP", "GROUP", s->group,
                                s->consumer,  "COUNT", s->read_count};
        int argc = 6;
        if (block_ms > 0) {
            argv[argc++] = "BLOCK";
            argv[argc++] = block;
        }
        argv[argc++] = "STREAMS";
        argv[argc++] = s->stream;
        argv[argc++] = pending ? "0" : ">";
        st = run(s, argc, argv, &r);
        if (st != EG_EPROTO || !is_error(r, "NOGROUP") || attempt > 0) {
            break;
        }
        eg_reply_free(r);
        r = NULL;
        st = recover(s);
        if (st != EG_OK) {
            break;
        }
        pending = false; /* a new group has no pending entries */
    }
    if (st == EG_OK) {
        st = eg_stream_parse_read(r, out);
        r = NULL;
        if (st != EG_OK) {
            snprintf(s->err, sizeof(s->err), "XREADGROUP on %s: unexpected reply shape", s->stream);
        }
    }
    eg_reply_free(r);
    if (st != EG_OK) {
        s->pending = true;
    } else if (pending && out->n == 0) {
        s->pending = false;
    }
    return st;
}

bool eg_stream_reading_pending(const eg_stream_t *s)
{
    return s->pending;
}

void eg_stream_rewind(eg_stream_t *s)
{
    s->pending = true;
}

eg_status_t eg_stream_claim(eg_stream_t *s, long min_idle_ms, eg_stream_batch_t *out)
{
    char idle[24];
    eg_reply_t *r = NULL;
    eg_status_t st = EG_OK;

    eg_stream_batch_clear(out);
    if (s->no_claim) {
        goto out;
    }
    snprintf(idle, sizeof(idle), "%ld", min_idle_ms > 0 ? min_idle_ms : 0);
    const char *argv[] = {"XAUTOCLAIM", s->stream, s->group, s->consumer,
                          idle,         s->cursor, "COUNT",  s->claim_count};
    st = run(s, 8, argv, &r);
    if (st == EG_EPROTO && is_error(r, "NOGROUP")) {
        st = recover(s);
        goto out;
    }
    if (st == EG_EPROTO && is_error(r, "ERR unknown command")) {
        eg_log_warn("stream %s: this Redis has no XAUTOCLAIM (before 6.2); entries stranded on "
                    "dead consumers of %s will not be taken over",
                    s->stream, s->group);
        s->no_claim = true;
        st = EG_OK;
        goto out;
    }
    if (st != EG_OK) {
        goto out;
    }
    /* [next cursor, entries] (Redis 7 adds the ids of deleted entries it dropped). */
    if (r->type != EG_REPLY_ARRAY || r->elements < 2 || r->element[0]->type != EG_REPLY_STRING ||
        r->element[0]->len >= sizeof(s->cursor)) {
        snprintf(s->err, sizeof(s->err), "XAUTOCLAIM on %s: unexpected reply shape", s->stream);
        st = EG_EPROTO;
        goto out;
    }
    memcpy(s->cursor, r->element[0]->str, r->element[0]->len + 1);
    st = adopt(r, r->element[1], out);
    r = NULL;
    if (st != EG_OK) {
        snprintf(s->err, sizeof(s->err), "XAUTOCLAIM on %s: unexpected reply shape", s->stream);
    }
out:
    eg_reply_free(r);
    return st;
}

eg_status_t eg_stream_ack(eg_stream_t *s, const char *const *ids, size_t n, long long *acked)
{
    eg_stream_cmd_t c = {0};
    eg_reply_t *r = NULL;
    eg_status_t st = EG_OK;

    if (acked != NULL) {
        *acked = 0;
    }
    if (n == 0) {
        goto out;
    }
    eg_stream_cmd_ack(s, ids, n, &c);
    st = run(s, c.argc, c.argv, &r);
    if (st == EG_OK && acked != NULL && r->type == EG_REPLY_INTEGER) {
        *acked = r->integer;
    }
out:
    eg_reply_free(r);
    eg_stream_cmd_free(&c);
    return st;
}

const char *eg_stream_error(const eg_stream_t *s)
{
    return s != NULL ? s->err : "no stream";
}

/* ---- command builders ----------------------------------------------------------------------- */

/* argv with room for fixed + n entries, the first fixed given, then ids. */
static void build(eg_stream_cmd_t *out, const char *const *head, size_t fixed,
                  const char *const *ids, size_t n)
{
    memset(out, 0, sizeof(*out));
    out->argv = eg_xcalloc(fixed + n, sizeof(*out->argv));
    memcpy(out->argv, head, fixed * sizeof(*head));
    if (n > 0) {
        memcpy(out->argv + fixed, ids, n * sizeof(*ids));
    }
    out->argc = (int)(fixed + n);
}

void eg_stream_cmd_ack(const eg_stream_t *s, const char *const *ids, size_t n, eg_stream_cmd_t *out)
{
    const char *head[] = {"XACK", s->stream, s->group};
    build(out, head, 3, ids, n);
}

void eg_stream_cmd_range(const char *key, size_t count, eg_stream_cmd_t *out)
{
    const char *head[] = {"XRANGE", key, "-", "+", "COUNT", NULL};
    build(out, head, 6, NULL, 0);
    snprintf(out->num, sizeof(out->num), "%zu", count);
    out->argv[5] = out->num;
}

void eg_stream_cmd_del(const char *key, const char *const *ids, size_t n, eg_stream_cmd_t *out)
{
    const char *head[] = {"XDEL", key};
    build(out, head, 2, ids, n);
}

void eg_stream_cmd_free(eg_stream_cmd_t *c)
{
    if (c == NULL) {
        return;
    }
    free(c->argv);
    memset(c, 0, sizeof(*c));
}
