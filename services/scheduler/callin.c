/* Click-to-Call-In: group configuration (validation, PostgreSQL, cache) and the allocation of
 * (number, access code) pairs in Redis. See callin.h for the key layout.
 *
 * Allocation is one Lua step. The scheduler draws the randomness (a start position among the
 * group's numbers and a handful of random codes) and the script, reading Redis's own clock,
 * walks the numbers from that position: it prunes the number's ZSET of expired members, then
 * with codes tries a few of the random codes (moving on to the next number when they are all
 * taken), and without codes takes the number only when nothing holds it. The first free pair
 * gets the request record, the pair index and the ZSET member, all expiring with the request.
 * Because Redis's clock decides both "expired" and PX, a pair is free exactly when its former
 * holder is no longer live, whatever the schedulers' clocks say. */
#include "callin.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "callback_store.h"
#include "callbacks.h"
#include "engage/ids.h"
#include "engage/json.h"
#include "engage/log.h"
#include "engage/mem.h"
#include "engage/names.h"
#include "engage/phone.h"
#include "engage/subjects.h"
#include "engage/timeutil.h"
#include "engage/userdata.h"
#include "services.h"

/* ---- configuration ---------------------------------------------------------------------- */

/* An optional integer in [min, max]; absent or null keeps *out. */
static eg_status_t int_field(const eg_json_t *root, const char *key, int min, int max, int *out,
                             char *err, size_t errlen)
{
    eg_json_t *v = eg_json_get(root, key);
    if (!v || eg_json_is_null(v))
        return EG_OK;
    if (!eg_json_is_integer(v) || eg_json_int(v) < min || eg_json_int(v) > max) {
        snprintf(err, errlen, "%s: must be an integer from %d to %d", key, min, max);
        return EG_EINVAL;
    }
    *out = (int)eg_json_int(v);
    return EG_OK;
}

static eg_status_t numbers_field(const eg_json_t *root, callin_config_t *cfg, char *err,
                                 size_t errlen)
{
    eg_json_t *v = eg_json_get(root, "numbers");
    if (!v || eg_json_is_null(v)) {
        snprintf(err, errlen, "numbers: is required (an array of 1 to %d E.164 numbers)",
                 CALLIN_MAX_NUMBERS);
        return EG_EINVAL;
    }
    size_t n = eg_json_array_size(v);
    if (!eg_json_is_array(v) || n < 1 || n > CALLIN_MAX_NUMBERS) {
        snprintf(err, errlen, "numbers: must be an array of 1 to %d E.164 numbers",
                 CALLIN_MAX_NUMBERS);
        return EG_EINVAL;
    }
    cfg->numbers = eg_xcalloc(n, sizeof *cfg->numbers);
    for (size_t i = 0; i < n; i++) {
        const char *s = eg_json_str(eg_json_array_get(v, i));
        if (!eg_phone_valid(s)) {
            snprintf(err, errlen,
                     "numbers[%zu]: must be an E.164 number: '+' then 8 to 15 digits, e.g. "
                     "+18005550100",
                     i);
            return EG_EINVAL;
        }
        /* Quadratic, but over at most 1,000 short strings, once per PUT or cache load. */
        for (size_t j = 0; j < i; j++) {
            if (strcmp(cfg->numbers[j], s) == 0) {
                snprintf(err, errlen, "numbers[%zu]: %s appears more than once (also at [%zu])", i,
                         s, j);
                return EG_EINVAL;
            }
        }
        snprintf(cfg->numbers[i], sizeof cfg->numbers[i], "%s", s);
        cfg->n_numbers = i + 1;
    }
    return EG_OK;
}

eg_status_t callin_config_parse(const char *name, const char *text, size_t len,
                                callin_config_t *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->use_access_codes = true;
    cfg->access_code_digits = CALLIN_DEFAULT_DIGITS;
    cfg->expiry_s = CALLIN_DEFAULT_EXPIRY_S;
    eg_status_t st = EG_EINVAL;
    eg_json_t *root = NULL;
    char jerr[200];

    if (!eg_name_valid(name)) {
        snprintf(err, errlen, "name: must be 1-%d characters A-Z a-z 0-9 _ . -", CALLIN_NAME_MAX);
        goto out;
    }
    snprintf(cfg->name, sizeof cfg->name, "%s", name);
    if (len == 0) {
        snprintf(err, errlen, "body: a JSON object is required");
        goto out;
    }
    root = eg_json_parse(text, len, 0, jerr, sizeof jerr);
    if (!root) {
        snprintf(err, errlen, "body: %s", jerr);
        goto out;
    }
    if (!eg_json_is_object(root)) {
        snprintf(err, errlen, "body: must be a JSON object");
        goto out;
    }
    if (numbers_field(root, cfg, err, errlen) != EG_OK)
        goto out;

    eg_json_t *v = eg_json_get(root, "useAccessCodes");
    if (v && !eg_json_is_null(v)) {
        if (!eg_json_is_bool(v)) {
            snprintf(err, errlen, "useAccessCodes: must be true or false");
            goto out;
        }
        cfg->use_access_codes = eg_json_true(v);
    }
    if (int_field(root, "accessCodeDigits", CALLIN_MIN_DIGITS, CALLIN_MAX_DIGITS,
                  &cfg->access_code_digits, err, errlen) != EG_OK ||
        int_field(root, "expirySeconds", CALLIN_MIN_EXPIRY_S, CALLIN_MAX_EXPIRY_S, &cfg->expiry_s,
                  err, errlen) != EG_OK)
        goto out;

    v = eg_json_get(root, "callbackService");
    if (v && !eg_json_is_null(v)) {
        if (!eg_json_is_string(v) || !eg_name_valid(eg_json_str(v))) {
            snprintf(err, errlen,
                     "callbackService: must be a callback service name: 1-%d characters A-Z a-z "
                     "0-9 _ . -",
                     CALLIN_NAME_MAX);
            goto out;
        }
        snprintf(cfg->callback_service, sizeof cfg->callback_service, "%s", eg_json_str(v));
    }
    st = EG_OK;
out:
    eg_json_free(root);
    if (st != EG_OK)
        callin_config_free(cfg);
    return st;
}

