/* Configuration from ENGAGE_* environment variables, the same in dev, compose and Kubernetes. */
#ifndef ENGAGE_CONFIG_H
#define ENGAGE_CONFIG_H
#include <stdbool.h>
#include "engage/status.h"

/** The settings every service reads. Strings are owned by the struct. */
typedef struct {
    char *service;         /**< the service's name, e.g. "api" (not from the environment) */
    char *nats_url;        /**< ENGAGE_NATS_URL, default nats://127.0.0.1:4222 */
    char *redis_url;       /**< the store target (eg_config_redis_target "ENGAGE_REDIS") */
    char *voice_redis_url; /**< the voice platform's ("ENGAGE_VOICE_REDIS"), default redis_url */
    char *pg_dsn;          /**< ENGAGE_PG_DSN, default "host=127.0.0.1 dbname=engage" */
    char *pg_read_dsn;     /**< ENGAGE_PG_READ_DSN (history reads; may name a standby),
                                default = pg_dsn */
    char *http_addr;       /**< ENGAGE_HTTP_ADDR, default 127.0.0.1 */
    int http_port;         /**< ENGAGE_HTTP_PORT (api default 8080, others 0 = any free port) */
    int http_threads;      /**< ENGAGE_HTTP_THREADS, default 16 */
    char *consul_addr;     /**< ENGAGE_CONSUL_ADDR (http://host:port), NULL = no Consul */
    char
        *advertise_addr; /**< ENGAGE_ADVERTISE_ADDR, the address Consul checks; default http_addr */
    char *instance_id;   /**< ENGAGE_INSTANCE_ID, default <service>-<hostname>-<pid> */
    char *key_pepper;    /**< ENGAGE_KEY_PEPPER, the server-side secret for API key hashes */
    char *log_level;     /**< ENGAGE_LOG_LEVEL, default info */
    char *voice_events_stream;   /**< ENGAGE_VOICE_EVENTS_STREAM, default engage:voice:events */
    char *voice_commands_stream; /**< ENGAGE_VOICE_COMMANDS_STREAM, default engage:voice:commands */
    char *voice_deadletter_stream; /**< ENGAGE_VOICE_DEADLETTER_STREAM, default
                                      engage:voice:deadletter */
    int workers;                   /**< ENGAGE_WORKERS, request-handling threads, default 4 */
} eg_config_t;

/** Fill cfg from the environment for the named service. Strings in cfg are owned by it. */
eg_status_t eg_config_load(eg_config_t *cfg, const char *service);
void eg_config_free(eg_config_t *cfg);

/** A variable's value, or def when unset or empty. Borrowed from the environment or def. */
const char *eg_config_str(const char *name, const char *def);
/** A variable as an integer, or def when unset, empty or not an integer in [min, max]. */
long eg_config_int(const char *name, long def, long min, long max);
/** The Redis target URL (engage/store.h) that <prefix>_* variables describe (malloc'd):
 *  <prefix>_CLUSTER=host:port,... (a cluster, found from those seeds), else
 *  <prefix>_SENTINELS=host:port,... with <prefix>_MASTER (default "engage"), else
 *  <prefix>_URL (default redis://127.0.0.1:6379); the password of <prefix>_URL, when it has one,
 *  goes with the first two. <prefix>_MIN_REPLICAS and <prefix>_WAIT_MS (falling back to
 *  ENGAGE_REDIS_MIN_REPLICAS, ENGAGE_REDIS_WAIT_MS) become min_replicas and wait_ms. When none
 *  of _URL, _CLUSTER, _SENTINELS is set and def is not NULL, a copy of def. */
char *eg_config_redis_target(const char *prefix, const char *def);
/** A variable as a boolean ("1", "true", "yes", "on"), or def. */
bool eg_config_bool(const char *name, bool def);

/** redis://[:password@]host:port[/db], parsed. Strings owned; free with eg_redis_url_free. */
typedef struct {
    char *host;
    int port;
    char *password; /**< NULL when none */
    int db;
} eg_redis_url_t;

/** Parse a redis URL. EG_EINVAL on anything but redis://[:password@]host[:port][/db]. */
eg_status_t eg_redis_url_parse(const char *url, eg_redis_url_t *out);
void eg_redis_url_free(eg_redis_url_t *u);

#endif
