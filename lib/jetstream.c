/* The bus's JetStream half (see bus.c for the whole adapter): streams created or updated to
 * the wanted settings; durable pull consumers created or updated first and only then bound (so
 * nats.c never deletes a durable it thinks it created); fetched messages wrapped with their
 * delivery count and stream sequence; single publishes and the batch publisher. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_private.h"
#include "engage/log.h"
#include "engage/mem.h"

/* ---- JetStream ---- */

static bool seconds_to_ns(int64_t s, int64_t *ns)
{
    if (s < 0 || s > INT64_MAX / NS_PER_S) {
        return false;
    }
    *ns = s * NS_PER_S;
    return true;
}

eg_status_t eg_bus_js_stream_ensure(eg_bus_t *bus, const char *stream, const char *const *subjects,
                                    size_t nsubjects, int64_t max_age_s, int64_t dup_window_s)
{
    eg_status_t st = EG_OK;
    jsStreamConfig cfg;
    jsStreamInfo *info = NULL;
    jsErrCode jerr = 0;
    natsStatus s;
    const char **subjs = NULL;
    size_t i;

    if (bus == NULL || stream == NULL || subjects == NULL || nsubjects == 0 ||
        nsubjects > INT_MAX) {
        st = EG_EINVAL;
        goto out;
    }

    /* nats.c wants a mutable array of subjects; copy the pointers rather than cast. */
    subjs = eg_xcalloc(nsubjects, sizeof(*subjs));
    for (i = 0; i < nsubjects; i++) {
        subjs[i] = subjects[i];
    }

    jsStreamConfig_Init(&cfg);
    cfg.Name = stream;
    cfg.Subjects = subjs;
    cfg.SubjectsLen = (int)nsubjects;
    cfg.Storage = js_FileStorage;
    if (!seconds_to_ns(max_age_s, &cfg.MaxAge) || !seconds_to_ns(dup_window_s, &cfg.Duplicates)) {
        st = EG_EINVAL;
        goto out;
    }

    s = js_AddStream(&info, bus->js, &cfg, NULL, &jerr);
    if (s != NATS_OK && jerr == JSStreamNameExistErr) {
        jerr = 0;
        s = js_UpdateStream(&info, bus->js, &cfg, NULL, &jerr);
    }
    if (s != NATS_OK) {
        eg_log_error("nats: cannot create or update stream %s: %s (JetStream error %d)", stream,
                     bus_last_error(), (int)jerr);
        st = bus_status(s);
        goto out;
    }

out:
    jsStreamInfo_Destroy(info);
    free(subjs);
    return st;
}

eg_status_t eg_bus_js_publish(eg_bus_t *bus, const char *subject, const void *data, size_t len,
                              const char *msg_id, const char *corr_id, int timeout_ms,
                              bool *duplicate)
{
    eg_status_t st;
    natsMsg *msg = NULL;
    jsPubOptions po;
    jsPubAck *ack = NULL;
    jsErrCode jerr = 0;
    natsStatus s;

    if (duplicate != NULL) {
        *duplicate = false;
    }
    if (bus == NULL || timeout_ms <= 0) {
        st = EG_EINVAL;
        goto out;
    }
    if (!bus_is_up(bus)) {
        st = EG_EUNAVAIL;
        goto out;
    }
    st = bus_build_msg(&msg, subject, data, len, corr_id);
    if (st != EG_OK) {
        goto out;
    }

    jsPubOptions_Init(&po);
    po.MsgId = msg_id;
    po.MaxWait = timeout_ms;
    s = js_PublishMsg(&ack, bus->js, msg, &po, &jerr);
    if (s != NATS_OK) {
        /* No responders here means no stream listens on the subject. */
        if (s != NATS_NO_RESPONDERS && s != NATS_TIMEOUT) {
            eg_log_error("nats: JetStream publish on %s failed: %s (JetStream error %d)", subject,
                         bus_last_error(), (int)jerr);
        }
        st = bus_status(s);
        goto out;
    }
    if (duplicate != NULL) {
        *duplicate = ack->Duplicate;
    }

out:
    jsPubAck_Destroy(ack);
    natsMsg_Destroy(msg);
    return st;
}

/* ---- batch publisher ----
 *
 * A jsCtx of its own with an ack handler, so js_PublishAsyncComplete waits for this publisher's
 * messages only. Each eg_bus_js_batch_add takes a slot holding the natsMsg it hands to nats.c;
 * the handler (on the context's reply subscription thread) finds the slot by that address and
 * records the outcome. A slot forgets its message once answered, because the handler destroys
 * it and a later message may get the same address. Messages still unanswered at a wait's
 * deadline are taken back (js_PublishAsyncGetPendingList), so a late ack finds nothing. */

enum { SLOT_PENDING = 0, SLOT_STORED, SLOT_FAILED };

