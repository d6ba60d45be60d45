/* The live figures of services and virtual queues, read for the queries: see stats_store.h.
 * The scripts write them (lua/transition.lua, lua/create.lua); nothing here writes. */
#include "stats_store.h"

#include <stdlib.h>

#include "store_keys.h"

static int int_of(const eg_reply_t *r)
{
    if (r->type == EG_REPLY_INTEGER)
        return (int)r->integer;
    if (r->type == EG_REPLY_STRING)
        return atoi(r->str);
    return 0;
}

eg_status_t stats_store_service(eg_store_t *store, const char *tenant, const char *service,
                                int64_t now_ms, stats_service_t *out)
{
    store_keys_t ks;
    store_keys_init(&ks, tenant);
    const char *k_daily = store_keys_daily(&ks, service, now_ms / 86400000);
    const char *due[] = {"ZCARD", store_keys_add(&ks, STORE_DUE, service)};
    const char *q[] = {"ZCARD", store_keys_add(&ks, STORE_QUEUE, service)};
    const char *proc[] = {"HGET", store_keys_add(&ks, STORE_STATS, service), "processing"};
    const char *day[] = {"HMGET", k_daily, "created", "completed"};
    const char *const *cmds[] = {due, q, proc, day};
    int argcs[] = {2, 2, 3, 4};
    eg_reply_t *r[4] = {NULL};
    eg_status_t st = eg_store_pipeline(store, 4, argcs, cmds, r);
    if (st == EG_OK && (r[3]->type != EG_REPLY_ARRAY || r[3]->elements != 2))
        st = EG_EPROTO;
    for (int i = 0; st == EG_OK && i < 3; i++)
        if (r[i]->type == EG_REPLY_ERROR)
            st = EG_EPROTO;
    if (st == EG_OK) {
        out->scheduled = int_of(r[0]);
        out->queued = int_of(r[1]);
        out->processing = int_of(r[2]);
        out->created_today = int_of(r[3]->element[0]);
        out->completed_today = int_of(r[3]->element[1]);
    }
    for (int i = 0; i < 4; i++)
        eg_reply_free(r[i]);
    store_keys_free(&ks);
    return st;
}

eg_status_t stats_store_waiting(eg_store_t *store, const char *tenant, const char *service, int *n)
{
    char *k_q = store_key(STORE_QUEUE, tenant, service);
    const char *argv[] = {"ZCARD", k_q};
    eg_reply_t *r = NULL;
    *n = 0;
    eg_status_t st = eg_store_command(store, 2, argv, NULL, &r);
    if (st == EG_OK && r->type == EG_REPLY_INTEGER)
        *n = (int)r->integer;
    else if (st == EG_OK)
        st = EG_EPROTO;
    eg_reply_free(r);
    free(k_q);
    return st;
}

eg_status_t stats_store_served(eg_store_t *store, const char *tenant, const char *vq,
                               int64_t *times, size_t max, size_t *n)
{
    char *k_served = store_key(STORE_SERVED, tenant, vq);
    const char *argv[] = {"LRANGE", k_served, "0", "31"};
    eg_reply_t *r = NULL;
    *n = 0;
    eg_status_t st = eg_store_command(store, 4, argv, NULL, &r);
    if (st == EG_OK && r->type == EG_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements && *n < max; i++)
            if (r->element[i]->type == EG_REPLY_STRING)
                times[(*n)++] = strtoll(r->element[i]->str, NULL, 10);
    } else if (st == EG_OK) {
        st = EG_EPROTO;
    }
    eg_reply_free(r);
    free(k_served);
    return st;
}
