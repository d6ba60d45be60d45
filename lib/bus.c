/* The bus: Engage's one adapter over nats.c (core NATS and JetStream).
 *
 * An eg_bus_t owns one natsConnection, made with SendAsap (a request does not wait for the
 * flusher), retry on a failed first connect and unlimited reconnects every 250 ms. Connection
 * events reach us on nats.c's callback thread: they are logged, and they wake eg_bus_open (first
 * connect) and eg_bus_close (connection closed) through one mutex and condition variable. The
 * bus is only freed after the closed callback ran, so no late callback sees freed memory.
 *
 * A cluster: the URL may list several servers (split for natsOptions_SetServers). When the one
 * in use dies, nats.c moves to another of the list (or one the cluster told it about) and
 * renews every subscription there, queue groups included. Meanwhile nothing is handed to the
 * connection (nats.c would buffer it and might send it after we reported a failure): requests
 * and JetStream calls wait for the reconnect within their timeouts (bus_wait_up), which is safe
 * because nothing was sent yet. What was sent and lost with the server is the caller's to
 * repeat, except JetStream publishes, which carry a message id (see jetstream.c).
 *
 * Core subscriptions are asynchronous: nats.c gives each its own delivery thread, and a small
 * trampoline wraps the natsMsg in an eg_bus_msg_t on the stack, sets the logging correlation id
 * from the Engage-Corr-Id header, calls the handler, then destroys the natsMsg. The bus keeps
 * every subscription in a list; eg_bus_close drains each one and waits for nats.c's "complete"
 * callback (the handler has returned for the last time) before freeing the trampoline state.
 *
 * Answers to requests (eg_bus_reply, lib/bus_reply.c) are packed at their own size and replaced
 * by an error status when they are too large for the bus, so no asker waits for a dropped one.
 *
 * JetStream (lib/jetstream.c, sharing lib/bus_private.h): streams are created or updated to the
 * wanted settings (file storage). A durable pull consumer is likewise created or updated with
 * js_AddConsumer/js_UpdateConsumer and only then bound with js_PullSubscribe. Binding to an
 * existing consumer matters: nats.c deletes a consumer that js_PullSubscribe itself created when
 * the subscription is unsubscribed, which would lose a durable's position on every restart. Fetched
 * messages are handed out wrapped, with their delivery count and stream sequence read from the
 * metadata once, at fetch time. A batch publisher (eg_bus_js_batch_*) sends many messages with
 * js_PublishMsgAsync and waits once for all their acks, on a JetStream context of its own (see the
 * section below).
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

#include "bus_private.h"
#include "engage/log.h"
#include "engage/mem.h"

#define RECONNECT_WAIT_MS 250

eg_status_t bus_status(natsStatus s)
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
const char *bus_last_error(void)
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

/* Remember the server nc is connected to now (masked), for the disconnect's log line: nats.c
 * may already name the next server of its list by then. */
static void note_server(eg_bus_t *bus, natsConnection *nc, const char *masked)
{
    char url[256] = "";
    char shown[256];

    if (masked == NULL) {
        natsConnection_GetConnectedUrl(nc, url, sizeof(url));
        redact_url(url, shown, sizeof(shown));
        masked = shown;
    }
    pthread_mutex_lock(&bus->mu);
    snprintf(bus->server, sizeof(bus->server), "%s", masked);
    pthread_mutex_unlock(&bus->mu);
}

