/* Key families of the scheduler's Redis data: the one table of their names (see store_keys.h
 * for the layout) and the one builder. Keys are built on the heap, exactly as long as they
 * are, so nothing is ever cut short: a key name that does not fit a buffer cannot silently
 * become another key. */
#include "store_keys.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage/log.h"
#include "engage/mem.h"

/* A key asked of a family the wrong way is a programming error: say so, and stop. */
#define WRONG(...) (eg_log_error(__VA_ARGS__), abort())

static const struct {
    const char *name;
    int has_rest;
} families[STORE_FAMILIES] = {
    [STORE_RECORD] = {"cb", 1},
    [STORE_DUE] = {"due", 1},
    [STORE_QUEUE] = {"q", 1},
    [STORE_WATCH] = {"w", 1},
    [STORE_SLOTS] = {"slots", 1},
    [STORE_OUTBOX] = {"outbox", 0},
    [STORE_NUMBER] = {"n", 1},
    [STORE_IDEM] = {"idem", 1},
    [STORE_DAILY] = {"daily", 1},
    [STORE_SERVED] = {"served", 1},
    [STORE_STATS] = {"stats", 1},
    [STORE_QSTATS] = {"qstats", 1},
    [STORE_CALLIN_REQUEST] = {"ci:req", 1},
    [STORE_CALLIN_HELD] = {"ci:n", 1},
    [STORE_CALLIN_PAIRS] = {"ci:pairs", 1},
    [STORE_CALLIN_MEMO] = {"ci:call", 1},
};

void store_keys_init(store_keys_t *ks, const char *tenant)
{
    memset(ks, 0, sizeof *ks);
    ks->tenant = tenant;
}

static const char *keep(store_keys_t *ks, char *key)
{
    if (ks->n == ks->cap) {
        ks->cap = ks->cap ? ks->cap * 2 : 8;
        ks->keys = eg_xrealloc(ks->keys, ks->cap * sizeof *ks->keys);
    }
    ks->keys[ks->n++] = key;
    return key;
}

/* "eg:{t:<tenant>}:<name>" then ":<a>" and ":<b>" when given. */
static char *build(const char *tenant, store_family_t f, const char *a, const char *b)
{
    if ((unsigned)f >= STORE_FAMILIES)
        WRONG("store_keys: unknown key family %d", (int)f);
    const char *name = families[f].name;
    size_t len = strlen("eg:{t:}:") + strlen(tenant) + strlen(name) + (a ? 1 + strlen(a) : 0) +
                 (b ? 1 + strlen(b) : 0);
    char *k = eg_xmalloc(len + 1);
    int n = snprintf(k, len + 1, "eg:{t:%s}:%s%s%s%s%s", tenant, name, a ? ":" : "", a ? a : "",
                     b ? ":" : "", b ? b : "");
    if (n < 0 || (size_t)n != len)
        WRONG("store_keys: key of family %s built wrong", name);
    return k;
}

const char *store_keys_add(store_keys_t *ks, store_family_t f, const char *rest)
{
    return keep(ks, store_key(f, ks->tenant, rest));
}

char *store_key(store_family_t f, const char *tenant, const char *rest)
{
    if ((unsigned)f < STORE_FAMILIES && families[f].has_rest != (rest != NULL))
        WRONG("store_keys: family %s %s a rest", families[f].name,
              families[f].has_rest ? "needs" : "has no");
    return build(tenant, f, rest, NULL);
}

void store_script_lens(const char *const *argv, size_t *lens, size_t n, const char *script,
                       const int *binary, size_t nbinary)
{
    for (size_t i = 0; i < n; i++) {
        if (!argv[i])
            WRONG("%s: argument %zu is not set (C and the script's header disagree)", script, i);
        bool bytes = false;
        for (size_t b = 0; b < nbinary && !bytes; b++)
            bytes = binary[b] >= 0 && (size_t)binary[b] == i;
        if (!bytes)
            lens[i] = strlen(argv[i]);
    }
}

const char *store_keys_daily(store_keys_t *ks, const char *service, int64_t day)
{
    char d[24];
    snprintf(d, sizeof d, "%" PRId64, day);
    return keep(ks, build(ks->tenant, STORE_DAILY, service, d));
}

const char *store_keys_pattern(store_keys_t *ks, store_family_t f)
{
    return keep(ks, build(ks->tenant, f, families[f].has_rest ? "*" : NULL, NULL));
}

size_t store_keys_prefix_len(const store_keys_t *ks, store_family_t f)
{
    return strlen("eg:{t:}:") + strlen(ks->tenant) + strlen(families[f].name) + 1;
}

void store_keys_free(store_keys_t *ks)
{
    for (size_t i = 0; i < ks->n; i++)
        free(ks->keys[i]);
    free(ks->keys);
    memset(ks, 0, sizeof *ks);
}

void store_due_member(char *out, const char *tenant, const char *service)
{
    snprintf(out, STORE_MEMBER_MAX, "%s|%s", tenant, service);
}
