/* An HTTP client (libcurl inside), for Consul, engagectl and tests. Thread-safe: each call uses
 * its own handle. Call eg_httpc_global_init once in main before threads start. */
#ifndef ENGAGE_HTTPCLIENT_H
#define ENGAGE_HTTPCLIENT_H
#include <stddef.h>
#include "engage/status.h"

typedef struct {
    int status; /**< HTTP status code */
    char *body; /**< NUL-terminated, owned */
    size_t len;
    char *headers; /**< raw response header block, owned */
} eg_http_resp_t;

void eg_httpc_global_init(void);
void eg_httpc_global_cleanup(void);

/** Send method to url with headers ("Name: value", NULL-terminated list, may be NULL) and a
 *  body (may be NULL). Fills out (free with eg_http_resp_free) for any HTTP status.
 *  EG_EUNAVAIL when the connection fails, EG_ETIMEOUT after timeout_ms. */
eg_status_t eg_http_fetch(const char *method, const char *url, const char *const *headers,
                          const char *body, size_t len, long timeout_ms, eg_http_resp_t *out);
/** Value of a response header (case-insensitive) copied into out; EG_ENOTFOUND when absent. */
eg_status_t eg_http_resp_header(const eg_http_resp_t *resp, const char *name, char *out,
                                size_t outlen);
void eg_http_resp_free(eg_http_resp_t *resp);

#endif
