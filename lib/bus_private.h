/* What lib/bus.c (connections, core NATS) and lib/jetstream.c (streams, consumers, publishing
 * to JetStream) share: the adapter's structures and a few helpers. Private to lib/: it names
 * nats.c's types. */
#ifndef ENGAGE_BUS_PRIVATE_H
#define ENGAGE_BUS_PRIVATE_H
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <nats/nats.h>

#include "engage/bus.h"

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
    bool connected;          /* guarded by mu: set by the first successful connect */
    bool closing;            /* guarded by mu: we are closing, so a disconnect is expected */
    bool closed;             /* guarded by mu: set by nats.c's closed callback */
    struct sub_node *subs;   /* guarded by mu */
    char server[256];        /* guarded by mu: the server last connected to, masked, for logs */
    atomic_size_t reply_max; /* eg_bus_set_reply_max; 0 = the server's max_payload */
};

struct eg_bus_msg {
    natsMsg *msg;
};

struct eg_bus_consumer {
    eg_bus_t *bus;
    natsSubscription *sub;
    char *name;    /* "<stream>/<durable>", for log lines */
    bool troubled; /* a fetch failed transiently and none succeeded since (one log line each) */
};

struct eg_bus_jsmsg {
    natsMsg *msg;
    uint64_t deliveries;
    uint64_t seq;
};

/* JetStream through a leader election (lib/jetstream.c, lib/jetstream_batch.c): a publish or a
 * fetch that failed in a way an election or a reconnect explains is tried again, with the same
 * message id, in tries of at most JS_TRY_MS, JS_BACKOFF_MIN_MS doubling to JS_BACKOFF_MAX_MS
 * apart, until the caller's timeout. */
#define JS_TRY_MS 2000
#define JS_BACKOFF_MIN_MS 50
#define JS_BACKOFF_MAX_MS 500
/* The JetStream API (streams, consumers) during a meta leader election: how long to keep trying. */
#define JS_API_RETRY_MS 15000

/** Monotonic milliseconds. */
int64_t bus_mono_ms(void);
/** Sleep ms milliseconds (nothing when ms <= 0). */
void bus_sleep_ms(int64_t ms);
/** Wait until the connection is up or the monotonic deadline (ms) passed; true when up. */
bool bus_wait_up(eg_bus_t *bus, int64_t deadline_ms);
/** True when a JetStream call that failed with s (and JetStream error jerr) failed because the
 *  server it needed was gone or electing a leader: no responders, a timeout, a lost connection,
 *  "JetStream temporarily unavailable", "not leader", "stream offline". Such a failure may pass;
 *  any other will not. */
bool bus_js_transient(natsStatus s, jsErrCode jerr);

/** Every natsStatus as an eg_status_t. */
eg_status_t bus_status(natsStatus s);
/** The text of nats.c's last error on this thread, for log lines. */
const char *bus_last_error(void);
/** True while the connection is up. */
bool bus_is_up(eg_bus_t *bus);
/** A header's value, or NULL. */
const char *bus_header(natsMsg *msg, const char *key);
/** A message ready to publish on subject, with the correlation id header when corr_id is set. */
eg_status_t bus_build_msg(natsMsg **out, const char *subject, const void *data, size_t len,
                          const char *corr_id);

#endif
