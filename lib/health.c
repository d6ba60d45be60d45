/* The operational endpoints: /healthz, /readyz and /metrics.
 *
 * These answer orchestrators and scrapers, not API clients, so they are plain JSON and plain
 * text, not the v3 envelope. /healthz says only that the process serves HTTP. /readyz runs every
 * registered check in turn on the calling worker thread (each check bounds its own time) and
 * answers 503 naming the failing ones, so Consul and Kubernetes take the instance out of
 * rotation while Redis, NATS or PostgreSQL are unreachable. /metrics renders the registry.
 *
 * Checks may be added while the server runs; a mutex guards the list, and checks run outside
 * it (a copy of the list is taken), so a slow check never blocks registration. */
#include "engage/health.h"

#include "engage/pg.h"
#include "engage/store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage/json.h"
#include "engage/pg.h"
#include "engage/store.h"
#include "engage/mem.h"

#define WHY_LEN 256

struct check {
    char *name;
    eg_ready_fn fn;
    void *arg;
};

struct eg_health {
    pthread_mutex_t mu;
    struct check *checks;
    size_t n;
    size_t cap;
    eg_metrics_t *metrics;
};

eg_health_t *eg_health_new(void)
{
    eg_health_t *h = eg_xcalloc(1, sizeof *h);

    pthread_mutex_init(&h->mu, NULL);
    return h;
}

void eg_health_add_check(eg_health_t *h, const char *name, eg_ready_fn fn, void *arg)
{
    pthread_mutex_lock(&h->mu);
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 8;
        h->checks = eg_xrealloc(h->checks, h->cap * sizeof *h->checks);
    }
    h->checks[h->n].name = eg_xstrdup(name);
    h->checks[h->n].fn = fn;
    h->checks[h->n].arg = arg;
    h->n++;
    pthread_mutex_unlock(&h->mu);
}

static int healthz(eg_http_req_t *req, void *arg)
{
    static const char body[] = "{\"status\":\"ok\"}";

    (void)arg;
    eg_http_reply(req, 200, "application/json", body, sizeof body - 1);
    return 200;
}

static int readyz(eg_http_req_t *req, void *arg)
{
    eg_health_t *h = arg;
    eg_json_t *body = eg_json_object();
    eg_json_t *results = eg_json_object();
    struct check *copy;
    size_t n;
    bool ready = true;
    int code;

    pthread_mutex_lock(&h->mu);
    n = h->n;
    copy = eg_xcalloc(n ? n : 1, sizeof *copy);
    for (size_t i = 0; i < n; i++) {
        copy[i] = h->checks[i];
        copy[i].name = eg_xstrdup(h->checks[i].name);
    }
    pthread_mutex_unlock(&h->mu);

    for (size_t i = 0; i < n; i++) {
        char why[WHY_LEN] = "";
        eg_status_t st = copy[i].fn(copy[i].arg, why, sizeof why);

        if (st == EG_OK) {
            eg_json_set_str(results, copy[i].name, "ok");
        } else {
            ready = false;
            eg_json_set_str(results, copy[i].name, why[0] ? why : eg_status_str(st));
        }
        free(copy[i].name);
    }
    free(copy);

    code = ready ? 200 : 503;
    eg_json_set_bool(body, "ready", ready);
    eg_json_set(body, "checks", results);
    eg_http_reply_json(req, code, body);
    eg_json_free(body);
    return code;
}

static int metrics(eg_http_req_t *req, void *arg)
{
    eg_health_t *h = arg;
    size_t len = 0;
    char *text = h->metrics ? eg_metrics_render(h->metrics, &len) : NULL;

    eg_http_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", text ? text : "", len);
    free(text);
    return 200;
}

void eg_health_mount(eg_health_t *h, eg_http_server_t *srv, eg_metrics_t *m)
{
    h->metrics = m;
    eg_http_route(srv, "/healthz", healthz, h);
    eg_http_route(srv, "/readyz", readyz, h);
    eg_http_route(srv, "/metrics", metrics, h);
}

void eg_health_free(eg_health_t *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < h->n; i++)
        free(h->checks[i].name);
    free(h->checks);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

eg_status_t eg_ready_redis(void *url, char *why, size_t whylen)
{
    eg_store_t *st = NULL;
    eg_status_t rc = eg_store_open(&st, url, 1000);
    if (rc == EG_OK)
        rc = eg_store_ping(st);
    if (rc != EG_OK)
        snprintf(why, whylen, "Redis: %s", eg_status_str(rc));
    eg_store_close(st);
    return rc;
}

eg_status_t eg_ready_pg(void *dsn, char *why, size_t whylen)
{
    eg_pg_t *pg = NULL;
    eg_status_t rc = eg_pg_open(&pg, dsn);
    if (rc == EG_OK)
        rc = eg_pg_ping(pg);
    if (rc != EG_OK)
        snprintf(why, whylen, "PostgreSQL: %s", eg_status_str(rc));
    eg_pg_close(pg);
    return rc;
}
