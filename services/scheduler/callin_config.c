/* Call-in group configuration: parsing and validating a group (../shared/API.md, call-in
 * groups) into a callin_config_t, and the effective configuration back as JSON. Plain
 * functions, no server. */
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
#include "services.h"

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
