/* Call-in requests in Redis: see callin_store.h for the key layout.
 *
 * Allocation is one Lua step (lua/callin_allocate.lua). The scheduler draws the randomness (a
 * start position among the group's numbers and a handful of random codes) and names every
 * number's keys; the script, reading Redis's own clock, walks the numbers from that position:
 * it prunes the number's held codes of expired ones, then with codes tries a few of the random
 * codes (moving on to the next number when they are all taken), and without codes takes the
 * number only when nothing holds it. The first free pair gets the request record, the pair
 * index entry and the held code, all expiring with the request. Because Redis's clock decides
 * both "expired" and PX, a pair is free exactly when its former holder is no longer live,
 * whatever the schedulers' clocks say.
 *
 * A match (lua/callin_match.lua) reads the number's pair index first, to name the request's
 * key among the script's KEYS, then runs the script, which consumes the request only if the
 * index still says the same (else it answers "stale" and the match reads again). */
#include "callin_store.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "callin_allocate_lua.h"
#include "callin_match_lua.h"
#include "engage/ids.h"
#include "engage/log.h"
#include "engage/mem.h"
#include "store_keys.h"

/* Random codes drawn per allocation, and how many of them one number gets to try. A group with
 * few numbers tries more codes per number, so a one-number group still finds a free code at
 * high occupancy. */
#define CODES_DRAWN 16
#define MIN_TRIES_PER_NUMBER 4

