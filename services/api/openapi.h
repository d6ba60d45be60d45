/* GET /engagement/v3/openapi.json: the OpenAPI document, public and raw. */
#ifndef API_OPENAPI_H
#define API_OPENAPI_H
#include "engage/http.h"

/** Route handler for /engagement/v3/openapi.json (arg unused). Answers the document as
 *  application/json with no envelope and no key; 405 for methods other than GET and HEAD; 404
 *  (as v3_unknown) for paths below it. */
int v3_openapi(eg_http_req_t *req, void *arg);

#endif
