/* Voice platform events in. The bridge reads ENGAGE_VOICE_EVENTS_STREAM with the consumer group
 * engage-bridge under a stable consumer name, so a restarted bridge first re-reads the entries it
 * had taken but not acknowledged (id 0), then new ones (>). Every BRIDGE_CLAIM_EVERY_MS it also
 * claims entries another bridge left pending for over BRIDGE_CLAIM_IDLE_MS (XAUTOCLAIM), so work
 * stranded by a crashed replica resumes within half a minute.
 *
 * An entry is acknowledged once handled: a call.progress after the scheduler applied it (or
 * found it stale). An entry that cannot be parsed, names an unknown type, or is refused as
 * invalid goes to the dead-letter stream at once, with the reason, and is acknowledged. A
 * transient failure (scheduler unreachable) leaves the entry pending: it is read again. */
#include "voice_events.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engage.pb-c.h"
#include "engage/log.h"
#include "engage/mem.h"
#include "engage/subjects.h"
#include "engage/timeutil.h"

#define BRIDGE_BLOCK_MS "500"
#define BRIDGE_BATCH "64"
#define BRIDGE_CLAIM_EVERY_MS 10000
#define BRIDGE_CLAIM_IDLE_MS "30000"
#define PROGRESS_TIMEOUT_MS 3000

const char *voice_field(const voice_entry_t *e, const char *name)
{
    for (int i = 0; i < e->n; i++)
        if (strcmp(e->names[i], name) == 0)
            return e->values[i];
    return NULL;
}

eg_status_t voice_entry_parse(const eg_reply_t *entry, voice_entry_t *e)
{
    e->n = 0;
    if (entry->type != EG_REPLY_ARRAY || entry->elements != 2 ||
        entry->element[0]->type != EG_REPLY_STRING)
        return EG_EPROTO;
    e->id = entry->element[0]->str;
    const eg_reply_t *f = entry->element[1];
    if (f->type == EG_REPLY_NIL)
        return EG_ENOTFOUND; /* pending, but deleted from the stream meanwhile */
    if (f->type != EG_REPLY_ARRAY || f->elements % 2 != 0 || f->elements / 2 > 32)
        return EG_EPROTO;
    for (size_t i = 0; i < f->elements; i += 2) {
        e->names[e->n] = f->element[i]->str;
        e->values[e->n] = f->element[i + 1]->str;
        e->lens[e->n] = f->element[i + 1]->len;
        e->n++;
    }
    return EG_OK;
}

static void ack(bridge_t *b, eg_store_t *voice, const char *id)
{
    const char *argv[] = {"XACK", b->cfg->voice_events_stream, BRIDGE_EVENTS_GROUP, id};
    eg_reply_t *r = NULL;
    eg_store_command(voice, 4, argv, NULL, &r);
    eg_reply_free(r);
}

/* Copy the entry to the dead-letter stream with the reason, then acknowledge it. */
static eg_status_t deadletter(bridge_t *b, eg_store_t *voice, const voice_entry_t *e,
                              const char *reason)
{
    const char *argv[4 + 2 * 34];
    size_t lens[4 + 2 * 34];
    int n = 0;
    argv[n++] = "XADD";
    argv[n++] = b->cfg->voice_deadletter_stream;
    argv[n++] = "*";
    argv[n++] = "reason";
    argv[n++] = reason;
    argv[n++] = "source_id";
    argv[n++] = e->id ? e->id : "";
    for (int i = 0; i < n; i++)
        lens[i] = strlen(argv[i]);
    for (int i = 0; i < e->n; i++) {
        if (strcmp(e->names[i], "reason") == 0 || strcmp(e->names[i], "source_id") == 0)
            continue;
        argv[n] = e->names[i];
        lens[n++] = strlen(e->names[i]);
        argv[n] = e->values[i];
        lens[n++] = e->lens[i];
    }
    eg_reply_t *r = NULL;
    eg_status_t st = eg_store_command(voice, n, argv, lens, &r);
    eg_reply_free(r);
    if (st == EG_OK) {
        eg_counter_inc(b->deadlettered);
        eg_log_warn("voice entry %s dead-lettered: %s", e->id, reason);
        if (e->id)
            ack(b, voice, e->id);
    }
    return st;
}

