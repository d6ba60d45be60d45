/* The frame every Engage service runs in: logging, the HTTP listener with /healthz, /readyz
 * and /metrics, Consul registration when configured, and a clean stop on SIGTERM/SIGINT.
 *
 * Call eg_service_start first in main, before any thread is created: it blocks SIGTERM and
 * SIGINT so that only eg_service_wait (on the main thread) receives them. */
#ifndef ENGAGE_SERVICE_H
#define ENGAGE_SERVICE_H
#include "engage/config.h"
#include "engage/health.h"
#include "engage/http.h"
#include "engage/metrics.h"
#include "engage/status.h"

typedef struct eg_service eg_service_t;

/** Start the frame for service name ("api", "scheduler", ...): logs, metrics, health and the
 *  HTTP listener on cfg's address and port (cfg borrowed; it must outlive the service). */
eg_status_t eg_service_start(eg_service_t **out, const eg_config_t *cfg, bool keep_alive);
eg_http_server_t *eg_service_http(eg_service_t *s);
eg_metrics_t *eg_service_metrics(eg_service_t *s);
eg_health_t *eg_service_health(eg_service_t *s);
/** Register with Consul (when ENGAGE_CONSUL_ADDR is set) as "engage-<name>". Call once the
 *  service's handlers are in place. Failure is logged, not fatal: Consul may come later. */
void eg_service_register(eg_service_t *s);
/** Block until SIGTERM or SIGINT. */
void eg_service_wait(eg_service_t *s);
/** Deregister and stop the listener, keeping the metrics alive: call it first on the way out,
 *  then stop the service's own threads (which may still count metrics), then eg_service_stop.
 *  Accepts NULL; calling it twice is harmless. */
void eg_service_quiesce(eg_service_t *s);
/** Deregister, stop the listener (if eg_service_quiesce has not), free. Accepts NULL. */
void eg_service_stop(eg_service_t *s);

#endif
