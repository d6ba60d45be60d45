/* Request validation for the v3 API. GES clients send JSON with the field names of API.md and
 * may add fields of their own: unknown fields are ignored, known ones are checked strictly. */
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage/ids.h"
#include "engage/mem.h"
#include "engage/names.h"
#include "engage/phone.h"
#include "engage/timeutil.h"
#include "engage/userdata.h"

/* Fields accepted and stored with the callback but not interpreted by Engage (GES reporting). */
static const char *const extra_fields[] = {"language",           "routePoint",  "surveyRP",
                                           "cbOfferType",        "offerTiming", "offerThreshold",
                                           "inboundVQ",          "channel",     "captchaToken",
                                           "cbOriginationIxnId", "pushTargets"};

static eg_json_t *parse_object(const char *body, size_t len, char *err, size_t errlen)
{
    char jerr[200];
    if (len == 0) {
        snprintf(err, errlen, "body: a JSON object is required");
        return NULL;
    }
    eg_json_t *root = eg_json_parse(body, len, API_MAX_JSON_DEPTH, jerr, sizeof jerr);
    if (!root) {
        snprintf(err, errlen, "body: %s", jerr);
        return NULL;
    }
    if (!eg_json_is_object(root)) {
        snprintf(err, errlen, "body: must be a JSON object");
        eg_json_free(root);
        return NULL;
    }
    return root;
}

eg_status_t api_parse_create(const char *body, size_t len, Eg__CreateRequest *req, char *err,
                             size_t errlen)
{
    eg__create_request__init(req);
    eg_status_t st = EG_EINVAL;
    eg_json_t *extra = NULL;
    eg_json_t *root = parse_object(body, len, err, errlen);
    if (!root)
        return EG_EINVAL;

    eg_json_t *v = eg_json_get(root, "serviceName");
    if (!v) {
        snprintf(err, errlen, "serviceName: is required");
        goto out;
    }
    if (!eg_json_is_string(v) || !eg_name_valid_n(eg_json_str(v), eg_json_str_len(v))) {
        snprintf(err, errlen, "serviceName: must be a string of " EG_NAME_RULE);
        goto out;
    }
    req->service = eg_xstrdup(eg_json_str(v));

    v = eg_json_get(root, "phoneNumber");
    if (!v) {
        snprintf(err, errlen, "phoneNumber: is required");
        goto out;
    }
    if (!eg_json_is_string(v) || !eg_phone_valid(eg_json_str(v))) {
        snprintf(err, errlen,
                 "phoneNumber: must be an E.164 number: '+' then 8 to 15 digits, e.g. "
                 "+15551234567");
        goto out;
    }
    req->phone = eg_xstrdup(eg_json_str(v));

    v = eg_json_get(root, "desiredTime");
    if (v && !eg_json_is_null(v)) {
        int64_t ms;
        if (!eg_json_is_string(v) ||
            eg_time_parse_iso(eg_json_str(v), eg_json_str_len(v), &ms) != EG_OK) {
            snprintf(err, errlen,
                     "desiredTime: must be an ISO-8601 time with an offset, e.g. "
                     "2026-11-28T19:00:00.000Z");
            goto out;
        }
        req->has_desired_time = true;
        req->desired_time_ms = ms;
    }

    v = eg_json_get(root, "userData");
    if (v && !eg_json_is_null(v)) {
        if (!eg_json_is_object(v)) {
            snprintf(err, errlen, "userData: must be a JSON object");
            goto out;
        }
        size_t n;
        char *text = eg_json_dump(v, &n);
        if (n > EG_USER_DATA_MAX) {
            free(text);
            snprintf(err, errlen, "userData: must be at most %d bytes as JSON (got %zu)",
                     EG_USER_DATA_MAX, n);
            goto out;
        }
        req->user_data_json = text;
    }

    v = eg_json_get(root, "priority");
    if (v && !eg_json_is_null(v)) {
        if (!eg_json_is_integer(v) || eg_json_int(v) < -1000000 || eg_json_int(v) > 1000000) {
            snprintf(err, errlen, "priority: must be an integer from -1000000 to 1000000");
            goto out;
        }
        req->has_priority = true;
        req->priority = (int32_t)eg_json_int(v);
    }

    v = eg_json_get(root, "alwaysCheckCapacity");
    if (v && !eg_json_is_null(v)) {
        if (!eg_json_is_bool(v)) {
            snprintf(err, errlen, "alwaysCheckCapacity: must be true or false");
            goto out;
        }
        req->always_check_capacity = eg_json_true(v);
    }

    extra = eg_json_object();
    for (size_t i = 0; i < sizeof extra_fields / sizeof *extra_fields; i++) {
        v = eg_json_get(root, extra_fields[i]);
        if (!v || eg_json_is_null(v))
            continue;
        if (eg_json_is_object(v) ||
            (eg_json_is_array(v) && strcmp(extra_fields[i], "pushTargets"))) {
            snprintf(err, errlen, "%s: must be a string or a number", extra_fields[i]);
            goto out;
        }
        eg_json_set(extra, extra_fields[i], eg_json_ref(v));
    }
    if (eg_json_object_size(extra)) {
        size_t n;
        char *text = eg_json_dump(extra, &n);
        if (n > 16 * 1024) {
            free(text);
            snprintf(err, errlen, "body: reporting fields must total at most 16 KiB");
            goto out;
        }
        req->extra_json = text;
    }
    st = EG_OK;
out:
    eg_json_free(extra);
    eg_json_free(root);
    if (st != EG_OK)
        api_create_request_clear(req);
    return st;
}

