/* Voice platform events in. The bridge reads ENGAGE_VOICE_EVENTS_STREAM with the consumer group
 * engage-bridge under a stable consumer name (lib/stream.c), so a restarted bridge first re-reads
 * the entries it had taken but not acknowledged (id 0), then new ones (>); a group lost with the
 * voice Redis's data is created again. Every BRIDGE_CLAIM_EVERY_MS it also claims entries another
 * bridge left pending for over BRIDGE_CLAIM_IDLE_MS, so work stranded by a crashed replica
 * resumes within half a minute.
 *
 * Each entry type becomes one scheduler request (docs/voice-stream.md has the contract):
 *
 *   call.progress     engage.sched.progress      acknowledged once applied (or found stale)
 *   callback.request  engage.sched.create        answered on the entry's reply_stream
 *   call.inbound      engage.sched.callin.match  answered with a `route` command
 *   queue.stats       engage.sched.qstats.put    acknowledged once stored
 *
 * What happens to an entry, in order:
 *   - It breaks the encoding rules (too many fields, a huge value, a repeated or oversized name,
 *     no type, an unknown type) or a required field of its type: copied to the dead-letter
 *     stream with the reason, and acknowledged. A callback.request with a usable request_id and
 *     reply_stream, and a call.inbound with a usable tenant and call_id, are answered instead
 *     (code 400, or a route with an empty destination), because someone is waiting for them.
 *   - The scheduler refuses it for good (unknown callback, invalid): the same.
 *   - It fails transiently (the scheduler timed out or answered "busy"/"unavailable"): it stays
 *     pending and the bridge pauses (250 ms, doubling to 5 s) before reading again from its own
 *     pending entries, so the events of one callback keep their order. After RETRY_TRIES failures
 *     spread over at least RETRY_WINDOW_MS it is given up: dead-lettered (call.progress,
 *     queue.stats) or answered (call.inbound: route with an empty destination). A
 *     callback.request is never retried here: the IVR flow waiting for it gets 503 at once and
 *     sends it again with the same request_id.
 *   - No scheduler answers at all (none running, NATS down): Engage is down, not the entry. It
 *     stays pending without counting against it, and the bridge pauses DOWN_PAUSE_MS.
 *
 * Tries are counted in memory (a few slots: handling stops at the first failing entry, so at
 * most a handful fail at once); a restarted bridge starts counting again. */
#include "voice_events.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "engage.pb-c.h"
#include "engage/ids.h"
#include "engage/json.h"
#include "engage/log.h"
#include "engage/mem.h"
#include "engage/names.h"
#include "engage/phone.h"
#include "engage/subjects.h"
#include "engage/timeutil.h"
#include "engage/userdata.h"

#define BRIDGE_BLOCK_MS 500
#define BRIDGE_BATCH 64
#define BRIDGE_CLAIM_EVERY_MS 10000
#define BRIDGE_CLAIM_IDLE_MS 30000
#define REQUEST_TIMEOUT_MS 3000
#define CREATE_TIMEOUT_MS 5000

#define RETRY_FIRST_MS 250
#define RETRY_MAX_MS 5000
#define RETRY_TRIES 5
#define RETRY_WINDOW_MS 30000
#define DOWN_PAUSE_MS 500
#define RETRY_SLOTS 16

#define DL_MAX_NAME 128         /* a dead-letter copy keeps this much of each field name */
#define DL_MAX_VALUE 1024       /* ... and of each value */
#define GUARD_TTL_MS "86400000" /* reply and route guards: one day */
#define REPLY_STREAM_MAX 200
#define COUNT_MAX 1000000

typedef enum {
    DONE,  /* handled and acknowledged (applied, answered or dead-lettered) */
    RETRY, /* failed transiently: stays pending, counts against the entry */
    DOWN,  /* Engage or the voice Redis unreachable: stays pending, not counted */
} outcome_t;

typedef struct {
    char id[48];
    int tries;
    int64_t first_ms;
} retry_slot_t;

/* The events thread's state. */
typedef struct {
    bridge_t *b;
    eg_store_t *voice;
    eg_stream_t *events; /* our consumer of the events stream, over voice */
    commands_t cmds;
    retry_slot_t slots[RETRY_SLOTS];
    int64_t pause_ms; /* after a failed entry: how long to wait before reading again */
    char last_error[256];
} events_t;

/* ---- entries ------------------------------------------------------------------------------ */

/* Bytes as text fit for a reason or a log line: at most max bytes of v, those outside
 * printable ASCII written \xHH, and "..." when cut. */
