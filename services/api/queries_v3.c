/* The v3 query endpoints. Query parameters are checked here (each rejection names the
 * parameter); the scheduler answers from the service's hours, its slot counters and the
 * queue's recent throughput. Times in answers are UTC ("utcTime") and, for availability, also
 * local to the asked time zone ("localTime", with its offset). */
#include "queries_v3.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "engage.pb-c.h"
#include "engage/log.h"
#include "engage/subjects.h"
#include "engage/timeutil.h"
#include "engage/tz.h"
#include "sched_client.h"
#include "validate.h"

#define MAX_RANGE_DAYS 31

static int bad(eg_http_req_t *req, const char *msg)
{
    eg_http_reply_error(req, EG_EINVAL, msg);
    return 400;
}

/* An instant from an ISO-8601 parameter or an epoch-ms parameter. 1 found, 0 absent, -1 bad
 * (reply sent). */
static int time_param(eg_http_req_t *req, const char *iso_name, const char *ms_name, int64_t *out)
{
    char v[64], msg[160];
    eg_status_t st = eg_http_query_param(req, iso_name, v, sizeof v);
    if (st == EG_OK) {
        if (eg_time_parse_iso(v, strlen(v), out) != EG_OK) {
            snprintf(msg, sizeof msg,
                     "%s: must be an ISO-8601 time with an offset, e.g. 2026-11-30T09:00:00Z",
                     iso_name);
            bad(req, msg);
            return -1;
        }
        return 1;
    }
    if (st == EG_ETOOBIG) {
        snprintf(msg, sizeof msg, "%s: too long", iso_name);
        bad(req, msg);
        return -1;
    }
    if (!ms_name)
        return 0;
    st = eg_http_query_param(req, ms_name, v, sizeof v);
    if (st == EG_ENOTFOUND)
        return 0;
    char *end = NULL;
    long long ms = st == EG_OK ? strtoll(v, &end, 10) : 0;
    if (st != EG_OK || !*v || *end || ms < 0 || ms > 32503680000000LL) {
        snprintf(msg, sizeof msg, "%s: must be milliseconds since 1970-01-01 UTC", ms_name);
        bad(req, msg);
        return -1;
    }
    *out = ms;
    return 1;
}

static bool int_param(eg_http_req_t *req, const char *name, long min, long max, long *out)
{
    char v[24], msg[128];
    eg_status_t st = eg_http_query_param(req, name, v, sizeof v);
    if (st == EG_ENOTFOUND)
        return true;
    char *end = NULL;
    long n = st == EG_OK ? strtol(v, &end, 10) : 0;
    if (st != EG_OK || !*v || *end || n < min || n > max) {
        snprintf(msg, sizeof msg, "%s: must be an integer from %ld to %ld", name, min, max);
        bad(req, msg);
        return false;
    }
    *out = n;
    return true;
}

static bool bool_param(eg_http_req_t *req, const char *name, bool *out)
{
    char v[8], msg[96];
    eg_status_t st = eg_http_query_param(req, name, v, sizeof v);
    if (st == EG_ENOTFOUND)
        return true;
    if (st == EG_OK && (strcmp(v, "true") == 0 || strcmp(v, "false") == 0)) {
        *out = strcmp(v, "true") == 0;
        return true;
    }
    snprintf(msg, sizeof msg, "%s: must be true or false", name);
    bad(req, msg);
    return false;
}

/* The asked time zone (default UTC). NULL after an error reply. */
static eg_tz_t *zone_param(eg_http_req_t *req)
{
    char v[80] = "UTC";
    eg_status_t st = eg_http_query_param(req, "timezone", v, sizeof v);
    if (st == EG_ETOOBIG || (st == EG_OK && !eg_tz_valid(v))) {
        bad(req, "timezone: not a known time zone (e.g. America/New_York, UTC)");
        return NULL;
    }
    eg_tz_t *tz = eg_tz_open(st == EG_OK ? v : "UTC");
    if (!tz)
        bad(req, "timezone: not a known time zone (e.g. America/New_York, UTC)");
    return tz;
}

