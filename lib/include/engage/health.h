/* The operational endpoints every service serves: /healthz (the process runs), /readyz (its
 * dependencies answer: each registered check) and /metrics (Prometheus text). */
#ifndef ENGAGE_HEALTH_H
#define ENGAGE_HEALTH_H
#include <stddef.h>
#include "engage/http.h"
#include "engage/metrics.h"
#include "engage/status.h"

typedef struct eg_health eg_health_t;

/** A readiness check; EG_OK when ready, else a status and a reason in why. Called on the HTTP
 *  worker thread: it must be thread-safe and quick (bounded by its own timeout). */
typedef eg_status_t (*eg_ready_fn)(void *arg, char *why, size_t whylen);

/** Ready checks of a dependency reached by its URL or DSN (arg: the const char * URL/DSN,
 *  borrowed; it must outlive the health object). Each opens a short-lived connection, so they
 *  are thread-safe and never share a connection with the service's own work. */
eg_status_t eg_ready_redis(void *url, char *why, size_t whylen);
eg_status_t eg_ready_pg(void *dsn, char *why, size_t whylen);

eg_health_t *eg_health_new(void);
/** Add a named check (name copied). */
void eg_health_add_check(eg_health_t *h, const char *name, eg_ready_fn fn, void *arg);
/** Serve /healthz, /readyz and /metrics (from m, borrowed) on srv. */
void eg_health_mount(eg_health_t *h, eg_http_server_t *srv, eg_metrics_t *m);
void eg_health_free(eg_health_t *h);

#endif
