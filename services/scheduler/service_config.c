/* Validation of a callback service's configuration. Every rejection names the field and the
 * rule, because the message goes straight back to whoever sent the JSON. Business hours,
 * weekly capacity and holidays are checked for shape here; their time-zone arithmetic lives in
 * the hours module. */
#include "service_config.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage/mem.h"
#include "engage/names.h"
#include "engage/timeutil.h"
#include "engage/tz.h"

/* Read an optional integer field in [min, max]; absent keeps *out. */
static eg_status_t int_field(const eg_json_t *obj, const char *key, const char *path, long min,
                             long max, int *out, char *err, size_t errlen)
{
    eg_json_t *v = eg_json_get(obj, key);
    if (!v)
        return EG_OK;
    if (!eg_json_is_integer(v) || eg_json_int(v) < min || eg_json_int(v) > max) {
        snprintf(err, errlen, "%s must be an integer from %ld to %ld", path, min, max);
        return EG_EINVAL;
    }
    *out = (int)eg_json_int(v);
    return EG_OK;
}

static eg_status_t bool_field(const eg_json_t *obj, const char *key, bool *out, char *err,
                              size_t errlen)
{
    eg_json_t *v = eg_json_get(obj, key);
    if (!v)
        return EG_OK;
    if (!eg_json_is_bool(v)) {
        snprintf(err, errlen, "%s must be true or false", key);
        return EG_EINVAL;
    }
    *out = eg_json_true(v);
    return EG_OK;
}

static eg_status_t str_field(const eg_json_t *obj, const char *key, char *out, size_t outlen,
                             char *err, size_t errlen)
{
    eg_json_t *v = eg_json_get(obj, key);
    if (!v)
        return EG_OK;
    if (!eg_json_is_string(v) || eg_json_str_len(v) == 0 || eg_json_str_len(v) >= outlen) {
        snprintf(err, errlen, "%s must be a non-empty string of at most %zu characters", key,
                 outlen - 1);
        return EG_EINVAL;
    }
    snprintf(out, outlen, "%s", eg_json_str(v));
    return EG_OK;
}

/* "HH:MM" with HH 00-23 and MM 00-59; as the end of an interval also "24:00". */
static bool hhmm_valid_as(const char *s, bool end)
{
    if (!s || strlen(s) != 5 || s[2] != ':')
        return false;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9'))
            return false;
    int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
    return (h < 24 && m < 60) || (end && h == 24 && m == 0);
}

static bool hhmm_valid(const char *s)
{
    return hhmm_valid_as(s, false);
}

static eg_status_t intervals_valid(const eg_json_t *list, const char *path, char *err,
                                   size_t errlen)
{
    if (!eg_json_is_array(list)) {
        snprintf(err, errlen, "%s must be an array of [\"HH:MM\", \"HH:MM\"] intervals", path);
        return EG_EINVAL;
    }
    for (size_t i = 0; i < eg_json_array_size(list); i++) {
        eg_json_t *iv = eg_json_array_get(list, i);
        if (!eg_json_is_array(iv) || eg_json_array_size(iv) != 2 ||
            !hhmm_valid_as(eg_json_str(eg_json_array_get(iv, 0)), false) ||
            !hhmm_valid_as(eg_json_str(eg_json_array_get(iv, 1)), true)) {
            snprintf(err, errlen, "%s[%zu] must be [\"HH:MM\", \"HH:MM\"]", path, i);
            return EG_EINVAL;
        }
    }
    return EG_OK;
}