static void render(char *out, size_t outlen, const char *v, size_t len, size_t max)
{
    size_t o = 0;
    for (size_t i = 0; i < len && i < max && o + 5 < outlen; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
    }
    if (len > max && o + 4 < outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o < outlen ? o : outlen - 1] = '\0';
}

static bool same_name(const eg_stream_field_t *a, const eg_stream_field_t *b)
{
    return a->name_len == b->name_len && memcmp(a->name, b->name, a->name_len) == 0;
}

bool voice_entry_problem(const eg_stream_entry_t *e, char *why, size_t whylen)
{
    char name[4 * 40 + 8];
    if (e->nfields > VOICE_MAX_FIELDS) {
        snprintf(why, whylen, "entry: %zu fields; at most %d", e->nfields, VOICE_MAX_FIELDS);
        return true;
    }
    for (size_t i = 0; i < e->nfields; i++) {
        const eg_stream_field_t *f = &e->fields[i];
        render(name, sizeof name, f->name, f->name_len, 40);
        if (f->name_len == 0 || f->name_len > VOICE_MAX_NAME) {
            snprintf(why, whylen, "entry: field name '%s' is empty or longer than %d bytes", name,
                     VOICE_MAX_NAME);
            return true;
        }
        if (f->value_len > VOICE_MAX_VALUE) {
            snprintf(why, whylen, "%s: value of %zu bytes; at most %d", name, f->value_len,
                     VOICE_MAX_VALUE);
            return true;
        }
        for (size_t j = 0; j < i; j++) {
            if (same_name(f, &e->fields[j])) {
                snprintf(why, whylen, "%s: appears more than once", name);
                return true;
            }
        }
    }
    if (!eg_stream_entry_field(e, "type", NULL)) {
        snprintf(why, whylen, "type: missing");
        return true;
    }
    return false;
}

/* A text field: at most max bytes, no control bytes (NUL included). Returns the value, or NULL:
 * with *why set when it breaks a rule (or is required and absent or empty), with *why untouched
 * when it is optional and absent or empty. */
static const char *text_field(const eg_stream_entry_t *e, const char *name, size_t max,
                              bool required, char *why, size_t whylen)
{
    size_t len = 0;
    const char *v = eg_stream_entry_field(e, name, &len);
    if (!v || len == 0) {
        if (required)
            snprintf(why, whylen, "%s: missing", name);
        return NULL;
    }
    if (len > max) {
        snprintf(why, whylen, "%s: longer than %zu bytes", name, max);
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] == 0x7f) {
            snprintf(why, whylen, "%s: holds control characters or NUL bytes", name);
            return NULL;
        }
    }
    return v;
}

/* A decimal integer field in [min, max]. */
static bool int_field(const eg_stream_entry_t *e, const char *name, long min, long max, long *out,
                      char *why, size_t whylen)
{
    size_t len = 0;
    const char *v = eg_stream_entry_field(e, name, &len);
    bool ok = v && len > 0 && len <= 11;
    for (size_t i = 0; ok && i < len; i++)
        ok = (v[i] >= '0' && v[i] <= '9') || (i == 0 && v[i] == '-' && len > 1);
    long n = ok ? strtol(v, NULL, 10) : 0;
    if (!ok || n < min || n > max) {
        snprintf(why, whylen, "%s: must be an integer from %ld to %ld", name, min, max);
        return false;
    }
    *out = n;
    return true;
}

/* The tenant: a UUID (the ids Engage gives tenants). */
static const char *tenant_field(const eg_stream_entry_t *e, char *why, size_t whylen)
{
    const char *t = text_field(e, "tenant", 64, true, why, whylen);
    if (t && !eg_uuid_valid(t)) {
        snprintf(why, whylen, "tenant: must be a UUID");
        return NULL;
    }
    return t;
}

/* ---- writing to the voice Redis ------------------------------------------------------------ */

static void ack(events_t *x, const char *id)
{
    eg_stream_ack(x->events, &id, 1, NULL);
}

/* Copy the entry to the dead-letter stream with the reason (its first VOICE_READ_FIELDS fields,
 * names cut to DL_MAX_NAME bytes, values to DL_MAX_VALUE), then acknowledge it. */