static int availability(eg_http_req_t *req, api_t *api, const api_identity_t *who,
                        const char *service)
{
    int64_t start = eg_now_ms(), end = 0;
    long days = 0, max_slots = 0;
    bool report_busy = false;
    int has_end;
    if (time_param(req, "start", "startMS", &start) < 0)
        return 400;
    if ((has_end = time_param(req, "end", "endMS", &end)) < 0)
        return 400;
    if (!int_param(req, "numberOfDays", 1, MAX_RANGE_DAYS, &days) ||
        !int_param(req, "maxTimeSlots", 1, 5000, &max_slots) ||
        !bool_param(req, "reportBusy", &report_busy))
        return 400;
    eg_tz_t *tz = zone_param(req);
    if (!tz)
        return 400;
    if (days > 0) {
        end = start + days * 86400000LL;
    } else if (!has_end) {
        /* The end of start's day in the asked zone. */
        eg_local_t l;
        int64_t next[2];
        eg_tz_to_local(tz, start, &l);
        int k = eg_tz_from_local(tz, l.year, l.month, l.day, 24, 0, next);
        end = k > 0 ? next[0] : start + 86400000LL;
    }
    int code = 400;
    if (end <= start) {
        bad(req, "end: must be after start");
        goto out;
    }
    if (end - start > MAX_RANGE_DAYS * 86400000LL) {
        bad(req, "end: the range may span at most 31 days");
        goto out;
    }
    Eg__AvailabilityRequest ar = EG__AVAILABILITY_REQUEST__INIT;
    ar.tenant_id = (char *)who->tenant;
    ar.service = (char *)service;
    ar.start_ms = start;
    ar.end_ms = end;
    ar.max_slots = (int32_t)max_slots;
    ar.report_busy = report_busy;
    Eg__AvailabilityReply *r = sched_ask_ok(api, req, EG_SUBJ_AVAILABILITY, &ar.base,
                                            &eg__availability_reply__descriptor, &code);
    if (!r)
        goto out;
    eg_json_t *data = eg_json_object(), *slots = eg_json_array();
    for (size_t i = 0; i < r->n_slots; i++) {
        char utc[EG_ISO_LEN + 1], local[EG_TZ_LOCAL_LEN];
        eg_time_format_iso(r->slots[i]->start_ms, utc);
        eg_tz_format_local(tz, r->slots[i]->start_ms, local);
        eg_json_t *s = eg_json_object();
        eg_json_set_str(s, "utcTime", utc);
        eg_json_set_str(s, "localTime", local);
        eg_json_set_int(s, "capacity", r->slots[i]->free);
        eg_json_set_int(s, "total", r->slots[i]->total);
        eg_json_append(slots, s);
    }
    eg_json_set(data, "slots", slots);
    eg_json_set_int(data, "durationMin", r->duration_min);
    eg_json_set_str(data, "timezone", eg_tz_name(tz));
    eg_http_reply_envelope(req, 200, "OK", data);
    code = 200;
    eg__availability_reply__free_unpacked(r, NULL);
out:
    eg_tz_close(tz);
    return code;
}

static int open_for_or_status(eg_http_req_t *req, api_t *api, const api_identity_t *who,
                              const char *service, bool status_query)
{
    int64_t start = 0;
    if (!status_query) {
        if (time_param(req, "start", "startMS", &start) < 0)
            return 400;
        eg_tz_t *tz = zone_param(req); /* accepted and checked; answers are in seconds */
        if (!tz)
            return 400;
        eg_tz_close(tz);
    }
    Eg__OpenForRequest orq = EG__OPEN_FOR_REQUEST__INIT;
    orq.tenant_id = (char *)who->tenant;
    orq.service = (char *)service;
    orq.start_ms = start;
    int code;
    Eg__QueueStatusReply *r =
        sched_ask_ok(api, req, status_query ? EG_SUBJ_QUEUE_STATUS : EG_SUBJ_OPEN_FOR, &orq.base,
                     &eg__queue_status_reply__descriptor, &code);
    if (!r)
        return code;
    eg_json_t *data = eg_json_object();
    if (status_query) {
        eg_json_set_int(data, "ewt", r->ewt_s);
        eg_json_set_bool(data, "offerImmediateCallback", r->offer_immediate);
        eg_json_set_bool(data, "offerScheduledCallback", r->offer_scheduled);
    } else {
        eg_json_set_int(data, "openFor", r->open_for_s);
    }
    eg_http_reply_envelope(req, 200, "OK", data);
    eg__queue_status_reply__free_unpacked(r, NULL);
    return 200;
}