struct batch_slot {
    natsMsg *msg; /* in flight, owned by nats.c; NULL once answered or taken back */
    int state;
    eg_status_t st; /* SLOT_FAILED: why */
};

struct eg_bus_js_batch {
    eg_bus_t *bus;
    jsCtx *js;
    pthread_mutex_t mu;
    struct batch_slot *slots; /* guarded by mu, like n, cap and next */
    size_t n, cap;
    size_t next; /* where the handler starts looking: acks come back mostly in order */
};

static void on_batch_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    eg_bus_js_batch_t *b = closure;
    natsStatus err = pae != NULL ? pae->Err : NATS_ERR;

    (void)js;
    if (pa == NULL && err != NATS_NO_RESPONDERS && err != NATS_TIMEOUT) {
        eg_log_error("nats: JetStream publish on %s failed: %s (JetStream error %d)",
                     natsMsg_GetSubject(msg),
                     pae != NULL && pae->ErrText != NULL ? pae->ErrText : "no ack",
                     pae != NULL ? (int)pae->ErrCode : 0);
    }
    pthread_mutex_lock(&b->mu);
    for (size_t k = 0; k < b->n; k++) {
        size_t i = (b->next + k) % b->n;
        if (b->slots[i].msg == msg && b->slots[i].state == SLOT_PENDING) {
            b->slots[i].msg = NULL;
            b->slots[i].state = pa != NULL ? SLOT_STORED : SLOT_FAILED;
            b->slots[i].st = pa != NULL ? EG_OK : bus_status(err);
            b->next = i + 1;
            break;
        }
    }
    pthread_mutex_unlock(&b->mu);
    /* With an ack handler, the message is ours to destroy. */
    natsMsg_Destroy(msg);
}

/* Wait up to ms for every message in flight; take back those still unanswered then, and let a
 * handler already running finish. Returns false when some were taken back. */
static bool batch_settle(eg_bus_js_batch_t *b, int64_t ms)
{
    jsPubOptions po;
    natsMsgList pending;

    jsPubOptions_Init(&po);
    po.MaxWait = ms > 0 ? ms : 1;
    if (js_PublishAsyncComplete(b->js, &po) == NATS_OK) {
        return true;
    }
    if (js_PublishAsyncGetPendingList(&pending, b->js) == NATS_OK) {
        natsMsgList_Destroy(&pending);
    }
    jsPubOptions_Init(&po);
    po.MaxWait = CLOSE_WAIT_MS;
    js_PublishAsyncComplete(b->js, &po);
    return false;
}

eg_status_t eg_bus_js_batch_open(eg_bus_t *bus, eg_bus_js_batch_t **out)
{
    eg_status_t st = EG_OK;
    eg_bus_js_batch_t *b = NULL;
    jsOptions jo;
    natsStatus s;

    if (out != NULL) {
        *out = NULL;
    }
    if (bus == NULL || out == NULL) {
        st = EG_EINVAL;
        goto out;
    }
    b = eg_xcalloc(1, sizeof(*b));
    b->bus = bus;
    pthread_mutex_init(&b->mu, NULL);
    jsOptions_Init(&jo);
    jo.PublishAsync.AckHandler = on_batch_ack;
    jo.PublishAsync.AckHandlerClosure = b;
    s = natsConnection_JetStream(&b->js, bus->nc, &jo);
    if (s != NATS_OK) {
        eg_log_error("nats: cannot create a JetStream context: %s", bus_last_error());
        st = bus_status(s);
        goto out;
    }
    *out = b;
    b = NULL;

out:
    if (b != NULL) {
        pthread_mutex_destroy(&b->mu);
        free(b);
    }
    return st;
}

void eg_bus_js_batch_close(eg_bus_js_batch_t *b)
{
    if (b == NULL) {
        return;
    }
    batch_settle(b, CLOSE_WAIT_MS);
    jsCtx_Destroy(b->js);
    pthread_mutex_destroy(&b->mu);
    free(b->slots);
    free(b);
}