static outcome_t deadletter(events_t *x, const eg_stream_entry_t *e, const char *reason)
{
    size_t nf = e->nfields < VOICE_READ_FIELDS ? e->nfields : VOICE_READ_FIELDS;
    size_t cap = 7 + 2 * nf, n = 0;
    const char **argv = eg_xcalloc(cap, sizeof *argv);
    size_t *lens = eg_xcalloc(cap, sizeof *lens);
    argv[n++] = "XADD";
    argv[n++] = x->b->cfg->voice_deadletter_stream;
    argv[n++] = "*";
    argv[n++] = "reason";
    argv[n++] = reason;
    argv[n++] = "source_id";
    argv[n++] = e->id ? e->id : "";
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(argv[i]);
    for (size_t i = 0; i < nf; i++) {
        const eg_stream_field_t *f = &e->fields[i];
        if ((f->name_len == 6 && memcmp(f->name, "reason", 6) == 0) ||
            (f->name_len == 9 && memcmp(f->name, "source_id", 9) == 0))
            continue;
        argv[n] = f->name;
        lens[n++] = f->name_len < DL_MAX_NAME ? f->name_len : DL_MAX_NAME;
        argv[n] = f->value;
        lens[n++] = f->value_len < DL_MAX_VALUE ? f->value_len : DL_MAX_VALUE;
    }
    eg_reply_t *r = NULL;
    eg_status_t st = eg_store_command(x->voice, (int)n, argv, lens, &r);
    eg_reply_free(r);
    free(argv);
    free(lens);
    if (st != EG_OK) {
        snprintf(x->last_error, sizeof x->last_error, "dead-letter write failed: %s",
                 eg_status_str(st));
        return DOWN;
    }
    eg_counter_inc(x->b->deadlettered);
    eg_log_warn("voice entry %s dead-lettered: %s", e->id, reason);
    if (e->id)
        ack(x, e->id);
    return DONE;
}

/* Write an answer (route or callback.reply) guarded by key guard, then acknowledge the entry. An
 * answer that cannot be written for good (the stream is another type of key) dead-letters it. */
static outcome_t answer(events_t *x, const eg_stream_entry_t *e, const char *guard,
                        const char *stream, const char *const *fields, size_t nfields,
                        eg_counter_t *counter)
{
    bool written = false;
    eg_status_t st =
        commands_append(&x->cmds, guard, GUARD_TTL_MS, stream, fields, nfields, &written);
    if (st == EG_EPROTO) {
        char why[300], name[4 * 40 + 8];
        render(name, sizeof name, stream, strlen(stream), 40);
        snprintf(why, sizeof why, "%s: the answer could not be written to '%s' (not a stream?)",
                 counter == x->b->routes ? "commands stream" : "reply_stream", name);
        return deadletter(x, e, why);
    }
    if (st != EG_OK) {
        snprintf(x->last_error, sizeof x->last_error, "voice Redis write failed: %s",
                 eg_status_str(st));
        return DOWN;
    }
    if (written)
        eg_counter_inc(counter);
    ack(x, e->id);
    return DONE;
}

/* ---- asking the scheduler ------------------------------------------------------------------- */

/* DONE with *reply (free()) when the scheduler answered; RETRY when it timed out (it may be
 * busy, or this entry may be what stalls it); DOWN when none answers (none running, NATS down). */
static outcome_t ask(events_t *x, const char *subject, const ProtobufCMessage *m, const char *corr,
                     int timeout_ms, void **reply, size_t *reply_len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = eg_xmalloc(n ? n : 1);
    protobuf_c_message_pack(m, buf);
    eg_status_t st = eg_bus_request(x->b->bus, subject, buf, n, corr, timeout_ms, reply, reply_len);
    free(buf);
    if (st == EG_OK)
        return DONE;
    snprintf(x->last_error, sizeof x->last_error, "%s: %s", subject, eg_status_str(st));
    return st == EG_ETIMEOUT ? RETRY : DOWN;
}

/* A scheduler status that may succeed later (busy record, store unavailable). */
static bool transient(eg_status_t st)
{
    return st == EG_ECONFLICT || st == EG_EUNAVAIL || st == EG_ETIMEOUT || st == EG_EIO ||
           st == EG_EPROTO || st == EG_EINTERNAL;
}

/* A retryable failure: RETRY, or on the entry's last try the give-up (dead-letter). */
static outcome_t failed(events_t *x, const eg_stream_entry_t *e, outcome_t o, bool final,
                        const char *type)
{
    if (o != RETRY || !final)
        return o;
    char why[400];
    snprintf(why, sizeof why, "%s: still failing after %d tries over %d s (%s)", type, RETRY_TRIES,
             RETRY_WINDOW_MS / 1000, x->last_error);
    return deadletter(x, e, why);
}

/* ---- call.progress ------------------------------------------------------------------------- */

