/* services/scheduler/callin.c against a real redis-server (ENGAGE_REDIS_URL): the allocation
 * script under collision pressure (a 1-digit code space, which the configuration never allows,
 * so that every code gets taken) and under contention (threads allocating at once, each on its
 * own connection), the index call.inbound reads, idempotent retries, expiry, and the match
 * script (a wrong code, no code, another caller, one request for one call). Each test uses its
 * own random tenant, so its keys are its own. */
#define _DEFAULT_SOURCE
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "callin.h"
#include "callin_store.h"
#include "store_keys.h"
#include "engage/ids.h"
#include "engage/store.h"

/* Every key name these tests read, from the store's own key builder (store_keys.h). */
static void key_of(char *out, size_t n, const char *tenant, store_family_t family, const char *rest)
{
    char *k = store_key(family, tenant, rest);
    cr_assert(strlen(k) < n, "key %s does not fit", k);
    snprintf(out, n, "%s", k);
    free(k);
}

static eg_store_t *open_store(int *script)
{
    const char *url = getenv("ENGAGE_REDIS_URL");
    cr_assert(url && *url, "ENGAGE_REDIS_URL is not set: run through `make test`");
    eg_store_t *s = NULL;
    cr_assert_eq(eg_store_open(&s, url, 2000), EG_OK);
    cr_assert_eq(callin_store_init(s, script), EG_OK);
    return s;
}

/* A group of n numbers built directly (no validation: the tests use tiny code spaces). */
static void group(callin_config_t *cfg, size_t n, bool codes, int digits, int expiry_s)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->name, sizeof cfg->name, "g");
    cfg->numbers = calloc(n, sizeof *cfg->numbers);
    for (size_t i = 0; i < n; i++)
        snprintf(cfg->numbers[i], sizeof cfg->numbers[i], "+1555000%04u", (unsigned)(i % 10000));
    cfg->n_numbers = n;
    cfg->use_access_codes = codes;
    cfg->access_code_digits = digits;
    cfg->expiry_s = expiry_s;
}

static eg_status_t allocate(eg_store_t *s, int script, const char *tenant,
                            const callin_config_t *cfg, const char *id, Eg__CallInRequest **out,
                            int64_t *retry)
{
    *out = NULL;
    return callin_store_allocate(s, script, tenant, cfg, id, "+15551112222", "svc", "{\"a\":1}",
                                 out, retry);
}

Test(callin_store, every_code_of_a_number_is_lent_once_then_the_number_is_full)
{
    int script;
    eg_store_t *s = open_store(&script);
    char tenant[EG_UUID_STR_LEN + 1], id[EG_UUID_STR_LEN + 1];
    eg_uuid_v7_str(tenant);
    callin_config_t cfg;
    group(&cfg, 1, true, 1, 60); /* 10 codes: "0".."9" */
    bool seen[10] = {false};
    int lent = 0;
    /* Random draws miss free codes now and then; retrying with fresh draws fills them all. */
    for (int attempt = 0; attempt < 500 && lent < 10; attempt++) {
        Eg__CallInRequest *r;
        eg_uuid_v7_str(id);
        eg_status_t st = allocate(s, script, tenant, &cfg, id, &r, NULL);
        if (st == EG_EUNAVAIL)
            continue;
        cr_assert_eq(st, EG_OK, "%s", eg_status_str(st));
        cr_assert_eq(strlen(r->access_code), 1, "code '%s'", r->access_code);
        int c = r->access_code[0] - '0';
        cr_assert(c >= 0 && c <= 9);
        cr_assert(!seen[c], "code %d lent twice while live", c);
        seen[c] = true;
        lent++;
        cr_expect_str_eq(r->to_phone, cfg.numbers[0]);
        cr_expect_str_eq(r->tenant_id, tenant);
        cr_expect_str_eq(r->group, "g");
        cr_expect_str_eq(r->from_phone, "+15551112222");
        cr_expect_str_eq(r->callback_service_id, "svc");
        cr_expect_str_eq(r->user_data_json, "{\"a\":1}");
        cr_expect_eq(r->expires_ms - r->created_ms, 60000);
        eg__call_in_request__free_unpacked(r, NULL);
    }
    cr_assert_eq(lent, 10, "every code of the number is lent once");
    Eg__CallInRequest *r;
    int64_t retry = -1;
    eg_uuid_v7_str(id);
    cr_expect_eq(allocate(s, script, tenant, &cfg, id, &r, &retry), EG_EUNAVAIL, "full");
    cr_expect(retry > 55000 && retry <= 60000, "retry after %lld ms", (long long)retry);
    callin_config_free(&cfg);
    eg_store_close(s);
}

