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
    atomic_size_t reply_max; /* eg_bus_set_reply_max; 0 = the server's max_payload */
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
