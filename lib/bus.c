/* The bus: Engage's one adapter over nats.c (core NATS and JetStream).
 *
 * An eg_bus_t owns one natsConnection, made with SendAsap (a request does not wait for the
 * flusher), retry on a failed first connect and unlimited reconnects every 250 ms. Connection
 * events reach us on nats.c's callback thread: they are logged, and they wake eg_bus_open (first
 * connect) and eg_bus_close (connection closed) through one mutex and condition variable. The
 * bus is only freed after the closed callback ran, so no late callback sees freed memory.
 *
 * Core subscriptions are asynchronous: nats.c gives each its own delivery thread, and a small
 * trampoline wraps the natsMsg in an eg_bus_msg_t on the stack, sets the logging correlation id
 * from the Engage-Corr-Id header, calls the handler, then destroys the natsMsg. The bus keeps
 * every subscription in a list; eg_bus_close drains each one and waits for nats.c's "complete"
 * callback (the handler has returned for the last time) before freeing the trampoline state.
 *
 * JetStream: streams are created or updated to the wanted settings (file storage). A durable
 * pull consumer is likewise created or updated with js_AddConsumer/js_UpdateConsumer and only
 * then bound with js_PullSubscribe. Binding to an existing consumer matters: nats.c deletes a
 * consumer that js_PullSubscribe itself created when the subscription is unsubscribed, which
 * would lose a durable's position on every restart. Fetched messages are handed out wrapped,
 * with their delivery count and stream sequence read from the metadata once, at fetch time.
 * A batch publisher (eg_bus_js_batch_*) sends many messages with js_PublishMsgAsync and waits
 * once for all their acks, on a JetStream context of its own (see the section below).
 *
 * Every natsStatus is mapped to an eg_status_t in one place (status_from_nats).
 */
#include "engage/bus.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

#include "engage/log.h"
#include "engage/mem.h"

#define RECONNECT_WAIT_MS 250
/* How long close waits for the server to confirm a drain and for nats.c's closing callbacks. */
#define CLOSE_WAIT_MS 5000
#define NS_PER_S INT64_C(1000000000)
#define MSG_ID_HEADER "Nats-Msg-Id"

struct sub_node {
    eg_bus_t *bus;
    natsSubscription *sub;
    eg_bus_handler_fn handler;
    void *arg;
    bool complete; /* guarded by bus->mu: nats.c will not call the handler again */
    struct sub_node *next;
};

struct eg_bus {
    natsConnection *nc;
    jsCtx *js;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool connected;        /* guarded by mu: set by the first successful connect */
    bool closing;          /* guarded by mu: we are closing, so a disconnect is expected */
    bool closed;           /* guarded by mu: set by nats.c's closed callback */
    struct sub_node *subs; /* guarded by mu */
};

struct eg_bus_msg {
    natsMsg *msg;
};

struct eg_bus_consumer {
    natsSubscription *sub;
};

struct eg_bus_jsmsg {
    natsMsg *msg;
    uint64_t deliveries;
    uint64_t seq;
};

static eg_status_t status_from_nats(natsStatus s)
{
    switch (s) {
    case NATS_OK:
        return EG_OK;
    case NATS_TIMEOUT:
        return EG_ETIMEOUT;
    case NATS_NO_RESPONDERS:
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NOT_YET_CONNECTED:
    case NATS_NO_SERVER:
    case NATS_STALE_CONNECTION:
        return EG_EUNAVAIL;
    case NATS_INVALID_ARG:
    case NATS_INVALID_SUBJECT:
    case NATS_INVALID_QUEUE_NAME:
    case NATS_INVALID_TIMEOUT:
        return EG_EINVAL;
    case NATS_MAX_PAYLOAD:
        return EG_ETOOBIG;
    default:
        return EG_EIO;
    }
}

/* The text of nats.c's last error on this thread, for log lines. */
static const char *last_error(void)
{
    const char *txt = nats_GetLastError(NULL);

    return txt != NULL ? txt : "";
}

static struct timespec deadline_after(int64_t ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)((ms % 1000) * 1000000);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec += 1;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* Wait until *flag (guarded by bus->mu) is true or ms elapsed; returns the flag. */
static bool wait_flag(eg_bus_t *bus, const bool *flag, int64_t ms)
{
    struct timespec until = deadline_after(ms);
    bool value;
    int rc = 0;

    pthread_mutex_lock(&bus->mu);
    while (!*flag && rc == 0) {
        rc = pthread_cond_timedwait(&bus->cond, &bus->mu, &until);
    }
    value = *flag;
    pthread_mutex_unlock(&bus->mu);
    return value;
}

