/* engage-api: the HTTP front of Engage (Engagement API v3, admin API, the /ges/ UI).
 *
 * Threading model: civetweb worker threads (ENGAGE_HTTP_THREADS) run the handlers; each
 * handler makes blocking request/reply calls to the scheduler over the one shared NATS
 * connection (thread-safe). The api keeps no state beyond the key cache and the rate-limit
 * buckets, so any number of replicas can run behind a load balancer. One more thread
 * (ratelimit.c) syncs the buckets with the other replicas through Redis every 250 ms on a
 * connection of its own; no request waits for Redis. The main thread only waits for SIGTERM. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "api.h"
#include "auth.h"
#include "callbacks_v3.h"
#include "queries_v3.h"
#include "callin_v3.h"
#include "engage.pb-c.h"
#include "engage/bus.h"
#include "engage/config.h"
#include "engage/httpclient.h"
#include "engage/keys.h"
#include "engage/log.h"
#include "engage/service.h"
#include "engage/subjects.h"
#include "openapi.h"
#include "ratelimit.h"

static eg_status_t ready_nats(void *arg, char *why, size_t whylen)
{
    api_t *api = arg;
    if (atomic_load(&api->bus_ready) && eg_bus_connected(api->bus))
        return EG_OK;
    snprintf(why, whylen, "not connected to NATS");
    return EG_EUNAVAIL;
}

/* A key revoked anywhere is dropped from this replica's cache at once. */
static void on_config_changed(eg_bus_t *bus, eg_bus_msg_t *msg, void *arg)
{
    (void)bus;
    api_t *api = arg;
    Eg__ConfigChanged *m =
        eg__config_changed__unpack(NULL, eg_bus_msg_len(msg), eg_bus_msg_data(msg));
    if (!m)
        return;
    if (strcmp(m->kind, "key") == 0)
        api_key_changed(api, m->name);
    eg__config_changed__free_unpacked(m, NULL);
}

/* Each route goes through count() so every response is counted by status class: the class of
 * the status the reply functions recorded as sent, not of what the handler returns. */
typedef struct {
    eg_http_handler_fn fn;
    api_t *api;
} counted_route_t;

static int count(eg_http_req_t *req, void *arg)
{
    counted_route_t *r = arg;
    r->fn(req, r->api);
    /* A handler that sent nothing gets lib/http.c's 500 once it returns. */
    int code = eg_http_status_sent(req) ? eg_http_status_sent(req) : 500;
    if (code >= 100 && code < 600)
        eg_counter_inc(r->api->responses[code / 100]);
    return code;
}

int main(void)
{
    eg_config_t cfg;
    eg_config_load(&cfg, "api");
    eg_service_t *svc = NULL;
    api_t api = {.cfg = &cfg};
    int rc = 1;

    if (eg_service_start(&svc, &cfg, true) != EG_OK)
        goto out;
    eg_httpc_global_init();
    api.sched_wait_ms = (int)eg_config_int("ENGAGE_SCHEDULER_WAIT_MS", 3000, 100, 60000);
    api.auth_cache = eg_cache_new(100000, sizeof(api_identity_t));
    api.auth_key_ids = eg_cache_new(100000, EG_KEY_HASH_HEX_LEN + 1);
    api.key_changes = eg_cache_new(10000, 1);
    api.ratelimit = ratelimit_new();
    if (ratelimit_sync_start(api.ratelimit, cfg.redis_url) != EG_OK)
        eg_log_warn("rate limits: no sync thread; limiting per replica");
    eg_metrics_t *m = eg_service_metrics(svc);
    static const char *classes[] = {NULL, "1xx", "2xx", "3xx", "4xx", "5xx"};
    for (int i = 1; i <= 5; i++) {
        char labels[32];
        snprintf(labels, sizeof labels, "class=\"%s\"", classes[i]);
        api.responses[i] =
            eg_metrics_counter(m, "engage_api_responses_total", "HTTP responses by class", labels);
    }
    api.rate_limited = eg_metrics_counter(m, "engage_api_rate_limited_total",
                                          "Requests refused by their API key's rate limit", NULL);
    api.sched_unavailable =
        eg_metrics_counter(m, "engage_api_scheduler_unavailable_total",
                           "Requests the scheduler did not answer in time", NULL);

    /* Routes first: a request that arrives while NATS is still connecting gets 503, not 404. */
    eg_http_server_t *http = eg_service_http(svc);
    /* Every route prefix and its handler (the longest matching prefix wins): one line each. */
    static const struct {
        const char *prefix;
        eg_http_handler_fn fn;
    } table[] = {
        {"/engagement/v3/callbacks", v3_callbacks},
        {"/engagement/v3/call-in", v3_callin},
        {"/engagement/v3/estimated-wait-time", v3_ewt},
        {"/engagement/v3/statistics", v3_statistics},
        {"/engagement/v3/openapi.json", v3_openapi},
        {"/engagement/v3", v3_unknown},
        {"/ges/api/v1", admin_route},
        {"/ges", admin_ui},
    };
    static counted_route_t routes[sizeof table / sizeof *table];
    for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
        routes[i] = (counted_route_t){table[i].fn, &api};
        eg_http_route(http, table[i].prefix, count, &routes[i]);
    }
    if (eg_bus_open(&api.bus, cfg.nats_url, cfg.instance_id, 10000) != EG_OK) {
        eg_log_error("cannot connect to NATS at startup");
        goto out;
    }
    eg_bus_subscribe(api.bus, EG_SUBJ_CONFIG_CHANGED, NULL, on_config_changed, &api);
    atomic_store(&api.bus_ready, true);

    eg_health_add_check(eg_service_health(svc), "nats", ready_nats, &api);
    eg_service_register(svc);
    eg_log_info("api ready");
    eg_service_wait(svc);
    rc = 0;
out:
    eg_service_stop(svc);
    eg_bus_close(api.bus);
    ratelimit_free(api.ratelimit);
    eg_cache_free(api.auth_cache);
    eg_cache_free(api.auth_key_ids);
    eg_cache_free(api.key_changes);
    eg_bus_shutdown();
    eg_httpc_global_cleanup();
    eg_log_info("api stopped");
    eg_config_free(&cfg);
    return rc;
}
