/* The bus's batch publisher (see bus.c for the whole adapter): many JetStream publishes sent
 * back to back with js_PublishMsgAsync, then one wait for all their acks.
 *
 * A jsCtx of its own with an ack handler, so js_PublishAsyncComplete waits for this publisher's
 * messages only. Each eg_bus_js_batch_add takes a slot holding the natsMsg it hands to nats.c;
 * the handler (on the context's reply subscription thread) finds the slot by that address and
 * records the outcome. A stored message is destroyed at once (a later message may then get the
 * same address, so the slot forgets it).
 *
 * Through a leader election (see jetstream.c): a message that failed in a way an election or a
 * reconnect explains (bus_js_transient) is kept in its slot instead, and so is one still
 * unanswered after JS_TRY_MS, taken back from nats.c (js_PublishAsyncGetPendingList, after
 * which a late ack finds nothing). eg_bus_js_batch_wait sends the kept ones again, unchanged,
 * so with the same Nats-Msg-Id header, until all are stored or its timeout passes; the stream
 * stores each once. A message without a message id is sent again only when it certainly was
 * not stored (no responder, or never sent). One warning names the trouble when it starts and
 * one line the outcome. */
#include <stdio.h>
#include <stdlib.h>

#include "bus_private.h"
#include "engage/log.h"
#include "engage/mem.h"

enum { SLOT_PENDING = 0, SLOT_STORED, SLOT_FAILED };

struct batch_slot {
    /* PENDING: in flight, owned by nats.c. FAILED: ours, kept to send again when resend is
     * set (else NULL). STORED: NULL. */
    natsMsg *msg;
    int state;
    bool resend;
    bool has_id;    /* sent with a message id: safe to send again even if it may be stored */
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

/* Record a failure in slot (mu held): keep msg to send again when that is safe, else destroy
 * it. not_sent: it never reached the server. */
static void slot_fail(struct batch_slot *slot, natsMsg *msg, natsStatus err, jsErrCode jerr,
                      bool not_sent)
{
    slot->state = SLOT_FAILED;
    slot->st = bus_status(err);
    slot->resend = msg != NULL && bus_js_transient(err, jerr) &&
                   (slot->has_id || not_sent || err == NATS_NO_RESPONDERS);
    slot->msg = slot->resend ? msg : NULL;
    if (!slot->resend) {
        natsMsg_Destroy(msg);
    }
}

static void on_batch_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    eg_bus_js_batch_t *b = closure;
    natsStatus err = pae != NULL ? pae->Err : NATS_ERR;
    jsErrCode jerr = pae != NULL ? pae->ErrCode : 0;

    (void)js;
    if (pa == NULL && !bus_js_transient(err, jerr)) {
        eg_log_error("nats: JetStream publish on %s failed: %s (JetStream error %d)",
                     natsMsg_GetSubject(msg),
                     pae != NULL && pae->ErrText != NULL ? pae->ErrText : "no ack", (int)jerr);
    }
    pthread_mutex_lock(&b->mu);
    for (size_t k = 0; k < b->n; k++) {
        size_t i = (b->next + k) % b->n;
        struct batch_slot *slot = &b->slots[i];

        if (slot->msg == msg && slot->state == SLOT_PENDING) {
            b->next = i + 1;
            if (pa != NULL) {
                *slot = (struct batch_slot){.state = SLOT_STORED, .st = EG_OK};
                break;
            }
            slot_fail(slot, msg, err, jerr, false);
            msg = NULL; /* the slot has it now, or it is destroyed */
            break;
        }
    }
    pthread_mutex_unlock(&b->mu);
    /* With an ack handler, the message is ours to destroy (when no slot kept it). */
    natsMsg_Destroy(msg);
}

