/* The voice platform's view of its virtual queues (queue.stats entries, forwarded by the
 * ors-bridge), kept per tenant and virtual queue for EWT mode2 and mode3:
 *
 *   eg:{t:T}:qstats:<vq>   HASH at, logged_in, ready, waiting, aht (the latest figures);
 *                          expires QSTATS_TTL_MS after the last update, so a platform that
 *                          stopped reporting leaves no stale estimate behind
 *
 * An update older (by its `at`) than the stored one is ignored, so entries handled out of order
 * never replace newer figures. */
#ifndef SCHED_QUEUE_STATS_H
#define SCHED_QUEUE_STATS_H
#include <stdbool.h>
#include <stdint.h>

#include "engage/status.h"
#include "engage/store.h"
#include "rpc.h"

#define QSTATS_TTL_MS 300000 /**< 5 minutes */
#define QSTATS_MAX_COUNT 1000000

/** One virtual queue's figures. Plain data. */
typedef struct {
    int64_t at_ms;
    int agents_logged_in;
    int agents_ready;
    int calls_waiting;
    int avg_handle_time_s;
} qstats_t;

/** Store the figures of tenant's virtual queue vq (ignored when older than the stored ones).
 *  EG_OK also when ignored (*stored false, may be NULL). */
eg_status_t qstats_store(eg_store_t *store, const char *tenant, const char *vq, const qstats_t *qs,
                         bool *stored);
/** The latest figures, or EG_ENOTFOUND when none arrived in the last QSTATS_TTL_MS. */
eg_status_t qstats_load(eg_store_t *store, const char *tenant, const char *vq, qstats_t *qs);

/** EWT in seconds for mode 2 or 3 from the figures (qs NULL: none), with `callbacks` callbacks
 *  waiting in the virtual queue (mode2 only):
 *    mode2: (callbacks + calls_waiting) x avg_handle_time_s / agents_logged_in
 *    mode3: calls_waiting x avg_handle_time_s / (agents_ready, or agents_logged_in when none is
 *           ready)
 *  rounded to the nearest second. -1 with *result_code -2 when there are no figures or no agent
 *  logged in; *message (static text) says which. Pure. */
int qstats_ewt(int mode, int callbacks, const qstats_t *qs, int *result_code, const char **message);

/** engage.sched.qstats.put: QueueStatsRequest -> StatusReply (an rpc_fn). */
eg_status_t qstats_rpc_put(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg);

#endif
