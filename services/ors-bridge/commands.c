/* Dispatches to voice commands. The relay publishes a Dispatch to engage.dispatch.<tenant> for
 * every callback handed to (or taken back from) the voice platform; this thread takes them from
 * a JetStream durable consumer and appends a `dial` or `cancel` entry to the voice commands
 * stream, then acks. A dial is guarded by a key set NX in the same Lua step as the XADD
 * (lua/command_write.lua), so a dispatch redelivered after a crash between XADD and ack never
 * dials an attempt twice. */
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
#include "command_write_lua.h"
#include "engage/timeutil.h"

#define GUARD_TTL_MS "1296000000" /* 15 days: longer than any callback lives */
#define MAX_ARGS 32

eg_status_t commands_init(commands_t *c, eg_store_t *voice)
{
    c->voice = voice;
    return eg_store_script_add(voice, command_write_lua, &c->script);
}

/* The stream's hash tag (or, without one, its whole name, which is what Redis hashes then)
 * goes into the guard as its tag, after the "engage:" prefix. */
char *commands_guard_key(const char *stream, const char *guard)
{
    const char *tag = stream;
    size_t tag_len = strlen(stream);
    const char *open = strchr(stream, '{');
    if (open) {
        const char *close = strchr(open + 1, '}');
        if (!close || close == open + 1)
            return eg_xstrdup(guard);
        tag = open + 1;
        tag_len = (size_t)(close - tag);
    } else if (strchr(stream, '}')) {
        return eg_xstrdup(guard);
    }
    static const char prefix[] = "engage:";
    bool prefixed = strncmp(guard, prefix, sizeof prefix - 1) == 0;
    const char *rest = prefixed ? guard + sizeof prefix - 1 : guard;
    size_t len = (prefixed ? sizeof prefix - 1 : 0) + 2 + tag_len + 1 + strlen(rest);
    char *k = eg_xmalloc(len + 1);
    snprintf(k, len + 1, "%s{%.*s}:%s", prefixed ? prefix : "", (int)tag_len, tag, rest);
    return k;
}

/* Run the guarded write: argv holds the script's keys (the guard as given) and arguments. */
static eg_status_t write_guarded(commands_t *c, const char **argv, size_t *lens, size_t argc,
                                 bool *written)
{
    char *guard = commands_guard_key(argv[COMMAND_WRITE_KEY_STREAM], argv[COMMAND_WRITE_KEY_GUARD]);
    argv[COMMAND_WRITE_KEY_GUARD] = guard;
    lens[COMMAND_WRITE_KEY_GUARD] = strlen(guard);
    eg_reply_t *r = NULL;
    eg_status_t st =
        eg_store_eval(c->voice, c->script, COMMAND_WRITE_NKEYS, (int)argc, argv, lens, &r);
    if (st == EG_OK && r->type != EG_REPLY_INTEGER)
        st = EG_EPROTO;
    *written = st == EG_OK && r->integer == COMMAND_WRITE_RET_WRITTEN;
    eg_reply_free(r);
    free(guard);
    return st;
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
    argv[COMMAND_WRITE_KEY_GUARD] = guard;
    argv[COMMAND_WRITE_KEY_STREAM] = b->cfg->voice_commands_stream;
    argv[COMMAND_WRITE_ARG_GUARD_TTL_MS] = GUARD_TTL_MS;
    n = COMMAND_WRITE_ARGC;
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
    return write_guarded(c, argv, lens, (size_t)n, written);
}

eg_status_t commands_append(commands_t *c, const char *guard, const char *guard_ttl_ms,
                            const char *stream, const char *const *fields, size_t nfields,
                            bool *written)
{
    size_t argc = COMMAND_WRITE_ARGC + 2 * nfields;
    const char **argv = eg_xcalloc(argc, sizeof *argv);
    size_t *lens = eg_xcalloc(argc, sizeof *lens);
    argv[COMMAND_WRITE_KEY_GUARD] = guard;
    argv[COMMAND_WRITE_KEY_STREAM] = stream;
    argv[COMMAND_WRITE_ARG_GUARD_TTL_MS] = guard_ttl_ms;
    for (size_t i = 0; i < 2 * nfields; i++)
        argv[COMMAND_WRITE_ARGC + i] = fields[i];
    for (size_t i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    eg_status_t st = write_guarded(c, argv, lens, argc, written);
    free(argv);
    free(lens);
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
