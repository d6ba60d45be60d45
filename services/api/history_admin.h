/* Admin API over the history (answered by the archiver): callback search and export, and GDPR
 * erase and export by phone number. Admin keys only; the key's tenant only. */
#ifndef API_HISTORY_ADMIN_H
#define API_HISTORY_ADMIN_H
#include "api.h"
#include "engage/http.h"

/** GET /ges/api/v1/callbacks (sub "") and GET /ges/api/v1/callbacks/export (sub "/export").
 *  who is the checked admin identity (borrowed). Returns the HTTP code sent. */
int admin_callbacks(api_t *api, eg_http_req_t *req, const api_identity_t *who, const char *sub);

/** POST /ges/api/v1/gdpr/erase and /gdpr/export (op "erase" or "export"), body
 *  {"phoneNumber": "+..."}. Returns the HTTP code sent. */
int admin_gdpr(api_t *api, eg_http_req_t *req, const api_identity_t *who, const char *op);

#endif