char *callin_config_to_json(const callin_config_t *cfg)
{
    eg_json_t *o = eg_json_object(), *nums = eg_json_array();
    for (size_t i = 0; i < cfg->n_numbers; i++)
        eg_json_append(nums, eg_json_string(cfg->numbers[i]));
    eg_json_set(o, "numbers", nums);
    eg_json_set_bool(o, "useAccessCodes", cfg->use_access_codes);
    eg_json_set_int(o, "accessCodeDigits", cfg->access_code_digits);
    eg_json_set_int(o, "expirySeconds", cfg->expiry_s);
    if (cfg->callback_service[0])
        eg_json_set_str(o, "callbackService", cfg->callback_service);
    char *text = eg_json_dump(o, NULL);
    eg_json_free(o);
    return text;
}

void callin_config_free(callin_config_t *cfg)
{
    if (!cfg)
        return;
    free(cfg->numbers);
    cfg->numbers = NULL;
    cfg->n_numbers = 0;
}

/* ---- the cache ---------------------------------------------------------------------------- */

#define CACHE_TTL_MS 60000 /* a safety net: broadcasts normally make changes live at once */
#define CACHE_MAX 1024     /* beyond this, unused entries are dropped from the cold end */

typedef struct entry {
    struct entry *next;
    char tenant[40];
    int64_t loaded_ms;
    int refs;
    callin_config_t cfg;
} entry_t;

struct callin_registry {
    pthread_mutex_t lock;
    entry_t *head; /* most recently loaded first */
    size_t count;
};