void api_create_request_clear(Eg__CreateRequest *req)
{
    char **fields[] = {&req->service, &req->phone, &req->user_data_json, &req->extra_json};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        if (*fields[i] && *fields[i] != protobuf_c_empty_string)
            free(*fields[i]);
        *fields[i] = (char *)protobuf_c_empty_string;
    }
}

eg_status_t api_parse_id(const char *body, size_t len, char id[37], char *err, size_t errlen)
{
    eg_status_t st = EG_EINVAL;
    eg_json_t *root = parse_object(body, len, err, errlen);
    if (!root)
        return EG_EINVAL;
    eg_json_t *v = eg_json_get(root, "id");
    if (!v) {
        snprintf(err, errlen, "id: is required");
        goto out;
    }
    eg_uuid_t u;
    if (!eg_json_is_string(v) || eg_uuid_parse(eg_json_str(v), eg_json_str_len(v), &u) != EG_OK) {
        snprintf(err, errlen, "id: must be a UUID (8-4-4-4-12 hexadecimal digits)");
        goto out;
    }
    eg_uuid_format(&u, id);
    st = EG_OK;
out:
    eg_json_free(root);
    return st;
}

eg_status_t api_parse_reschedule(const char *body, size_t len, char id[37], int64_t *desired_ms,
                                 char *err, size_t errlen)
{
    eg_status_t st = api_parse_id(body, len, id, err, errlen);
    if (st != EG_OK)
        return st;
    eg_json_t *root = eg_json_parse(body, len, API_MAX_JSON_DEPTH, NULL, 0);
    eg_json_t *v = eg_json_get(root, "desiredTime");
    st = EG_EINVAL;
    if (!v)
        snprintf(err, errlen, "desiredTime: is required");
    else if (!eg_json_is_string(v) ||
             eg_time_parse_iso(eg_json_str(v), eg_json_str_len(v), desired_ms) != EG_OK)
        snprintf(err, errlen,
                 "desiredTime: must be an ISO-8601 time with an offset, e.g. "
                 "2026-11-28T19:00:00.000Z");
    else
        st = EG_OK;
    eg_json_free(root);
    return st;
}