Test(callin_store, the_pair_index_finds_the_request_and_a_retry_allocates_nothing)
{
    int script;
    eg_store_t *s = open_store(&script);
    char tenant[EG_UUID_STR_LEN + 1], id[EG_UUID_STR_LEN + 1], key[200];
    eg_uuid_v7_str(tenant);
    eg_uuid_v7_str(id);
    callin_config_t cfg;
    group(&cfg, 3, true, 4, 30);
    Eg__CallInRequest *a, *b;
    cr_assert_eq(allocate(s, script, tenant, &cfg, id, &a, NULL), EG_OK);
    cr_assert_eq(allocate(s, script, tenant, &cfg, id, &b, NULL), EG_OK);
    cr_expect_str_eq(a->to_phone, b->to_phone, "the same id answers the first result");
    cr_expect_str_eq(a->access_code, b->access_code);
    cr_expect_eq(a->expires_ms, b->expires_ms);

    /* The pair index: the dialled number's hash, code -> request id. */
    char *pairs = store_key(STORE_CALLIN_PAIRS, tenant, a->to_phone);
    const char *get[] = {"HGET", pairs, a->access_code};
    eg_reply_t *rep = NULL;
    cr_assert_eq(eg_store_command(s, 3, get, NULL, &rep), EG_OK);
    cr_expect(rep->type == EG_REPLY_STRING && strcmp(rep->str, id) == 0,
              "dialled number + code -> request id");
    eg_reply_free(rep);
    free(pairs);

    key_of(key, sizeof key, tenant, STORE_CALLIN_HELD, a->to_phone);
    const char *card[] = {"ZCARD", key};
    cr_assert_eq(eg_store_command(s, 2, card, NULL, &rep), EG_OK);
    cr_expect_eq(rep->integer, 1, "the retry took no second code");
    eg_reply_free(rep);

    key_of(key, sizeof key, tenant, STORE_CALLIN_REQUEST, id);
    const char *pttl[] = {"PTTL", key};
    cr_assert_eq(eg_store_command(s, 2, pttl, NULL, &rep), EG_OK);
    cr_expect(rep->integer > 25000 && rep->integer <= 30000,
              "record expires with the request (PTTL %lld)", rep->integer);
    eg_reply_free(rep);
    eg__call_in_request__free_unpacked(a, NULL);
    eg__call_in_request__free_unpacked(b, NULL);
    callin_config_free(&cfg);
    eg_store_close(s);
}