callin_registry_t *callin_registry_new(void)
{
    callin_registry_t *r = eg_xcalloc(1, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    return r;
}

static void entry_free(entry_t *e)
{
    callin_config_free(&e->cfg);
    free(e);
}

void callin_registry_free(callin_registry_t *r)
{
    if (!r)
        return;
    while (r->head) {
        entry_t *e = r->head;
        r->head = e->next;
        entry_free(e);
    }
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* Take e out of the list (the caller holds the lock); it is freed now when unused, else by
 * its last user in callin_registry_release. */
static void drop_locked(callin_registry_t *r, entry_t *e)
{
    for (entry_t **l = &r->head; *l; l = &(*l)->next) {
        if (*l == e) {
            *l = e->next;
            r->count--;
            break;
        }
    }
    if (e->refs == 0)
        entry_free(e);
}

static eg_status_t load(eg_pg_t *pg, const char *tenant, const char *name, entry_t **out)
{
    const char *params[] = {tenant, name};
    eg_pg_res_t *res = NULL;
    eg_status_t st = eg_pg_exec(
        pg, "SELECT config::text FROM call_in_groups WHERE tenant_id = $1::uuid AND name = $2", 2,
        params, &res);
    if (st != EG_OK)
        goto out;
    if (eg_pg_rows(res) == 0) {
        st = EG_ENOTFOUND;
        goto out;
    }
    entry_t *e = eg_xcalloc(1, sizeof *e);
    char err[256];
    const char *text = eg_pg_value(res, 0, 0);
    st = callin_config_parse(name, text, strlen(text), &e->cfg, err, sizeof err);
    if (st != EG_OK) {
        eg_log_error("stored configuration of call-in group %s is invalid: %s", name, err);
        free(e);
        st = EG_EINTERNAL;
        goto out;
    }
    snprintf(e->tenant, sizeof e->tenant, "%s", tenant);
    e->loaded_ms = eg_mono_ms();
    e->refs = 1;
    *out = e;
out:
    eg_pg_res_free(res);
    return st;
}

eg_status_t callin_registry_get(callin_registry_t *r, eg_pg_t *pg, const char *tenant,
                                const char *name, const callin_config_t **cfg)
{
    int64_t now = eg_mono_ms();
    pthread_mutex_lock(&r->lock);
    for (entry_t *e = r->head; e; e = e->next) {
        if (strcmp(e->tenant, tenant) == 0 && strcmp(e->cfg.name, name) == 0) {
            if (now - e->loaded_ms > CACHE_TTL_MS) {
                drop_locked(r, e);
                break;
            }
            e->refs++;
            *cfg = &e->cfg;
            pthread_mutex_unlock(&r->lock);
            return EG_OK;
        }
    }
    pthread_mutex_unlock(&r->lock);

    entry_t *e = NULL;
    eg_status_t st = load(pg, tenant, name, &e);
    if (st != EG_OK)
        return st;
    pthread_mutex_lock(&r->lock);
    e->next = r->head;
    r->head = e;
    r->count++;
    if (r->count > CACHE_MAX) {
        /* Keep the newest half; drop the rest (those in use go when released). */
        entry_t *keep = r->head;
        for (size_t i = 1; keep && i < CACHE_MAX / 2; i++)
            keep = keep->next;
        while (keep && keep->next)
            drop_locked(r, keep->next);
    }
    pthread_mutex_unlock(&r->lock);
    *cfg = &e->cfg;
    return EG_OK;
}

void callin_registry_release(callin_registry_t *r, const callin_config_t *cfg)
{
    entry_t *e = (entry_t *)(void *)((char *)(uintptr_t)cfg - offsetof(entry_t, cfg));
    pthread_mutex_lock(&r->lock);
    bool listed = false;
    for (entry_t *x = r->head; x; x = x->next)
        listed = listed || x == e;
    if (--e->refs == 0 && !listed)
        entry_free(e);
    pthread_mutex_unlock(&r->lock);
}

void callin_registry_forget(callin_registry_t *r, const char *tenant, const char *name)
{
    pthread_mutex_lock(&r->lock);
    entry_t *e = r->head;
    while (e) {
        entry_t *next = e->next;
        if (strcmp(e->tenant, tenant) == 0 && (!name || strcmp(e->cfg.name, name) == 0))
            drop_locked(r, e);
        e = next;
    }
    pthread_mutex_unlock(&r->lock);
}

/* ---- configuration in PostgreSQL -------------------------------------------------------- */

static void broadcast_change(sched_t *s, const char *tenant, const char *name)
{
    Eg__ConfigChanged m = EG__CONFIG_CHANGED__INIT;
    m.tenant_id = (char *)tenant;
    m.kind = "callin-group";
    m.name = (char *)name;
    uint8_t buf[512];
    size_t n = eg__config_changed__get_packed_size(&m);
    if (n <= sizeof buf) {
        eg__config_changed__pack(&m, buf);
        eg_bus_publish(s->bus, EG_SUBJ_CONFIG_CHANGED, buf, n, eg_log_corr());
    }
}

static void audit(eg_pg_t *pg, const char *tenant, const char *action, const char *name)
{
    const char *params[] = {tenant, action, name};
    eg_pg_exec(pg,
               "INSERT INTO audit_log (tenant_id, actor, action, detail) VALUES ($1::uuid, "
               "'admin-api', $2, jsonb_build_object('callInGroup', $3::text))",
               3, params, NULL);
}

eg_status_t callin_group_put(sched_t *s, eg_pg_t *pg, const char *tenant, const char *name,
                             const char *json, bool *created, char **effective, char *err,
                             size_t errlen)
{
    callin_config_t cfg;
    eg_status_t st = callin_config_parse(name, json, strlen(json), &cfg, err, errlen);
    if (st != EG_OK)
        return st;
    char *text = callin_config_to_json(&cfg);
    const char *params[] = {tenant, name, text};
    eg_pg_res_t *res = NULL;
    st = eg_pg_exec(pg,
                    "INSERT INTO call_in_groups (tenant_id, name, config) VALUES ($1::uuid, $2, "
                    "$3::jsonb) ON CONFLICT (tenant_id, name) DO UPDATE SET config = "
                    "EXCLUDED.config, version = call_in_groups.version + 1, updated_at = now() "
                    "RETURNING (xmax = 0)",
                    3, params, &res);
    if (st == EG_OK) {
        *created = eg_pg_rows(res) == 1 && strcmp(eg_pg_value(res, 0, 0), "t") == 0;
        audit(pg, tenant, *created ? "callin-group.create" : "callin-group.update", name);
        callin_registry_forget(s->callin, tenant, name);
        broadcast_change(s, tenant, name);
        *effective = text;
        text = NULL;
    } else {
        eg_log_error("call-in group %s: cannot store: %s", name, eg_pg_error(pg));
        snprintf(err, errlen, "could not store the call-in group");
    }
    eg_pg_res_free(res);
    free(text);
    callin_config_free(&cfg);
    return st;
}

eg_status_t callin_group_get(sched_t *s, eg_pg_t *pg, const char *tenant, const char *name,
                             char **effective)
{
    const callin_config_t *cfg;
    eg_status_t st = callin_registry_get(s->callin, pg, tenant, name, &cfg);
    if (st != EG_OK)
        return st;
    *effective = callin_config_to_json(cfg);
    callin_registry_release(s->callin, cfg);
    return EG_OK;
}

eg_status_t callin_group_delete(sched_t *s, eg_pg_t *pg, const char *tenant, const char *name)
{
    const char *params[] = {tenant, name};
    eg_pg_res_t *res = NULL;
    eg_status_t st = eg_pg_exec(
        pg, "DELETE FROM call_in_groups WHERE tenant_id = $1::uuid AND name = $2", 2, params, &res);
    if (st == EG_OK && eg_pg_affected(res) == 0)
        st = EG_ENOTFOUND;
    eg_pg_res_free(res);
    if (st == EG_OK) {
        audit(pg, tenant, "callin-group.delete", name);
        callin_registry_forget(s->callin, tenant, name);
        broadcast_change(s, tenant, name);
    }
    return st;
}

/* ---- requests in Redis ------------------------------------------------------------------- */

/* Random codes drawn per allocation, and how many of them one number gets to try. A group with
 * few numbers tries more codes per number, so a one-number group still finds a free code at
 * high occupancy. */
#define CODES_DRAWN 16
#define MIN_TRIES_PER_NUMBER 4

/* KEYS[1]: the request record (eg:{t:T}:ci:req:<id>). Every other key is built from ARGV[1],
 *   the tenant's prefix "eg:{t:T}:ci:", so it shares KEYS[1]'s hash slot.
 * ARGV: 1 prefix, 2 ttl ms, 3 code space (10^digits, 0 = no codes), 4 start position (0-based),
 *   5 codes drawn K, 6 tries per number, 7 numbers N, 8 tenant, 9 id, 10 group, 11 from,
 *   12 callback service id, 13 user data, then K codes, then N numbers.
 * Returns {1, HGETALL of the record} (new, or the one this id made before), or
 *   {0, earliest expiry among the numbers looked at (0 = unknown), now}. */
static const char allocate_lua[] =
    "local rec = redis.call('HGETALL', KEYS[1])\n"
    "if #rec > 0 then return {1, rec} end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local ttl = tonumber(ARGV[2])\n"
    "local exp = now + ttl\n"
    "local space, start = tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "local k, tries, n = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])\n"
    "local soonest = 0\n"
    "for i = 0, n - 1 do\n"
    "  local num = ARGV[13 + k + 1 + ((start + i) % n)]\n"
    "  local z = ARGV[1] .. 'n:' .. num\n"
    "  redis.call('ZREMRANGEBYSCORE', z, '-inf', now)\n"
    "  local held = redis.call('ZCARD', z)\n"
    "  local code = nil\n"
    "  if space == 0 then\n"
    "    if held == 0 then code = '-' end\n"
    "  elseif held < space and not redis.call('ZSCORE', z, '-') then\n"
    "    for j = 0, tries - 1 do\n"
    "      local c = ARGV[13 + 1 + ((i + j) % k)]\n"
    "      if not redis.call('ZSCORE', z, c) then code = c break end\n"
    "    end\n"
    "  end\n"
    "  if code then\n"
    "    redis.call('ZADD', z, exp, code)\n"
    "    local last = redis.call('ZRANGE', z, -1, -1, 'WITHSCORES')\n"
    "    redis.call('PEXPIREAT', z, last[2])\n"
    "    redis.call('SET', ARGV[1] .. 'pair:' .. num .. ':' .. code, ARGV[9], 'PX', ttl)\n"
    "    redis.call('HSET', KEYS[1], 'id', ARGV[9], 'tenant', ARGV[8], 'group', ARGV[10],\n"
    "      'to', num, 'code', (code == '-') and '' or code, 'from', ARGV[11], 'cbsvc', ARGV[12],\n"
    "      'userData', ARGV[13], 'created', now, 'expires', exp)\n"
    "    redis.call('PEXPIRE', KEYS[1], ttl)\n"
    "    return {1, redis.call('HGETALL', KEYS[1])}\n"
    "  end\n"
    "  local first = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')\n"
    "  if first[2] then\n"
    "    local f = tonumber(first[2])\n"
    "    if soonest == 0 or f < soonest then soonest = f end\n"
    "  end\n"
    "end\n"
    "return {0, soonest, now}\n";

