/* The dispatcher's side of Redis: the due index across tenants, each service's due and watch
 * ZSETs (see due_store.h and the key layout in store_keys.h). */
#include "due_store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage/mem.h"
#include "store_keys.h"

eg_status_t due_store_next_batch(eg_store_t *store, int64_t now, size_t max, due_service_t *out,
                                 size_t *n)
{
    char now_s[32], max_s[24];
    snprintf(now_s, sizeof now_s, "%" PRId64, now);
    snprintf(max_s, sizeof max_s, "%zu", max);
    const char *range[] = {
        "ZRANGEBYSCORE", STORE_KEY_DUE_INDEX, "-inf", now_s, "WITHSCORES", "LIMIT", "0", max_s};
    eg_reply_t *r = NULL;
    *n = 0;
    eg_status_t st = eg_store_command(store, 8, range, NULL, &r);
    if (st != EG_OK)
        return st;
    if (r->type != EG_REPLY_ARRAY) {
        eg_reply_free(r);
        return EG_EPROTO;
    }
    for (size_t i = 0; i + 1 < r->elements && *n < max; i += 2) {
        const eg_reply_t *m = r->element[i];
        const char *bar = m->str ? memchr(m->str, '|', m->len) : NULL;
        if (!bar || m->len >= sizeof out[*n].member)
            continue;
        due_service_t *d = &out[(*n)++];
        memcpy(d->member, m->str, m->len);
        d->member[m->len] = '\0';
        d->member[bar - m->str] = '\0';
        d->tenant = d->member;
        d->service = d->member + (bar - m->str) + 1;
    }
    eg_reply_free(r);
    return EG_OK;
}

eg_status_t due_store_earliest(eg_store_t *store, bool *has, int64_t *at)
{
    const char *first[] = {"ZRANGE", STORE_KEY_DUE_INDEX, "0", "0", "WITHSCORES"};
    eg_reply_t *r = NULL;
    *has = false;
    eg_status_t st = eg_store_command(store, 5, first, NULL, &r);
    if (st == EG_OK && r->type == EG_REPLY_ARRAY && r->elements == 2 && r->element[1]->str) {
        *at = strtoll(r->element[1]->str, NULL, 10);
        *has = true;
    }
    eg_reply_free(r);
    return st;
}

eg_status_t due_store_live_count(eg_store_t *store, const char *tenant, const char *service,
                                 long *n)
{
    store_keys_t ks;
    store_keys_init(&ks, tenant);
    const char *a[] = {"ZCARD", store_keys_add(&ks, STORE_DUE, service)},
               *b[] = {"ZCARD", store_keys_add(&ks, STORE_WATCH, service)};
    const char *const *cmds[] = {a, b};
    int argcs[] = {2, 2};
    eg_reply_t *r[2] = {NULL, NULL};
    eg_status_t st = eg_store_pipeline(store, 2, argcs, cmds, r);
    if (st == EG_OK && (r[0]->type != EG_REPLY_INTEGER || r[1]->type != EG_REPLY_INTEGER))
        st = EG_EPROTO;
    if (st == EG_OK)
        *n = (long)(r[0]->integer + r[1]->integer);
    eg_reply_free(r[0]);
    eg_reply_free(r[1]);
    store_keys_free(&ks);
    return st;
}

/* The earliest score of a service's due and watch ZSETs (one pipelined round trip). *has is
 * false when both are empty. */
static eg_status_t first_due(eg_store_t *store, const char *tenant, const char *service, bool *has,
                             char *score, size_t scorelen)
{
    store_keys_t ks;
    store_keys_init(&ks, tenant);
    const char *k_due = store_keys_add(&ks, STORE_DUE, service);
    const char *k_w = store_keys_add(&ks, STORE_WATCH, service);
    const char *a[] = {"ZRANGE", k_due, "0", "0", "WITHSCORES"};
    const char *b[] = {"ZRANGE", k_w, "0", "0", "WITHSCORES"};
    const char *const *cmds[] = {a, b};
    int argcs[] = {5, 5};
    eg_reply_t *r[2] = {NULL, NULL};
    eg_status_t st = eg_store_pipeline(store, 2, argcs, cmds, r);
    *has = false;
    long long best = 0;
    for (int i = 0; i < 2 && st == EG_OK; i++) {
        if (r[i]->type == EG_REPLY_ERROR)
            st = EG_EPROTO;
        else if (r[i]->type == EG_REPLY_ARRAY && r[i]->elements == 2) {
            long long v = strtoll(r[i]->element[1]->str, NULL, 10);
            if (!*has || v < best)
                best = v;
            *has = true;
        }
    }
    eg_reply_free(r[0]);
    eg_reply_free(r[1]);
    store_keys_free(&ks);
    snprintf(score, scorelen, "%lld", best);
    return st;
}

