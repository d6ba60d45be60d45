/* The callback operations the scheduler answers: create, retrieve, cancel. Each runs on a
 * worker thread with that worker's connections. */
#ifndef SCHED_CALLBACKS_H
#define SCHED_CALLBACKS_H
#include <stdbool.h>

#include "engage.pb-c.h"
#include "scheduler.h"

/** Book a callback. On success reply->callback is set. Fills reply->status on every path. */
void cb_create(worker_t *w, const Eg__CreateRequest *req, Eg__CallbackReply *reply);
void cb_retrieve(worker_t *w, const Eg__IdRequest *req, Eg__CallbackReply *reply);
void cb_cancel(worker_t *w, const Eg__IdRequest *req, Eg__CallbackReply *reply);

/** Apply a call.progress result from the voice platform (stale results change nothing). */
void cb_progress(worker_t *w, const Eg__ProgressRequest *req, Eg__CallbackReply *reply);
/** Dispatch one due SCHEDULED callback (-> QUEUED). *dispatched is false when another
 *  dispatcher was first or it is no longer due. */
eg_status_t cb_dispatch_due(worker_t *w, const char *tenant, const char *service, const char *id,
                            bool *dispatched);

/** Move a SCHEDULED callback to another time (and slot) atomically. */
void cb_reschedule(worker_t *w, const Eg__RescheduleRequest *req, Eg__CallbackReply *reply);
/** A tenant's callbacks for a number, newest first, filtered and paged. The caller frees
 *  reply's contents with eg__find_reply__free_unpacked-compatible ownership (all malloc'd). */
void cb_find(worker_t *w, const Eg__FindRequest *req, Eg__FindReply *reply);

/** Complete a tenant's pending callbacks for phone (SCHEDULED, QUEUED, ROUTING) with
 *  CUSTOMER_CONTACTED: the customer called in on their own. *ids_out (malloc'd array of
 *  malloc'd ids; caller frees both, also on error) lists the callbacks completed; *n_out their
 *  number. Scans the newest 100 callbacks of the number. An error (store unavailable, a record
 *  busy past its retries) is returned after trying the others. */
eg_status_t cb_customer_contacted(worker_t *w, const char *tenant, const char *phone,
                                  char ***ids_out, size_t *n_out);

/** Free what cb_* put into reply (not reply itself). */
void cb_reply_clear(Eg__CallbackReply *reply);

/** Upper-case name of a state as the API shows it. */
const char *cb_state_name(Eg__State s);

#endif
