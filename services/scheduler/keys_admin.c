/* API keys through the admin API. PostgreSQL's api_keys table is the source of truth; this
 * module only ever stores a key's id and the keyed BLAKE2b hash of its secret (pepper
 * ENGAGE_KEY_PEPPER), never the secret.
 *
 * Create: the api draws the key with eg_key_generate and sends it here, so that a request
 * retried after a lost answer carries the same key: the insert is ON CONFLICT DO NOTHING, and
 * a conflict with the same tenant and the same hash is that retry, answered like the first.
 *
 * Revoke: the row is marked revoked (and audited) in one transaction; then this scheduler drops
 * the key from its own cache and broadcasts ConfigChanged{kind "key", name <key id>} so every
 * api replica and every other scheduler does the same within moments. The caches themselves
 * make sure an answer computed before the revocation is not cached afterwards (see auth.c and
 * the api's auth.c). Revoking a revoked key again answers OK and broadcasts again (harmless),
 * which makes a retried revoke safe.
 *
 * Every create and revoke writes an audit_log row (key id, role, rate limit, label, and the id
 * of the admin key that asked; never the secret). */
#include "keys_admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "engage.pb-c.h"
#include "engage/keys.h"
#include "engage/log.h"
#include "engage/mem.h"
#include "engage/subjects.h"

#define LIST_MAX_KEYS 5000

#define CREATED_MS_SQL "(extract(epoch FROM created_at) * 1000)::bigint"

/* Answer with a status and the given key records (borrowed). */
static void respond(eg_bus_t *bus, eg_bus_msg_t *msg, eg_status_t st, const char *text,
                    Eg__KeyInfo **keys, size_t nkeys)
{
    Eg__Status s = EG__STATUS__INIT;
    Eg__KeyReply r = EG__KEY_REPLY__INIT;
    s.code = (int32_t)st;
    s.message = (char *)(text ? text : "");
    r.status = &s;
    r.keys = keys;
    r.n_keys = nkeys;
    eg_bus_reply(bus, msg, &r.base);
}

static eg_status_t validate(const Eg__KeyCreateRequest *req, char *err, size_t errlen)
{
    if (!*req->tenant_id) {
        snprintf(err, errlen, "tenant: missing");
        return EG_EINVAL;
    }
    if (strcmp(req->role, "api") != 0 && strcmp(req->role, "admin") != 0) {
        snprintf(err, errlen, "role: must be \"api\" or \"admin\"");
        return EG_EINVAL;
    }
    if (req->rate_limit < 0 || req->rate_limit > KEYS_MAX_RATE_LIMIT) {
        snprintf(err, errlen, "rateLimit: must be an integer from 0 (unlimited) to %d",
                 KEYS_MAX_RATE_LIMIT);
        return EG_EINVAL;
    }
    if (strlen(req->name) > KEYS_MAX_NAME_LEN) {
        snprintf(err, errlen, "name: at most %d characters", KEYS_MAX_NAME_LEN);
        return EG_EINVAL;
    }
    return EG_OK;
}

/* One audit_log row, in the caller's transaction (so a failure here undoes the change: a
 * COMMIT after a failed statement rolls back). */
static eg_status_t audit(worker_t *w, const char *tenant, const char *action, const char *actor,
                         const char *key_id, const char *role, int rate_limit, const char *name)
{
    char who[64], rate[16];
    snprintf(who, sizeof who, "key:%s", *actor ? actor : "?");
    snprintf(rate, sizeof rate, "%d", rate_limit);
    const char *params[] = {tenant, who, action, key_id, role, rate, (name && *name) ? name : NULL};
    eg_status_t st =
        eg_pg_exec(w->pg,
                   "INSERT INTO audit_log (tenant_id, actor, action, detail) VALUES ($1::uuid, "
                   "$2, $3, jsonb_strip_nulls(jsonb_build_object('keyId', $4::text, 'role', "
                   "$5::text, 'rateLimit', $6::int, 'name', $7::text)))",
                   7, params, NULL);
    if (st != EG_OK)
        eg_log_warn("audit of %s for key %s failed: %s", action, key_id, eg_pg_error(w->pg));
    return st;
}