/* Double-checked refresh: set the entry to the service's current minimum, then read the minimum
 * again and lower the entry if a write slipped in meanwhile. A write's own ZADD LT comes after
 * its script, so whichever order the two run in, the entry ends at or below the true minimum:
 * a due callback is never forgotten (at worst a dispatcher looks once in vain). */
eg_status_t due_store_refresh(eg_store_t *store, const char *tenant, const char *service)
{
    char member[STORE_MEMBER_MAX], score[32];
    store_due_member(member, tenant, service);
    eg_status_t st = EG_OK;
    for (int pass = 0; pass < 2 && st == EG_OK; pass++) {
        bool has = false;
        eg_reply_t *w = NULL;
        st = first_due(store, tenant, service, &has, score, sizeof score);
        if (st != EG_OK)
            break;
        if (has && pass == 0) {
            const char *set[] = {"ZADD", STORE_KEY_DUE_INDEX, score, member};
            st = eg_store_command(store, 4, set, NULL, &w);
        } else if (has) {
            const char *lower[] = {"ZADD", STORE_KEY_DUE_INDEX, "LT", score, member};
            st = eg_store_command(store, 5, lower, NULL, &w);
        } else if (pass == 0) {
            const char *rem[] = {"ZREM", STORE_KEY_DUE_INDEX, member};
            st = eg_store_command(store, 3, rem, NULL, &w);
        }
        eg_reply_free(w);
    }
    return st;
}

/* Ids of one ZSET with a score up to now, appended to ids. */
static eg_status_t ids_until(eg_store_t *store, const char *key, int64_t now, int max, char **ids,
                             int *count)
{
    char now_s[32], max_s[16];
    snprintf(now_s, sizeof now_s, "%" PRId64, now);
    snprintf(max_s, sizeof max_s, "%d", max - *count);
    const char *argv[] = {"ZRANGEBYSCORE", key, "-inf", now_s, "LIMIT", "0", max_s};
    eg_reply_t *r = NULL;
    eg_status_t st = eg_store_command(store, 7, argv, NULL, &r);
    if (st == EG_OK && r->type == EG_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements && *count < max; i++)
            ids[(*count)++] = eg_xstrndup(r->element[i]->str, r->element[i]->len);
    }
    eg_reply_free(r);
    return st;
}

eg_status_t due_store_ids(eg_store_t *store, const char *tenant, const char *service, int64_t now,
                          int max, char **ids, int *count)
{
    store_keys_t ks;
    store_keys_init(&ks, tenant);
    *count = 0;
    eg_status_t st =
        ids_until(store, store_keys_add(&ks, STORE_DUE, service), now, max, ids, count);
    if (st == EG_OK && *count < max)
        st = ids_until(store, store_keys_add(&ks, STORE_WATCH, service), now, max, ids, count);
    store_keys_free(&ks);
    return st;
}

eg_status_t due_store_forget(eg_store_t *store, const char *tenant, const char *service,
                             const char *id)
{
    store_keys_t ks;
    store_keys_init(&ks, tenant);
    const char *a[] = {"ZREM", store_keys_add(&ks, STORE_DUE, service), id},
               *b[] = {"ZREM", store_keys_add(&ks, STORE_WATCH, service), id};
    const char *const *cmds[] = {a, b};
    int argcs[] = {3, 3};
    eg_reply_t *r[2] = {NULL, NULL};
    eg_status_t st = eg_store_pipeline(store, 2, argcs, cmds, r);
    eg_reply_free(r[0]);
    eg_reply_free(r[1]);
    store_keys_free(&ks);
    return st;
}
