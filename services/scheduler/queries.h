/* Read-only questions about a service: availability, open-for, queue status, estimated wait
 * time, statistics. Each is an rpc handler (see rpc.h). */
#ifndef SCHED_QUERIES_H
#define SCHED_QUERIES_H
#include "rpc.h"

eg_status_t q_availability(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg);
eg_status_t q_open_for(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg);
eg_status_t q_queue_status(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg);
eg_status_t q_ewt(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg);
eg_status_t q_stats(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg);

/** Estimated wait (s) for a callback with `ahead` callbacks before it in virtual queue vq,
 *  from the throughput of the queue's last 32 serves; -1 when fewer than 2 were served. */
int q_ewt_for(worker_t *w, const char *tenant, const char *vq, int ahead);

#endif