/* Insert the key; a conflict on its id that is the same key of the same tenant is a retry. */
static eg_status_t store_key(worker_t *w, const Eg__KeyCreateRequest *req, const char *id,
                             const char *hash, int64_t *created_ms, char *err, size_t errlen)
{
    char rate[16];
    snprintf(rate, sizeof rate, "%d", req->rate_limit);
    const char *params[] = {id, req->tenant_id, hash, req->role, rate};
    eg_pg_res_t *res = NULL;
    bool inserted = false;
    eg_status_t st = eg_pg_begin(w->pg);
    if (st != EG_OK)
        goto out;
    st = eg_pg_exec(w->pg,
                    "INSERT INTO api_keys (key_id, tenant_id, secret_hash, role, rate_limit) "
                    "VALUES ($1, $2::uuid, $3, $4, $5::int) ON CONFLICT (key_id) DO NOTHING "
                    "RETURNING " CREATED_MS_SQL,
                    5, params, &res);
    if (st == EG_OK && eg_pg_rows(res) == 1) {
        inserted = true;
        *created_ms = strtoll(eg_pg_value(res, 0, 0), NULL, 10);
        st = audit(w, req->tenant_id, "key.create", req->actor_key_id, id, req->role,
                   req->rate_limit, req->name);
    }
    if (st == EG_OK)
        st = eg_pg_commit(w->pg);
    else
        eg_pg_rollback(w->pg);
    eg_pg_res_free(res);
    res = NULL;
    if (st != EG_OK || inserted)
        goto out;

    const char *sel[] = {id};
    st = eg_pg_exec(w->pg,
                    "SELECT tenant_id::text, secret_hash, role, " CREATED_MS_SQL
                    " FROM api_keys WHERE key_id = $1",
                    1, sel, &res);
    if (st != EG_OK)
        goto out;
    if (eg_pg_rows(res) == 1 && strcmp(eg_pg_value(res, 0, 0), req->tenant_id) == 0 &&
        eg_key_equal(eg_pg_value(res, 0, 1), hash, EG_KEY_HASH_HEX_LEN) &&
        strcmp(eg_pg_value(res, 0, 2), req->role) == 0) {
        *created_ms = strtoll(eg_pg_value(res, 0, 3), NULL, 10);
    } else {
        st = EG_ECONFLICT;
        snprintf(err, errlen, "keyId: a key with this id exists already; retry");
    }
out:
    if (st != EG_OK && !*err)
        snprintf(err, errlen, "could not store the API key");
    eg_pg_res_free(res);
    return st;
}

eg_status_t keys_admin_create(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    Eg__KeyCreateRequest *req =
        eg__key_create_request__unpack(NULL, eg_bus_msg_len(msg), eg_bus_msg_data(msg));
    if (!req)
        return EG_EPROTO;
    char err[192] = "";
    char id[EG_KEY_ID_LEN + 1], secret[EG_KEY_SECRET_LEN + 1], hash[EG_KEY_HASH_HEX_LEN + 1];
    int64_t created_ms = 0;
    eg_status_t st = validate(req, err, sizeof err);
    if (st == EG_OK && eg_key_split(req->api_key, id, secret) != EG_OK) {
        st = EG_EINVAL;
        snprintf(err, sizeof err, "apiKey: not of the form <id>.<secret>");
    }
    if (st == EG_OK && eg_key_hash_hex(w->s->cfg->key_pepper, secret, hash) != EG_OK) {
        st = EG_EINTERNAL;
        snprintf(err, sizeof err, "API keys cannot be created: the server has no key pepper");
        eg_log_error("cannot create API keys: ENGAGE_KEY_PEPPER is not set");
    }
    memset(secret, 0, sizeof secret);
    if (st == EG_OK)
        st = store_key(w, req, id, hash, &created_ms, err, sizeof err);
    if (st == EG_OK) {
        Eg__KeyInfo info = EG__KEY_INFO__INIT;
        Eg__KeyInfo *list[] = {&info};
        info.key_id = id;
        info.role = req->role;
        info.rate_limit = req->rate_limit;
        info.created_ms = created_ms;
        eg_log_info("API key %s created (role %s, rate limit %d/s)", id, req->role,
                    req->rate_limit);
        respond(bus, msg, st, NULL, list, 1);
    } else {
        respond(bus, msg, st, err, NULL, 0);
    }
    eg__key_create_request__free_unpacked(req, NULL);
    return st == EG_EPROTO ? EG_EIO : st;
}

