/* Who is calling: API key checks (answered by the scheduler, cached here briefly). */
#ifndef API_AUTH_H
#define API_AUTH_H
#include "api.h"
#include "engage/http.h"

/** The common start of every v3 and admin request: refuse a ccid / ContactCenterID header
 *  (the tenant comes from the key alone), check x-api-key, then the key's rate limit (429 with
 *  Retry-After). Returns true with *who filled when the request may go on; otherwise the error
 *  reply has been sent. With admin_only, an "api" role key is refused with 403. */
bool api_begin(api_t *api, eg_http_req_t *req, api_identity_t *who, bool admin_only);

/** A key changed (revoked): drop its cached answer at once, and cache no answer about it for
 *  a moment, so that an answer computed before the change (in flight, or from a scheduler the
 *  broadcast has not reached yet) is not kept. key_id borrowed; NULL or "" drops every key.
 *  Thread-safe. */
void api_key_changed(api_t *api, const char *key_id);

#endif
