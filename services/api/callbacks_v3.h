/* Engagement API v3: /engagement/v3/callbacks/{create,retrieve,cancel}. */
#ifndef API_CALLBACKS_V3_H
#define API_CALLBACKS_V3_H
#include "api.h"

/** Route handler for /engagement/v3/callbacks; arg is the api_t. */
int v3_callbacks(eg_http_req_t *req, void *arg);
/** Route handler for the rest of /engagement/v3 (unknown endpoints). */
int v3_unknown(eg_http_req_t *req, void *arg);

#endif