static void set_flag(eg_bus_t *bus, bool *flag)
{
    pthread_mutex_lock(&bus->mu);
    *flag = true;
    pthread_cond_broadcast(&bus->cond);
    pthread_mutex_unlock(&bus->mu);
}

static void on_connected(natsConnection *nc, void *closure)
{
    eg_bus_t *bus = closure;

    (void)nc;
    set_flag(bus, &bus->connected);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    eg_bus_t *bus = closure;
    bool closing;

    (void)nc;
    pthread_mutex_lock(&bus->mu);
    closing = bus->closing;
    pthread_mutex_unlock(&bus->mu);
    if (!closing) {
        eg_log_warn("nats: disconnected, reconnecting");
    }
}

/* url for a log line, with any user and password masked as "***" (scheme, "***@", host). */
static void redact_url(const char *url, char *out, size_t outlen)
{
    const char *scheme_end = strstr(url, "://");
    const char *host = scheme_end != NULL ? scheme_end + 3 : url;
    const char *at = strrchr(host, '@');

    if (at == NULL) {
        snprintf(out, outlen, "%s", url);
        return;
    }
    snprintf(out, outlen, "%.*s***%s", (int)(host - url), url, at);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    eg_bus_t *bus = closure;
    char url[256] = "";
    char shown[256];

    natsConnection_GetConnectedUrl(nc, url, sizeof(url));
    redact_url(url, shown, sizeof(shown));
    eg_log_info("nats: reconnected to %s", shown);
    set_flag(bus, &bus->connected);
}

static void on_closed(natsConnection *nc, void *closure)
{
    eg_bus_t *bus = closure;

    (void)nc;
    set_flag(bus, &bus->closed);
}

static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    (void)nc;
    (void)sub;
    (void)closure;
    eg_log_error("nats: asynchronous error: %s", natsStatus_GetText(err));
}

/* True unless the connection is down. nats.c would buffer a request or a JetStream publish while
 * it reconnects and report a timeout only after timeout_ms; the caller is better served by an
 * immediate EG_EUNAVAIL (and a buffered JetStream publish could still be stored after we
 * reported failure). */
static bool is_up(eg_bus_t *bus)
{
    return natsConnection_Status(bus->nc) == NATS_CONN_STATUS_CONNECTED;
}

static void free_bus(eg_bus_t *bus)
{
    pthread_cond_destroy(&bus->cond);
    pthread_mutex_destroy(&bus->mu);
    free(bus);
}

/* Close the connection, wait for the closed callback so no callback still holds the bus, and
 * destroy the connection. */
static void close_connection(eg_bus_t *bus)
{
    set_flag(bus, &bus->closing);
    natsConnection_Close(bus->nc);
    if (!wait_flag(bus, &bus->closed, CLOSE_WAIT_MS)) {
        eg_log_warn("nats: closed callback did not run within %d ms", CLOSE_WAIT_MS);
    }
    natsConnection_Destroy(bus->nc);
    bus->nc = NULL;
}

/* Give opts the servers of a comma-separated URL list. nats.c 3.4.1's natsOptions_SetURL takes
 * the whole list as one URL that never connects, so split it here for natsOptions_SetServers. */
static natsStatus set_servers(natsOptions *opts, const char *url)
{
    natsStatus s = NATS_OK;
    char *copy = eg_xstrdup(url);
    const char **servers = eg_xcalloc(strlen(url) / 2 + 1, sizeof(*servers));
    int count = 0;
    char *save = NULL;
    char *tok;

    for (tok = strtok_r(copy, ", \t", &save); tok != NULL; tok = strtok_r(NULL, ", \t", &save)) {
        servers[count] = tok;
        count++;
    }
    if (count == 0) {
        s = NATS_INVALID_ARG;
        goto out;
    }
    s = natsOptions_SetServers(opts, servers, count);

out:
    free(servers);
    free(copy);
    return s;
}

