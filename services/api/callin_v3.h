/* Click-to-Call-In on the api: the v3 endpoint POST /engagement/v3/call-in/requests/create and
 * the admin routes /ges/api/v1/call-in-groups/{name} (PUT, GET, DELETE). */
#ifndef API_CALLIN_V3_H
#define API_CALLIN_V3_H
#include "api.h"

/** Route handler for /engagement/v3/call-in; arg is the api_t. */
int v3_callin(eg_http_req_t *req, void *arg);

/** The admin routes of one call-in group, called by admin.c after api_begin with an admin key;
 *  name is the path segment after /call-in-groups/ (borrowed). Returns the HTTP status sent. */
int admin_callin_group(api_t *api, eg_http_req_t *req, const api_identity_t *who, const char *name);

#endif
