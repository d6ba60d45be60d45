/* Consul registration through the agent HTTP API: register with an HTTP health check at
 * start, deregister at stop. Only used when ENGAGE_CONSUL_ADDR is set. */
#ifndef ENGAGE_CONSUL_H
#define ENGAGE_CONSUL_H
#include <stddef.h>
#include "engage/status.h"

typedef struct eg_consul eg_consul_t;

typedef struct {
    const char *addr;         /**< agent base URL, e.g. "http://127.0.0.1:8500" */
    const char *token;        /**< ACL token (X-Consul-Token) or NULL */
    const char *service_name; /**< e.g. "engage-api" */
    const char *service_id;   /**< unique per instance */
    const char *address;      /**< address the check and peers use */
    int port;
    const char *check_path; /**< e.g. "/readyz" */
    int check_interval_s;   /**< default 10 */
    int deregister_after_s; /**< DeregisterCriticalServiceAfter, default 60 */
} eg_consul_opts_t;

/** Register the service with an HTTP check. With opts->addr NULL or empty it does nothing and
 *  returns EG_OK with *out NULL. Free with eg_consul_free (after eg_consul_deregister). */
eg_status_t eg_consul_register(eg_consul_t **out, const eg_consul_opts_t *opts);
/** Deregister. Accepts NULL (no-op). */
eg_status_t eg_consul_deregister(eg_consul_t *c);
void eg_consul_free(eg_consul_t *c);

/** Read a KV value (decoded) into *value (caller frees). EG_ENOTFOUND when absent. */
eg_status_t eg_consul_kv_get(const char *addr, const char *token, const char *key, char **value,
                             size_t *len);

#endif