static outcome_t handle_progress(events_t *x, const eg_stream_entry_t *e, bool final)
{
    char why[256] = "";
    long attempt = 0;
    const char *tenant = text_field(e, "tenant", 64, true, why, sizeof why);
    const char *id = tenant ? text_field(e, "callback_id", 64, true, why, sizeof why) : NULL;
    bool att = id && int_field(e, "attempt", 1, 1000, &attempt, why, sizeof why);
    const char *result = att ? text_field(e, "result", 32, true, why, sizeof why) : NULL;
    if (!result)
        return deadletter(x, e, why);
    char ignored[64];
    const char *call_id = text_field(e, "call_id", 128, false, ignored, sizeof ignored);

    Eg__ProgressRequest req = EG__PROGRESS_REQUEST__INIT;
    req.tenant_id = (char *)tenant;
    req.callback_id = (char *)id;
    req.attempt = (uint32_t)attempt;
    req.result = (char *)result;
    req.at_ms = eg_now_ms();
    req.entry_id = (char *)e->id;
    void *raw = NULL;
    size_t len = 0;
    outcome_t o = ask(x, EG_SUBJ_PROGRESS, &req.base, call_id, REQUEST_TIMEOUT_MS, &raw, &len);
    if (o != DONE)
        return failed(x, e, o, final, "call.progress");
    Eg__CallbackReply *r = eg__callback_reply__unpack(NULL, len, raw);
    free(raw);
    eg_status_t st = r && r->status ? (eg_status_t)r->status->code : EG_EPROTO;
    if (st == EG_OK) {
        ack(x, e->id);
        o = DONE;
    } else if (!transient(st)) { /* unknown callback or result: never applies */
        snprintf(why, sizeof why, "%s",
                 r->status->message[0] ? r->status->message : eg_status_str(st));
        o = deadletter(x, e, why);
    } else {
        snprintf(x->last_error, sizeof x->last_error, "scheduler: %s %s", eg_status_str(st),
                 r && r->status ? r->status->message : "undecodable reply");
        o = failed(x, e, RETRY, final, "call.progress");
    }
    if (r)
        eg__callback_reply__free_unpacked(r, NULL);
    return o;
}

/* ---- callback.request -------------------------------------------------------------------- */

/* A reply stream the bridge may write to: not one of its own streams, nor a key under
 * "engage:" (its guards live there). */
static bool reply_stream_usable(const events_t *x, const char *s)
{
    const eg_config_t *c = x->b->cfg;
    return strcmp(s, c->voice_events_stream) != 0 && strcmp(s, c->voice_commands_stream) != 0 &&
           strcmp(s, c->voice_deadletter_stream) != 0 && strncmp(s, "engage:", 7) != 0;
}

/* Fill cr from the entry (strings borrowed from it, except *user_data: caller frees). false
 * with msg naming the field when a rule is broken. */
static bool parse_request(const eg_stream_entry_t *e, Eg__CreateRequest *cr, char **user_data,
                          char *msg, size_t msglen)
{
    const char *tenant = tenant_field(e, msg, msglen);
    if (!tenant)
        return false;
    const char *service = text_field(e, "service", EG_NAME_MAX, true, msg, msglen);
    if (!service)
        return false;
    if (!eg_name_valid(service)) {
        snprintf(msg, msglen, "service: must be " EG_NAME_RULE);
        return false;
    }
    size_t len = 0;
    const char *phone = eg_stream_entry_field(e, "phone", &len);
    if (!phone || !eg_phone_valid_n(phone, len)) {
        snprintf(msg, msglen, "phone: %s",
                 phone && len ? "must be an E.164 number: '+' then 8 to 15 digits, e.g. "
                                "+15551234567"
                              : "missing");
        return false;
    }
    cr->tenant_id = (char *)tenant;
    cr->service = (char *)service;
    cr->phone = (char *)phone;
    const char *when = eg_stream_entry_field(e, "desired_time", &len);
    if (when && len > 0) {
        if (eg_time_parse_iso(when, len, &cr->desired_time_ms) != EG_OK) {
            snprintf(msg, msglen,
                     "desired_time: must be an ISO-8601 time with an offset, e.g. "
                     "2026-11-28T19:00:00.000Z");
            return false;
        }
        cr->has_desired_time = true;
    }
    const char *ud = eg_stream_entry_field(e, "user_data", &len);
    if (ud && len > 0) {
        if (len > EG_USER_DATA_MAX) {
            snprintf(msg, msglen, "user_data: must be at most %d bytes (got %zu)", EG_USER_DATA_MAX,
                     len);
            return false;
        }
        char jerr[160];
        eg_json_t *j = eg_json_parse(ud, len, 16, jerr, sizeof jerr);
        if (!j || !eg_json_is_object(j)) {
            snprintf(msg, msglen, "user_data: must be a JSON object%s%s", j ? "" : ": ",
                     j ? "" : jerr);
            eg_json_free(j);
            return false;
        }
        *user_data = eg_json_dump(j, NULL);
        eg_json_free(j);
        cr->user_data_json = *user_data;
    }
    return true;
}