/* Apply a call.progress. EG_OK: handled (ack). EG_EINVAL: refused (dead-letter, *why set).
 * Other: transient (leave pending). */
static eg_status_t handle_progress(bridge_t *b, const voice_entry_t *e, char *why, size_t whylen)
{
    const char *tenant = voice_field(e, "tenant"), *id = voice_field(e, "callback_id"),
               *attempt = voice_field(e, "attempt"), *result = voice_field(e, "result");
    char *end = NULL;
    unsigned long att = attempt ? strtoul(attempt, &end, 10) : 0;
    if (!tenant || !*tenant || strlen(tenant) > 64) {
        snprintf(why, whylen, "tenant: missing or too long");
        return EG_EINVAL;
    }
    if (!id || !*id || strlen(id) > 64) {
        snprintf(why, whylen, "callback_id: missing or too long");
        return EG_EINVAL;
    }
    if (!attempt || !end || *end || att < 1 || att > 1000) {
        snprintf(why, whylen, "attempt: must be an integer from 1");
        return EG_EINVAL;
    }
    if (!result || !*result || strlen(result) > 32) {
        snprintf(why, whylen, "result: missing or too long");
        return EG_EINVAL;
    }
    Eg__ProgressRequest req = EG__PROGRESS_REQUEST__INIT;
    req.tenant_id = (char *)tenant;
    req.callback_id = (char *)id;
    req.attempt = (uint32_t)att;
    req.result = (char *)result;
    req.at_ms = eg_now_ms();
    req.entry_id = (char *)e->id;
    uint8_t buf[512];
    size_t n = eg__progress_request__get_packed_size(&req);
    if (n > sizeof buf) {
        snprintf(why, whylen, "entry too large");
        return EG_EINVAL;
    }
    eg__progress_request__pack(&req, buf);
    void *reply = NULL;
    size_t reply_len = 0;
    eg_status_t st = eg_bus_request(b->bus, EG_SUBJ_PROGRESS, buf, n, voice_field(e, "call_id"),
                                    PROGRESS_TIMEOUT_MS, &reply, &reply_len);
    if (st != EG_OK)
        return st == EG_EUNAVAIL || st == EG_ETIMEOUT ? EG_EUNAVAIL : st;
    Eg__CallbackReply *r = eg__callback_reply__unpack(NULL, reply_len, reply);
    free(reply);
    if (!r || !r->status) {
        if (r)
            eg__callback_reply__free_unpacked(r, NULL);
        return EG_EUNAVAIL;
    }
    st = (eg_status_t)r->status->code;
    if (st == EG_EINVAL || st == EG_ENOTFOUND) {
        snprintf(why, whylen, "%s", r->status->message);
        st = EG_EINVAL;
    } else if (st == EG_ECONFLICT) {
        st = EG_EUNAVAIL; /* busy record: try again */
    }
    eg__callback_reply__free_unpacked(r, NULL);
    return st;
}

/* Handle one entry. Returns false when handling must pause (transient failure). */
static bool handle_entry(bridge_t *b, eg_store_t *voice, const eg_reply_t *raw)
{
    voice_entry_t e;
    char why[256] = "";
    eg_counter_inc(b->events);
    eg_status_t pst = voice_entry_parse(raw, &e);
    if (pst == EG_ENOTFOUND) {
        ack(b, voice, e.id);
        return true;
    }
    if (pst != EG_OK) {
        /* No usable id: nothing can be copied or acknowledged by id. */
        eg_log_error("voice events stream returned a malformed entry");
        return true;
    }
    const char *type = voice_field(&e, "type");
    eg_status_t st;
    if (!type) {
        st = deadletter(b, voice, &e, "type: missing");
    } else if (strcmp(type, "call.progress") == 0) {
        st = handle_progress(b, &e, why, sizeof why);
        if (st == EG_OK)
            ack(b, voice, e.id);
        else if (st == EG_EINVAL)
            st = deadletter(b, voice, &e, why);
    } else if (strcmp(type, "callback.request") == 0 || strcmp(type, "call.inbound") == 0 ||
               strcmp(type, "queue.stats") == 0) {
        snprintf(why, sizeof why, "type: %s is not handled by this release", type);
        st = deadletter(b, voice, &e, why);
    } else {
        snprintf(why, sizeof why, "type: unknown type '%.40s'", type);
        st = deadletter(b, voice, &e, why);
    }
    if (st != EG_OK) {
        eg_counter_inc(b->retries);
        eg_log_warn("voice entry %s: %s; will retry", e.id, eg_status_str(st));
        return false;
    }
    return true;
}