static const char *const weekdays[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

static bool is_weekday(const char *k)
{
    for (int i = 0; i < 7; i++)
        if (strcmp(k, weekdays[i]) == 0)
            return true;
    return false;
}

static eg_status_t hours_valid(const eg_json_t *bh, char *err, size_t errlen)
{
    if (!eg_json_is_object(bh)) {
        snprintf(err, errlen, "businessHours must be an object keyed by mon..sun");
        return EG_EINVAL;
    }
    void *it = NULL;
    const char *k;
    eg_json_t *v;
    while (eg_json_object_next(bh, &it, &k, &v)) {
        char path[64];
        if (!is_weekday(k)) {
            snprintf(err, errlen, "businessHours.%.16s is not a weekday (mon..sun)", k);
            return EG_EINVAL;
        }
        snprintf(path, sizeof path, "businessHours.%s", k);
        if (intervals_valid(v, path, err, errlen) != EG_OK)
            return EG_EINVAL;
    }
    return EG_OK;
}

/* "YYYY-MM-DD", a real calendar date. */
static bool date_valid(const char *s)
{
    int64_t day;
    return s && eg_date_parse(s, strlen(s), &day) == EG_OK;
}

static eg_status_t days_valid(const eg_json_t *root, char *err, size_t errlen)
{
    eg_json_t *h = eg_json_get(root, "holidays");
    if (h) {
        if (!eg_json_is_array(h)) {
            snprintf(err, errlen, "holidays must be an array of \"YYYY-MM-DD\" dates");
            return EG_EINVAL;
        }
        for (size_t i = 0; i < eg_json_array_size(h); i++) {
            if (!date_valid(eg_json_str(eg_json_array_get(h, i)))) {
                snprintf(err, errlen, "holidays[%zu] must be a date \"YYYY-MM-DD\"", i);
                return EG_EINVAL;
            }
        }
    }
    eg_json_t *sd = eg_json_get(root, "specialDays");
    if (sd) {
        if (!eg_json_is_object(sd)) {
            snprintf(err, errlen, "specialDays must map \"YYYY-MM-DD\" to a list of intervals");
            return EG_EINVAL;
        }
        void *it = NULL;
        const char *day;
        eg_json_t *v;
        while (eg_json_object_next(sd, &it, &day, &v)) {
            char path[48];
            if (!date_valid(day)) {
                snprintf(err, errlen, "specialDays.%.12s is not a date \"YYYY-MM-DD\"", day);
                return EG_EINVAL;
            }
            snprintf(path, sizeof path, "specialDays.%s", day);
            if (intervals_valid(v, path, err, errlen) != EG_OK)
                return EG_EINVAL;
        }
    }
    return EG_OK;
}

/* numbers: {"permittedPrefixes": ["+1", ...], "blockedPatterns": ["^\\+1900", ...]} */
static eg_status_t numbers_valid(const eg_json_t *root, char *err, size_t errlen)
{
    eg_json_t *n = eg_json_get(root, "numbers");
    if (!n)
        return EG_OK;
    if (!eg_json_is_object(n)) {
        snprintf(err, errlen,
                 "numbers must be an object with permittedPrefixes and blockedPatterns");
        return EG_EINVAL;
    }
    eg_json_t *pre = eg_json_get(n, "permittedPrefixes");
    if (pre) {
        if (!eg_json_is_array(pre) || eg_json_array_size(pre) > 1000)
            goto bad_prefix;
        for (size_t i = 0; i < eg_json_array_size(pre); i++) {
            const char *p = eg_json_str(eg_json_array_get(pre, i));
            if (!p || !*p || strlen(p) > 16)
                goto bad_prefix;
        }
    }
    eg_json_t *pat = eg_json_get(n, "blockedPatterns");
    if (pat) {
        if (!eg_json_is_array(pat) || eg_json_array_size(pat) > 100) {
            snprintf(err, errlen,
                     "numbers.blockedPatterns must be an array of at most 100 patterns");
            return EG_EINVAL;
        }
        for (size_t i = 0; i < eg_json_array_size(pat); i++) {
            const char *p = eg_json_str(eg_json_array_get(pat, i));
            regex_t re;
            if (!p || strlen(p) > 200 || regcomp(&re, p, REG_EXTENDED | REG_NOSUB) != 0) {
                snprintf(err, errlen,
                         "numbers.blockedPatterns[%zu] must be a POSIX extended regular expression "
                         "of at most 200 characters",
                         i);
                return EG_EINVAL;
            }
            regfree(&re);
        }
    }
    return EG_OK;
bad_prefix:
    snprintf(err, errlen,
             "numbers.permittedPrefixes must be an array of non-empty strings of at most 16 "
             "characters");
    return EG_EINVAL;
}

bool svc_config_number_allowed(const svc_config_t *cfg, const char *phone)
{
    eg_json_t *n = eg_json_get(cfg->raw, "numbers");
    eg_json_t *pre = eg_json_get(n, "permittedPrefixes");
    if (pre && eg_json_array_size(pre) > 0) {
        bool ok = false;
        for (size_t i = 0; !ok && i < eg_json_array_size(pre); i++) {
            const char *p = eg_json_str(eg_json_array_get(pre, i));
            ok = p && strncmp(phone, p, strlen(p)) == 0;
        }
        if (!ok)
            return false;
    }
    eg_json_t *pat = eg_json_get(n, "blockedPatterns");
    for (size_t i = 0; i < eg_json_array_size(pat); i++) {
        regex_t re;
        if (regcomp(&re, eg_json_str(eg_json_array_get(pat, i)), REG_EXTENDED | REG_NOSUB) != 0)
            continue;
        int m = regexec(&re, phone, 0, NULL, 0);
        regfree(&re);
        if (m == 0)
            return false;
    }
    return true;
}

static eg_status_t capacity_valid(const eg_json_t *cap, svc_config_t *cfg, char *err, size_t errlen)
{
    if (!eg_json_is_object(cap)) {
        snprintf(err, errlen, "capacity must be an object with \"default\" and \"weekly\"");
        return EG_EINVAL;
    }
    if (int_field(cap, "default", "capacity.default", 0, 100000, &cfg->capacity_default, err,
                  errlen) != EG_OK)
        return EG_EINVAL;
    eg_json_t *weekly = eg_json_get(cap, "weekly");
    if (!weekly)
        return EG_OK;
    void *it = NULL;
    const char *day;
    eg_json_t *slots;
    if (!eg_json_is_object(weekly))
        goto bad;
    while (eg_json_object_next(weekly, &it, &day, &slots)) {
        if (!is_weekday(day) || !eg_json_is_object(slots))
            goto bad;
        void *it2 = NULL;
        const char *hhmm;
        eg_json_t *n;
        while (eg_json_object_next(slots, &it2, &hhmm, &n)) {
            if (!hhmm_valid(hhmm) || !eg_json_is_integer(n) || eg_json_int(n) < 0 ||
                eg_json_int(n) > 100000) {
                snprintf(err, errlen,
                         "capacity.weekly.%.3s.%.8s must be an integer from 0 to 100000 keyed by "
                         "\"HH:MM\"",
                         day, hhmm);
                return EG_EINVAL;
            }
        }
    }
    return EG_OK;
bad:
    snprintf(err, errlen, "capacity.weekly must map mon..sun to {\"HH:MM\": capacity}");
    return EG_EINVAL;
}

eg_status_t svc_config_parse(const char *name, const char *text, size_t len, svc_config_t *cfg,
                             char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    eg_status_t st = EG_EINVAL;
    char jerr[160], when_closed[16] = "wait";
    if (!eg_name_valid(name)) {
        snprintf(err, errlen, "service name must be " EG_NAME_RULE);
        return EG_EINVAL;
    }
    snprintf(cfg->name, sizeof cfg->name, "%s", name);
    snprintf(cfg->timezone, sizeof cfg->timezone, "UTC");
    cfg->slot_minutes = 30;
    cfg->capacity_default = 10;
    cfg->horizon_days = 14;
    cfg->immediate_enabled = true;
    cfg->scheduled_enabled = true;
    cfg->max_active_per_number = 2;
    cfg->max_per_number_per_day = 6;
    cfg->retry_max_attempts = 3;
    cfg->retry_delay_s = 300;
    cfg->retry_timeout_s = 14400;
    snprintf(cfg->virtual_queue, sizeof cfg->virtual_queue, "%s", name);
    snprintf(cfg->dial_mode, sizeof cfg->dial_mode, "customer-first");
    cfg->open_24x7 = true;

    eg_json_t *root = eg_json_parse(text, len, 8, jerr, sizeof jerr);
    if (!root) {
        snprintf(err, errlen, "body: %s", jerr);
        goto out;
    }
    cfg->raw = root;
    if (!eg_json_is_object(root)) {
        snprintf(err, errlen, "body must be a JSON object");
        goto out;
    }
    if (str_field(root, "timezone", cfg->timezone, sizeof cfg->timezone, err, errlen) ||
        int_field(root, "slotMinutes", "slotMinutes", 5, 240, &cfg->slot_minutes, err, errlen) ||
        int_field(root, "horizonDays", "horizonDays", 1, 14, &cfg->horizon_days, err, errlen) ||
        bool_field(root, "immediateEnabled", &cfg->immediate_enabled, err, errlen) ||
        bool_field(root, "scheduledEnabled", &cfg->scheduled_enabled, err, errlen) ||
        int_field(root, "maxActivePerNumber", "maxActivePerNumber", 1, 1000,
                  &cfg->max_active_per_number, err, errlen) ||
        int_field(root, "maxPerNumberPerDay", "maxPerNumberPerDay", 1, 10000,
                  &cfg->max_per_number_per_day, err, errlen) ||
        str_field(root, "virtualQueue", cfg->virtual_queue, sizeof cfg->virtual_queue, err,
                  errlen) ||
        int_field(root, "priority", "priority", -1000000, 1000000, &cfg->priority, err, errlen) ||
        str_field(root, "dialMode", cfg->dial_mode, sizeof cfg->dial_mode, err, errlen) ||
        str_field(root, "closedAtDispatch", when_closed, sizeof when_closed, err, errlen))
        goto out;
    if (strcmp(when_closed, "wait") != 0 && strcmp(when_closed, "complete") != 0) {
        snprintf(err, errlen, "closedAtDispatch must be \"wait\" or \"complete\"");
        goto out;
    }
    cfg->complete_when_closed = strcmp(when_closed, "complete") == 0;
    if (!eg_tz_valid(cfg->timezone)) {
        snprintf(err, errlen, "timezone: '%.40s' is not a known time zone (e.g. America/New_York)",
                 cfg->timezone);
        goto out;
    }
    if (days_valid(root, err, errlen) != EG_OK || numbers_valid(root, err, errlen) != EG_OK)
        goto out;
    if (1440 % cfg->slot_minutes != 0) {
        snprintf(err, errlen, "slotMinutes must divide 1440 (a day) evenly");
        goto out;
    }
    if (strcmp(cfg->dial_mode, "customer-first") != 0 &&
        strcmp(cfg->dial_mode, "agent-first") != 0) {
        snprintf(err, errlen, "dialMode must be \"customer-first\" or \"agent-first\"");
        goto out;
    }
    eg_json_t *cap = eg_json_get(root, "capacity");
    if (cap && capacity_valid(cap, cfg, err, errlen) != EG_OK)
        goto out;
    eg_json_t *retry = eg_json_get(root, "retry");
    if (retry) {
        if (!eg_json_is_object(retry)) {
            snprintf(err, errlen, "retry must be an object with maxAttempts and delaySeconds");
            goto out;
        }
        if (int_field(retry, "maxAttempts", "retry.maxAttempts", 1, 10, &cfg->retry_max_attempts,
                      err, errlen) ||
            int_field(retry, "delaySeconds", "retry.delaySeconds", 1, 86400, &cfg->retry_delay_s,
                      err, errlen) ||
            int_field(retry, "attemptTimeoutSeconds", "retry.attemptTimeoutSeconds", 5, 604800,
                      &cfg->retry_timeout_s, err, errlen))
            goto out;
    }
    eg_json_t *bh = eg_json_get(root, "businessHours");
    if (bh) {
        if (hours_valid(bh, err, errlen) != EG_OK)
            goto out;
        cfg->open_24x7 = false;
    }
    st = EG_OK;
out:
    if (st != EG_OK)
        svc_config_free(cfg);
    return st;
}

char *svc_config_to_json(const svc_config_t *cfg)
{
    eg_json_t *o = eg_json_object();
    eg_json_set_str(o, "name", cfg->name);
    eg_json_set_str(o, "timezone", cfg->timezone);
    eg_json_set_int(o, "slotMinutes", cfg->slot_minutes);
    eg_json_t *cap = eg_json_object();
    eg_json_set_int(cap, "default", cfg->capacity_default);
    eg_json_t *weekly = eg_json_get(eg_json_get(cfg->raw, "capacity"), "weekly");
    if (weekly)
        eg_json_set(cap, "weekly", eg_json_ref(weekly));
    eg_json_set(o, "capacity", cap);
    eg_json_t *bh = eg_json_get(cfg->raw, "businessHours");
    if (bh)
        eg_json_set(o, "businessHours", eg_json_ref(bh));
    const char *passthrough[] = {"holidays", "specialDays", "numbers"};
    for (size_t i = 0; i < sizeof passthrough / sizeof passthrough[0]; i++) {
        eg_json_t *v = eg_json_get(cfg->raw, passthrough[i]);
        if (v)
            eg_json_set(o, passthrough[i], eg_json_ref(v));
    }
    eg_json_set_int(o, "horizonDays", cfg->horizon_days);
    eg_json_set_bool(o, "immediateEnabled", cfg->immediate_enabled);
    eg_json_set_bool(o, "scheduledEnabled", cfg->scheduled_enabled);
    eg_json_set_int(o, "maxActivePerNumber", cfg->max_active_per_number);
    eg_json_set_int(o, "maxPerNumberPerDay", cfg->max_per_number_per_day);
    eg_json_t *retry = eg_json_object();
    eg_json_set_int(retry, "maxAttempts", cfg->retry_max_attempts);
    eg_json_set_int(retry, "delaySeconds", cfg->retry_delay_s);
    eg_json_set_int(retry, "attemptTimeoutSeconds", cfg->retry_timeout_s);
    eg_json_set(o, "retry", retry);
    eg_json_set_str(o, "virtualQueue", cfg->virtual_queue);
    eg_json_set_int(o, "priority", cfg->priority);
    eg_json_set_str(o, "dialMode", cfg->dial_mode);
    eg_json_set_str(o, "closedAtDispatch", cfg->complete_when_closed ? "complete" : "wait");
    char *s = eg_json_dump(o, NULL);
    eg_json_free(o);
    return s;
}

void svc_config_free(svc_config_t *cfg)
{
    if (!cfg)
        return;
    eg_json_free(cfg->raw);
    cfg->raw = NULL;
}
