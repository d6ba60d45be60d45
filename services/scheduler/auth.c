/* API key checks. A key is "<id>.<secret>": the id finds the record (cached here for a few
 * seconds, so a burst of requests costs one query), and the secret's keyed BLAKE2b hash is
 * compared in constant time. Only valid, unrevoked records are ever cached.
 *
 * A revocation (auth_forget, on the broadcast) may race with a check that read the row just
 * before the revocation committed. s->keys_gen settles it: the check notes the generation
 * before its query, caches the record, and removes it again if the generation moved in the
 * meantime; auth_forget bumps the generation before deleting. Whichever order the two threads
 * run in, the stale record does not stay in the cache. */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage/keys.h"
#include "engage/log.h"

typedef struct {
    char tenant[40];
    char role[8];
    char hash[EG_KEY_HASH_HEX_LEN + 1];
    int rate_limit;
} key_record_t;

#define KEY_CACHE_TTL_MS 5000

static eg_status_t load(eg_pg_t *pg, const char *id, key_record_t *rec)
{
    const char *params[] = {id};
    eg_pg_res_t *res = NULL;
    eg_status_t st = eg_pg_exec(pg,
                                "SELECT tenant_id::text, role, secret_hash, rate_limit FROM "
                                "api_keys WHERE key_id = $1 AND revoked_at IS NULL",
                                1, params, &res);
    if (st != EG_OK)
        goto out;
    if (eg_pg_rows(res) != 1) {
        st = EG_EAUTH;
        goto out;
    }
    snprintf(rec->tenant, sizeof rec->tenant, "%s", eg_pg_value(res, 0, 0));
    snprintf(rec->role, sizeof rec->role, "%s", eg_pg_value(res, 0, 1));
    snprintf(rec->hash, sizeof rec->hash, "%s", eg_pg_value(res, 0, 2));
    rec->rate_limit = atoi(eg_pg_value(res, 0, 3));
out:
    eg_pg_res_free(res);
    return st;
}

eg_cache_t *auth_cache_new(void)
{
    return eg_cache_new(10000, sizeof(key_record_t));
}

void auth_forget(sched_t *s, const char *key_id)
{
    atomic_fetch_add(&s->keys_gen, 1);
    eg_cache_del(s->keys, key_id);
}

eg_status_t auth_check(sched_t *s, eg_pg_t *pg, const char *key, auth_result_t *out,
                       char *key_id_out, size_t key_id_len)
{
    char id[EG_KEY_ID_LEN + 1], secret[EG_KEY_SECRET_LEN + 1], hash[EG_KEY_HASH_HEX_LEN + 1];
    key_record_t rec;
    eg_status_t st = eg_key_split(key, id, secret);
    if (st != EG_OK)
        return EG_EAUTH;
    if (key_id_out)
        snprintf(key_id_out, key_id_len, "%s", id);
    if (!eg_cache_get(s->keys, id, &rec)) {
        unsigned long gen = atomic_load(&s->keys_gen);
        st = load(pg, id, &rec);
        if (st != EG_OK)
            goto out;
        eg_cache_put(s->keys, id, &rec, KEY_CACHE_TTL_MS);
        if (atomic_load(&s->keys_gen) != gen)
            eg_cache_del(s->keys, id);
    }
    st = eg_key_hash_hex(s->cfg->key_pepper, secret, hash);
    if (st != EG_OK) {
        eg_log_error("cannot check API keys: ENGAGE_KEY_PEPPER is not set");
        st = EG_EINTERNAL;
        goto out;
    }
    if (!eg_key_equal(hash, rec.hash, EG_KEY_HASH_HEX_LEN)) {
        st = EG_EAUTH;
        goto out;
    }
    memcpy(out->tenant, rec.tenant, sizeof out->tenant);
    memcpy(out->role, rec.role, sizeof out->role);
    out->rate_limit = rec.rate_limit;
out:
    memset(secret, 0, sizeof secret);
    return st;
}
