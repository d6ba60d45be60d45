/* API key checks in the api. The scheduler owns the key table; the api asks it and caches a
 * valid answer for AUTH_CACHE_TTL_MS under a BLAKE2b hash of the presented key (so the cache
 * never holds a key in clear). Invalid and revoked keys are never cached as valid.
 *
 * Revocation: the scheduler broadcasts ConfigChanged{kind "key"}; api_key_changed drops the
 * key's entry (found through auth_key_ids, key id -> cache key). Two races are closed:
 *   - an answer in flight when the broadcast arrives: api->key_gen moves, and the request
 *     that asked removes what it just cached when it sees that;
 *   - a request sent just after the broadcast reached this replica but answered by a scheduler
 *     it has not reached yet: the key id stays in key_changes for KEY_CHANGE_GRACE_MS, and no
 *     answer about it is cached meanwhile (the request itself may still pass, within the
 *     second API.md allows).
 * The check comes after the put (and the drop increments before it deletes), so in whichever
 * order the threads run, a stale entry does not survive.
 *
 * After the key, the key's rate limit (ratelimit.c): no I/O per request. */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage.pb-c.h"
#include "engage/keys.h"
#include "engage/log.h"
#include "engage/subjects.h"
#include "engage/timeutil.h"
#include "ratelimit.h"
#include "sched_client.h"

#define AUTH_CACHE_TTL_MS 10000
#define KEY_CHANGE_GRACE_MS 1000

static eg_status_t ask_scheduler(api_t *api, const char *key, const char *corr, api_identity_t *who)
{
    Eg__AuthRequest req = EG__AUTH_REQUEST__INIT;
    req.key = (char *)key;
    uint8_t buf[256];
    size_t n = eg__auth_request__get_packed_size(&req);
    if (n > sizeof buf)
        return EG_EAUTH;
    eg__auth_request__pack(&req, buf);
    void *reply = NULL;
    size_t reply_len = 0;
    eg_status_t st = sched_call(api, EG_SUBJ_AUTH, buf, n, corr, &reply, &reply_len);
    if (st != EG_OK)
        return st;
    Eg__AuthReply *r = eg__auth_reply__unpack(NULL, reply_len, reply);
    free(reply);
    if (!r || !r->status) {
        st = EG_EPROTO;
        goto out;
    }
    st = (eg_status_t)r->status->code;
    if (st == EG_OK) {
        snprintf(who->tenant, sizeof who->tenant, "%s", r->tenant_id);
        snprintf(who->role, sizeof who->role, "%s", r->role);
        snprintf(who->key_id, sizeof who->key_id, "%s", r->key_id);
        who->rate_limit = r->rate_limit;
    }
out:
    if (r)
        eg__auth_reply__free_unpacked(r, NULL);
    return st;
}

void api_key_changed(api_t *api, const char *key_id)
{
    char mark = 1, cache_key[EG_KEY_HASH_HEX_LEN + 1];
    atomic_fetch_add(&api->key_gen, 1);
    if (!key_id || !*key_id) { /* no key named: every key may have changed */
        eg_cache_clear(api->auth_cache);
        eg_cache_clear(api->auth_key_ids);
        return;
    }
    eg_cache_put(api->key_changes, key_id, &mark, KEY_CHANGE_GRACE_MS);
    if (eg_cache_get(api->auth_key_ids, key_id, cache_key)) {
        eg_cache_del(api->auth_cache, cache_key);
        eg_cache_del(api->auth_key_ids, key_id);
    }
}

/* Cache a valid answer, unless the key changed while it was asked for or moments ago. */
static void remember(api_t *api, const char *cache_key, const api_identity_t *who,
                     unsigned long gen)
{
    char mark;
    eg_cache_put(api->auth_cache, cache_key, who, AUTH_CACHE_TTL_MS);
    eg_cache_put(api->auth_key_ids, who->key_id, cache_key, AUTH_CACHE_TTL_MS);
    if (atomic_load(&api->key_gen) != gen || eg_cache_get(api->key_changes, who->key_id, &mark)) {
        eg_cache_del(api->auth_cache, cache_key);
        eg_cache_del(api->auth_key_ids, who->key_id);
    }
}

/* The key's rate limit; false when the 429 has been sent. */
static bool within_rate_limit(api_t *api, eg_http_req_t *req, const api_identity_t *who)
{
    int retry_after = 1;
    if (!api->ratelimit ||
        ratelimit_take(api->ratelimit, who->key_id, who->rate_limit, eg_mono_ms(), &retry_after))
        return true;
    char msg[160], header[16];
    snprintf(msg, sizeof msg,
             "rate limit of %d requests/s for this API key exceeded; retry after %d s",
             who->rate_limit, retry_after);
    snprintf(header, sizeof header, "%d", retry_after);
    eg_http_add_header(req, "Retry-After", header);
    eg_http_reply_envelope(req, 429, msg, NULL);
    if (api->rate_limited)
        eg_counter_inc(api->rate_limited);
    return false;
}

bool api_begin(api_t *api, eg_http_req_t *req, api_identity_t *who, bool admin_only)
{
    const char *names[] = {"ccid", "ContactCenterID"};
    for (size_t i = 0; i < 2; i++) {
        const char *v = eg_http_header(req, names[i]);
        if (v && *v) {
            char msg[128];
            snprintf(msg, sizeof msg,
                     "%s: header not allowed; the contact center comes from the API key", names[i]);
            eg_http_reply_error(req, EG_EINVAL, msg);
            return false;
        }
    }
    const char *key = eg_http_header(req, "x-api-key");
    if (!key || !*key) {
        eg_http_reply_error(req, EG_EAUTH, "x-api-key: header is required");
        return false;
    }
    char cache_key[EG_KEY_HASH_HEX_LEN + 1];
    eg_hash_hex(key, strlen(key), cache_key);
    if (!eg_cache_get(api->auth_cache, cache_key, who)) {
        unsigned long gen = atomic_load(&api->key_gen);
        eg_status_t st = ask_scheduler(api, key, eg_http_corr_id(req), who);
        if (st == EG_EAUTH || st == EG_EINVAL) {
            eg_http_reply_error(req, EG_EAUTH, "x-api-key: unknown or revoked API key");
            return false;
        }
        if (st != EG_OK) {
            eg_http_reply_error(req, EG_EUNAVAIL, "service temporarily unavailable; retry");
            return false;
        }
        remember(api, cache_key, who, gen);
    }
    if (!within_rate_limit(api, req, who))
        return false;
    if (admin_only && strcmp(who->role, "admin") != 0) {
        eg_http_reply_error(req, EG_EFORBIDDEN, "x-api-key: this key may not use the admin API");
        return false;
    }
    return true;
}