eg_status_t keys_admin_list(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    Eg__KeyRequest *req = eg__key_request__unpack(NULL, eg_bus_msg_len(msg), eg_bus_msg_data(msg));
    if (!req)
        return EG_EPROTO;
    char limit[16];
    snprintf(limit, sizeof limit, "%d", LIST_MAX_KEYS);
    const char *params[] = {req->tenant_id, limit};
    eg_pg_res_t *res = NULL;
    eg_status_t st = eg_pg_exec(w->pg,
                                "SELECT key_id, role, rate_limit, " CREATED_MS_SQL
                                ", revoked_at IS NOT NULL FROM api_keys WHERE tenant_id = "
                                "$1::uuid ORDER BY created_at, key_id LIMIT $2::int",
                                2, params, &res);
    if (st == EG_OK) {
        size_t n = (size_t)eg_pg_rows(res);
        Eg__KeyInfo *infos = eg_xcalloc(n ? n : 1, sizeof *infos);
        Eg__KeyInfo **list = eg_xcalloc(n ? n : 1, sizeof *list);
        for (size_t i = 0; i < n; i++) {
            int row = (int)i;
            eg__key_info__init(&infos[i]);
            infos[i].key_id = (char *)eg_pg_value(res, row, 0);
            infos[i].role = (char *)eg_pg_value(res, row, 1);
            infos[i].rate_limit = (int32_t)strtol(eg_pg_value(res, row, 2), NULL, 10);
            infos[i].created_ms = strtoll(eg_pg_value(res, row, 3), NULL, 10);
            infos[i].revoked = strcmp(eg_pg_value(res, row, 4), "t") == 0;
            list[i] = &infos[i];
        }
        respond(bus, msg, st, NULL, list, n);
        free(list);
        free(infos);
    } else {
        eg_log_warn("listing API keys failed: %s", eg_pg_error(w->pg));
        respond(bus, msg, st, "could not list the API keys", NULL, 0);
    }
    eg_pg_res_free(res);
    eg__key_request__free_unpacked(req, NULL);
    return st == EG_EPROTO ? EG_EIO : st;
}

static void broadcast_revoked(sched_t *s, const char *tenant, const char *key_id)
{
    Eg__ConfigChanged m = EG__CONFIG_CHANGED__INIT;
    m.tenant_id = (char *)tenant;
    m.kind = "key";
    m.name = (char *)key_id;
    uint8_t buf[256];
    size_t n = eg__config_changed__get_packed_size(&m);
    if (n <= sizeof buf) {
        eg__config_changed__pack(&m, buf);
        if (eg_bus_publish(s->bus, EG_SUBJ_CONFIG_CHANGED, buf, n, eg_log_corr()) != EG_OK)
            eg_log_error("revocation of key %s could not be broadcast: other replicas drop it "
                         "when their caches expire",
                         key_id);
    }
}

eg_status_t keys_admin_revoke(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    Eg__KeyRequest *req = eg__key_request__unpack(NULL, eg_bus_msg_len(msg), eg_bus_msg_data(msg));
    if (!req)
        return EG_EPROTO;
    char err[160] = "";
    const char *params[] = {req->key_id, req->tenant_id};
    eg_pg_res_t *res = NULL;
    Eg__KeyInfo info = EG__KEY_INFO__INIT;
    Eg__KeyInfo *list[] = {&info};
    eg_status_t st = eg_pg_begin(w->pg);
    if (st == EG_OK)
        st = eg_pg_exec(
            w->pg,
            "UPDATE api_keys SET revoked_at = now() WHERE key_id = $1 AND tenant_id = "
            "$2::uuid AND revoked_at IS NULL RETURNING role, rate_limit, " CREATED_MS_SQL,
            2, params, &res);
    bool revoked_now = st == EG_OK && eg_pg_rows(res) == 1;
    if (revoked_now)
        st = audit(w, req->tenant_id, "key.revoke", req->actor_key_id, req->key_id,
                   eg_pg_value(res, 0, 0), atoi(eg_pg_value(res, 0, 1)), NULL);
    if (st == EG_OK)
        st = eg_pg_commit(w->pg);
    else
        eg_pg_rollback(w->pg);
    if (st == EG_OK && !revoked_now) {
        /* Not revoked by this request: revoked before (a retry), or not this tenant's key. */
        eg_pg_res_free(res);
        res = NULL;
        st = eg_pg_exec(w->pg,
                        "SELECT role, rate_limit, " CREATED_MS_SQL
                        " FROM api_keys WHERE key_id = $1 AND tenant_id = $2::uuid",
                        2, params, &res);
        if (st == EG_OK && eg_pg_rows(res) != 1) {
            st = EG_ENOTFOUND;
            snprintf(err, sizeof err, "keyId: no API key '%.40s' in this tenant", req->key_id);
        }
    }
    if (st == EG_OK) {
        info.key_id = req->key_id;
        info.role = (char *)eg_pg_value(res, 0, 0);
        info.rate_limit = (int32_t)strtol(eg_pg_value(res, 0, 1), NULL, 10);
        info.created_ms = strtoll(eg_pg_value(res, 0, 2), NULL, 10);
        info.revoked = true;
        auth_forget(w->s, req->key_id);
        broadcast_revoked(w->s, req->tenant_id, req->key_id);
        if (revoked_now)
            eg_log_info("API key %s revoked", req->key_id);
        respond(bus, msg, st, NULL, list, 1);
    } else {
        if (!*err) {
            snprintf(err, sizeof err, "could not revoke the API key");
            eg_log_warn("revoking API key %s failed: %s", req->key_id, eg_pg_error(w->pg));
        }
        respond(bus, msg, st, err, NULL, 0);
    }
    eg_pg_res_free(res);
    eg__key_request__free_unpacked(req, NULL);
    return st == EG_EPROTO ? EG_EIO : st;
}
