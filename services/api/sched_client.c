/* Scheduler calls with a bounded wait. A request that times out may or may not have been
 * carried out, so only requests that are safe to repeat go through here: reads, and writes the
 * scheduler makes idempotent (a create is retried with the same request, and a retried cancel
 * of an already cancelled callback answers "not cancellable" only if it truly was).
 *
 * sched_ask is the one round trip of every HTTP handler that asks the scheduler: pack, call,
 * decode, and the error replies when the scheduler did not answer or answered nonsense. Every
 * reply message of proto/engage.proto carries its Eg__Status as field 1; sched_ask finds it
 * through the reply type's descriptor, so one function serves every reply type. */
#include "sched_client.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engage/bus.h"
#include "engage/log.h"
#include "engage/mem.h"
#include "engage/timeutil.h"

#define PER_TRY_TIMEOUT_MS 1000

eg_status_t sched_call(api_t *api, const char *subject, const void *data, size_t len,
                       const char *corr_id, void **reply, size_t *reply_len)
{
    int64_t deadline = eg_mono_ms() + api->sched_wait_ms;
    eg_status_t st;
    for (;;) {
        int64_t left = deadline - eg_mono_ms();
        int timeout = (int)(left < PER_TRY_TIMEOUT_MS ? left : PER_TRY_TIMEOUT_MS);
        if (timeout < 50)
            timeout = 50;
        /* The listener starts before the bus is open: until then, answer "unavailable". */
        eg_bus_t *bus = atomic_load(&api->bus_ready) ? api->bus : NULL;
        st = bus ? eg_bus_request(bus, subject, data, len, corr_id, timeout, reply, reply_len)
                 : EG_EUNAVAIL;
        if (st == EG_OK || (st != EG_EUNAVAIL && st != EG_ETIMEOUT))
            break;
        if (eg_mono_ms() + 100 >= deadline)
            break;
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (st != EG_OK) {
        eg_counter_inc(api->sched_unavailable);
        eg_log_warn("scheduler did not answer %s: %s", subject, eg_status_str(st));
        st = EG_EUNAVAIL;
    }
    return st;
}

/* A decoded reply's status (borrowed from it): field 1 when that is a single Eg__Status, as in
 * every reply of proto/engage.proto. NULL when the reply has none. */
static const Eg__Status *status_of(const ProtobufCMessage *m)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(m->descriptor, 1);
    if (!f || f->type != PROTOBUF_C_TYPE_MESSAGE || f->label == PROTOBUF_C_LABEL_REPEATED ||
        f->descriptor != &eg__status__descriptor)
        return NULL;
    return *(const Eg__Status *const *)(const void *)((const char *)m + f->offset);
}

void *sched_ask(api_t *api, eg_http_req_t *req, const char *subject,
                const ProtobufCMessage *request, const ProtobufCMessageDescriptor *reply_type,
                int *code)
{
    size_t n = protobuf_c_message_get_packed_size(request);
    uint8_t *buf = eg_xmalloc(n ? n : 1);
    protobuf_c_message_pack(request, buf);
    void *raw = NULL;
    size_t raw_len = 0;
    eg_status_t st = sched_call(api, subject, buf, n, eg_http_corr_id(req), &raw, &raw_len);
    memset(buf, 0, n);
    free(buf);
    if (st != EG_OK) {
        eg_http_reply_error(req, EG_EUNAVAIL, "service temporarily unavailable; retry");
        *code = 503;
        return NULL;
    }
    ProtobufCMessage *r = protobuf_c_message_unpack(reply_type, NULL, raw_len, raw);
    free(raw);
    if (!r || !status_of(r)) {
        if (r)
            protobuf_c_message_free_unpacked(r, NULL);
        eg_http_reply_error(req, EG_EINTERNAL, "internal error");
        *code = 500;
        return NULL;
    }
    return r;
}

void *sched_ask_ok(api_t *api, eg_http_req_t *req, const char *subject,
                   const ProtobufCMessage *request, const ProtobufCMessageDescriptor *reply_type,
                   int *code)
{
    ProtobufCMessage *r = sched_ask(api, req, subject, request, reply_type, code);
    if (!r)
        return NULL;
    const Eg__Status *s = status_of(r);
    if (s->code != EG_OK) {
        *code = sched_reply_status(req, s);
        protobuf_c_message_free_unpacked(r, NULL);
        return NULL;
    }
    return r;
}

int sched_reply_status(eg_http_req_t *req, const Eg__Status *status)
{
    eg_status_t st = (eg_status_t)status->code;
    const char *msg = status->message && *status->message ? status->message : eg_status_str(st);
    eg_http_reply_error(req, st, msg);
    return eg_status_http(st);
}