/* Wait up to ms for every message in flight; take back those still unanswered then (kept in
 * their slots to send again when that is safe), and let a handler already running finish.
 * Returns false when some were taken back. */
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
        pthread_mutex_lock(&b->mu);
        for (int m = 0; m < pending.Count; m++) {
            for (size_t i = 0; i < b->n; i++) {
                struct batch_slot *slot = &b->slots[i];

                if (slot->msg == pending.Msgs[m] && slot->state == SLOT_PENDING) {
                    slot_fail(slot, pending.Msgs[m], NATS_TIMEOUT, 0, false);
                    pending.Msgs[m] = NULL;
                    break;
                }
            }
        }
        pthread_mutex_unlock(&b->mu);
        natsMsgList_Destroy(&pending);
    }
    jsPubOptions_Init(&po);
    po.MaxWait = CLOSE_WAIT_MS;
    js_PublishAsyncComplete(b->js, &po);
    return false;
}

/* Forget the batch (mu held): destroy the messages kept to send again. */
static void batch_reset(eg_bus_js_batch_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        if (b->slots[i].state == SLOT_FAILED) {
            natsMsg_Destroy(b->slots[i].msg);
            b->slots[i].msg = NULL;
        }
    }
    b->n = 0;
    b->next = 0;
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
    pthread_mutex_lock(&b->mu);
    batch_reset(b);
    pthread_mutex_unlock(&b->mu);
    jsCtx_Destroy(b->js);
    pthread_mutex_destroy(&b->mu);
    free(b->slots);
    free(b);
}

/* Hand slot's message to nats.c (again); on a refusal it stays in the slot, failed. */
static eg_status_t send_slot(eg_bus_js_batch_t *b, size_t i, natsMsg *msg, jsPubOptions *po)
{
    natsStatus s;

    /* In the slot before it leaves: its ack may come back before js_PublishMsgAsync returns. */
    pthread_mutex_lock(&b->mu);
    b->slots[i].msg = msg;
    b->slots[i].state = SLOT_PENDING;
    b->slots[i].resend = false;
    pthread_mutex_unlock(&b->mu);
    s = js_PublishMsgAsync(b->js, &msg, po);
    if (s == NATS_OK) {
        return EG_OK;
    }
    /* Not sent: nats.c left msg to us, and no ack will come for it. */
    eg_log_error("nats: JetStream publish on %s failed: %s", natsMsg_GetSubject(msg),
                 bus_last_error());
    pthread_mutex_lock(&b->mu);
    slot_fail(&b->slots[i], msg, s, 0, true);
    pthread_mutex_unlock(&b->mu);
    return bus_status(s);
}

eg_status_t eg_bus_js_batch_add(eg_bus_js_batch_t *b, const char *subject, const void *data,
                                size_t len, const char *msg_id, const char *corr_id)
{
    eg_status_t st;
    natsMsg *msg = NULL;
    jsPubOptions po;
    size_t slot;

    if (b == NULL) {
        return EG_EINVAL;
    }
    pthread_mutex_lock(&b->mu);
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->slots = eg_xrealloc(b->slots, b->cap * sizeof(*b->slots));
    }
    slot = b->n++;
    b->slots[slot] = (struct batch_slot){.state = SLOT_FAILED, .st = EG_EUNAVAIL};
    pthread_mutex_unlock(&b->mu);

    st = bus_build_msg(&msg, subject, data, len, corr_id);
    if (st == EG_OK && msg_id != NULL) {
        /* Set here rather than through the publish options, so a message sent again carries
         * the same id without them. */
        st = bus_status(natsMsgHeader_Set(msg, MSG_ID_HEADER, msg_id));
    }
    if (st != EG_OK) {
        pthread_mutex_lock(&b->mu);
        b->slots[slot].st = st;
        pthread_mutex_unlock(&b->mu);
        natsMsg_Destroy(msg);
        return st;
    }
    pthread_mutex_lock(&b->mu);
    b->slots[slot].has_id = msg_id != NULL;
    pthread_mutex_unlock(&b->mu);
    if (!bus_is_up(b->bus)) {
        /* Never handed to a connection that is down (nats.c would buffer it): kept, and sent
         * by the wait once the connection is back. */
        pthread_mutex_lock(&b->mu);
        slot_fail(&b->slots[slot], msg, NATS_CONNECTION_DISCONNECTED, 0, true);
        pthread_mutex_unlock(&b->mu);
        return EG_EUNAVAIL;
    }
    jsPubOptions_Init(&po);
    return send_slot(b, slot, msg, &po);
}