static int reply_code(eg_status_t st)
{
    switch (st) {
    case EG_OK:
        return 200;
    case EG_ENOTFOUND:
        return 404;
    case EG_EFULL:
        return 429;
    case EG_ECONFLICT:
        return 409;
    case EG_EINVAL:
    case EG_ECLOSED:
    case EG_ELIMIT:
    case EG_ESTATE:
    case EG_ETOOBIG:
        return 400;
    default:
        return 503;
    }
}

static outcome_t handle_request(events_t *x, const eg_stream_entry_t *e)
{
    char why[300] = "", msg[600] = "", code_s[8], guard[400], *user_data = NULL, *slots = NULL;
    const char *request_id = text_field(e, "request_id", 128, true, why, sizeof why);
    const char *stream =
        request_id ? text_field(e, "reply_stream", REPLY_STREAM_MAX, true, why, sizeof why) : NULL;
    if (stream && !reply_stream_usable(x, stream)) {
        snprintf(why, sizeof why,
                 "reply_stream: must not be a stream of the bridge nor a key under 'engage:'");
        stream = NULL;
    }
    if (!stream)
        return deadletter(x, e, why);

    Eg__CreateRequest cr = EG__CREATE_REQUEST__INIT;
    Eg__CallbackReply *r = NULL;
    const char *callback_id = NULL;
    int code = 400;
    if (parse_request(e, &cr, &user_data, msg, sizeof msg)) {
        char id[EG_UUID_STR_LEN + 1], idem[140];
        eg_uuid_v7_str(id);
        /* The request_id is the Idempotency-Key (in a namespace of its own): a request read
         * again, or sent again after a 503, books nothing new and gets the first callback. */
        snprintf(idem, sizeof idem, "ivr:%s", request_id);
        cr.id = id;
        cr.idempotency_key = idem;
        cr.origin = EG__ORIGIN__ORIGIN_IVR;
        void *raw = NULL;
        size_t len = 0;
        outcome_t o = ask(x, EG_SUBJ_CREATE, &cr.base, request_id, CREATE_TIMEOUT_MS, &raw, &len);
        if (o == DONE)
            r = eg__callback_reply__unpack(NULL, len, raw);
        free(raw);
        eg_status_t st = r && r->status ? (eg_status_t)r->status->code : EG_EUNAVAIL;
        code = reply_code(st);
        if (st == EG_OK && r->callback) {
            callback_id = r->callback->id;
            snprintf(msg, sizeof msg, "OK");
        } else if (r && r->status && r->status->message[0]) {
            snprintf(msg, sizeof msg, "%s", r->status->message);
        } else {
            code = 503;
            snprintf(msg, sizeof msg,
                     "Engage could not book the callback now; send the request again with the "
                     "same request_id");
            eg_log_warn("callback.request %s: %s", e->id, x->last_error);
        }
        if (st == EG_EFULL && r->n_proposals) {
            /* The free slots next to the full one, as the API's 429 lists them. */
            eg_json_t *o2 = eg_json_object();
            for (size_t i = 0; i < r->n_proposals; i++) {
                char iso[EG_ISO_LEN + 1];
                eg_time_format_iso(r->proposals[i]->start_ms, iso);
                eg_json_set_int(o2, iso, r->proposals[i]->free);
            }
            slots = eg_json_dump(o2, NULL);
            eg_json_free(o2);
        }
    }
    snprintf(code_s, sizeof code_s, "%d", code);
    const char *fields[12];
    size_t n = 0;
#define FIELD(k, v) (fields[2 * n] = (k), fields[2 * n + 1] = (v), n++)
    FIELD("type", "callback.reply");
    FIELD("request_id", request_id);
    FIELD("code", code_s);
    if (callback_id)
        FIELD("callback_id", callback_id);
    FIELD("message", msg);
    if (slots)
        FIELD("slots", slots);
#undef FIELD
    snprintf(guard, sizeof guard, "engage:replied:%s:%s", x->b->cfg->voice_events_stream, e->id);
    outcome_t o = answer(x, e, guard, stream, fields, n, x->b->replies);
    if (o == DONE)
        eg_log_info("callback.request %s answered %d%s%s", e->id, code,
                    callback_id ? ": callback " : "", callback_id ? callback_id : "");
    if (r)
        eg__callback_reply__free_unpacked(r, NULL);
    free(user_data);
    free(slots);
    return o;
}

