/* Requests from the api to the scheduler over the bus. */
#ifndef API_SCHED_CLIENT_H
#define API_SCHED_CLIENT_H
#include <stddef.h>

#include "api.h"
#include "engage/status.h"

/** Send a request and wait for the answer. While the scheduler is unreachable ("no responders"
 *  or a timeout) it keeps trying for up to api->sched_wait_ms, so a scheduler restart is
 *  invisible to clients; then EG_EUNAVAIL. On EG_OK *reply (free()) holds the answer. */
eg_status_t sched_call(api_t *api, const char *subject, const void *data, size_t len,
                       const char *corr_id, void **reply, size_t *reply_len);

#endif