eg_status_t eg_bus_open(eg_bus_t **out, const char *url, const char *client_name, int timeout_ms)
{
    eg_status_t st = EG_OK;
    natsOptions *opts = NULL;
    natsStatus s;
    eg_bus_t *bus = NULL;
    pthread_condattr_t cattr;
    char shown[256] = "";

    if (out != NULL) {
        *out = NULL;
    }
    if (out == NULL || url == NULL || url[0] == '\0' || timeout_ms <= 0) {
        st = EG_EINVAL;
        goto out;
    }
    redact_url(url, shown, sizeof(shown));

    bus = eg_xcalloc(1, sizeof(*bus));
    pthread_mutex_init(&bus->mu, NULL);
    pthread_condattr_init(&cattr);
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    pthread_cond_init(&bus->cond, &cattr);
    pthread_condattr_destroy(&cattr);

    s = natsOptions_Create(&opts);
    if (s == NATS_OK) {
        s = set_servers(opts, url);
    }
    if (s == NATS_OK && client_name != NULL) {
        s = natsOptions_SetName(opts, client_name);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetTimeout(opts, timeout_ms);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetSendAsap(opts, true);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetMaxReconnect(opts, -1);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetReconnectWait(opts, RECONNECT_WAIT_MS);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetRetryOnFailedConnect(opts, true, on_connected, bus);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetDisconnectedCB(opts, on_disconnected, bus);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetReconnectedCB(opts, on_reconnected, bus);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetClosedCB(opts, on_closed, bus);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetErrorHandler(opts, on_async_error, bus);
    }
    if (s != NATS_OK) {
        eg_log_error("nats: bad connection options for %s: %s", shown, last_error());
        st = EG_EINVAL;
        goto out;
    }

    s = natsConnection_Connect(&bus->nc, opts);
    if (s == NATS_OK) {
        set_flag(bus, &bus->connected);
    } else if (s != NATS_NOT_YET_CONNECTED) {
        eg_log_error("nats: cannot connect to %s: %s", shown, last_error());
        st = status_from_nats(s);
        goto out;
    }
    if (!wait_flag(bus, &bus->connected, timeout_ms)) {
        eg_log_error("nats: no connection to %s within %d ms", shown, timeout_ms);
        st = EG_EUNAVAIL;
        goto out;
    }

    s = natsConnection_JetStream(&bus->js, bus->nc, NULL);
    if (s != NATS_OK) {
        eg_log_error("nats: cannot create a JetStream context: %s", last_error());
        st = status_from_nats(s);
        goto out;
    }

    *out = bus;
    bus = NULL;

out:
    natsOptions_Destroy(opts);
    if (bus != NULL) {
        if (bus->nc != NULL) {
            close_connection(bus);
        }
        free_bus(bus);
    }
    return st;
}

static void on_sub_complete(void *closure)
{
    struct sub_node *node = closure;

    set_flag(node->bus, &node->complete);
}

/* Stop delivery on one subscription: drain it (messages already received are still handled),
 * or unsubscribe when the drain cannot start, then wait until the handler returned for the
 * last time. Returns false when that did not happen in time, so the node must not be freed. */
static bool stop_subscription(eg_bus_t *bus, struct sub_node *node)
{
    natsStatus s;

    s = natsSubscription_Drain(node->sub);
    if (s == NATS_OK) {
        s = natsSubscription_WaitForDrainCompletion(node->sub, CLOSE_WAIT_MS);
    }
    if (s != NATS_OK) {
        natsSubscription_Unsubscribe(node->sub);
    }
    return wait_flag(bus, &node->complete, CLOSE_WAIT_MS);
}

void eg_bus_close(eg_bus_t *bus)
{
    struct sub_node *node;
    struct sub_node *next;
    struct sub_node *subs;

    if (bus == NULL) {
        return;
    }

    pthread_mutex_lock(&bus->mu);
    subs = bus->subs;
    bus->subs = NULL;
    pthread_mutex_unlock(&bus->mu);

    for (node = subs; node != NULL; node = next) {
        next = node->next;
        if (!stop_subscription(bus, node)) {
            /* A handler is still running: leak its small state rather than free it under it. */
            eg_log_warn("nats: a handler on %s did not return within %d ms",
                        natsSubscription_GetSubject(node->sub), CLOSE_WAIT_MS);
            continue;
        }
        natsSubscription_Destroy(node->sub);
        free(node);
    }

    /* Published messages leave at once (SendAsap), but a flush makes sure the server has them. */
    if (is_up(bus)) {
        natsConnection_FlushTimeout(bus->nc, CLOSE_WAIT_MS);
    }
    jsCtx_Destroy(bus->js);
    close_connection(bus);
    free_bus(bus);
}

bool eg_bus_connected(eg_bus_t *bus)
{
    if (bus == NULL) {
        return false;
    }
    return is_up(bus);
}

void eg_bus_shutdown(void)
{
    nats_Close();
}