/* ---- call.inbound ------------------------------------------------------------------------- */

/* Answer a call.inbound with a route command: to m's destination when it matched, else with an
 * empty destination and the reason. */
static outcome_t route(events_t *x, const eg_stream_entry_t *e, const char *tenant,
                       const char *call_id, const Eg__CallInMatchReply *m, const char *reason)
{
    bool matched = m && m->matched && m->request;
    const char *fields[16];
    size_t n = 0;
    char guard[300];
#define FIELD(k, v) (fields[2 * n] = (k), fields[2 * n + 1] = (v), n++)
    FIELD("type", "route");
    FIELD("tenant", tenant);
    FIELD("call_id", call_id);
    FIELD("destination", matched ? m->destination : "");
    if (matched) {
        FIELD("callin_request_id", m->request->id);
        FIELD("user_data", m->request->user_data_json[0] ? m->request->user_data_json : "{}");
    } else {
        FIELD("reason", reason ? reason : "no matching call-in request");
    }
#undef FIELD
    snprintf(guard, sizeof guard, "engage:routed:%s:%s", tenant, call_id);
    outcome_t o = answer(x, e, guard, x->b->cfg->voice_commands_stream, fields, n, x->b->routes);
    if (o == DONE)
        eg_log_info("call %s routed to '%s'%s%s", call_id, matched ? m->destination : "",
                    matched ? "" : ": ", matched ? "" : (reason ? reason : ""));
    return o;
}

static outcome_t handle_inbound(events_t *x, const eg_stream_entry_t *e, bool final)
{
    char why[300] = "";
    const char *tenant = tenant_field(e, why, sizeof why);
    const char *call_id = tenant ? text_field(e, "call_id", 128, true, why, sizeof why) : NULL;
    if (!call_id)
        return deadletter(x, e, why); /* nothing to route */
    /* From here on the call gets a route, whatever else is wrong. */
    const char *dialed = text_field(e, "dialed_number", 32, true, why, sizeof why);
    const char *caller = text_field(e, "caller_number", 32, false, why, sizeof why);
    const char *code = text_field(e, "access_code", 16, false, why, sizeof why);
    if (why[0])
        return route(x, e, tenant, call_id, NULL, why);

    Eg__CallInMatchRequest req = EG__CALL_IN_MATCH_REQUEST__INIT;
    req.tenant_id = (char *)tenant;
    req.call_id = (char *)call_id;
    req.dialed_number = (char *)dialed;
    req.caller_number = (char *)(caller ? caller : "");
    req.access_code = (char *)(code ? code : "");
    void *raw = NULL;
    size_t len = 0;
    outcome_t o = ask(x, EG_SUBJ_CALLIN_MATCH, &req.base, call_id, REQUEST_TIMEOUT_MS, &raw, &len);
    Eg__CallInMatchReply *r = NULL;
    if (o == DONE) {
        r = eg__call_in_match_reply__unpack(NULL, len, raw);
        eg_status_t st = r && r->status ? (eg_status_t)r->status->code : EG_EPROTO;
        if (st == EG_OK) {
            o = route(x, e, tenant, call_id, r, r->reason);
        } else if (!transient(st)) {
            o = route(x, e, tenant, call_id, NULL, r->status->message);
        } else {
            snprintf(x->last_error, sizeof x->last_error, "scheduler: %s %s", eg_status_str(st),
                     r && r->status ? r->status->message : "undecodable reply");
            o = RETRY;
        }
    }
    free(raw);
    if (r)
        eg__call_in_match_reply__free_unpacked(r, NULL);
    if (o == RETRY && final)
        o = route(x, e, tenant, call_id, NULL, "Engage could not match the call in time");
    return o;
}

/* ---- queue.stats -------------------------------------------------------------------------- */