int v3_service_query(eg_http_req_t *req, api_t *api, const char *op)
{
    const char *slash = strchr(op, '/');
    const char *service = slash ? slash + 1 : "";
    size_t kind_len = slash ? (size_t)(slash - op) : strlen(op);
    if (strcmp(eg_http_method(req), "GET") != 0) {
        eg_http_add_header(req, "Allow", "GET");
        eg_http_reply_envelope(req, 405, "method not allowed: use GET", NULL);
        return 405;
    }
    api_identity_t who;
    if (!api_begin(api, req, &who, false))
        return 400;
    if (!*service || strchr(service, '/') || strlen(service) > 64)
        return bad(req, "service: the path must end with a callback service name");
    if (kind_len == strlen("availability") && strncmp(op, "availability", kind_len) == 0)
        return availability(req, api, &who, service);
    if (kind_len == strlen("open-for") && strncmp(op, "open-for", kind_len) == 0)
        return open_for_or_status(req, api, &who, service, false);
    return open_for_or_status(req, api, &who, service, true);
}

int v3_ewt(eg_http_req_t *req, void *arg)
{
    api_t *api = arg;
    if (strcmp(eg_http_method(req), "GET") != 0) {
        eg_http_add_header(req, "Allow", "GET");
        eg_http_reply_envelope(req, 405, "method not allowed: use GET", NULL);
        return 405;
    }
    api_identity_t who;
    if (!api_begin(api, req, &who, false))
        return 400;
    char list[2048], mode_s[16] = "mode2", mode_q[16];
    eg_status_t st = eg_http_query_param(req, "virtual-queues", list, sizeof list);
    if (st == EG_ENOTFOUND)
        st = eg_http_query_param(req, "virtualQueues", list, sizeof list);
    if (st != EG_OK || !*list)
        return bad(req, "virtual-queues: required, a comma-separated list of virtual queues");
    st = eg_http_query_param(req, "mode", mode_q, sizeof mode_q);
    if (st == EG_OK)
        snprintf(mode_s, sizeof mode_s, "%s", mode_q);
    if (st == EG_ETOOBIG || (strcmp(mode_s, "mode1") != 0 && strcmp(mode_s, "mode2") != 0 &&
                             strcmp(mode_s, "mode3") != 0))
        return bad(req, "mode: one of mode1, mode2, mode3");
    Eg__EwtRequest er = EG__EWT_REQUEST__INIT;
    char *queues[64];
    size_t n = 0;
    for (char *save = NULL, *q = strtok_r(list, ",", &save); q; q = strtok_r(NULL, ",", &save)) {
        if (n == 64)
            return bad(req, "virtual-queues: at most 64 queues");
        if (!*q || strlen(q) > 128)
            return bad(req, "virtual-queues: each queue name is 1 to 128 characters");
        queues[n++] = q;
    }
    er.tenant_id = (char *)who.tenant;
    er.queues = queues;
    er.n_queues = n;
    er.mode = mode_s[4] - '0';
    int code;
    Eg__EwtReply *r =
        sched_ask_ok(api, req, EG_SUBJ_EWT, &er.base, &eg__ewt_reply__descriptor, &code);
    if (!r)
        return code;
    eg_json_t *data = eg_json_array();
    for (size_t i = 0; i < r->n_items; i++) {
        eg_json_t *it = eg_json_object();
        eg_json_set_str(it, "virtualQueue", r->items[i]->virtual_queue);
        eg_json_set_int(it, "estimatedWaitTime", r->items[i]->ewt_s);
        eg_json_set_str(it, "message", r->items[i]->message);
        eg_json_set_int(it, "resultCode", r->items[i]->result_code);
        eg_json_append(data, it);
    }
    eg_http_reply_envelope(req, 200, "OK", data);
    eg__ewt_reply__free_unpacked(r, NULL);
    return 200;
}

