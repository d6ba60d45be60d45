/* API key checks in the api. The scheduler owns the key table; the api asks it and caches a
 * valid answer for AUTH_CACHE_TTL_MS under a BLAKE2b hash of the presented key (so the cache
 * never holds a key in clear). Invalid and revoked keys are never cached as valid. */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage.pb-c.h"
#include "engage/keys.h"
#include "engage/log.h"
#include "engage/subjects.h"
#include "sched_client.h"

#define AUTH_CACHE_TTL_MS 10000

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
        eg_status_t st = ask_scheduler(api, key, eg_http_corr_id(req), who);
        if (st == EG_EAUTH || st == EG_EINVAL) {
            eg_http_reply_error(req, EG_EAUTH, "x-api-key: unknown or revoked API key");
            return false;
        }
        if (st != EG_OK) {
            eg_http_reply_error(req, EG_EUNAVAIL, "service temporarily unavailable; retry");
            return false;
        }
        eg_cache_put(api->auth_cache, cache_key, who, AUTH_CACHE_TTL_MS);
    }
    if (admin_only && strcmp(who->role, "admin") != 0) {
        eg_http_reply_error(req, EG_EFORBIDDEN, "x-api-key: this key may not use the admin API");
        return false;
    }
    return true;
}
