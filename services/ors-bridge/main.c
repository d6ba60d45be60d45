/* engage-ors-bridge: the boundary with the voice platform (the Voice Orchestration Service).
 *
 * Threading model: two threads besides main, each with its own voice-Redis connection:
 *   - commands_run: JetStream durable consumer on engage.dispatch.> -> dial/cancel commands;
 *   - voice_events_run: consumer group on the voice events stream -> scheduler requests.
 * The NATS connection is shared (thread-safe). The main thread serves nothing itself: it waits
 * for SIGTERM, then stops both loops (each wakes at least every 500 ms) and joins them. The
 * bridge keeps no state of its own, so any number of replicas can run. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bridge.h"
#include "commands.h"
#include "engage/bus.h"
#include "engage/config.h"
#include "engage/httpclient.h"
#include "engage/log.h"
#include "engage/service.h"
#include "voice_events.h"

static eg_status_t ready(void *arg, char *why, size_t whylen)
{
    bridge_t *b = arg;
    if (!eg_bus_connected(b->bus)) {
        snprintf(why, whylen, "not connected to NATS");
        return EG_EUNAVAIL;
    }
    bool dispatch = atomic_load(&b->dispatch_ready), events = atomic_load(&b->events_ready);
    if (!dispatch || !events) {
        snprintf(why, whylen, "consumers not bound yet (dispatch %d, voice events %d)",
                 (int)dispatch, (int)events);
        return EG_EUNAVAIL;
    }
    return EG_OK;
}

static void register_metrics(bridge_t *b, eg_metrics_t *m)
{
    b->dials = eg_metrics_counter(m, "engage_bridge_dials_total", "Dial commands written", NULL);
    b->cancels =
        eg_metrics_counter(m, "engage_bridge_cancels_total", "Cancel commands written", NULL);
    b->dial_dupes = eg_metrics_counter(m, "engage_bridge_duplicate_commands_total",
                                       "Redelivered dispatches whose command existed", NULL);
    b->events =
        eg_metrics_counter(m, "engage_bridge_voice_events_total", "Voice events read", NULL);
    b->deadlettered = eg_metrics_counter(m, "engage_bridge_deadlettered_total",
                                         "Voice events sent to the dead-letter stream", NULL);
    b->retries = eg_metrics_counter(m, "engage_bridge_retries_total",
                                    "Voice events left pending after a transient failure", NULL);
    b->replies = eg_metrics_counter(m, "engage_bridge_replies_total",
                                    "callback.reply entries written to reply streams", NULL);
    b->routes = eg_metrics_counter(m, "engage_bridge_routes_total",
                                   "Route commands written for call.inbound events", NULL);
}

int main(void)
{
    eg_config_t cfg;
    eg_config_load(&cfg, "ors-bridge");
    eg_service_t *svc = NULL;
    bridge_t b = {.cfg = &cfg};
    pthread_t commands, events;
    bool threads = false;
    int rc = 1;
    char consumer[160], host[128] = "host";

    if (eg_service_start(&svc, &cfg, false) != EG_OK)
        goto out;
    eg_httpc_global_init();
    register_metrics(&b, eg_service_metrics(svc));
    /* A stable name: a restarted bridge on the same host finds its own pending entries. */
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    snprintf(consumer, sizeof consumer, "bridge-%s", eg_config_str("ENGAGE_BRIDGE_CONSUMER", host));
    b.consumer = consumer;
    if (eg_bus_open(&b.bus, cfg.nats_url, cfg.instance_id, 10000) != EG_OK) {
        eg_log_error("cannot connect to NATS");
        goto out;
    }
    pthread_create(&commands, NULL, commands_run, &b);
    pthread_create(&events, NULL, voice_events_run, &b);
    threads = true;
    eg_health_add_check(eg_service_health(svc), "bridge", ready, &b);
    eg_service_register(svc);
    eg_log_info("ors-bridge ready: commands to %s, events from %s as %s", cfg.voice_commands_stream,
                cfg.voice_events_stream, consumer);
    eg_service_wait(svc);
    rc = 0;
out:
    eg_service_quiesce(svc);
    atomic_store(&b.stopping, true);
    if (threads) {
        pthread_join(commands, NULL);
        pthread_join(events, NULL);
    }
    eg_bus_close(b.bus);
    eg_service_stop(svc);
    eg_bus_shutdown();
    eg_httpc_global_cleanup();
    eg_log_info("ors-bridge stopped");
    eg_config_free(&cfg);
    return rc;
}