/* Statistics names of Engage (documented in docs/api.md). */
static void add_stats(eg_json_t *o, int scheduled, int queued, int processing, int created,
                      int completed)
{
    eg_json_set_int(o, "callbacksScheduled", scheduled);
    eg_json_set_int(o, "callbacksQueued", queued);
    eg_json_set_int(o, "callbacksProcessing", processing);
    eg_json_set_int(o, "createdToday", created);
    eg_json_set_int(o, "completedToday", completed);
}

int v3_statistics(eg_http_req_t *req, void *arg)
{
    api_t *api = arg;
    if (strcmp(eg_http_path(req), "/engagement/v3/statistics/operations/get-statistic-ex") != 0)
        return bad(req, "path: the statistics endpoint is /statistics/operations/get-statistic-ex");
    if (strcmp(eg_http_method(req), "POST") != 0) {
        eg_http_add_header(req, "Allow", "POST");
        eg_http_reply_envelope(req, 405, "method not allowed: use POST", NULL);
        return 405;
    }
    api_identity_t who;
    if (!api_begin(api, req, &who, false))
        return 400;
    const char *body = NULL;
    size_t blen = 0;
    if (eg_http_body(req, &body, &blen) != EG_OK)
        return bad(req, "body: could not be read or is over 256 KiB");
    char *names[100];
    size_t n = 0;
    eg_json_t *root = NULL;
    if (blen > 0) {
        char err[160], msg[200];
        root = eg_json_parse(body, blen, 8, err, sizeof err);
        if (!root || !eg_json_is_object(root)) {
            snprintf(msg, sizeof msg, "body: %s", root ? "must be a JSON object" : err);
            eg_json_free(root);
            return bad(req, msg);
        }
        eg_json_t *list = eg_json_get(root, "serviceNames");
        if (list && (!eg_json_is_array(list) || eg_json_array_size(list) > 100)) {
            eg_json_free(root);
            return bad(req, "serviceNames: must be an array of at most 100 service names");
        }
        for (size_t i = 0; i < eg_json_array_size(list); i++) {
            const char *s = eg_json_str(eg_json_array_get(list, i));
            if (!s || !*s || strlen(s) > 64) {
                eg_json_free(root);
                return bad(req, "serviceNames: each must be a service name string");
            }
            names[n++] = (char *)s;
        }
    }
    Eg__StatsRequest sr = EG__STATS_REQUEST__INIT;
    sr.tenant_id = who.tenant;
    sr.services = names;
    sr.n_services = n;
    int code;
    Eg__StatsReply *r =
        sched_ask_ok(api, req, EG_SUBJ_STATS, &sr.base, &eg__stats_reply__descriptor, &code);
    eg_json_free(root);
    if (!r)
        return code;
    eg_json_t *data = eg_json_object(), *list = eg_json_array(), *sum = eg_json_object();
    int t[5] = {0};
    for (size_t i = 0; i < r->n_services; i++) {
        const Eg__ServiceStats *s = r->services[i];
        eg_json_t *o = eg_json_object();
        eg_json_set_str(o, "serviceName", s->service);
        add_stats(o, s->scheduled, s->queued, s->processing, s->created_today, s->completed_today);
        eg_json_set_int(o, "ewt", s->ewt_s);
        eg_json_set(o, "slotUtilisation", eg_json_real(s->slot_utilisation));
        eg_json_append(list, o);
        t[0] += s->scheduled;
        t[1] += s->queued;
        t[2] += s->processing;
        t[3] += s->created_today;
        t[4] += s->completed_today;
    }
    add_stats(sum, t[0], t[1], t[2], t[3], t[4]);
    eg_json_set_int(sum, "services", (int64_t)r->n_services);
    eg_json_set(data, "statistics", list);
    eg_json_set(data, "summary", sum);
    eg_http_reply_envelope(req, 200, "OK", data);
    eg__stats_reply__free_unpacked(r, NULL);
    return 200;
}
