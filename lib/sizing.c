/* The sizing calculator (sizing.h). */
#include "engage/sizing.h"

#include <math.h>

/* Engage's constants: the figures of the last full `make bench` run (2026-11-29, 2 cores),
 * copied from the table in docs/benchmarks.md (and .run/bench.json); update both together after
 * a change that moves a figure. Memory and disk are per booked (Redis) or completed
 * (PostgreSQL) callback. A scheduled callback costs nothing while it waits: the dispatcher
 * sleeps until the earliest due time and polls nothing per callback (seed scenario). */
const eg_sizing_model_t eg_sizing_engage = {
    .name = "Engage",
    .redis_bytes_per_cb_low = 702,
    .redis_bytes_per_cb_high = 702,
    .redis_bytes_per_userdata_kb = 817,
    .pg_bytes_per_cb_low = 1270,
    .pg_bytes_per_cb_high = 1270,
    .pg_bytes_per_userdata_kb = 1071,
    .redis_cmds_immediate_life = 48.3,
    .redis_cmds_scheduled_life = 68.6,
    .redis_cmds_per_waiting_min = 0,
    .idle_redis_cmds_per_s = 0.6,
    .idle_per_tenant = false,
    .node_bytes = EG_SIZING_NODE_BYTES,
};

/* GES's published costs (issue 6 quotes them). */
const eg_sizing_model_t eg_sizing_ges = {
    .name = "GES",
    .redis_bytes_per_cb_low = 4.5 * EG_SIZING_KB,
    .redis_bytes_per_cb_high = 5.5 * EG_SIZING_KB,
    .redis_bytes_per_userdata_kb = 1.25 * EG_SIZING_KB,
    .pg_bytes_per_cb_low = 6.5 * EG_SIZING_KB,
    .pg_bytes_per_cb_high = 7.0 * EG_SIZING_KB,
    .pg_bytes_per_userdata_kb = 3.0 * EG_SIZING_KB,
    .redis_cmds_immediate_life = 110,
    .redis_cmds_scheduled_life = 110,
    .redis_cmds_per_waiting_min = 1,
    .idle_redis_cmds_per_s = 50,
    .idle_per_tenant = true,
    .node_bytes = EG_SIZING_NODE_BYTES,
};

double eg_sizing_resident(const eg_sizing_input_t *in)
{
    return in->callbacks_per_day * (in->scheduled_days + EG_SIZING_RETENTION_DAYS);
}

void eg_sizing_compute(const eg_sizing_model_t *m, const eg_sizing_input_t *in,
                       eg_sizing_result_t *out)
{
    double resident = eg_sizing_resident(in);
    double ud = in->user_data_kb;
    bool scheduled = in->scheduled_days > 0;
    int tenants = in->tenants < 1 ? 1 : in->tenants;

    out->resident_callbacks = resident;
    out->redis_bytes_low =
        resident * (m->redis_bytes_per_cb_low + ud * m->redis_bytes_per_userdata_kb);
    out->redis_bytes_high =
        resident * (m->redis_bytes_per_cb_high + ud * m->redis_bytes_per_userdata_kb);
    out->pg_bytes_low = resident * (m->pg_bytes_per_cb_low + ud * m->pg_bytes_per_userdata_kb);
    out->pg_bytes_high = resident * (m->pg_bytes_per_cb_high + ud * m->pg_bytes_per_userdata_kb);

    double nodes = ceil(out->redis_bytes_high / m->node_bytes);
    out->nodes = nodes < 1 ? 1 : (int)nodes;

    double lives_per_min = in->callbacks_per_day / 1440.0;
    double life = scheduled ? m->redis_cmds_scheduled_life : m->redis_cmds_immediate_life;
    /* Callbacks waiting at any moment: arrivals per day x days each waits (Little's law). */
    double waiting = scheduled ? in->callbacks_per_day * in->scheduled_days : 0;
    double idle = m->idle_redis_cmds_per_s * 60.0 * out->nodes * (m->idle_per_tenant ? tenants : 1);
    out->redis_cmds_per_min = lives_per_min * life + waiting * m->redis_cmds_per_waiting_min + idle;
}