eg_status_t callin_store_init(eg_store_t *store, int *script)
{
    return eg_store_script_add(store, allocate_lua, script);
}

/* The record from a flat HGETALL reply. NULL when a field is missing. */
static Eg__CallInRequest *record_from_reply(const eg_reply_t *a)
{
    Eg__CallInRequest *r = eg_xmalloc(sizeof *r);
    eg__call_in_request__init(r);
    static const char *const names[] = {"id",   "tenant", "group",    "to",      "code",
                                        "from", "cbsvc",  "userData", "created", "expires"};
    char **strs[] = {
        &r->id,         &r->tenant_id,           &r->group,         &r->to_phone, &r->access_code,
        &r->from_phone, &r->callback_service_id, &r->user_data_json};
    size_t found = 0;
    for (size_t i = 0; i + 1 < a->elements; i += 2) {
        const eg_reply_t *k = a->element[i], *v = a->element[i + 1];
        if (k->type != EG_REPLY_STRING || v->type != EG_REPLY_STRING)
            continue;
        for (size_t f = 0; f < sizeof names / sizeof *names; f++) {
            if (strcmp(k->str, names[f]) != 0)
                continue;
            found |= (size_t)1 << f;
            if (f < sizeof strs / sizeof *strs)
                *strs[f] = eg_xstrndup(v->str, v->len);
            else if (f == 8)
                r->created_ms = strtoll(v->str, NULL, 10);
            else
                r->expires_ms = strtoll(v->str, NULL, 10);
        }
    }
    /* Unset strings must be the empty string for protobuf-c, not NULL. */
    for (size_t f = 0; f < sizeof strs / sizeof *strs; f++)
        if (!*strs[f])
            *strs[f] = eg_xstrdup("");
    if (found != ((size_t)1 << (sizeof names / sizeof *names)) - 1) {
        eg__call_in_request__free_unpacked(r, NULL);
        return NULL;
    }
    return r;
}