static void on_connected(natsConnection *nc, void *closure)
{
    eg_bus_t *bus = closure;

    note_server(bus, nc, NULL);
    set_flag(bus, &bus->connected);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    eg_bus_t *bus = closure;
    bool closing;
    char lost[256];

    (void)nc;
    pthread_mutex_lock(&bus->mu);
    closing = bus->closing;
    snprintf(lost, sizeof(lost), "%s", bus->server[0] != '\0' ? bus->server : "the server");
    pthread_mutex_unlock(&bus->mu);
    if (!closing) {
        eg_log_warn("nats: lost the connection to %s; reconnecting (to any server of the list)",
                    lost);
    }
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    eg_bus_t *bus = closure;
    char url[256] = "";
    char shown[256];

    natsConnection_GetConnectedUrl(nc, url, sizeof(url));
    redact_url(url, shown, sizeof(shown));
    eg_log_info("nats: reconnected to %s", shown);
    note_server(bus, nc, shown);
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

int64_t bus_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void bus_sleep_ms(int64_t ms)
{
    struct timespec ts;

    if (ms <= 0) {
        return;
    }
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

/* Polled: nats.c reconnects in ~RECONNECT_WAIT_MS steps, so 20 ms costs nothing. */
bool bus_wait_up(eg_bus_t *bus, int64_t deadline_ms)
{
    while (!bus_is_up(bus)) {
        int64_t left = deadline_ms - bus_mono_ms();

        if (left <= 0) {
            return false;
        }
        bus_sleep_ms(left < 20 ? left : 20);
    }
    return true;
}

bool bus_js_transient(natsStatus s, jsErrCode jerr)
{
    switch (jerr) {
    case JSClusterNotAvailErr:
    case JSClusterNotLeaderErr:
    case JSStreamOfflineErr:
        return true;
    default:
        break;
    }
    switch (s) {
    case NATS_NO_RESPONDERS:
    case NATS_TIMEOUT:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NOT_YET_CONNECTED:
    case NATS_NO_SERVER:
    case NATS_STALE_CONNECTION:
        return true;
    default:
        return false; /* NATS_CONNECTION_CLOSED among them: the bus is being closed */
    }
}

/* True unless the connection is down. nats.c would buffer a request or a JetStream publish while
 * it reconnects and report a timeout only after timeout_ms; the caller is better served by an
 * immediate EG_EUNAVAIL (and a buffered JetStream publish could still be stored after we
 * reported failure). */
bool bus_is_up(eg_bus_t *bus)
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
    atomic_init(&bus->reply_max, 0);
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
        eg_log_error("nats: bad connection options for %s: %s", shown, bus_last_error());
        st = EG_EINVAL;
        goto out;
    }

    s = natsConnection_Connect(&bus->nc, opts);
    if (s == NATS_OK) {
        note_server(bus, bus->nc, NULL);
        set_flag(bus, &bus->connected);
    } else if (s != NATS_NOT_YET_CONNECTED) {
        eg_log_error("nats: cannot connect to %s: %s", shown, bus_last_error());
        st = bus_status(s);
        goto out;
    }
    if (!wait_flag(bus, &bus->connected, timeout_ms)) {
        eg_log_error("nats: no connection to %s within %d ms", shown, timeout_ms);
        st = EG_EUNAVAIL;
        goto out;
    }

    s = natsConnection_JetStream(&bus->js, bus->nc, NULL);
    if (s != NATS_OK) {
        eg_log_error("nats: cannot create a JetStream context: %s", bus_last_error());
        st = bus_status(s);
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
    if (bus_is_up(bus)) {
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
    return bus_is_up(bus);
}

eg_status_t eg_bus_server_url(eg_bus_t *bus, char *out, size_t outlen)
{
    char url[256] = "";

    if (bus == NULL || out == NULL || outlen == 0) {
        return EG_EINVAL;
    }
    out[0] = '\0';
    if (!bus_is_up(bus) || natsConnection_GetConnectedUrl(bus->nc, url, sizeof(url)) != NATS_OK ||
        url[0] == '\0') {
        return EG_EUNAVAIL;
    }
    redact_url(url, out, outlen);
    return EG_OK;
}

void eg_bus_shutdown(void)
{
    nats_Close();
}

const char *bus_header(natsMsg *msg, const char *key)
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
    eg_log_set_corr(bus_header(msg, EG_BUS_CORR_HEADER));
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
        eg_log_error("nats: cannot subscribe to %s: %s", subject, bus_last_error());
        st = bus_status(s);
        goto out;
    }
    s = natsSubscription_SetOnCompleteCB(node->sub, on_sub_complete, node);
    if (s != NATS_OK) {
        /* Cannot happen on a subscription just made; if it does, a message may already be in
         * the handler, so the node is left allocated rather than freed under it. */
        eg_log_error("nats: cannot watch subscription on %s: %s", subject, bus_last_error());
        st = bus_status(s);
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
    return bus_header(msg->msg, EG_BUS_CORR_HEADER);
}

/* A message ready to publish on subject, with the correlation id header when corr_id is set. */
eg_status_t bus_build_msg(natsMsg **out, const char *subject, const void *data, size_t len,
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
        st = bus_status(s);
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
    st = bus_build_msg(&out, reply, data, len, eg_bus_msg_corr_id(msg));
    if (st != EG_OK) {
        goto out;
    }
    st = bus_status(natsConnection_PublishMsg(bus->nc, out));

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
    st = bus_build_msg(&msg, subject, data, len, corr_id);
    if (st != EG_OK) {
        goto out;
    }
    st = bus_status(natsConnection_PublishMsg(bus->nc, msg));

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
    int64_t start = bus_mono_ms();
    int left;

    if (bus == NULL || reply == NULL || reply_len == NULL || timeout_ms <= 0) {
        st = EG_EINVAL;
        goto out;
    }
    *reply = NULL;
    *reply_len = 0;
    /* While the connection is down (the server we were on died, nats.c is moving to another of
     * the list), the request has certainly not left: wait for the reconnect within the caller's
     * timeout and send it then. That is the only replay done here. A request that was sent and
     * got no answer (EG_ETIMEOUT: the server may have died after passing it on) or found no
     * responder goes back to the caller, who alone knows whether doing it twice is harmless.
     * For the api's calls to the scheduler it is (services/api/sched_client.c retries them):
     * a create carries the callback id the api chose, so a replay finds the record stored by
     * the first one (the scheduler answers it as it stands), and the other writes are
     * compare-and-set transitions that a replay finds already made. */
    if (!bus_wait_up(bus, start + timeout_ms)) {
        st = EG_EUNAVAIL;
        goto out;
    }
    left = (int)(start + timeout_ms - bus_mono_ms());
    if (left <= 0) {
        st = EG_ETIMEOUT;
        goto out;
    }
    st = bus_build_msg(&msg, subject, data, len, corr_id);
    if (st != EG_OK) {
        goto out;
    }
    st = bus_status(natsConnection_RequestMsg(&answer, bus->nc, msg, left));
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
