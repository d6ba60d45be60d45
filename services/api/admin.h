/* Admin API (/ges/api/v1/): callback service configuration for now. */
#ifndef API_ADMIN_H
#define API_ADMIN_H
#include "api.h"

/** Route handler for /ges/api/v1; arg is the api_t. */
int admin_route(eg_http_req_t *req, void *arg);
/** The supervisor UI's entry page at /ges/ (the UI itself comes with its own issue). */
int admin_ui(eg_http_req_t *req, void *arg);

#endif