eg_status_t callin_store_allocate(eg_store_t *store, int script, const char *tenant,
                                  const callin_config_t *cfg, const char *id,
                                  const char *from_phone, const char *callback_service_id,
                                  const char *user_data_json, Eg__CallInRequest **out,
                                  int64_t *retry_after_ms)
{
    enum { FIXED = 14 }; /* KEYS[1] and ARGV[1..13] */
    char k_req[200], prefix[120], ttl[24], space[24], start[24], k[8], tries[8], n[8];
    char codes[CODES_DRAWN][CALLIN_MAX_DIGITS + 1];
    cb_key(k_req, sizeof k_req, tenant, "ci:req", id);
    cb_key(prefix, sizeof prefix, tenant, "ci", "");
    snprintf(ttl, sizeof ttl, "%lld", (long long)cfg->expiry_s * 1000);

    uint64_t rnd[CODES_DRAWN + 1];
    eg_random_bytes(rnd, sizeof rnd);
    size_t ncodes = 0;
    uint64_t code_space = 0;
    if (cfg->use_access_codes) {
        code_space = 1;
        for (int i = 0; i < cfg->access_code_digits; i++)
            code_space *= 10;
        ncodes = CODES_DRAWN;
        for (size_t i = 0; i < ncodes; i++)
            snprintf(codes[i], sizeof codes[i], "%0*" PRIu64, cfg->access_code_digits,
                     rnd[i] % code_space);
    }
    size_t per_number = cfg->n_numbers ? CODES_DRAWN / cfg->n_numbers : CODES_DRAWN;
    if (per_number < MIN_TRIES_PER_NUMBER)
        per_number = MIN_TRIES_PER_NUMBER;
    if (per_number > ncodes)
        per_number = ncodes;
    snprintf(space, sizeof space, "%" PRIu64, code_space);
    snprintf(start, sizeof start, "%" PRIu64, rnd[CODES_DRAWN] % cfg->n_numbers);
    snprintf(k, sizeof k, "%zu", ncodes);
    snprintf(tries, sizeof tries, "%zu", per_number);
    snprintf(n, sizeof n, "%zu", cfg->n_numbers);

    size_t argc = FIXED + ncodes + cfg->n_numbers;
    const char **argv = eg_xcalloc(argc, sizeof *argv);
    size_t *lens = eg_xcalloc(argc, sizeof *lens);
    const char *fixed[FIXED] = {k_req,
                                prefix,
                                ttl,
                                space,
                                start,
                                k,
                                tries,
                                n,
                                tenant,
                                id,
                                cfg->name,
                                from_phone ? from_phone : "",
                                callback_service_id ? callback_service_id : "",
                                user_data_json ? user_data_json : ""};
    size_t a = 0;
    for (size_t i = 0; i < FIXED; i++)
        argv[a++] = fixed[i];
    for (size_t i = 0; i < ncodes; i++)
        argv[a++] = codes[i];
    for (size_t i = 0; i < cfg->n_numbers; i++)
        argv[a++] = cfg->numbers[i];
    for (size_t i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);

    eg_reply_t *r = NULL;
    eg_status_t st = eg_store_eval(store, script, 1, (int)argc, argv, lens, &r);
    if (st != EG_OK) {
        if (r && r->type == EG_REPLY_ERROR)
            eg_log_error("call-in allocation script failed: %s", r->str);
        goto out;
    }
    if (r->type != EG_REPLY_ARRAY || r->elements < 2 || r->element[0]->type != EG_REPLY_INTEGER) {
        st = EG_EPROTO;
        goto out;
    }
    if (r->element[0]->integer == 1 && r->element[1]->type == EG_REPLY_ARRAY) {
        *out = record_from_reply(r->element[1]);
        st = *out ? EG_OK : EG_EPROTO;
    } else if (r->element[0]->integer == 0 && r->elements == 3) {
        long long soonest = r->element[1]->integer, now = r->element[2]->integer;
        if (retry_after_ms)
            *retry_after_ms = soonest > now ? soonest - now : 0;
        st = EG_EUNAVAIL;
    } else {
        st = EG_EPROTO;
    }
out:
    eg_reply_free(r);
    free(argv);
    free(lens);
    return st;
}

/* ---- the create operation and the bus handlers ------------------------------------------- */

static void set_status(Eg__CallInReply *reply, eg_status_t st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_status(Eg__CallInReply *reply, eg_status_t st, const char *fmt, ...)
{
    reply->status = eg_xmalloc(sizeof *reply->status);
    eg__status__init(reply->status);
    reply->status->code = (int32_t)st;
    if (fmt) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        reply->status->message = eg_xstrdup(msg);
    }
}

