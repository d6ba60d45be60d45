/* Validation of Engagement API v3 request bodies. Plain functions over parsed JSON: every
 * rejection names the field and the rule. */
#ifndef API_VALIDATE_H
#define API_VALIDATE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engage.pb-c.h"
#include "engage/json.h"
#include "engage/status.h"

#define API_MAX_BODY (256 * 1024)
#define API_MAX_JSON_DEPTH 16

/** Fill req (strings owned by req: release with api_create_request_clear) from a create body.
 *  now_ms is "now" for checks. EG_EINVAL with err naming the field on bad input. */
eg_status_t api_parse_create(const char *body, size_t len, Eg__CreateRequest *req, char *err,
                             size_t errlen);
void api_create_request_clear(Eg__CreateRequest *req);

/** Parse a body holding {"id": "<uuid>"}; the id is written lower-case into id. */
eg_status_t api_parse_id(const char *body, size_t len, char id[37], char *err, size_t errlen);

/** Parse {"id": "<uuid>", "desiredTime": "<ISO-8601>"} (reschedule). */
eg_status_t api_parse_reschedule(const char *body, size_t len, char id[37], int64_t *desired_ms,
                                 char *err, size_t errlen);

#endif