static outcome_t handle_stats(events_t *x, const eg_stream_entry_t *e, bool final)
{
    char why[300] = "";
    long in = 0, ready = 0, waiting = 0, aht = 0;
    size_t len = 0;
    const char *tenant = tenant_field(e, why, sizeof why);
    const char *vq = tenant ? text_field(e, "virtual_queue", 128, true, why, sizeof why) : NULL;
    bool ok = vq && int_field(e, "agents_logged_in", 0, COUNT_MAX, &in, why, sizeof why) &&
              int_field(e, "agents_ready", 0, COUNT_MAX, &ready, why, sizeof why) &&
              int_field(e, "calls_waiting", 0, COUNT_MAX, &waiting, why, sizeof why) &&
              int_field(e, "avg_handle_time_s", 0, COUNT_MAX, &aht, why, sizeof why);
    Eg__QueueStatsRequest req = EG__QUEUE_STATS_REQUEST__INIT;
    const char *at = ok ? eg_stream_entry_field(e, "at", &len) : NULL;
    if (ok && (!at || eg_time_parse_iso(at, len, &req.at_ms) != EG_OK)) {
        snprintf(why, sizeof why, "at: %s",
                 at && len ? "must be an ISO-8601 time with an offset" : "missing");
        ok = false;
    }
    if (!ok)
        return deadletter(x, e, why);
    req.tenant_id = (char *)tenant;
    req.virtual_queue = (char *)vq;
    req.agents_logged_in = (int32_t)in;
    req.agents_ready = (int32_t)ready;
    req.calls_waiting = (int32_t)waiting;
    req.avg_handle_time_s = (int32_t)aht;
    void *raw = NULL;
    outcome_t o = ask(x, EG_SUBJ_QSTATS_PUT, &req.base, NULL, REQUEST_TIMEOUT_MS, &raw, &len);
    if (o != DONE)
        return failed(x, e, o, final, "queue.stats");
    Eg__StatusReply *r = eg__status_reply__unpack(NULL, len, raw);
    free(raw);
    eg_status_t st = r && r->status ? (eg_status_t)r->status->code : EG_EPROTO;
    if (st == EG_OK) {
        ack(x, e->id);
        o = DONE;
    } else if (!transient(st)) {
        o = deadletter(x, e, r->status->message[0] ? r->status->message : eg_status_str(st));
    } else {
        snprintf(x->last_error, sizeof x->last_error, "scheduler: %s", eg_status_str(st));
        o = failed(x, e, RETRY, final, "queue.stats");
    }
    if (r)
        eg__status_reply__free_unpacked(r, NULL);
    return o;
}

/* ---- one entry ------------------------------------------------------------------------------ */

static retry_slot_t *slot_of(events_t *x, const char *id, bool create)
{
    retry_slot_t *oldest = &x->slots[0];
    for (int i = 0; i < RETRY_SLOTS; i++) {
        if (x->slots[i].id[0] && strcmp(x->slots[i].id, id) == 0)
            return &x->slots[i];
        if (!x->slots[i].id[0] || x->slots[i].first_ms < oldest->first_ms)
            oldest = &x->slots[i];
    }
    if (!create)
        return NULL;
    memset(oldest, 0, sizeof *oldest);
    snprintf(oldest->id, sizeof oldest->id, "%s", id);
    oldest->first_ms = eg_mono_ms();
    return oldest;
}

static outcome_t handle_entry(events_t *x, const eg_stream_entry_t *e)
{
    char why[400] = "";
    eg_counter_inc(x->b->events);
    x->last_error[0] = '\0';
    if (e->status == EG_ENOTFOUND) {
        /* Pending, but deleted from the stream meanwhile: nothing to do but acknowledge it. */
        if (e->id)
            ack(x, e->id);
        return DONE;
    }
    if (e->status != EG_OK) {
        if (e->id)
            return deadletter(x, e, "entry: not a list of field/value strings");
        /* No usable id: nothing can be copied or acknowledged by id. */
        eg_log_error("voice events stream returned a malformed entry");
        return DONE;
    }
    if (voice_entry_problem(e, why, sizeof why))
        return deadletter(x, e, why);

    retry_slot_t *slot = slot_of(x, e->id, false);
    bool final =
        slot && slot->tries + 1 >= RETRY_TRIES && eg_mono_ms() - slot->first_ms >= RETRY_WINDOW_MS;
    size_t tlen = 0;
    const char *type = eg_stream_entry_field(e, "type", &tlen);
    outcome_t o;
    if (strcmp(type, "call.progress") == 0 && tlen == 13) {
        o = handle_progress(x, e, final);
    } else if (strcmp(type, "callback.request") == 0 && tlen == 16) {
        o = handle_request(x, e);
    } else if (strcmp(type, "call.inbound") == 0 && tlen == 12) {
        o = handle_inbound(x, e, final);
    } else if (strcmp(type, "queue.stats") == 0 && tlen == 11) {
        o = handle_stats(x, e, final);
    } else {
        char shown[4 * 40 + 8];
        render(shown, sizeof shown, type, tlen, 40);
        snprintf(why, sizeof why, "type: unknown type '%s'", shown);
        o = deadletter(x, e, why);
    }

    if (o == RETRY) {
        if (!slot)
            slot = slot_of(x, e->id, true);
        slot->tries++;
        int64_t pause = RETRY_FIRST_MS;
        for (int i = 1; i < slot->tries && pause < RETRY_MAX_MS; i++)
            pause *= 2;
        x->pause_ms = pause < RETRY_MAX_MS ? pause : RETRY_MAX_MS;
        eg_counter_inc(x->b->retries);
        eg_log_warn("voice entry %s: %s; try %d failed, again in %" PRId64 " ms", e->id,
                    x->last_error, slot->tries, x->pause_ms);
    } else if (o == DOWN) {
        x->pause_ms = DOWN_PAUSE_MS;
        eg_log_warn("voice entry %s waits: %s", e->id, x->last_error);
    } else if (slot) {
        slot->id[0] = '\0';
    }
    return o;
}