static const char *header(natsMsg *msg, const char *key)
{
    const char *value = NULL;

    if (natsMsgHeader_Get(msg, key, &value) != NATS_OK) {
        return NULL;
    }
    return value;
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    struct sub_node *node = closure;
    eg_bus_msg_t wrapped = {.msg = msg};

    (void)nc;
    (void)sub;
    eg_log_set_corr(header(msg, EG_BUS_CORR_HEADER));
    node->handler(node->bus, &wrapped, node->arg);
    eg_log_set_corr(NULL);
    natsMsg_Destroy(msg);
}

eg_status_t eg_bus_subscribe(eg_bus_t *bus, const char *subject, const char *queue,
                             eg_bus_handler_fn handler, void *arg)
{
    eg_status_t st = EG_OK;
    struct sub_node *node = NULL;
    natsStatus s;

    if (bus == NULL || subject == NULL || handler == NULL) {
        st = EG_EINVAL;
        goto out;
    }

    node = eg_xcalloc(1, sizeof(*node));
    node->bus = bus;
    node->handler = handler;
    node->arg = arg;

    if (queue != NULL) {
        s = natsConnection_QueueSubscribe(&node->sub, bus->nc, subject, queue, on_msg, node);
    } else {
        s = natsConnection_Subscribe(&node->sub, bus->nc, subject, on_msg, node);
    }
    if (s != NATS_OK) {
        eg_log_error("nats: cannot subscribe to %s: %s", subject, last_error());
        st = status_from_nats(s);
        goto out;
    }
    s = natsSubscription_SetOnCompleteCB(node->sub, on_sub_complete, node);
    if (s != NATS_OK) {
        /* Cannot happen on a subscription just made; if it does, a message may already be in
         * the handler, so the node is left allocated rather than freed under it. */
        eg_log_error("nats: cannot watch subscription on %s: %s", subject, last_error());
        st = status_from_nats(s);
        natsSubscription_Unsubscribe(node->sub);
        natsSubscription_Destroy(node->sub);
        node = NULL;
        goto out;
    }

    pthread_mutex_lock(&bus->mu);
    node->next = bus->subs;
    bus->subs = node;
    pthread_mutex_unlock(&bus->mu);
    node = NULL;

out:
    free(node);
    return st;
}

const void *eg_bus_msg_data(const eg_bus_msg_t *msg)
{
    return natsMsg_GetData(msg->msg);
}

size_t eg_bus_msg_len(const eg_bus_msg_t *msg)
{
    return (size_t)natsMsg_GetDataLength(msg->msg);
}

const char *eg_bus_msg_subject(const eg_bus_msg_t *msg)
{
    return natsMsg_GetSubject(msg->msg);
}

const char *eg_bus_msg_corr_id(const eg_bus_msg_t *msg)
{
    return header(msg->msg, EG_BUS_CORR_HEADER);
}

/* A message ready to publish on subject, with the correlation id header when corr_id is set. */
static eg_status_t build_msg(natsMsg **out, const char *subject, const void *data, size_t len,
                             const char *corr_id)
{
    eg_status_t st = EG_OK;
    natsMsg *msg = NULL;
    natsStatus s;

    *out = NULL;
    if (subject == NULL || (data == NULL && len > 0)) {
        st = EG_EINVAL;
        goto out;
    }
    if (len > INT_MAX) {
        st = EG_ETOOBIG;
        goto out;
    }
    s = natsMsg_Create(&msg, subject, NULL, data, (int)len);
    if (s == NATS_OK && corr_id != NULL) {
        s = natsMsgHeader_Set(msg, EG_BUS_CORR_HEADER, corr_id);
    }
    if (s != NATS_OK) {
        st = status_from_nats(s);
        goto out;
    }
    *out = msg;
    msg = NULL;

out:
    natsMsg_Destroy(msg);
    return st;
}

eg_status_t eg_bus_respond(eg_bus_t *bus, const eg_bus_msg_t *msg, const void *data, size_t len)
{
    eg_status_t st;
    const char *reply;
    natsMsg *out = NULL;

    if (bus == NULL || msg == NULL) {
        st = EG_EINVAL;
        goto out;
    }
    reply = natsMsg_GetReply(msg->msg);
    if (reply == NULL || reply[0] == '\0') {
        st = EG_EINVAL;
        goto out;
    }
    /* The answer carries the request's correlation id back too. */
    st = build_msg(&out, reply, data, len, eg_bus_msg_corr_id(msg));
    if (st != EG_OK) {
        goto out;
    }
    st = status_from_nats(natsConnection_PublishMsg(bus->nc, out));

out:
    natsMsg_Destroy(out);
    return st;
}

