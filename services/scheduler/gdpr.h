/* The scheduler's half of a GDPR erase (engage.sched.gdpr.erase): the archiver runs the whole
 * erase (services/archiver/gdpr.c) and asks the scheduler, which owns the live records, to
 * cancel and delete those of a number. */
#ifndef SCHED_GDPR_H
#define SCHED_GDPR_H
#include "engage/bus.h"
#include "scheduler.h"

/** rpc_fn for EG_SUBJ_GDPR_ERASE (GdprRequest -> GdprEraseReply). With dry_run it only lists the
 *  ids of the number's callbacks. Otherwise it cancels every active one through the ordinary
 *  cancel (so the voice platform gets its cancel command), then deletes each record and every
 *  index key of the number (per-phone ZSET, active sets, per-day ZSETs) and the ids' entries in
 *  the due and queue ZSETs. Either way it answers EG_ECONFLICT, changing nothing, while one of
 *  them is PROCESSING (with an agent: it cannot be cancelled). Idempotent. */
eg_status_t gdpr_rpc_erase(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg);

#endif