eg_status_t callin_store_init(eg_store_t *store, int *script)
{
    return eg_store_script_add(store, callin_allocate_lua, script);
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
    char ttl[24], space[24], start[24], k[8], tries[8], n[8];
    char codes[CODES_DRAWN][CALLIN_MAX_DIGITS + 1];
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

    /* Keys: the record, then each number's held codes and pair index; arguments: the named
     * ones, then the codes, then the numbers (the order of the keys). */
    store_keys_t ks;
    store_keys_init(&ks, tenant);
    size_t nkeys = CALLIN_ALLOCATE_NKEYS + 2 * cfg->n_numbers;
    size_t argc = nkeys + (CALLIN_ALLOCATE_ARGC - CALLIN_ALLOCATE_NKEYS) + ncodes + cfg->n_numbers;
    const char **argv = eg_xcalloc(argc, sizeof *argv);
    size_t *lens = eg_xcalloc(argc, sizeof *lens);
    argv[CALLIN_ALLOCATE_KEY_REQUEST] = store_keys_add(&ks, STORE_CALLIN_REQUEST, id);
    size_t a = CALLIN_ALLOCATE_NKEYS;
    for (size_t i = 0; i < cfg->n_numbers; i++) {
        argv[a++] = store_keys_add(&ks, STORE_CALLIN_HELD, cfg->numbers[i]);
        argv[a++] = store_keys_add(&ks, STORE_CALLIN_PAIRS, cfg->numbers[i]);
    }
    /* The named arguments, at their generated places shifted past the variadic keys. */
    const char *named[CALLIN_ALLOCATE_ARGC] = {
        [CALLIN_ALLOCATE_KEY_REQUEST] = "",
        [CALLIN_ALLOCATE_ARG_TTL_MS] = ttl,
        [CALLIN_ALLOCATE_ARG_CODE_SPACE] = space,
        [CALLIN_ALLOCATE_ARG_START] = start,
        [CALLIN_ALLOCATE_ARG_NCODES] = k,
        [CALLIN_ALLOCATE_ARG_TRIES] = tries,
        [CALLIN_ALLOCATE_ARG_NNUMBERS] = n,
        [CALLIN_ALLOCATE_ARG_TENANT] = tenant,
        [CALLIN_ALLOCATE_ARG_ID] = id,
        [CALLIN_ALLOCATE_ARG_GROUP] = cfg->name,
        [CALLIN_ALLOCATE_ARG_FROM] = from_phone ? from_phone : "",
        [CALLIN_ALLOCATE_ARG_CBSVC] = callback_service_id ? callback_service_id : "",
        [CALLIN_ALLOCATE_ARG_USER_DATA] = user_data_json ? user_data_json : "",
    };
    for (size_t i = CALLIN_ALLOCATE_NKEYS; i < CALLIN_ALLOCATE_ARGC; i++)
        argv[a++] = named[i];
    for (size_t i = 0; i < ncodes; i++)
        argv[a++] = codes[i];
    for (size_t i = 0; i < cfg->n_numbers; i++)
        argv[a++] = cfg->numbers[i];
    store_script_lens(argv, lens, argc, "callin_allocate.lua", NULL, 0);

    eg_reply_t *r = NULL;
    eg_status_t st = eg_store_eval(store, script, (int)nkeys, (int)argc, argv, lens, &r);
    if (st != EG_OK) {
        if (r && r->type == EG_REPLY_ERROR)
            eg_log_error("call-in allocation script failed: %s", r->str);
        goto out;
    }
    if (r->type != EG_REPLY_ARRAY || r->elements < 2 || r->element[0]->type != EG_REPLY_INTEGER) {
        st = EG_EPROTO;
        goto out;
    }
    if (r->element[0]->integer == CALLIN_ALLOCATE_RET_ALLOCATED &&
        r->element[1]->type == EG_REPLY_ARRAY) {
        *out = record_from_reply(r->element[1]);
        st = *out ? EG_OK : EG_EPROTO;
    } else if (r->element[0]->integer == CALLIN_ALLOCATE_RET_FULL && r->elements == 3 &&
               r->element[1]->type == EG_REPLY_INTEGER && r->element[2]->type == EG_REPLY_INTEGER) {
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
    store_keys_free(&ks);
    return st;
}

/* How long a match is remembered under the platform's call id, so that a call.inbound read
 * again (a bridge restarted before acknowledging it) gets the same answer. */
#define MATCH_MEMO_MS "3600000"
/* How often a match reads the pair index again when it changed under it. */
#define MATCH_TRIES 5

/* The request ids the number's pair index names for code (when one) and for the number itself
 * ("-"), as the match script will compare them: "" for none. ids[i] are malloc'd. */
static eg_status_t read_pairs(eg_store_t *store, const char *k_pairs, const char *code,
                              char *ids[2])
{
    const char *by_code[] = {"HGET", k_pairs, code}, *by_number[] = {"HGET", k_pairs, "-"};
    const char *const *cmds[] = {by_code, by_number};
    int argcs[] = {3, 3};
    eg_reply_t *r[2] = {NULL, NULL};
    eg_status_t st = eg_store_pipeline(store, 2, argcs, cmds, r);
    for (int i = 0; i < 2; i++) {
        bool named = st == EG_OK && r[i]->type == EG_REPLY_STRING && (i == 1 || code[0]);
        if (st == EG_OK && r[i]->type == EG_REPLY_ERROR)
            st = EG_EPROTO;
        ids[i] = eg_xstrndup(named ? r[i]->str : "", named ? r[i]->len : 0);
        eg_reply_free(r[i]);
    }
    return st;
}

/* One run of the match script. *stale is true when the pair index changed since ids[] were
 * read. */
static eg_status_t match_once(eg_store_t *store, int script, const char *tenant, const char *dialed,
                              const char *code, const char *caller, const char *call_id,
                              Eg__CallInRequest **out, const char **why, bool *stale)
{
    store_keys_t ks;
    store_keys_init(&ks, tenant);
    const char *k_pairs = store_keys_add(&ks, STORE_CALLIN_PAIRS, dialed);
    char *ids[2] = {NULL, NULL};
    eg_reply_t *r = NULL;
    *stale = false;
    eg_status_t st = read_pairs(store, k_pairs, code, ids);
    if (st != EG_OK)
        goto out;
    /* A request key for each id read (a placeholder of the tenant's slot for none). */
    const char *argv[CALLIN_MATCH_ARGC] = {
        [CALLIN_MATCH_KEY_MEMO] = store_keys_add(&ks, STORE_CALLIN_MEMO, call_id),
        [CALLIN_MATCH_KEY_HELD] = store_keys_add(&ks, STORE_CALLIN_HELD, dialed),
        [CALLIN_MATCH_KEY_PAIRS] = k_pairs,
        [CALLIN_MATCH_KEY_BY_CODE] =
            store_keys_add(&ks, STORE_CALLIN_REQUEST, ids[0][0] ? ids[0] : "-"),
        [CALLIN_MATCH_KEY_BY_NUMBER] =
            store_keys_add(&ks, STORE_CALLIN_REQUEST, ids[1][0] ? ids[1] : "-"),
        [CALLIN_MATCH_ARG_CODE] = code,
        [CALLIN_MATCH_ARG_CALLER] = caller,
        [CALLIN_MATCH_ARG_MEMO_TTL_MS] = MATCH_MEMO_MS,
        [CALLIN_MATCH_ARG_ID_CODE] = ids[0],
        [CALLIN_MATCH_ARG_ID_NUMBER] = ids[1],
    };
    size_t lens[CALLIN_MATCH_ARGC];
    store_script_lens(argv, lens, CALLIN_MATCH_ARGC, "callin_match.lua", NULL, 0);
    st = eg_store_eval(store, script, CALLIN_MATCH_NKEYS, CALLIN_MATCH_ARGC, argv, lens, &r);
    if (st != EG_OK) {
        if (r && r->type == EG_REPLY_ERROR)
            eg_log_error("call-in match script failed: %s", r->str);
        goto out;
    }
    if (r->type != EG_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != EG_REPLY_INTEGER) {
        st = EG_EPROTO;
    } else if (r->element[0]->integer == CALLIN_MATCH_RET_STALE) {
        *stale = true;
        st = EG_ECONFLICT;
    } else if (r->elements != 2) {
        st = EG_EPROTO;
    } else if (r->element[0]->integer == CALLIN_MATCH_RET_MATCHED &&
               r->element[1]->type == EG_REPLY_ARRAY) {
        *out = record_from_reply(r->element[1]);
        st = *out ? EG_OK : EG_EPROTO;
    } else if (r->element[0]->integer == CALLIN_MATCH_RET_NO_MATCH &&
               r->element[1]->type == EG_REPLY_STRING) {
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
    free(ids[0]);
    free(ids[1]);
    store_keys_free(&ks);
    return st;
}

eg_status_t callin_store_match(eg_store_t *store, const char *tenant, const char *dialed,
                               const char *code, const char *caller, const char *call_id,
                               Eg__CallInRequest **out, const char **why)
{
    int script = -1;
    *out = NULL;
    *why = NULL;
    /* Registered once per connection; later calls find it by its source. */
    eg_status_t st = eg_store_script_add(store, callin_match_lua, &script);
    bool stale = true;
    for (int i = 0; st == EG_OK && stale && i < MATCH_TRIES; i++)
        st = match_once(store, script, tenant, dialed, code ? code : "", caller ? caller : "",
                        call_id, out, why, &stale);
    if (st == EG_ECONFLICT) {
        eg_log_warn("call-in match: the pair index of a number kept changing; giving up");
        st = EG_EUNAVAIL;
    }
    return st;
}

eg_status_t callin_store_erase_caller(eg_store_t *store, const char *tenant, const char *phone,
                                      int *erased)
{
    store_keys_t ks;
    store_keys_init(&ks, tenant);
    const char *match = store_keys_pattern(&ks, STORE_CALLIN_REQUEST);
    char cursor[32] = "0";
    eg_status_t st = EG_OK;
    *erased = 0;
    do {
        const char *scan[] = {"SCAN", cursor, "MATCH", match, "COUNT", "1000"};
        eg_reply_t *r = NULL;
        st = eg_store_command(store, 6, scan, NULL, &r);
        if (st == EG_OK &&
            (r->type != EG_REPLY_ARRAY || r->elements != 2 ||
             r->element[0]->type != EG_REPLY_STRING || r->element[1]->type != EG_REPLY_ARRAY))
            st = EG_EPROTO;
        if (st != EG_OK) {
            eg_reply_free(r);
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        const eg_reply_t *keys = r->element[1];
        for (size_t i = 0; st == EG_OK && i < keys->elements; i++) {
            const char *key = keys->element[i]->str;
            const char *get[] = {"HMGET", key, "from", "to", "code"};
            eg_reply_t *f = NULL;
            st = eg_store_command(store, 5, get, NULL, &f);
            if (st == EG_OK && f->type == EG_REPLY_ARRAY && f->elements == 3 &&
                f->element[0]->type == EG_REPLY_STRING && strcmp(f->element[0]->str, phone) == 0 &&
                f->element[1]->type == EG_REPLY_STRING) {
                const char *to = f->element[1]->str;
                const char *code = f->element[2]->type == EG_REPLY_STRING && f->element[2]->str[0]
                                       ? f->element[2]->str
                                       : "-";
                store_keys_t nk;
                store_keys_init(&nk, tenant);
                const char *del[] = {"DEL", key},
                           *hdel[] = {"HDEL", store_keys_add(&nk, STORE_CALLIN_PAIRS, to), code},
                           *zrem[] = {"ZREM", store_keys_add(&nk, STORE_CALLIN_HELD, to), code};
                const char *const *cmds[] = {del, hdel, zrem};
                int argcs[] = {2, 3, 3};
                eg_reply_t *d[3] = {NULL, NULL, NULL};
                st = eg_store_pipeline(store, 3, argcs, cmds, d);
                if (st == EG_OK)
                    (*erased)++;
                for (int j = 0; j < 3; j++)
                    eg_reply_free(d[j]);
                store_keys_free(&nk);
            }
            eg_reply_free(f);
        }
        eg_reply_free(r);
    } while (st == EG_OK && strcmp(cursor, "0") != 0);
    store_keys_free(&ks);
    return st;
}
