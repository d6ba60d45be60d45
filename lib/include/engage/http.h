/* The HTTP server (civetweb inside): routes by path prefix, request accessors, bounded body
 * reading, JSON replies and the Engagement API v3 envelope with the correlation id.
 *
 * Threading: handlers run on the server's worker threads (opts.threads of them), one request
 * per thread at a time; a request object is valid only during its handler. */
#ifndef ENGAGE_HTTP_H
#define ENGAGE_HTTP_H
#include <stdbool.h>
#include <stddef.h>
#include "engage/json.h"
#include "engage/status.h"

typedef struct eg_http_server eg_http_server_t;
typedef struct eg_http_req eg_http_req_t;

/** A handler; it must send exactly one reply (one that sends none gets a 500 envelope sent for
 *  it). Its return value is not used: the status actually sent is recorded in the request by
 *  the reply functions, and whoever counts or logs it reads eg_http_status_sent. */
typedef int (*eg_http_handler_fn)(eg_http_req_t *req, void *arg);

typedef struct {
    const char *addr; /**< listen address, default "127.0.0.1" (IPv4 only) */
    int port;         /**< 0 = any free port (read it back with eg_http_port) */
    int threads;      /**< worker threads, default 16 */
    size_t max_body;  /**< largest accepted body, default 256 KiB */
    bool keep_alive;  /**< default false; the api turns it on */
} eg_http_opts_t;

/** Start listening. Close with eg_http_stop. EG_EUNAVAIL when the port cannot be bound. */
eg_status_t eg_http_start(eg_http_server_t **out, const eg_http_opts_t *opts);
/** The port actually bound. */
int eg_http_port(const eg_http_server_t *srv);
/** Route every path starting with prefix (exact segment match: "/a" matches "/a" and "/a/b",
 *  not "/ab") to fn. The longest matching prefix wins. prefix is copied. */
void eg_http_route(eg_http_server_t *srv, const char *prefix, eg_http_handler_fn fn, void *arg);
/** Stop accepting, wait for running handlers, free. Accepts NULL. */
void eg_http_stop(eg_http_server_t *srv);

/* ---- the request ---- */
const char *eg_http_method(const eg_http_req_t *req);
/** The decoded path, without the query string. */
const char *eg_http_path(const eg_http_req_t *req);
/** The raw query string (after '?'), or NULL. */
const char *eg_http_query(const eg_http_req_t *req);
/** Value of a request header (case-insensitive name), or NULL. Borrowed. */
const char *eg_http_header(const eg_http_req_t *req, const char *name);
/** URL-decoded value of a query parameter into out. EG_ENOTFOUND when absent, EG_ETOOBIG when
 *  longer than outlen - 1. */
eg_status_t eg_http_query_param(const eg_http_req_t *req, const char *name, char *out,
                                size_t outlen);
/** Read the whole body (at most the server's max_body). *data is borrowed from the request
 *  (NUL-terminated) and valid during the handler. EG_ETOOBIG when larger. */
eg_status_t eg_http_body(eg_http_req_t *req, const char **data, size_t *len);
/** The request's correlation id: a fresh UUIDv7 unless the client sent a valid UUID in
 *  X-Correlation-Id. Also set as the log correlation id of the handling thread. */
const char *eg_http_corr_id(const eg_http_req_t *req);
/** The peer's address as text. */
const char *eg_http_remote_addr(const eg_http_req_t *req);

/* ---- the reply (exactly one per request) ---- */
/** Add a header to the coming reply (name and value copied). */
void eg_http_add_header(eg_http_req_t *req, const char *name, const char *value);
/** Send a reply with a body. X-Correlation-Id is always added. */
void eg_http_reply(eg_http_req_t *req, int code, const char *content_type, const void *body,
                   size_t len);
/** Send a JSON value (borrowed). */
void eg_http_reply_json(eg_http_req_t *req, int code, const eg_json_t *body);
/** Send the v3 envelope {"status":{"code","message","corrId"},"data":...}. data: taken
 *  (may be NULL: no "data" member). status.code is code. */
void eg_http_reply_envelope(eg_http_req_t *req, int code, const char *message, eg_json_t *data);
/** The envelope for an error status: code from eg_status_http(st), plus "subCode" naming st. */
void eg_http_reply_error(eg_http_req_t *req, eg_status_t st, const char *message);
/** The HTTP status of the reply sent for req (the first one: a second is refused), 0 while none
 *  has been sent. The one source of truth for metrics and log lines about the request. */
int eg_http_status_sent(const eg_http_req_t *req);

#endif
