/* The api service's shared state. */
#ifndef API_API_H
#define API_API_H
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "engage/bus.h"
#include "engage/cache.h"
#include "engage/config.h"
#include "engage/http.h"
#include "engage/metrics.h"

typedef struct {
    const eg_config_t *cfg;
    eg_bus_t *bus;
    atomic_bool bus_ready;       /**< bus is open (routes are served before it is) */
    eg_cache_t *auth_cache;      /**< BLAKE2b(key) -> api_identity_t */
    eg_cache_t *auth_key_ids;    /**< key id -> its auth_cache key (to drop one key precisely) */
    eg_cache_t *key_changes;     /**< key ids changed moments ago: answers are not cached */
    atomic_ulong key_gen;        /**< bumped by every key change (see auth.c) */
    struct ratelimit *ratelimit; /**< per-key token buckets (ratelimit.h) */
    eg_counter_t *rate_limited;  /**< requests refused by a key's rate limit */
    eg_counter_t *responses[6];  /**< by status class 1xx..5xx (index 1..5) */
    eg_counter_t *sched_unavailable;
    eg_histogram_t *latency;
    int sched_wait_ms; /**< how long to wait for a restarting scheduler */
} api_t;

/** Who is calling: the tenant and role of a valid key. */
typedef struct {
    char tenant[40];
    char role[8];
    char key_id[20];
    int rate_limit;
} api_identity_t;

#endif
