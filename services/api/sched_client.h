/* Requests from the api to the scheduler over the bus, and the HTTP replies for their failures. */
#ifndef API_SCHED_CLIENT_H
#define API_SCHED_CLIENT_H
#include <stddef.h>

#include "api.h"
#include "engage.pb-c.h"
#include "engage/http.h"
#include "engage/status.h"

/** Send a request and wait for the answer. While the scheduler is unreachable ("no responders"
 *  or a timeout) it keeps trying for up to api->sched_wait_ms, so a scheduler restart is
 *  invisible to clients; then EG_EUNAVAIL. On EG_OK *reply (free()) holds the answer. */
eg_status_t sched_call(api_t *api, const char *subject, const void *data, size_t len,
                       const char *corr_id, void **reply, size_t *reply_len);

/** Ask the scheduler on behalf of an HTTP request: pack request (borrowed), send it to subject
 *  with the request's correlation id (sched_call), and decode the answer as a reply_type, a
 *  reply message whose field 1 is its Eg__Status.
 *
 *  Returns the decoded reply, whose status is set but may be an error (see sched_reply_status);
 *  the caller frees it with its type's free_unpacked. NULL after an error reply has been sent,
 *  with *code the HTTP status it carries: 503 when the scheduler did not answer, 500 when its
 *  answer could not be decoded or had no status. The packed request is wiped before it is
 *  freed, as it may hold a secret (a new API key). */
void *sched_ask(api_t *api, eg_http_req_t *req, const char *subject,
                const ProtobufCMessage *request, const ProtobufCMessageDescriptor *reply_type,
                int *code);

/** sched_ask for callers that treat every error status alike: a reply whose status is not
 *  EG_OK is freed and answered with sched_reply_status (its HTTP status in *code), and NULL is
 *  returned. A non-NULL reply always carries EG_OK. */
void *sched_ask_ok(api_t *api, eg_http_req_t *req, const char *subject,
                   const ProtobufCMessage *request, const ProtobufCMessageDescriptor *reply_type,
                   int *code);

/** Reply with the scheduler's status (borrowed): its code mapped to HTTP in the one table
 *  (eg_status_http), and its message, or the code's name when the message is empty. Returns the
 *  HTTP status sent. */
int sched_reply_status(eg_http_req_t *req, const Eg__Status *status);

#endif