eg_status_t eg_bus_js_batch_add(eg_bus_js_batch_t *b, const char *subject, const void *data,
                                size_t len, const char *msg_id, const char *corr_id)
{
    eg_status_t st;
    natsMsg *msg = NULL;
    jsPubOptions po;
    size_t slot;
    natsStatus s;

    if (b == NULL) {
        return EG_EINVAL;
    }
    pthread_mutex_lock(&b->mu);
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->slots = eg_xrealloc(b->slots, b->cap * sizeof(*b->slots));
    }
    slot = b->n++;
    b->slots[slot] = (struct batch_slot){.msg = NULL, .state = SLOT_FAILED, .st = EG_EUNAVAIL};
    pthread_mutex_unlock(&b->mu);

    if (!bus_is_up(b->bus)) {
        st = EG_EUNAVAIL;
        goto out;
    }
    st = bus_build_msg(&msg, subject, data, len, corr_id);
    if (st != EG_OK) {
        goto out;
    }
    /* In the slot before it leaves: its ack may come back before js_PublishMsgAsync returns. */
    pthread_mutex_lock(&b->mu);
    b->slots[slot] = (struct batch_slot){.msg = msg, .state = SLOT_PENDING, .st = EG_OK};
    pthread_mutex_unlock(&b->mu);
    jsPubOptions_Init(&po);
    po.MsgId = msg_id;
    s = js_PublishMsgAsync(b->js, &msg, &po);
    if (s != NATS_OK) {
        /* Not sent (nats.c cleared msg otherwise): no ack will come for it. */
        eg_log_error("nats: JetStream publish on %s failed: %s", subject, bus_last_error());
        st = bus_status(s);
        pthread_mutex_lock(&b->mu);
        b->slots[slot] = (struct batch_slot){.msg = NULL, .state = SLOT_FAILED, .st = st};
        pthread_mutex_unlock(&b->mu);
    }

out:
    if (st != EG_OK) {
        pthread_mutex_lock(&b->mu);
        b->slots[slot].st = st;
        pthread_mutex_unlock(&b->mu);
    }
    natsMsg_Destroy(msg);
    return st;
}

eg_status_t eg_bus_js_batch_wait(eg_bus_js_batch_t *b, int timeout_ms, bool *acked, size_t n)
{
    eg_status_t st = EG_OK;

    if (b == NULL || (acked == NULL && n > 0)) {
        return EG_EINVAL;
    }
    batch_settle(b, timeout_ms);
    pthread_mutex_lock(&b->mu);
    for (size_t i = 0; i < b->n; i++) {
        struct batch_slot *slot = &b->slots[i];
        bool stored = slot->state == SLOT_STORED;

        if (i < n) {
            acked[i] = stored;
        }
        if (!stored && st == EG_OK) {
            st = slot->state == SLOT_FAILED ? slot->st : EG_ETIMEOUT;
        }
    }
    for (size_t i = b->n; i < n; i++) {
        acked[i] = false;
    }
    b->n = 0;
    b->next = 0;
    pthread_mutex_unlock(&b->mu);
    return st;
}

eg_status_t eg_bus_js_consumer_open(eg_bus_t *bus, const char *stream, const char *durable,
                                    const char *filter_subject, int ack_wait_s,
                                    eg_bus_consumer_t **out)
{
    eg_status_t st = EG_OK;
    jsConsumerConfig cc;
    jsConsumerInfo *info = NULL;
    jsSubOptions so;
    jsErrCode jerr = 0;
    natsStatus s;
    natsSubscription *sub = NULL;

    if (out != NULL) {
        *out = NULL;
    }
    if (bus == NULL || stream == NULL || durable == NULL || durable[0] == '\0' || ack_wait_s <= 0 ||
        out == NULL) {
        st = EG_EINVAL;
        goto out;
    }

    jsConsumerConfig_Init(&cc);
    cc.Durable = durable;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = (int64_t)ack_wait_s * NS_PER_S;
    cc.FilterSubject = filter_subject;

    /* Create the consumer, or bring an existing one to these settings. */
    s = js_AddConsumer(&info, bus->js, stream, &cc, NULL, &jerr);
    if (s != NATS_OK && jerr != JSStreamNotFoundErr) {
        jsErrCode add_err = jerr;

        jerr = 0;
        s = js_UpdateConsumer(&info, bus->js, stream, &cc, NULL, &jerr);
        if (s != NATS_OK && jerr == 0) {
            jerr = add_err;
        }
    }
    if (s != NATS_OK) {
        if (jerr == JSStreamNotFoundErr) {
            st = EG_ENOTFOUND;
        } else {
            st = bus_status(s);
        }
        eg_log_error("nats: cannot create consumer %s on stream %s: %s (JetStream error %d)",
                     durable, stream, bus_last_error(), (int)jerr);
        goto out;
    }

    /* Bind to it: a consumer this call did not create is never deleted by nats.c. */
    jsSubOptions_Init(&so);
    so.Stream = stream;
    so.Consumer = durable;
    jerr = 0;
    s = js_PullSubscribe(&sub, bus->js, filter_subject, durable, NULL, &so, &jerr);
    if (s != NATS_OK) {
        eg_log_error("nats: cannot bind to consumer %s on stream %s: %s (JetStream error %d)",
                     durable, stream, bus_last_error(), (int)jerr);
        st = bus_status(s);
        goto out;
    }

    *out = eg_xcalloc(1, sizeof(**out));
    (*out)->sub = sub;

out:
    jsConsumerInfo_Destroy(info);
    return st;
}