/* Read a batch: from our pending entries (pending = true, id 0) or new ones (>). Returns the
 * number of entries read, -1 on error. */
static int read_batch(bridge_t *b, eg_store_t *voice, bool pending, bool *paused)
{
    const char *argv[] = {
        "XREADGROUP",       "GROUP", BRIDGE_EVENTS_GROUP, b->consumer, "COUNT",
        BRIDGE_BATCH,       "BLOCK", BRIDGE_BLOCK_MS,     "STREAMS",   b->cfg->voice_events_stream,
        pending ? "0" : ">"};
    eg_reply_t *r = NULL;
    *paused = false;
    eg_status_t st = eg_store_command(voice, 11, argv, NULL, &r);
    if (st != EG_OK) {
        eg_reply_free(r);
        return -1;
    }
    int n = 0;
    if (r->type == EG_REPLY_ARRAY && r->elements == 1 && r->element[0]->elements == 2) {
        const eg_reply_t *entries = r->element[0]->element[1];
        for (size_t i = 0; i < entries->elements && !*paused; i++, n++)
            *paused = !handle_entry(b, voice, entries->element[i]);
    }
    eg_reply_free(r);
    return n;
}

/* Take over entries other bridges left pending too long, and handle them. */
static void claim_stranded(bridge_t *b, eg_store_t *voice)
{
    const char *argv[] = {"XAUTOCLAIM",
                          b->cfg->voice_events_stream,
                          BRIDGE_EVENTS_GROUP,
                          b->consumer,
                          BRIDGE_CLAIM_IDLE_MS,
                          "0",
                          "COUNT",
                          "100"};
    eg_reply_t *r = NULL;
    if (eg_store_command(voice, 8, argv, NULL, &r) == EG_OK && r->type == EG_REPLY_ARRAY &&
        r->elements >= 2 && r->element[1]->elements > 0) {
        eg_log_info("claimed %zu voice entries left pending by another bridge",
                    r->element[1]->elements);
        for (size_t i = 0; i < r->element[1]->elements; i++)
            if (!handle_entry(b, voice, r->element[1]->element[i]))
                break;
    }
    eg_reply_free(r);
}

static eg_status_t ensure_group(bridge_t *b, eg_store_t *voice)
{
    const char *argv[] = {"XGROUP", "CREATE",  b->cfg->voice_events_stream, BRIDGE_EVENTS_GROUP,
                          "0",      "MKSTREAM"};
    eg_reply_t *r = NULL;
    eg_status_t st = eg_store_command(voice, 6, argv, NULL, &r);
    if (st == EG_EPROTO && r && r->str && strncmp(r->str, "BUSYGROUP", 9) == 0)
        st = EG_OK;
    eg_reply_free(r);
    return st;
}

void *voice_events_run(void *arg)
{
    bridge_t *b = arg;
    eg_store_t *voice = NULL;
    bool pending = true; /* after (re)connecting, first our own unacknowledged entries */
    int64_t next_claim = 0;
    while (!b->stopping) {
        if (!voice) {
            if (eg_store_open(&voice, b->cfg->voice_redis_url, 5000) != EG_OK ||
                ensure_group(b, voice) != EG_OK) {
                eg_store_close(voice);
                voice = NULL;
                struct timespec ts = {0, 500000000};
                nanosleep(&ts, NULL);
                continue;
            }
            b->events_ready = 1;
            pending = true;
        }
        bool paused = false;
        int n = read_batch(b, voice, pending, &paused);
        if (n < 0 || paused) {
            pending = true; /* re-read what stayed pending, after a pause */
            struct timespec ts = {0, 300000000};
            nanosleep(&ts, NULL);
            continue;
        }
        if (pending && n == 0)
            pending = false;
        if (eg_mono_ms() >= next_claim) {
            claim_stranded(b, voice);
            next_claim = eg_mono_ms() + BRIDGE_CLAIM_EVERY_MS;
        }
    }
    eg_store_close(voice);
    return NULL;
}