static void reply_clear(Eg__CallInReply *reply)
{
    if (reply->status) {
        if (reply->status->message != protobuf_c_empty_string)
            free(reply->status->message);
        free(reply->status);
        reply->status = NULL;
    }
    if (reply->request) {
        eg__call_in_request__free_unpacked(reply->request, NULL);
        reply->request = NULL;
    }
}

/* Returns the status for the scheduler's metrics: the one answered, except EG_EFULL for a group
 * with no free pair (answered as EG_EUNAVAIL, but it is not a failing dependency). */
static eg_status_t create(worker_t *w, const Eg__CallInCreateRequest *req, Eg__CallInReply *reply)
{
    const callin_config_t *cfg = NULL;
    if (!eg_uuid_valid(req->id) || !req->tenant_id[0]) {
        set_status(reply, EG_EINVAL, "id: the request id must be a UUID");
        return EG_EINVAL;
    }
    if (!eg_name_valid(req->group)) {
        set_status(reply, EG_EINVAL, "groupName: must be 1-%d characters A-Z a-z 0-9 _ . -",
                   CALLIN_NAME_MAX);
        return EG_EINVAL;
    }
    if (req->from_phone[0] && !eg_phone_valid(req->from_phone)) {
        set_status(reply, EG_EINVAL,
                   "fromPhoneNumber: must be an E.164 number: '+' then 8 to 15 digits");
        return EG_EINVAL;
    }
    if (strlen(req->user_data_json) > EG_USER_DATA_MAX) {
        set_status(reply, EG_EINVAL, "userData: must be at most %d bytes as JSON",
                   EG_USER_DATA_MAX);
        return EG_EINVAL;
    }
    eg_status_t st = callin_registry_get(w->s->callin, w->pg, req->tenant_id, req->group, &cfg);
    if (st == EG_ENOTFOUND) {
        set_status(reply, st, "groupName: call-in group '%s' does not exist", req->group);
        return st;
    }
    if (st != EG_OK) {
        set_status(reply, EG_EUNAVAIL, "configuration store unavailable; retry");
        return EG_EUNAVAIL;
    }
    const char *cbsvc =
        req->callback_service_id[0] ? req->callback_service_id : cfg->callback_service;
    int64_t retry_ms = 0;
    st = callin_store_allocate(w->store, w->callin_script, req->tenant_id, cfg, req->id,
                               req->from_phone, cbsvc, req->user_data_json, &reply->request,
                               &retry_ms);
    if (st == EG_OK) {
        char masked[32];
        eg_log_mask_phone(reply->request->to_phone, masked, sizeof masked);
        eg_log_info("call-in %s: group %s lends %s until %" PRId64, reply->request->id, cfg->name,
                    masked, reply->request->expires_ms);
        set_status(reply, EG_OK, NULL);
    } else if (st == EG_EUNAVAIL) {
        st = EG_EFULL;
        reply->retry_after_ms = retry_ms;
        set_status(reply, EG_EUNAVAIL,
                   "no free number in call-in group '%s': all %zu number%s%s held by live "
                   "requests; retry in %lld s",
                   cfg->name, cfg->n_numbers, cfg->n_numbers == 1 ? "" : "s",
                   cfg->use_access_codes ? " (with every access code tried)" : " are",
                   (long long)(retry_ms + 999) / 1000);
    } else {
        eg_log_error("call-in group %s: allocation failed: %s (%s)", cfg->name, eg_status_str(st),
                     eg_store_error(w->store));
        set_status(reply, EG_EUNAVAIL, "call-in store unavailable; retry");
        st = EG_EUNAVAIL;
    }
    callin_registry_release(w->s->callin, cfg);
    return st;
}

eg_status_t callin_rpc_create(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    Eg__CallInCreateRequest *req =
        eg__call_in_create_request__unpack(NULL, eg_bus_msg_len(msg), eg_bus_msg_data(msg));
    if (!req)
        return EG_EPROTO;
    Eg__CallInReply r = EG__CALL_IN_REPLY__INIT;
    eg_status_t st = create(w, req, &r);
    eg__call_in_create_request__free_unpacked(req, NULL);
    eg_bus_reply(bus, msg, &r.base);
    reply_clear(&r);
    return st == EG_EPROTO ? EG_EIO : st;
}

