/* Who is calling: API key checks (answered by the scheduler, cached here briefly). */
#ifndef API_AUTH_H
#define API_AUTH_H
#include "api.h"
#include "engage/http.h"

/** The common start of every v3 and admin request: refuse a ccid / ContactCenterID header
 *  (the tenant comes from the key alone), then check x-api-key. Returns true with *who filled
 *  when the request may go on; otherwise the error reply has been sent. With admin_only, an
 *  "api" role key is refused with 403. */
bool api_begin(api_t *api, eg_http_req_t *req, api_identity_t *who, bool admin_only);

#endif
