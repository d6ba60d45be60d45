/* The callback operations the scheduler answers: create, retrieve, cancel. Each runs on a
 * worker thread with that worker's connections. */
#ifndef SCHED_CALLBACKS_H
#define SCHED_CALLBACKS_H
#include "engage.pb-c.h"
#include "scheduler.h"

/** Book a callback. On success reply->callback is set. Fills reply->status on every path. */
void cb_create(worker_t *w, const Eg__CreateRequest *req, Eg__CallbackReply *reply);
void cb_retrieve(worker_t *w, const Eg__IdRequest *req, Eg__CallbackReply *reply);
void cb_cancel(worker_t *w, const Eg__IdRequest *req, Eg__CallbackReply *reply);

/** Free what cb_* put into reply (not reply itself). */
void cb_reply_clear(Eg__CallbackReply *reply);

/** Upper-case name of a state as the API shows it. */
const char *cb_state_name(Eg__State s);

#endif
