/* The sizing calculator behind `engagectl sizing`: Redis memory, PostgreSQL disk and Redis
 * commands per minute for a load, from a cost model. Two models ship: Engage's, with the
 * constants `make bench` measured (docs/benchmarks.md), and GES's, from its published figures.
 * Plain arithmetic, no I/O. */
#ifndef ENGAGE_SIZING_H
#define ENGAGE_SIZING_H
#include <stdbool.h>

#define EG_SIZING_KB 1024.0                             /**< 1 kB = 1024 B throughout */
#define EG_SIZING_NODE_BYTES (2.0 * 1024 * 1024 * 1024) /**< a 2 GiB node */
#define EG_SIZING_RETENTION_DAYS 14.0                   /**< a record is kept this long */

/** What one callback costs. A range (low/high) where the source gives one; low == high else. */
typedef struct {
    const char *name;
    double redis_bytes_per_cb_low, redis_bytes_per_cb_high; /**< a callback without user data */
    double redis_bytes_per_userdata_kb;                     /**< extra bytes per kB of user data */
    double pg_bytes_per_cb_low, pg_bytes_per_cb_high;       /**< history, indexes included */
    double pg_bytes_per_userdata_kb;
    double redis_cmds_immediate_life;  /**< commands over an immediate callback's life */
    double redis_cmds_scheduled_life;  /**< the same for a scheduled one, waiting excluded */
    double redis_cmds_per_waiting_min; /**< per scheduled callback and minute it waits */
    double idle_redis_cmds_per_s;      /**< per node, and per tenant when idle_per_tenant */
    bool idle_per_tenant;
    double node_bytes; /**< memory of one node, for the node count */
} eg_sizing_model_t;

/** The load. */
typedef struct {
    double callbacks_per_day;
    double user_data_kb;   /**< average user data per callback, kB */
    double scheduled_days; /**< 0: immediate callbacks; else every callback is booked this many
                                days ahead on average */
    int tenants;           /**< at least 1 */
} eg_sizing_input_t;

typedef struct {
    double resident_callbacks; /**< callbacks held at once: per day x (scheduled days + 14) */
    double redis_bytes_low, redis_bytes_high;
    double pg_bytes_low, pg_bytes_high;
    double redis_cmds_per_min; /**< lives + waiting + idle cost of the nodes */
    int nodes;                 /**< nodes of node_bytes that hold redis_bytes_high (at least 1) */
} eg_sizing_result_t;

/** Engage's model: the figures of the last full `make bench` (see the table in sizing.c). */
extern const eg_sizing_model_t eg_sizing_engage;
/** GES's published figures: 4.5-5.5 kB Redis and 6.5-7.0 kB PostgreSQL per callback, 1.25 kB
 *  and 3.0 kB per kB of user data, ~110 Redis operations per callback, 1 per minute a
 *  scheduled callback waits, 50 per second per idle node and tenant, a 2 GiB node. */
extern const eg_sizing_model_t eg_sizing_ges;

/** Callbacks held at once for a load (both products keep a record 14 days past its time). */
double eg_sizing_resident(const eg_sizing_input_t *in);

/** Apply a model to a load. Inputs are taken as given (the caller validates ranges); a tenant
 *  count below 1 counts as 1. */
void eg_sizing_compute(const eg_sizing_model_t *m, const eg_sizing_input_t *in,
                       eg_sizing_result_t *out);

#endif