/* ---- the loop -------------------------------------------------------------------------------- */

/* Handle a batch of entries in order; stops at the first that is not DONE. Returns true when
 * every one was handled. */
static bool handle_list(events_t *x, const eg_stream_batch_t *b)
{
    for (size_t i = 0; i < b->n; i++)
        if (handle_entry(x, &b->entries[i]) != DONE)
            return false;
    return true;
}

/* Read a batch: our pending entries first, then new ones (lib/stream.c keeps track). Returns
 * the number of entries read, -1 on error; *paused when one was left pending (the next read
 * starts from our pending entries again). */
static int read_batch(events_t *x, bool *paused)
{
    eg_stream_batch_t b = {0};
    *paused = false;
    eg_status_t st = eg_stream_read(x->events, BRIDGE_BLOCK_MS, &b);
    if (st != EG_OK) {
        eg_log_debug("voice events: %s", eg_stream_error(x->events));
        return -1;
    }
    int n = (int)b.n;
    *paused = !handle_list(x, &b);
    if (*paused)
        eg_stream_rewind(x->events);
    eg_stream_batch_clear(&b);
    return n;
}

/* Take over entries other bridges left pending too long, and handle them. When one is left
 * pending (it is ours now), the next read starts from our pending entries again. */
static void claim_stranded(events_t *x)
{
    eg_stream_batch_t b = {0};
    if (eg_stream_claim(x->events, BRIDGE_CLAIM_IDLE_MS, &b) == EG_OK && b.n > 0) {
        eg_log_info("claimed %zu voice entries left pending by another bridge", b.n);
        if (!handle_list(x, &b))
            eg_stream_rewind(x->events);
    }
    eg_stream_batch_clear(&b);
}

/* Connect to the voice Redis and make sure the group exists. */
static bool connect_voice(events_t *x)
{
    eg_stream_opts_t o = {.stream = x->b->cfg->voice_events_stream,
                          .group = BRIDGE_EVENTS_GROUP,
                          .consumer = x->b->consumer,
                          .start_id = "0",
                          .read_count = BRIDGE_BATCH,
                          .claim_count = 100};
    if (eg_store_open(&x->voice, x->b->cfg->voice_redis_url, 5000) == EG_OK &&
        eg_stream_open(&x->events, x->voice, &o) == EG_OK &&
        eg_stream_create_group(x->events) == EG_OK && commands_init(&x->cmds, x->voice) == EG_OK)
        return true;
    eg_stream_close(x->events);
    x->events = NULL;
    eg_store_close(x->voice);
    x->voice = NULL;
    return false;
}

/* Sleep ms, waking every 100 ms to notice a stop. */
static void pause_for(const bridge_t *b, int64_t ms)
{
    while (ms > 0 && !atomic_load(&b->stopping)) {
        int64_t step = ms < 100 ? ms : 100;
        struct timespec ts = {0, (long)step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

void *voice_events_run(void *arg)
{
    events_t *x = eg_xcalloc(1, sizeof *x);
    x->b = arg;
    int64_t next_claim = 0;
    while (!atomic_load(&x->b->stopping)) {
        if (!x->voice) {
            if (!connect_voice(x)) {
                pause_for(x->b, 500);
                continue;
            }
            atomic_store(&x->b->events_ready, true);
        }
        bool paused = false;
        int n = read_batch(x, &paused);
        if (n < 0 || paused) {
            pause_for(x->b, n < 0 ? 300 : x->pause_ms); /* then re-read what stayed pending */
            continue;
        }
        if (eg_mono_ms() >= next_claim) {
            claim_stranded(x);
            next_claim = eg_mono_ms() + BRIDGE_CLAIM_EVERY_MS;
        }
    }
    eg_stream_close(x->events);
    eg_store_close(x->voice);
    free(x);
    return NULL;
}
