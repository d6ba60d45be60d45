/* The scheduler's request handlers on the bus (engage.sched.*). */
#ifndef SCHED_RPC_H
#define SCHED_RPC_H
#include "engage/bus.h"

/** Bus handler; arg is the worker_t of the delivering thread. */
void rpc_handle(eg_bus_t *bus, eg_bus_msg_t *msg, void *arg);
/** Broadcast handler for engage.config.changed; arg is the sched_t. */
void rpc_config_changed(eg_bus_t *bus, eg_bus_msg_t *msg, void *arg);

#endif
