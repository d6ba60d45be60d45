/* Answers to bus requests (see bus.c for the whole adapter). Every reply message of
 * proto/engage.proto carries its Eg__Status as field 1, so a StatusReply holding only a status
 * decodes as any of them: that is what an asker gets when the real answer cannot be sent.
 *
 * A reply is packed into a heap buffer of exactly its packed size, never into a fixed buffer on
 * the stack: the only limit is the bus's (the server's max_payload, or a lower one set with
 * eg_bus_set_reply_max), checked before the buffer is allocated. An answer over the limit, or
 * one the server refuses anyway (its headers count towards max_payload too), is replaced by an
 * EG_ETOOBIG status naming the sizes, and logged once here, where the subject is known; callers
 * need not log it again. */
#include <stdio.h>
#include <stdlib.h>

#include <protobuf-c/protobuf-c.h>

#include "bus_private.h"
#include "engage.pb-c.h"
#include "engage/log.h"
#include "engage/mem.h"

void eg_bus_set_reply_max(eg_bus_t *bus, size_t max)
{
    if (bus != NULL) {
        atomic_store(&bus->reply_max, max);
    }
}

/* The largest answer this bus sends: the server's max_payload, lowered by reply_max. */
static size_t reply_limit(eg_bus_t *bus)
{
    int64_t server = natsConnection_GetMaxPayload(bus->nc);
    size_t max = atomic_load(&bus->reply_max);

    if (server > 0 && (max == 0 || (uint64_t)server < (uint64_t)max)) {
        max = (size_t)server;
    }
    return max;
}

/* The error answer itself: a StatusReply of about 100 bytes, sent whatever our own limit, as
 * there is no smaller answer to fall back to. */
static eg_status_t send_status(eg_bus_t *bus, const eg_bus_msg_t *msg, eg_status_t st,
                               const char *text)
{
    Eg__Status s = EG__STATUS__INIT;
    Eg__StatusReply r = EG__STATUS_REPLY__INIT;
    s.code = (int32_t)st;
    s.message = (char *)(text != NULL ? text : "");
    r.status = &s;
    size_t n = eg__status_reply__get_packed_size(&r);
    uint8_t *buf = eg_xmalloc(n ? n : 1);
    eg__status_reply__pack(&r, buf);
    eg_status_t sent = eg_bus_respond(bus, msg, buf, n);
    free(buf);
    return sent;
}

static void log_unsent(const eg_bus_msg_t *msg, eg_status_t st)
{
    if (st != EG_OK && st != EG_EINVAL) {
        eg_log_warn("cannot answer a request on %s: %s", eg_bus_msg_subject(msg),
                    eg_status_str(st));
    }
}

eg_status_t eg_bus_reply(eg_bus_t *bus, const eg_bus_msg_t *msg, const struct ProtobufCMessage *m)
{
    eg_status_t st;
    uint8_t *buf = NULL;
    size_t n, max;

    if (bus == NULL || msg == NULL || m == NULL) {
        return EG_EINVAL;
    }
    n = protobuf_c_message_get_packed_size(m);
    max = reply_limit(bus);
    if (max == 0 || n <= max) {
        buf = eg_xmalloc(n ? n : 1);
        protobuf_c_message_pack(m, buf);
        st = eg_bus_respond(bus, msg, buf, n);
        free(buf);
        if (st != EG_ETOOBIG) {
            log_unsent(msg, st);
            return st;
        }
    }
    char text[160];
    snprintf(text, sizeof text,
             "the answer (%zu bytes) does not fit in one bus message (at most %zu)", n, max);
    eg_log_warn("answer to a request on %s not sent: %s; answered EG_ETOOBIG",
                eg_bus_msg_subject(msg), text);
    st = send_status(bus, msg, EG_ETOOBIG, text);
    log_unsent(msg, st);
    return st == EG_OK ? EG_ETOOBIG : st;
}

eg_status_t eg_bus_reply_status(eg_bus_t *bus, const eg_bus_msg_t *msg, eg_status_t st,
                                const char *text)
{
    Eg__Status s = EG__STATUS__INIT;
    Eg__StatusReply r = EG__STATUS_REPLY__INIT;
    s.code = (int32_t)st;
    s.message = (char *)(text != NULL ? text : "");
    r.status = &s;
    return eg_bus_reply(bus, msg, &r.base);
}