/* The three group operations share one reply shape. */
static eg_status_t group_op(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg, char op)
{
    char err[512] = "";
    char *effective = NULL;
    bool created = false;
    eg_status_t st;
    if (op == 'p') {
        Eg__CallInGroupPutRequest *req =
            eg__call_in_group_put_request__unpack(NULL, eg_bus_msg_len(msg), eg_bus_msg_data(msg));
        if (!req)
            return EG_EPROTO;
        st = callin_group_put(w->s, w->pg, req->tenant_id, req->name, req->config_json, &created,
                              &effective, err, sizeof err);
        eg__call_in_group_put_request__free_unpacked(req, NULL);
    } else {
        Eg__CallInGroupRequest *req =
            eg__call_in_group_request__unpack(NULL, eg_bus_msg_len(msg), eg_bus_msg_data(msg));
        if (!req)
            return EG_EPROTO;
        if (op == 'g')
            st = callin_group_get(w->s, w->pg, req->tenant_id, req->name, &effective);
        else
            st = callin_group_delete(w->s, w->pg, req->tenant_id, req->name);
        if (st == EG_ENOTFOUND)
            snprintf(err, sizeof err, "call-in group '%s' does not exist", req->name);
        else if (st != EG_OK)
            snprintf(err, sizeof err, "configuration store unavailable; retry");
        eg__call_in_group_request__free_unpacked(req, NULL);
    }
    Eg__Status s = EG__STATUS__INIT;
    Eg__CallInGroupReply r = EG__CALL_IN_GROUP_REPLY__INIT;
    s.code = (int32_t)st;
    s.message = err;
    r.status = &s;
    r.created = created;
    if (effective)
        r.config_json = effective;
    eg_bus_reply(bus, msg, &r.base);
    free(effective);
    return st == EG_EPROTO ? EG_EIO : st;
}

eg_status_t callin_rpc_group_put(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    return group_op(w, bus, msg, 'p');
}

eg_status_t callin_rpc_group_get(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    return group_op(w, bus, msg, 'g');
}

eg_status_t callin_rpc_group_delete(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    return group_op(w, bus, msg, 'd');
}

/* ---- call.inbound: matching a call to its request ---------------------------------------- */

/* How long a match is remembered under the platform's call id, so that a call.inbound read
 * again (a bridge restarted before acknowledging it) gets the same answer. */
#define MATCH_MEMO_MS "3600000"

/* KEYS[1]: the match memo of the call (eg:{t:T}:ci:call:<call id>). Every other key is built
 *   from ARGV[1], the tenant's prefix "eg:{t:T}:ci:", so it shares KEYS[1]'s hash slot.
 * ARGV: 1 prefix, 2 dialled number, 3 access code ("" none), 4 caller's number, 5 memo ttl ms.
 * Returns {1, HGETALL of the consumed request} (or of the memo), or {0, why} with why one of
 *   "none" (nothing live on the number), "code" (codes live on the number, not this one),
 *   "need_code" (codes live, none entered), "caller" (the request is for another caller).
 * The pair index, the record and the number's ZSET member go in the same step: one request
 * routes one call. */
static const char match_lua[] =
    "local memo = redis.call('HGETALL', KEYS[1])\n"
    "if #memo > 0 then return {1, memo} end\n"
    "local p, num, code, caller = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local z = p .. 'n:' .. num\n"
    "redis.call('ZREMRANGEBYSCORE', z, '-inf', now)\n"
    "local member, id = nil, nil\n"
    "if code ~= '' then\n"
    "  id = redis.call('GET', p .. 'pair:' .. num .. ':' .. code)\n"
    "  if id then member = code end\n"
    "end\n"
    "if not id then\n"
    "  id = redis.call('GET', p .. 'pair:' .. num .. ':-')\n"
    "  if id then member = '-' end\n"
    "end\n"
    "if not id then\n"
    "  if redis.call('ZCARD', z) > 0 then\n"
    "    if code == '' then return {0, 'need_code'} end\n"
    "    return {0, 'code'}\n"
    "  end\n"
    "  return {0, 'none'}\n"
    "end\n"
    "local rk = p .. 'req:' .. id\n"
    "local rec = redis.call('HGETALL', rk)\n"
    "if #rec == 0 then return {0, 'none'} end\n"
    "if member == '-' then\n"
    "  local from = redis.call('HGET', rk, 'from')\n"
    "  if from and from ~= '' and from ~= caller then return {0, 'caller'} end\n"
    "end\n"
    "redis.call('DEL', p .. 'pair:' .. num .. ':' .. member, rk)\n"
    "redis.call('ZREM', z, member)\n"
    "redis.call('HSET', KEYS[1], unpack(rec))\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[5])\n"
    "return {1, rec}\n";

eg_status_t callin_store_match(eg_store_t *store, const char *tenant, const char *dialed,
                               const char *code, const char *caller, const char *call_id,
                               Eg__CallInRequest **out, const char **why)
{
    char k_memo[400], prefix[120];
    int script = -1;
    *out = NULL;
    *why = NULL;
    cb_key(k_memo, sizeof k_memo, tenant, "ci:call", call_id);
    cb_key(prefix, sizeof prefix, tenant, "ci", "");
    /* Registered once per connection; later calls find it by its source. */
    eg_status_t st = eg_store_script_add(store, match_lua, &script);
    if (st != EG_OK)
        return st;
    const char *argv[] = {k_memo,       prefix, dialed, code ? code : "", caller ? caller : "",
                          MATCH_MEMO_MS};
    eg_reply_t *r = NULL;
    st = eg_store_eval(store, script, 1, 6, argv, NULL, &r);
    if (st != EG_OK) {
        if (r && r->type == EG_REPLY_ERROR)
            eg_log_error("call-in match script failed: %s", r->str);
        goto out;
    }
    if (r->type != EG_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != EG_REPLY_INTEGER) {
        st = EG_EPROTO;
    } else if (r->element[0]->integer == 1 && r->element[1]->type == EG_REPLY_ARRAY) {
        *out = record_from_reply(r->element[1]);
        st = *out ? EG_OK : EG_EPROTO;
    } else if (r->element[1]->type == EG_REPLY_STRING) {
        static const struct {
            const char *code, *text;
        } reasons[] = {
            {"none", "no live call-in request on the dialled number (unknown number, or the "
                     "request expired or was used)"},
            {"code", "the access code matches no live call-in request on the dialled number"},
            {"need_code", "the dialled number needs an access code and none was entered"},
            {"caller", "the caller's number is not the fromPhoneNumber of the call-in request"},
        };
        *why = reasons[0].text;
        for (size_t i = 0; i < sizeof reasons / sizeof *reasons; i++)
            if (strcmp(r->element[1]->str, reasons[i].code) == 0)
                *why = reasons[i].text;
        st = EG_ENOTFOUND;
    } else {
        st = EG_EPROTO;
    }
out:
    eg_reply_free(r);
    return st;
}

