/* The service frame: what every Engage binary does the same way at start and stop. Signals are
 * blocked in every thread and taken synchronously with sigwait on the main thread, so no async
 * signal handler ever runs and shutdown happens in ordinary code. */
#include "engage/service.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage/consul.h"
#include "engage/log.h"
#include "engage/mem.h"

struct eg_service {
    const eg_config_t *cfg;
    eg_http_server_t *http;
    eg_metrics_t *metrics;
    eg_health_t *health;
    eg_consul_t *consul;
    sigset_t stop_signals;
};

eg_status_t eg_service_start(eg_service_t **out, const eg_config_t *cfg, bool keep_alive)
{
    eg_service_t *s = eg_xcalloc(1, sizeof *s);
    s->cfg = cfg;
    sigemptyset(&s->stop_signals);
    sigaddset(&s->stop_signals, SIGTERM);
    sigaddset(&s->stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &s->stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    eg_log_init(cfg->service, cfg->log_level);

    s->metrics = eg_metrics_new();
    s->health = eg_health_new();
    eg_http_opts_t opts = {.addr = cfg->http_addr,
                           .port = cfg->http_port,
                           .threads = cfg->http_threads,
                           .keep_alive = keep_alive};
    eg_status_t st = eg_http_start(&s->http, &opts);
    if (st != EG_OK) {
        eg_log_error("cannot listen on %s:%d: %s", cfg->http_addr, cfg->http_port,
                     eg_status_str(st));
        eg_service_stop(s);
        return st;
    }
    eg_health_mount(s->health, s->http, s->metrics);
    eg_log_info("%s listening on http://%s:%d", cfg->service, cfg->http_addr,
                eg_http_port(s->http));
    *out = s;
    return EG_OK;
}

eg_http_server_t *eg_service_http(eg_service_t *s)
{
    return s->http;
}

eg_metrics_t *eg_service_metrics(eg_service_t *s)
{
    return s->metrics;
}

eg_health_t *eg_service_health(eg_service_t *s)
{
    return s->health;
}

void eg_service_register(eg_service_t *s)
{
    if (!s->cfg->consul_addr || !*s->cfg->consul_addr)
        return;
    char name[96];
    snprintf(name, sizeof name, "engage-%s", s->cfg->service);
    eg_consul_opts_t o = {.addr = s->cfg->consul_addr,
                          .token = eg_config_str("ENGAGE_CONSUL_TOKEN", NULL),
                          .service_name = name,
                          .service_id = s->cfg->instance_id,
                          .address = s->cfg->advertise_addr,
                          .port = eg_http_port(s->http),
                          .check_path = "/readyz",
                          .check_interval_s = 10,
                          .deregister_after_s = 60};
    eg_status_t st = eg_consul_register(&s->consul, &o);
    if (st != EG_OK)
        eg_log_warn("consul registration at %s failed: %s", s->cfg->consul_addr, eg_status_str(st));
    else
        eg_log_info("registered with consul as %s (%s)", name, s->cfg->instance_id);
}

void eg_service_wait(eg_service_t *s)
{
    int sig = 0;
    sigwait(&s->stop_signals, &sig);
    eg_log_info("received %s; stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

void eg_service_quiesce(eg_service_t *s)
{
    if (!s)
        return;
    if (s->consul) {
        eg_consul_deregister(s->consul);
        eg_consul_free(s->consul);
        s->consul = NULL;
    }
    eg_http_stop(s->http);
    s->http = NULL;
}

void eg_service_stop(eg_service_t *s)
{
    if (!s)
        return;
    eg_service_quiesce(s);
    eg_health_free(s->health);
    eg_metrics_free(s->metrics);
    free(s);
}