/* Send every kept message again, unchanged (its Nats-Msg-Id header included); returns how many
 * left. */
static size_t resend_failed(eg_bus_js_batch_t *b)
{
    size_t sent = 0;

    for (size_t i = 0;; i++) {
        natsMsg *msg = NULL;

        pthread_mutex_lock(&b->mu);
        if (i >= b->n) {
            pthread_mutex_unlock(&b->mu);
            break;
        }
        if (b->slots[i].state == SLOT_FAILED && b->slots[i].resend) {
            msg = b->slots[i].msg;
        }
        pthread_mutex_unlock(&b->mu);
        if (msg != NULL && send_slot(b, i, msg, NULL) == EG_OK) {
            sent++;
        }
    }
    return sent;
}

/* How many slots failed in a way worth sending again, and the first one's status (mu held). */
static size_t count_resendable(eg_bus_js_batch_t *b, eg_status_t *first)
{
    size_t count = 0;

    for (size_t i = 0; i < b->n; i++) {
        if (b->slots[i].state == SLOT_FAILED && b->slots[i].resend) {
            if (count == 0) {
                *first = b->slots[i].st;
            }
            count++;
        }
    }
    return count;
}

eg_status_t eg_bus_js_batch_wait(eg_bus_js_batch_t *b, int timeout_ms, bool *acked, size_t n)
{
    eg_status_t st = EG_OK;
    int64_t start = bus_mono_ms();
    int64_t deadline = start + (timeout_ms > 0 ? timeout_ms : 1);
    int64_t backoff = JS_BACKOFF_MIN_MS;
    size_t total;
    int rounds = 0;

    if (b == NULL || (acked == NULL && n > 0)) {
        return EG_EINVAL;
    }
    for (;;) {
        int64_t left = deadline - bus_mono_ms();
        eg_status_t first = EG_OK;
        size_t again;

        batch_settle(b, left < JS_TRY_MS ? left : JS_TRY_MS);
        pthread_mutex_lock(&b->mu);
        again = count_resendable(b, &first);
        total = b->n;
        pthread_mutex_unlock(&b->mu);
        /* Each round leaves the messages sent again at least JS_BACKOFF_MIN_MS to answer. */
        if (again == 0 || bus_mono_ms() + 2 * JS_BACKOFF_MIN_MS >= deadline) {
            break;
        }
        if (rounds == 0) {
            eg_log_warn("nats: %zu of %zu JetStream publishes failed (%s: a leader election or a "
                        "reconnect); sending them again with the same message ids for up to "
                        "%d ms",
                        again, total, eg_status_str(first), timeout_ms);
        }
        left = deadline - bus_mono_ms() - JS_BACKOFF_MIN_MS;
        bus_sleep_ms(backoff < left ? backoff : left);
        backoff = backoff * 2 > JS_BACKOFF_MAX_MS ? JS_BACKOFF_MAX_MS : backoff * 2;
        if (!bus_wait_up(b->bus, deadline)) {
            break;
        }
        rounds++;
        resend_failed(b);
    }

    pthread_mutex_lock(&b->mu);
    size_t unstored = 0;
    for (size_t i = 0; i < b->n; i++) {
        struct batch_slot *slot = &b->slots[i];
        bool stored = slot->state == SLOT_STORED;

        if (i < n) {
            acked[i] = stored;
        }
        if (!stored) {
            unstored++;
            if (st == EG_OK) {
                st = slot->state == SLOT_FAILED ? slot->st : EG_ETIMEOUT;
            }
        }
    }
    for (size_t i = b->n; i < n; i++) {
        acked[i] = false;
    }
    total = b->n;
    batch_reset(b);
    pthread_mutex_unlock(&b->mu);
    if (rounds > 0 && unstored == 0) {
        eg_log_info("nats: all %zu JetStream publishes stored after %lld ms (%d rounds sent "
                    "again)",
                    total, (long long)(bus_mono_ms() - start), rounds);
    } else if (rounds > 0) {
        eg_log_error("nats: %zu of %zu JetStream publishes still not stored after %lld ms: %s",
                     unstored, total, (long long)(bus_mono_ms() - start), eg_status_str(st));
    }
    return st;
}