/* Where a matched call goes: the virtual queue of the request's callback service when that
 * service exists, else the call-in group's name. */
static void destination_of(worker_t *w, const Eg__CallInRequest *req, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s", req->group);
    if (!req->callback_service_id[0])
        return;
    const svc_config_t *svc = NULL;
    if (svc_registry_get(w->s->services, w->pg, req->tenant_id, req->callback_service_id, &svc) ==
        EG_OK) {
        snprintf(out, outlen, "%s", svc->virtual_queue);
        svc_registry_release(w->s->services, svc);
    } else {
        eg_log_warn("call-in %s: callback service '%s' unknown; routing to group %s", req->id,
                    req->callback_service_id, req->group);
    }
}

static bool printable(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
            return false;
    return true;
}

static eg_status_t match(worker_t *w, const Eg__CallInMatchRequest *req, Eg__CallInMatchReply *r,
                         char *dest, size_t destlen, char *text, size_t textlen)
{
    if (!eg_uuid_valid(req->tenant_id)) {
        snprintf(text, textlen, "tenant: must be a UUID");
        return EG_EINVAL;
    }
    if (!req->call_id[0] || !printable(req->call_id, 128)) {
        snprintf(text, textlen, "call_id: 1 to 128 printable characters");
        return EG_EINVAL;
    }
    if (!printable(req->access_code, 16) || !printable(req->caller_number, 32)) {
        snprintf(text, textlen, "access_code or caller_number: too long or not printable");
        return EG_EINVAL;
    }
    eg_status_t st = EG_OK;
    if (eg_phone_valid(req->dialed_number)) {
        const char *why = NULL;
        st = callin_store_match(w->store, req->tenant_id, req->dialed_number, req->access_code,
                                req->caller_number, req->call_id, &r->request, &why);
        if (st == EG_OK) {
            r->matched = true;
            destination_of(w, r->request, dest, destlen);
            r->destination = dest;
            eg_log_info("call %s matched call-in request %s (group %s): route to %s", req->call_id,
                        r->request->id, r->request->group, dest);
        } else if (st == EG_ENOTFOUND) {
            snprintf(text, textlen, "%s", why);
            r->reason = text;
            st = EG_OK;
        } else {
            eg_log_error("call %s: call-in match failed: %s", req->call_id, eg_status_str(st));
            snprintf(text, textlen, "call-in store unavailable; retry");
            return EG_EUNAVAIL;
        }
    } else {
        snprintf(text, textlen, "dialed_number: must be an E.164 number");
        r->reason = text;
    }
    /* The customer reached us on their own: their pending callbacks are done. */
    if (eg_phone_valid(req->caller_number)) {
        eg_status_t cst = cb_customer_contacted(w, req->tenant_id, req->caller_number,
                                                &r->completed_ids, &r->n_completed_ids);
        if (cst != EG_OK) {
            eg_log_error("call %s: completing the caller's callbacks failed: %s", req->call_id,
                         eg_status_str(cst));
            snprintf(text, textlen, "callback store unavailable; retry");
            return EG_EUNAVAIL;
        }
    }
    return st;
}

eg_status_t callin_rpc_match(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    Eg__CallInMatchRequest *req =
        eg__call_in_match_request__unpack(NULL, eg_bus_msg_len(msg), eg_bus_msg_data(msg));
    if (!req)
        return EG_EPROTO;
    Eg__CallInMatchReply r = EG__CALL_IN_MATCH_REPLY__INIT;
    Eg__Status s = EG__STATUS__INIT;
    char dest[160] = "", text[256] = "";
    eg_status_t st = match(w, req, &r, dest, sizeof dest, text, sizeof text);
    s.code = (int32_t)st;
    if (st != EG_OK)
        s.message = text;
    r.status = &s;
    eg_bus_reply(bus, msg, &r.base);
    if (r.request)
        eg__call_in_request__free_unpacked(r.request, NULL);
    for (size_t i = 0; i < r.n_completed_ids; i++)
        free(r.completed_ids[i]);
    free(r.completed_ids);
    eg__call_in_match_request__free_unpacked(req, NULL);
    return st == EG_EPROTO ? EG_EIO : st;
}