Test(callin_store, without_codes_a_number_is_lent_once_and_freed_by_expiry)
{
    int script;
    eg_store_t *s = open_store(&script);
    char tenant[EG_UUID_STR_LEN + 1], id[EG_UUID_STR_LEN + 1];
    eg_uuid_v7_str(tenant);
    callin_config_t cfg;
    group(&cfg, 3, false, 4, 1);
    Eg__CallInRequest *r[3];
    for (int i = 0; i < 3; i++) {
        eg_uuid_v7_str(id);
        cr_assert_eq(allocate(s, script, tenant, &cfg, id, &r[i], NULL), EG_OK, "request %d", i);
        cr_expect_str_eq(r[i]->access_code, "");
        for (int k = 0; k < i; k++)
            cr_expect_str_neq(r[i]->to_phone, r[k]->to_phone, "one number, one request");
    }
    char *pairs = store_key(STORE_CALLIN_PAIRS, tenant, r[0]->to_phone);
    const char *get[] = {"HGET", pairs, "-"};
    eg_reply_t *rep = NULL;
    cr_assert_eq(eg_store_command(s, 3, get, NULL, &rep), EG_OK);
    cr_expect(rep->type == EG_REPLY_STRING && strcmp(rep->str, r[0]->id) == 0,
              "dialled number + \"-\" -> request id");
    eg_reply_free(rep);

    Eg__CallInRequest *none;
    int64_t retry = -1;
    eg_uuid_v7_str(id);
    cr_expect_eq(allocate(s, script, tenant, &cfg, id, &none, &retry), EG_EUNAVAIL);
    cr_expect(retry > 0 && retry <= 1000, "retry after %lld ms", (long long)retry);

    struct timespec ts = {1, 100 * 1000000L};
    nanosleep(&ts, NULL);
    cr_assert_eq(eg_store_command(s, 3, get, NULL, &rep), EG_OK);
    cr_expect_eq(rep->type, EG_REPLY_NIL, "the index expired with the request");
    eg_reply_free(rep);
    for (int i = 0; i < 3; i++) {
        Eg__CallInRequest *again;
        eg_uuid_v7_str(id);
        cr_expect_eq(allocate(s, script, tenant, &cfg, id, &again, NULL), EG_OK,
                     "after expiry, request %d", i);
        if (again)
            eg__call_in_request__free_unpacked(again, NULL);
    }
    for (int i = 0; i < 3; i++)
        eg__call_in_request__free_unpacked(r[i], NULL);
    free(pairs);
    callin_config_free(&cfg);
    eg_store_close(s);
}

Test(callin_store, tenants_do_not_share_pairs)
{
    int script;
    eg_store_t *s = open_store(&script);
    char t1[EG_UUID_STR_LEN + 1], t2[EG_UUID_STR_LEN + 1], id[EG_UUID_STR_LEN + 1];
    eg_uuid_v7_str(t1);
    eg_uuid_v7_str(t2);
    callin_config_t cfg;
    group(&cfg, 1, false, 4, 30);
    Eg__CallInRequest *a, *b;
    eg_uuid_v7_str(id);
    cr_assert_eq(allocate(s, script, t1, &cfg, id, &a, NULL), EG_OK);
    eg_uuid_v7_str(id);
    cr_expect_eq(allocate(s, script, t2, &cfg, id, &b, NULL), EG_OK,
                 "the same number in another tenant is another pair");
    eg__call_in_request__free_unpacked(a, NULL);
    if (b)
        eg__call_in_request__free_unpacked(b, NULL);
    callin_config_free(&cfg);
    eg_store_close(s);
}

/* ---- allocation under contention ---- */

typedef struct {
    const callin_config_t *cfg;
    const char *tenant;
    int tries;
    eg_status_t st[16];
    char to[16][CALLIN_PHONE_MAX + 1], code[16][CALLIN_MAX_DIGITS + 1];
} allocator_t;

/* One scheduler worker: its own connection, allocating as fast as it can. */
static void *allocate_many(void *arg)
{
    allocator_t *a = arg;
    int script;
    eg_store_t *s = NULL;
    if (eg_store_open(&s, getenv("ENGAGE_REDIS_URL"), 5000) != EG_OK ||
        callin_store_init(s, &script) != EG_OK) {
        for (int i = 0; i < a->tries; i++)
            a->st[i] = EG_EIO;
        eg_store_close(s);
        return NULL;
    }
    for (int i = 0; i < a->tries; i++) {
        char id[EG_UUID_STR_LEN + 1];
        Eg__CallInRequest *r = NULL;
        eg_uuid_v7_str(id);
        a->st[i] = allocate(s, script, a->tenant, a->cfg, id, &r, NULL);
        if (r) {
            snprintf(a->to[i], sizeof a->to[i], "%s", r->to_phone);
            snprintf(a->code[i], sizeof a->code[i], "%s", r->access_code);
            eg__call_in_request__free_unpacked(r, NULL);
        }
    }
    eg_store_close(s);
    return NULL;
}

