/* Engagement API v3 queries: availability, open-for, queue-status (under /callbacks),
 * estimated-wait-time and statistics. */
#ifndef API_QUERIES_V3_H
#define API_QUERIES_V3_H
#include "api.h"

/** /engagement/v3/callbacks/{availability,open-for,queue-status}/{service}; arg is the api_t.
 *  op is the path after "/callbacks/". */
int v3_service_query(eg_http_req_t *req, api_t *api, const char *op);
/** GET /engagement/v3/estimated-wait-time. */
int v3_ewt(eg_http_req_t *req, void *arg);
/** POST /engagement/v3/statistics/operations/get-statistic-ex. */
int v3_statistics(eg_http_req_t *req, void *arg);

#endif
