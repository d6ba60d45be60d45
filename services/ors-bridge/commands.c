/* Dispatches to voice commands. The relay publishes a Dispatch to engage.dispatch.<tenant> for
 * every callback handed to (or taken back from) the voice platform; this thread takes them from
 * a JetStream durable consumer and appends a `dial` or `cancel` entry to the voice commands
 * stream, then acks. A dial is guarded by a key set NX in the same Lua step as the XADD, so a
 * dispatch redelivered after a crash between XADD and ack never dials an attempt twice. */
#include "commands.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engage/events.h"
#include "engage/log.h"
#include "engage/mem.h"
#include "engage/subjects.h"
#include "engage/timeutil.h"

/* KEYS: guard, stream. ARGV: guard ttl ms, then field, value, ... Returns 1 written, 0 seen. */
static const char write_lua[] =
    "if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 0 end\n"
    "redis.call('XADD', KEYS[2], 'MAXLEN', '~', '1000000', '*', unpack(ARGV, 2))\n"
    "return 1\n";

#define GUARD_TTL_MS "1296000000" /* 15 days: longer than any callback lives */
#define MAX_ARGS 32

eg_status_t commands_init(commands_t *c, eg_store_t *voice)
{
    c->voice = voice;
    return eg_store_script_add(voice, write_lua, &c->script);
}

eg_status_t commands_write(commands_t *c, const bridge_t *b, const Eg__Dispatch *d, bool *written)
{
    const Eg__Callback *cb = d->callback;
    char guard[256], attempt[16], priority[16];
    const char *argv[MAX_ARGS];
    size_t lens[MAX_ARGS];
    int n = 0;
    snprintf(attempt, sizeof attempt, "%u", d->attempt);
    snprintf(priority, sizeof priority, "%d", cb->priority);
    bool dial = d->kind == EG__DISPATCH_KIND__DISPATCH_DIAL;
    if (dial)
        snprintf(guard, sizeof guard, "engage:dialed:%s:%s:%u", cb->tenant_id, cb->id, d->attempt);
    else
        snprintf(guard, sizeof guard, "engage:cancelled:%s:%s:%u", cb->tenant_id, cb->id,
                 d->attempt);
    argv[n++] = guard;
    argv[n++] = b->cfg->voice_commands_stream;
    argv[n++] = GUARD_TTL_MS;
#define FIELD(k, v) (argv[n++] = (k), argv[n++] = (v))
    FIELD("type", dial ? "dial" : "cancel");
    FIELD("tenant", cb->tenant_id);
    FIELD("callback_id", cb->id);
    FIELD("attempt", attempt);
    FIELD("dispatch_id", d->dispatch_id);
    if (dial) {
        FIELD("phone", cb->phone);
        FIELD("service", cb->service);
        FIELD("virtual_queue", cb->virtual_queue);
        FIELD("priority", priority);
        FIELD("dial_mode", d->dial_mode[0] ? d->dial_mode : "customer-first");
        FIELD("user_data", cb->user_data_json[0] ? cb->user_data_json : "{}");
    }
#undef FIELD
    for (int i = 0; i < n; i++)
        lens[i] = strlen(argv[i]);
    eg_reply_t *r = NULL;
    eg_status_t st = eg_store_eval(c->voice, c->script, 2, n, argv, lens, &r);
    *written = st == EG_OK && r->type == EG_REPLY_INTEGER && r->integer == 1;
    eg_reply_free(r);
    return st;
}

eg_status_t commands_append(commands_t *c, const char *guard, const char *guard_ttl_ms,
                            const char *stream, const char *const *fields, size_t nfields,
                            bool *written)
{
    size_t argc = 3 + 2 * nfields;
    const char **argv = eg_xcalloc(argc, sizeof *argv);
    argv[0] = guard;
    argv[1] = stream;
    argv[2] = guard_ttl_ms;
    for (size_t i = 0; i < 2 * nfields; i++)
        argv[3 + i] = fields[i];
    eg_reply_t *r = NULL;
    eg_status_t st = eg_store_eval(c->voice, c->script, 2, (int)argc, argv, NULL, &r);
    *written = st == EG_OK && r->type == EG_REPLY_INTEGER && r->integer == 1;
    eg_reply_free(r);
    free(argv);
    return st;
}

void *commands_run(void *arg)
{
    bridge_t *b = arg;
    eg_store_t *voice = NULL;
    eg_bus_consumer_t *consumer = NULL;
    commands_t c;
    eg_bus_jsmsg_t *msgs[64];
    while (!atomic_load(&b->stopping)) {
        if (!voice) {
            if (eg_store_open(&voice, b->cfg->voice_redis_url, 5000) != EG_OK ||
                commands_init(&c, voice) != EG_OK) {
                eg_store_close(voice);
                voice = NULL;
                struct timespec ts = {0, 500000000};
                nanosleep(&ts, NULL);
                continue;
            }
        }
        if (!consumer) {
            if (eg_events_stream_ensure(b->bus) != EG_OK ||
                eg_bus_js_consumer_open(b->bus, EG_STREAM_EVENTS, EG_DURABLE_BRIDGE,
                                        EG_SUBJ_DISPATCH_ALL, 30, &consumer) != EG_OK) {
                struct timespec ts = {0, 500000000};
                nanosleep(&ts, NULL);
                continue;
            }
            atomic_store(&b->dispatch_ready, true);
        }
        int count = 0;
        eg_status_t st = eg_bus_js_fetch(consumer, 64, 500, msgs, &count);
        if (st != EG_OK)
            continue;
        for (int i = 0; i < count; i++) {
            eg_log_set_corr(eg_bus_jsmsg_corr_id(msgs[i]));
            Eg__Dispatch *d =
                eg__dispatch__unpack(NULL, eg_bus_jsmsg_len(msgs[i]), eg_bus_jsmsg_data(msgs[i]));
            if (!d || !d->callback) {
                eg_log_error("undecodable dispatch (seq %" PRIu64 "); dropped",
                             eg_bus_jsmsg_seq(msgs[i]));
                eg_bus_jsmsg_term(msgs[i]);
            } else {
                bool written = false;
                st = commands_write(&c, b, d, &written);
                if (st == EG_OK) {
                    bool dial = d->kind == EG__DISPATCH_KIND__DISPATCH_DIAL;
                    if (written)
                        eg_counter_inc(dial ? b->dials : b->cancels);
                    else
                        eg_counter_inc(b->dial_dupes);
                    eg_log_info("%s for callback %s attempt %u %s", dial ? "dial" : "cancel",
                                d->callback->id, d->attempt,
                                written ? "written" : "already written");
                    eg_bus_jsmsg_ack(msgs[i]);
                } else {
                    eg_log_warn("voice Redis write failed (%s); retrying", eg_status_str(st));
                    eg_bus_jsmsg_nak(msgs[i], 500);
                }
            }
            if (d)
                eg__dispatch__free_unpacked(d, NULL);
            eg_bus_jsmsg_free(msgs[i]);
            eg_log_set_corr(NULL);
        }
    }
    eg_bus_consumer_close(consumer);
    eg_store_close(voice);
    return NULL;
}