#define ALLOCATORS 8

static void allocate_at_once(allocator_t *a, const callin_config_t *cfg, const char *tenant,
                             int tries)
{
    pthread_t th[ALLOCATORS];
    for (int i = 0; i < ALLOCATORS; i++) {
        memset(&a[i], 0, sizeof a[i]);
        a[i].cfg = cfg;
        a[i].tenant = tenant;
        a[i].tries = tries;
    }
    for (int i = 0; i < ALLOCATORS; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, allocate_many, &a[i]), 0);
    for (int i = 0; i < ALLOCATORS; i++)
        pthread_join(th[i], NULL);
}

Test(callin_store, workers_allocating_at_once_never_lend_a_number_twice)
{
    char tenant[EG_UUID_STR_LEN + 1];
    eg_uuid_v7_str(tenant);
    callin_config_t cfg;
    group(&cfg, 6, false, 4, 60); /* without codes: 6 numbers, 6 requests at most */
    allocator_t a[ALLOCATORS];
    allocate_at_once(a, &cfg, tenant, 3);
    char lent[ALLOCATORS * 3][CALLIN_PHONE_MAX + 1];
    int n = 0;
    for (int i = 0; i < ALLOCATORS; i++) {
        for (int j = 0; j < a[i].tries; j++) {
            if (a[i].st[j] == EG_EUNAVAIL)
                continue;
            cr_assert_eq(a[i].st[j], EG_OK, "%s", eg_status_str(a[i].st[j]));
            for (int k = 0; k < n; k++)
                cr_assert_str_neq(lent[k], a[i].to[j], "%s lent twice", a[i].to[j]);
            snprintf(lent[n++], sizeof lent[0], "%s", a[i].to[j]);
        }
    }
    cr_expect_eq(n, 6, "every number lent exactly once, the other requests refused");
    callin_config_free(&cfg);
}

Test(callin_store, workers_allocating_codes_at_once_never_lend_a_code_twice)
{
    char tenant[EG_UUID_STR_LEN + 1], key[200];
    eg_uuid_v7_str(tenant);
    callin_config_t cfg;
    group(&cfg, 1, true, 2, 60); /* one number, 100 codes */
    allocator_t a[ALLOCATORS];
    allocate_at_once(a, &cfg, tenant, 8);
    bool seen[100] = {false};
    int n = 0;
    for (int i = 0; i < ALLOCATORS; i++) {
        for (int j = 0; j < a[i].tries; j++) {
            if (a[i].st[j] == EG_EUNAVAIL)
                continue; /* all 16 random draws taken: rare below 64% occupancy */
            cr_assert_eq(a[i].st[j], EG_OK, "%s", eg_status_str(a[i].st[j]));
            int c = atoi(a[i].code[j]);
            cr_assert(c >= 0 && c < 100 && strlen(a[i].code[j]) == 2, "code '%s'", a[i].code[j]);
            cr_assert(!seen[c], "code %s lent twice", a[i].code[j]);
            seen[c] = true;
            n++;
        }
    }
    cr_expect(n >= 56, "%d of 64 requests found a free code", n);
    int script;
    eg_store_t *s = open_store(&script);
    key_of(key, sizeof key, tenant, STORE_CALLIN_HELD, cfg.numbers[0]);
    const char *card[] = {"ZCARD", key};
    eg_reply_t *rep = NULL;
    cr_assert_eq(eg_store_command(s, 2, card, NULL, &rep), EG_OK);
    cr_expect_eq(rep->integer, n, "the number holds exactly the codes lent");
    eg_reply_free(rep);
    callin_config_free(&cfg);
    eg_store_close(s);
}

/* ---- matching an inbound call ---- */

static eg_status_t match(eg_store_t *s, const char *tenant, const char *dialed, const char *code,
                         const char *caller, Eg__CallInRequest **out, const char **why)
{
    char call_id[EG_UUID_STR_LEN + 1];
    eg_uuid_v7_str(call_id); /* a new call each time */
    return callin_store_match(s, tenant, dialed, code, caller, call_id, out, why);
}