eg_status_t eg_bus_publish(eg_bus_t *bus, const char *subject, const void *data, size_t len,
                           const char *corr_id)
{
    eg_status_t st;
    natsMsg *msg = NULL;

    if (bus == NULL) {
        st = EG_EINVAL;
        goto out;
    }
    st = build_msg(&msg, subject, data, len, corr_id);
    if (st != EG_OK) {
        goto out;
    }
    st = status_from_nats(natsConnection_PublishMsg(bus->nc, msg));

out:
    natsMsg_Destroy(msg);
    return st;
}

eg_status_t eg_bus_request(eg_bus_t *bus, const char *subject, const void *data, size_t len,
                           const char *corr_id, int timeout_ms, void **reply, size_t *reply_len)
{
    eg_status_t st;
    natsMsg *msg = NULL;
    natsMsg *answer = NULL;
    size_t answer_len;
    void *copy;

    if (bus == NULL || reply == NULL || reply_len == NULL || timeout_ms <= 0) {
        st = EG_EINVAL;
        goto out;
    }
    *reply = NULL;
    *reply_len = 0;
    if (!is_up(bus)) {
        st = EG_EUNAVAIL;
        goto out;
    }
    st = build_msg(&msg, subject, data, len, corr_id);
    if (st != EG_OK) {
        goto out;
    }
    st = status_from_nats(natsConnection_RequestMsg(&answer, bus->nc, msg, timeout_ms));
    if (st != EG_OK) {
        goto out;
    }

    answer_len = (size_t)natsMsg_GetDataLength(answer);
    copy = eg_xmalloc(answer_len > 0 ? answer_len : 1);
    if (answer_len > 0) {
        memcpy(copy, natsMsg_GetData(answer), answer_len);
    }
    *reply = copy;
    *reply_len = answer_len;

out:
    natsMsg_Destroy(answer);
    natsMsg_Destroy(msg);
    return st;
}

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
                     last_error(), (int)jerr);
        st = status_from_nats(s);
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
    if (!is_up(bus)) {
        st = EG_EUNAVAIL;
        goto out;
    }
    st = build_msg(&msg, subject, data, len, corr_id);
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
                         last_error(), (int)jerr);
        }
        st = status_from_nats(s);
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
            b->slots[i].st = pa != NULL ? EG_OK : status_from_nats(err);
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
        eg_log_error("nats: cannot create a JetStream context: %s", last_error());
        st = status_from_nats(s);
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

    if (!is_up(b->bus)) {
        st = EG_EUNAVAIL;
        goto out;
    }
    st = build_msg(&msg, subject, data, len, corr_id);
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
        eg_log_error("nats: JetStream publish on %s failed: %s", subject, last_error());
        st = status_from_nats(s);
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
            st = status_from_nats(s);
        }
        eg_log_error("nats: cannot create consumer %s on stream %s: %s (JetStream error %d)",
                     durable, stream, last_error(), (int)jerr);
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
                     durable, stream, last_error(), (int)jerr);
        st = status_from_nats(s);
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
            eg_log_error("nats: fetch failed: %s (JetStream error %d)", last_error(), (int)jerr);
            st = status_from_nats(s);
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
    return header(m->msg, MSG_ID_HEADER);
}

const char *eg_bus_jsmsg_corr_id(const eg_bus_jsmsg_t *m)
{
    return header(m->msg, EG_BUS_CORR_HEADER);
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
    return status_from_nats(natsMsg_Ack(m->msg, NULL));
}

eg_status_t eg_bus_jsmsg_nak(eg_bus_jsmsg_t *m, int64_t delay_ms)
{
    if (m == NULL) {
        return EG_EINVAL;
    }
    if (delay_ms <= 0) {
        return status_from_nats(natsMsg_Nak(m->msg, NULL));
    }
    return status_from_nats(natsMsg_NakWithDelay(m->msg, delay_ms, NULL));
}

eg_status_t eg_bus_jsmsg_in_progress(eg_bus_jsmsg_t *m)
{
    if (m == NULL) {
        return EG_EINVAL;
    }
    return status_from_nats(natsMsg_InProgress(m->msg, NULL));
}

eg_status_t eg_bus_jsmsg_term(eg_bus_jsmsg_t *m)
{
    if (m == NULL) {
        return EG_EINVAL;
    }
    return status_from_nats(natsMsg_Term(m->msg, NULL));
}

void eg_bus_jsmsg_free(eg_bus_jsmsg_t *m)
{
    if (m == NULL) {
        return;
    }
    natsMsg_Destroy(m->msg);
    free(m);
}
