/* The scheduler's request handlers on the bus (engage.sched.*). */
#ifndef SCHED_RPC_H
#define SCHED_RPC_H
#include <stddef.h>

#include "engage/bus.h"
#include "scheduler.h"

/** A request handler. It decodes the request from msg, answers with eg_bus_reply (any reply
 *  message whose field 1 is a Status), and returns the status it answered. It returns EG_EPROTO
 *  only when it could not decode the request and did NOT answer: rpc_handle then answers. */
typedef eg_status_t (*rpc_fn)(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg);

/** Bus handler; arg is the worker_t of the delivering thread. */
void rpc_handle(eg_bus_t *bus, eg_bus_msg_t *msg, void *arg);
/** Broadcast handler for engage.config.changed; arg is the sched_t. */
void rpc_config_changed(eg_bus_t *bus, eg_bus_msg_t *msg, void *arg);

#endif
