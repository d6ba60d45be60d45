/* services/scheduler/callin.c against a real redis-server (ENGAGE_REDIS_URL): the allocation
 * script under collision pressure (a 1-digit code space, which the configuration never allows,
 * so that every code gets taken), the index call.inbound will read, idempotent retries, and
 * expiry. Each test uses its own random tenant, so its keys are its own. */
#define _DEFAULT_SOURCE
#include <criterion/criterion.h>

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
    cr_assert_eq(eg_store_command(s, 2, get, NULL, &rep), EG_OK);
    cr_expect(rep->type == EG_REPLY_STRING && strcmp(rep->str, id) == 0,
              "dialled number + code -> request id");
    eg_reply_free(rep);
    free(pairs);

    snprintf(key, sizeof key, "eg:{t:%s}:ci:n:%s", tenant, a->to_phone);
    const char *card[] = {"ZCARD", key};
    cr_assert_eq(eg_store_command(s, 2, card, NULL, &rep), EG_OK);
    cr_expect_eq(rep->integer, 1, "the retry took no second code");
    eg_reply_free(rep);

    snprintf(key, sizeof key, "eg:{t:%s}:ci:req:%s", tenant, id);
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
    cr_assert_eq(eg_store_command(s, 2, get, NULL, &rep), EG_OK);
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
    cr_assert_eq(eg_store_command(s, 2, get, NULL, &rep), EG_OK);
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
