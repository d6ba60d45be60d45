/* engage-api: the HTTP front of Engage (Engagement API v3, admin API, the /ges/ UI).
 *
 * Threading model: civetweb worker threads (ENGAGE_HTTP_THREADS) run the handlers; each
 * handler makes blocking request/reply calls to the scheduler over the one shared NATS
 * connection (thread-safe). The api keeps no state beyond the key cache, so any number of
 * replicas can run behind a load balancer. The main thread only waits for SIGTERM. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "api.h"
#include "callbacks_v3.h"
#include "engage.pb-c.h"
#include "engage/bus.h"
#include "engage/config.h"
#include "engage/httpclient.h"
#include "engage/log.h"
#include "engage/service.h"
#include "engage/subjects.h"

static eg_status_t ready_nats(void *arg, char *why, size_t whylen)
{
    api_t *api = arg;
    if (eg_bus_connected(api->bus))
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
        eg_cache_clear(api->auth_cache);
    eg__config_changed__free_unpacked(m, NULL);
}

/* Each route goes through count() so every response is counted by status class. */
typedef struct {
    eg_http_handler_fn fn;
    api_t *api;
} counted_route_t;

static int count(eg_http_req_t *req, void *arg)
{
    counted_route_t *r = arg;
    int code = r->fn(req, r->api);
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
    eg_metrics_t *m = eg_service_metrics(svc);
    static const char *classes[] = {NULL, "1xx", "2xx", "3xx", "4xx", "5xx"};
    for (int i = 1; i <= 5; i++) {
        char labels[32];
        snprintf(labels, sizeof labels, "class=\"%s\"", classes[i]);
        api.responses[i] =
            eg_metrics_counter(m, "engage_api_responses_total", "HTTP responses by class", labels);
    }
    api.sched_unavailable =
        eg_metrics_counter(m, "engage_api_scheduler_unavailable_total",
                           "Requests the scheduler did not answer in time", NULL);

    if (eg_bus_open(&api.bus, cfg.nats_url, cfg.instance_id, 10000) != EG_OK) {
        eg_log_error("cannot connect to NATS at startup");
        goto out;
    }
    eg_bus_subscribe(api.bus, EG_SUBJ_CONFIG_CHANGED, NULL, on_config_changed, &api);

    eg_http_server_t *http = eg_service_http(svc);
    static counted_route_t routes[4];
    const char *prefixes[] = {"/engagement/v3/callbacks", "/engagement/v3", "/ges/api/v1", "/ges"};
    eg_http_handler_fn fns[] = {v3_callbacks, v3_unknown, admin_route, admin_ui};
    for (int i = 0; i < 4; i++) {
        routes[i] = (counted_route_t){fns[i], &api};
        eg_http_route(http, prefixes[i], count, &routes[i]);
    }
    eg_health_add_check(eg_service_health(svc), "nats", ready_nats, &api);
    eg_service_register(svc);
    eg_log_info("api ready");
    eg_service_wait(svc);
    rc = 0;
out:
    eg_service_stop(svc);
    eg_bus_close(api.bus);
    eg_cache_free(api.auth_cache);
    eg_bus_shutdown();
    eg_httpc_global_cleanup();
    eg_log_info("api stopped");
    eg_config_free(&cfg);
    return rc;
}