static bool still_allocated(eg_store_t *s, const char *tenant, const Eg__CallInRequest *r)
{
    char key[200];
    const char *code = r->access_code[0] ? r->access_code : "-";
    key_of(key, sizeof key, tenant, STORE_CALLIN_PAIRS, r->to_phone);
    const char *get[] = {"HGET", key, code};
    eg_reply_t *rep = NULL;
    cr_assert_eq(eg_store_command(s, 3, get, NULL, &rep), EG_OK);
    bool pair = rep->type == EG_REPLY_STRING && strcmp(rep->str, r->id) == 0;
    eg_reply_free(rep);
    key_of(key, sizeof key, tenant, STORE_CALLIN_HELD, r->to_phone);
    const char *score[] = {"ZSCORE", key, code};
    cr_assert_eq(eg_store_command(s, 3, score, NULL, &rep), EG_OK);
    bool held = rep->type != EG_REPLY_NIL;
    eg_reply_free(rep);
    key_of(key, sizeof key, tenant, STORE_CALLIN_REQUEST, r->id);
    const char *exists[] = {"EXISTS", key};
    cr_assert_eq(eg_store_command(s, 2, exists, NULL, &rep), EG_OK);
    bool record = rep->integer == 1;
    eg_reply_free(rep);
    return pair && held && record;
}

Test(callin_store, a_wrong_access_code_matches_nothing_and_the_right_one_then_matches)
{
    int script;
    eg_store_t *s = open_store(&script);
    char tenant[EG_UUID_STR_LEN + 1], id[EG_UUID_STR_LEN + 1], wrong[8];
    eg_uuid_v7_str(tenant);
    eg_uuid_v7_str(id);
    callin_config_t cfg;
    group(&cfg, 1, true, 4, 60);
    Eg__CallInRequest *r, *m = NULL;
    cr_assert_eq(allocate(s, script, tenant, &cfg, id, &r, NULL), EG_OK);
    snprintf(wrong, sizeof wrong, "%04d", (atoi(r->access_code) + 1) % 10000);

    const char *why = NULL;
    cr_expect_eq(match(s, tenant, r->to_phone, wrong, "+15551112222", &m, &why), EG_ENOTFOUND);
    cr_expect_null(m);
    cr_expect(why && strstr(why, "access code matches no live"), "why: %s", why ? why : "");
    cr_expect(still_allocated(s, tenant, r), "the request keeps its pair");

    why = NULL;
    cr_expect_eq(match(s, tenant, r->to_phone, "", "+15551112222", &m, &why), EG_ENOTFOUND);
    cr_expect(why && strstr(why, "needs an access code"), "why: %s", why ? why : "");
    cr_expect(still_allocated(s, tenant, r));

    cr_assert_eq(match(s, tenant, r->to_phone, r->access_code, "+15551112222", &m, &why), EG_OK);
    cr_expect_str_eq(m->id, id, "the right code finds the request");
    cr_expect_str_eq(m->access_code, r->access_code);
    eg__call_in_request__free_unpacked(m, NULL);
    eg__call_in_request__free_unpacked(r, NULL);
    callin_config_free(&cfg);
    eg_store_close(s);
}