void eg_bus_consumer_close(eg_bus_consumer_t *c)
{
    if (c == NULL) {
        return;
    }
    /* The consumer is bound, not created by js_PullSubscribe, so unsubscribing keeps it. */
    natsSubscription_Unsubscribe(c->sub);
    natsSubscription_Destroy(c->sub);
    free(c);
}

static eg_bus_jsmsg_t *wrap_jsmsg(natsMsg *msg)
{
    eg_bus_jsmsg_t *m = eg_xcalloc(1, sizeof(*m));
    jsMsgMetaData *meta = NULL;

    m->msg = msg;
    if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
        m->deliveries = meta->NumDelivered;
        m->seq = meta->Sequence.Stream;
    } else {
        eg_log_warn("nats: a JetStream message on %s has no metadata", natsMsg_GetSubject(msg));
    }
    jsMsgMetaData_Destroy(meta);
    return m;
}

eg_status_t eg_bus_js_fetch(eg_bus_consumer_t *c, int max, int timeout_ms, eg_bus_jsmsg_t **msgs,
                            int *count)
{
    eg_status_t st = EG_OK;
    natsMsgList list = {NULL, 0};
    jsErrCode jerr = 0;
    natsStatus s;
    int i;

    if (count != NULL) {
        *count = 0;
    }
    if (c == NULL || max <= 0 || timeout_ms <= 0 || msgs == NULL || count == NULL) {
        st = EG_EINVAL;
        goto out;
    }

    s = natsSubscription_Fetch(&list, c->sub, max, timeout_ms, &jerr);
    if (list.Count == 0) {
        if (s == NATS_OK || s == NATS_TIMEOUT) {
            st = EG_ETIMEOUT;
        } else {
            eg_log_error("nats: fetch failed: %s (JetStream error %d)", bus_last_error(),
                         (int)jerr);
            st = bus_status(s);
        }
        goto out;
    }

    /* Messages that did arrive are handed out even when the call also reports an error. */
    for (i = 0; i < list.Count && i < max; i++) {
        msgs[i] = wrap_jsmsg(list.Msgs[i]);
        list.Msgs[i] = NULL;
    }
    *count = i;

out:
    natsMsgList_Destroy(&list);
    return st;
}

const void *eg_bus_jsmsg_data(const eg_bus_jsmsg_t *m)
{
    return natsMsg_GetData(m->msg);
}

size_t eg_bus_jsmsg_len(const eg_bus_jsmsg_t *m)
{
    return (size_t)natsMsg_GetDataLength(m->msg);
}

const char *eg_bus_jsmsg_subject(const eg_bus_jsmsg_t *m)
{
    return natsMsg_GetSubject(m->msg);
}

const char *eg_bus_jsmsg_id(const eg_bus_jsmsg_t *m)
{
    return bus_header(m->msg, MSG_ID_HEADER);
}

const char *eg_bus_jsmsg_corr_id(const eg_bus_jsmsg_t *m)
{
    return bus_header(m->msg, EG_BUS_CORR_HEADER);
}

uint64_t eg_bus_jsmsg_deliveries(const eg_bus_jsmsg_t *m)
{
    return m->deliveries;
}

uint64_t eg_bus_jsmsg_seq(const eg_bus_jsmsg_t *m)
{
    return m->seq;
}

eg_status_t eg_bus_jsmsg_ack(eg_bus_jsmsg_t *m)
{
    if (m == NULL) {
        return EG_EINVAL;
    }
    /* Not waited for: a round trip per message was the archiver's largest cost, and an ack
     * that gets lost only means a redelivery, which every consumer here absorbs (the archiver's
     * writes are idempotent, the bridge's commands are guarded). */
    return bus_status(natsMsg_Ack(m->msg, NULL));
}

eg_status_t eg_bus_jsmsg_nak(eg_bus_jsmsg_t *m, int64_t delay_ms)
{
    if (m == NULL) {
        return EG_EINVAL;
    }
    if (delay_ms <= 0) {
        return bus_status(natsMsg_Nak(m->msg, NULL));
    }
    return bus_status(natsMsg_NakWithDelay(m->msg, delay_ms, NULL));
}

eg_status_t eg_bus_jsmsg_in_progress(eg_bus_jsmsg_t *m)
{
    if (m == NULL) {
        return EG_EINVAL;
    }
    return bus_status(natsMsg_InProgress(m->msg, NULL));
}

eg_status_t eg_bus_jsmsg_term(eg_bus_jsmsg_t *m)
{
    if (m == NULL) {
        return EG_EINVAL;
    }
    return bus_status(natsMsg_Term(m->msg, NULL));
}

void eg_bus_jsmsg_free(eg_bus_jsmsg_t *m)
{
    if (m == NULL) {
        return;
    }
    natsMsg_Destroy(m->msg);
    free(m);
}
