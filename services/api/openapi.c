/* The OpenAPI document at /engagement/v3/openapi.json. It is public (no key: tools fetch it
 * before they have one) and raw (the document itself, not wrapped in the v3 envelope), and it
 * comes from the binary (openapi_doc.h), so it describes exactly the server that serves it. */
#include "openapi.h"

#include <string.h>

#include "callbacks_v3.h"
#include "openapi_doc.h"

#define OPENAPI_PATH "/engagement/v3/openapi.json"

int v3_openapi(eg_http_req_t *req, void *arg)
{
    if (strcmp(eg_http_path(req), OPENAPI_PATH) != 0)
        return v3_unknown(req, arg);
    const char *method = eg_http_method(req);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        eg_http_add_header(req, "Allow", "GET, HEAD");
        eg_http_reply_envelope(req, 405, "method not allowed: use GET", NULL);
        return 405;
    }
    eg_http_add_header(req, "Cache-Control", "public, max-age=300");
    eg_http_reply(req, 200, "application/json", openapi_json, openapi_json_len);
    return 200;
}