Test(callin_store, a_request_routes_one_call_and_a_repeat_of_that_call_gets_it_again)
{
    int script;
    eg_store_t *s = open_store(&script);
    char tenant[EG_UUID_STR_LEN + 1], id[EG_UUID_STR_LEN + 1], call[EG_UUID_STR_LEN + 1];
    eg_uuid_v7_str(tenant);
    eg_uuid_v7_str(id);
    eg_uuid_v7_str(call);
    callin_config_t cfg;
    group(&cfg, 1, true, 4, 60);
    Eg__CallInRequest *r, *m = NULL;
    const char *why = NULL;
    cr_assert_eq(allocate(s, script, tenant, &cfg, id, &r, NULL), EG_OK);
    cr_assert_eq(
        callin_store_match(s, tenant, r->to_phone, r->access_code, "+15551112222", call, &m, &why),
        EG_OK);
    eg__call_in_request__free_unpacked(m, NULL);
    m = NULL;
    cr_expect(!still_allocated(s, tenant, r), "pair, record and number entry consumed");

    cr_expect_eq(match(s, tenant, r->to_phone, r->access_code, "+15551112222", &m, &why),
                 EG_ENOTFOUND, "a second call with the same code is not routed");
    cr_expect_null(m);
    cr_assert_eq(
        callin_store_match(s, tenant, r->to_phone, r->access_code, "+15551112222", call, &m, &why),
        EG_OK, "the same call read again gets its answer again");
    cr_expect_str_eq(m->id, id);
    eg__call_in_request__free_unpacked(m, NULL);
    eg__call_in_request__free_unpacked(r, NULL);
    callin_config_free(&cfg);
    eg_store_close(s);
}

Test(callin_store, without_codes_only_the_requesting_caller_matches)
{
    int script;
    eg_store_t *s = open_store(&script);
    char tenant[EG_UUID_STR_LEN + 1], id[EG_UUID_STR_LEN + 1];
    eg_uuid_v7_str(tenant);
    eg_uuid_v7_str(id);
    callin_config_t cfg;
    group(&cfg, 1, false, 4, 60);
    Eg__CallInRequest *r, *m = NULL;
    const char *why = NULL;
    cr_assert_eq(allocate(s, script, tenant, &cfg, id, &r, NULL), EG_OK);
    cr_expect_eq(match(s, tenant, r->to_phone, "", "+15559999999", &m, &why), EG_ENOTFOUND);
    cr_expect(why && strstr(why, "fromPhoneNumber"), "why: %s", why ? why : "");
    cr_expect(still_allocated(s, tenant, r), "another caller does not consume the request");
    cr_assert_eq(match(s, tenant, r->to_phone, "", "+15551112222", &m, &why), EG_OK);
    cr_expect_str_eq(m->id, id);
    eg__call_in_request__free_unpacked(m, NULL);
    eg__call_in_request__free_unpacked(r, NULL);
    callin_config_free(&cfg);
    eg_store_close(s);
}

Test(callin_store, an_expired_request_matches_nothing_and_its_code_is_free_again)
{
    int script;
    eg_store_t *s = open_store(&script);
    char tenant[EG_UUID_STR_LEN + 1], id[EG_UUID_STR_LEN + 1];
    eg_uuid_v7_str(tenant);
    eg_uuid_v7_str(id);
    callin_config_t cfg;
    group(&cfg, 1, true, 1, 1); /* 10 codes, 1 s */
    Eg__CallInRequest *r, *m = NULL;
    const char *why = NULL;
    cr_assert_eq(allocate(s, script, tenant, &cfg, id, &r, NULL), EG_OK);
    struct timespec ts = {1, 100 * 1000000L};
    nanosleep(&ts, NULL);
    cr_expect_eq(match(s, tenant, r->to_phone, r->access_code, "+15551112222", &m, &why),
                 EG_ENOTFOUND, "expired");
    cr_expect(why && strstr(why, "no live call-in request"), "why: %s", why ? why : "");

    /* Every code of the number can be lent again, the expired one included. */
    bool seen[10] = {false};
    int lent = 0;
    for (int attempt = 0; attempt < 500 && lent < 10; attempt++) {
        Eg__CallInRequest *again = NULL;
        eg_uuid_v7_str(id);
        if (allocate(s, script, tenant, &cfg, id, &again, NULL) != EG_OK)
            continue;
        int c = again->access_code[0] - '0';
        cr_assert(!seen[c], "code %d lent twice", c);
        seen[c] = true;
        lent++;
        eg__call_in_request__free_unpacked(again, NULL);
    }
    cr_expect_eq(lent, 10, "the expired request's code is among them");
    eg__call_in_request__free_unpacked(r, NULL);
    callin_config_free(&cfg);
    eg_store_close(s);
}
