/* Admin API over the history: search, export and GDPR.
 *
 *   GET  /ges/api/v1/callbacks?service=&state=&phone=&from=&to=&createdFrom=&createdTo=
 *        &limit=&offset=            one page of the tenant's callbacks, newest first, with total
 *   GET  /ges/api/v1/callbacks/export?format=csv|json&(the same filters)
 *                                   every match up to EXPORT_MAX rows, as a file
 *   POST /ges/api/v1/gdpr/erase  {"phoneNumber"}   cancel and delete everything of a number
 *   POST /ges/api/v1/gdpr/export {"phoneNumber"}   everything of a number, with events
 *
 * Search and export read the archive (PostgreSQL, every callback of the 14 days kept, a moment
 * behind the live state); `from`/`to` bound the desired time and `createdFrom`/`createdTo` the
 * creation time (ISO-8601; from inclusive, to exclusive). The export pages through the archiver
 * with a cursor (created time and id of the last row), EXPORT_PAGE rows a request, so no bus
 * message grows past NATS's limit, and answers a file: CSV with a header row, or a JSON array.
 * Phone numbers are the tenant's own data and appear in clear here. A cell that a spreadsheet
 * would run as a formula (=, +, -, @ first) gets a leading apostrophe, except a valid E.164
 * number, which cannot hold a formula.
 *
 * GDPR requests are answered by the archiver, which runs the whole erase (see
 * services/archiver/gdpr.c); they may take a while, hence their longer wait. */
#include "history_admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage.pb-c.h"
#include "engage/buf.h"
#include "engage/json.h"
#include "engage/log.h"
#include "engage/mem.h"
#include "engage/phone.h"
#include "engage/states.h"
#include "engage/subjects.h"
#include "engage/timeutil.h"
#include "history_client.h"
#include "validate.h"

#define SEARCH_TIMEOUT_MS 10000
#define GDPR_TIMEOUT_MS 60000
#define SEARCH_LIMIT_DEFAULT 100
#define SEARCH_LIMIT_MAX 1000
#define SEARCH_OFFSET_MAX 100000
#define EXPORT_MAX 100000
#define EXPORT_PAGE 2000
#define EXPORT_BUF_MAX (256 * 1024 * 1024)

static const char CSV_HEADER[] = "id,serviceName,phoneNumber,desiredTime,createdTime,updatedTime,"
                                 "callbackState,callbackReason,attempts\r\n";

/* The filters and paging of a search; strings live in the struct. */
typedef struct {
    char service[80];
    char phone[40];
    char state_name[24];
    Eg__ArchiveSearchRequest q;
} filters_t;

static int bad_request(eg_http_req_t *req, const char *msg)
{
    eg_http_reply_error(req, EG_EINVAL, msg);
    return 400;
}

/* An optional ISO-8601 query parameter as epoch ms (0 when absent). False after a 400. */
static bool query_time(eg_http_req_t *req, const char *name, int64_t *out)
{
    char v[48], msg[160];
    eg_status_t st = eg_http_query_param(req, name, v, sizeof v);
    *out = 0;
    if (st == EG_ENOTFOUND || (st == EG_OK && !v[0]))
        return true;
    if (st != EG_OK || eg_time_parse_iso(v, strlen(v), out) != EG_OK) {
        snprintf(msg, sizeof msg, "%s: must be an ISO-8601 time such as 2026-11-28T19:00:00.000Z",
                 name);
        bad_request(req, msg);
        return false;
    }
    if (*out == 0)
        *out = 1; /* 0 means "unbounded" on the bus; the epoch itself is 1 ms off, harmlessly */
    return true;
}

/* An optional integer query parameter in [min, max]. False after a 400. */
static bool query_int(eg_http_req_t *req, const char *name, long min, long max, int *out)
{
    char v[24], msg[128];
    eg_status_t st = eg_http_query_param(req, name, v, sizeof v);
    if (st == EG_ENOTFOUND)
        return true;
    char *end = NULL;
    long n = st == EG_OK ? strtol(v, &end, 10) : 0;
    if (st != EG_OK || !*v || *end || n < min || n > max) {
        snprintf(msg, sizeof msg, "%s: must be an integer from %ld to %ld", name, min, max);
        bad_request(req, msg);
        return false;
    }
    *out = (int)n;
    return true;
}

/* A query phone number: '+' arrives as a space when the client did not encode it. */
static void fix_plus(char *phone)
{
    if (phone[0] == ' ')
        phone[0] = '+';
}

/* Read the filters shared by search and export. False after a 400. */
static bool read_filters(eg_http_req_t *req, const api_identity_t *who, filters_t *f)
{
    eg__archive_search_request__init(&f->q);
    f->q.tenant_id = (char *)who->tenant;
    f->service[0] = f->phone[0] = f->state_name[0] = '\0';
    eg_status_t st = eg_http_query_param(req, "service", f->service, sizeof f->service);
    if (st == EG_ETOOBIG || strlen(f->service) > 64) {
        bad_request(req, "service: at most 64 characters");
        return false;
    }
    f->q.service = f->service;
    st = eg_http_query_param(req, "phone", f->phone, sizeof f->phone);
    fix_plus(f->phone);
    if (st == EG_ETOOBIG || (f->phone[0] && !eg_phone_valid(f->phone))) {
        bad_request(req, "phone: an E.164 number ('+' then 8 to 15 digits; send '+' as %2B)");
        return false;
    }
    f->q.phone = f->phone;
    st = eg_http_query_param(req, "state", f->state_name, sizeof f->state_name);
    if (f->state_name[0] || st == EG_ETOOBIG) {
        f->q.state = eg_state_from_name(f->state_name);
        if (f->q.state < 1) {
            bad_request(req, "state: one of SCHEDULED, QUEUED, ROUTING, PROCESSING, COMPLETED");
            return false;
        }
    }
    if (!query_time(req, "from", &f->q.desired_from_ms) ||
        !query_time(req, "to", &f->q.desired_to_ms) ||
        !query_time(req, "createdFrom", &f->q.created_from_ms) ||
        !query_time(req, "createdTo", &f->q.created_to_ms))
        return false;
    if ((f->q.desired_from_ms && f->q.desired_to_ms &&
         f->q.desired_from_ms >= f->q.desired_to_ms) ||
        (f->q.created_from_ms && f->q.created_to_ms &&
         f->q.created_from_ms >= f->q.created_to_ms)) {
        bad_request(req, "from/to, createdFrom/createdTo: the start must be before the end");
        return false;
    }
    return true;
}

/* One archive search. On EG_OK *out is the caller's; otherwise the error reply has been sent
 * and *code holds its HTTP status. */
static eg_status_t search_once(api_t *api, eg_http_req_t *req, const Eg__ArchiveSearchRequest *q,
                               Eg__ArchiveSearchReply **out, int *code)
{
    size_t len = eg__archive_search_request__get_packed_size(q);
    uint8_t *buf = eg_xmalloc(len ? len : 1);
    void *raw = NULL;
    size_t raw_len = 0;
    eg__archive_search_request__pack(q, buf);
    eg_status_t st = archive_call(api, EG_SUBJ_ARCHIVE_SEARCH, buf, len, eg_http_corr_id(req),
                                  SEARCH_TIMEOUT_MS, &raw, &raw_len);
    free(buf);
    *out = NULL;
    if (st != EG_OK) {
        eg_http_reply_error(req, EG_EUNAVAIL, "history temporarily unavailable; retry");
        *code = 503;
        return st;
    }
    Eg__ArchiveSearchReply *r = eg__archive_search_reply__unpack(NULL, raw_len, raw);
    free(raw);
    if (r == NULL || r->status == NULL) {
        eg__archive_search_reply__free_unpacked(r, NULL);
        eg_http_reply_error(req, EG_EINTERNAL, "internal error");
        *code = 500;
        return EG_EPROTO;
    }
    st = (eg_status_t)r->status->code;
    if (st != EG_OK) {
        eg_http_reply_error(req, st,
                            r->status->message[0] ? r->status->message
                                                  : "history temporarily unavailable");
        *code = eg_status_http(st);
        eg__archive_search_reply__free_unpacked(r, NULL);
        return st;
    }
    *out = r;
    return EG_OK;
}

static void set_time(eg_json_t *o, const char *key, int64_t ms)
{
    char iso[EG_ISO_LEN + 1];
    eg_time_format_iso(ms, iso);
    eg_json_set_str(o, key, iso);
}

/* The admin view of a callback (the archive's fields). */
static eg_json_t *callback_json(const Eg__Callback *cb)
{
    eg_json_t *o = eg_json_object();
    eg_json_set_str(o, "id", cb->id);
    eg_json_set_str(o, "serviceName", cb->service);
    eg_json_set_str(o, "phoneNumber", cb->phone);
    set_time(o, "desiredTime", cb->desired_time_ms);
    set_time(o, "createdTime", cb->created_ms);
    set_time(o, "updatedTime", cb->updated_ms);
    eg_json_set_str(o, "callbackState", eg_state_name(cb->state));
    if (cb->state == EG__STATE__STATE_COMPLETED)
        eg_json_set_str(o, "callbackReason", eg_reason_name(cb->reason));
    eg_json_set_int(o, "attempts", cb->attempts);
    return o;
}

static int search(api_t *api, eg_http_req_t *req, const api_identity_t *who)
{
    filters_t f;
    int limit = SEARCH_LIMIT_DEFAULT, offset = 0, code = 0;
    if (!read_filters(req, who, &f) || !query_int(req, "limit", 1, SEARCH_LIMIT_MAX, &limit) ||
        !query_int(req, "offset", 0, SEARCH_OFFSET_MAX, &offset))
        return 400;
    f.q.limit = limit;
    f.q.offset = offset;
    f.q.with_total = true;
    Eg__ArchiveSearchReply *r = NULL;
    if (search_once(api, req, &f.q, &r, &code) != EG_OK)
        return code;
    eg_json_t *data = eg_json_object(), *list = eg_json_array();
    for (size_t i = 0; i < r->n_callbacks; i++)
        eg_json_append(list, callback_json(r->callbacks[i]));
    eg_json_set(data, "callbacks", list);
    eg_json_set_int(data, "total", r->total);
    eg_json_set_int(data, "limit", limit);
    eg_json_set_int(data, "offset", offset);
    eg_http_reply_envelope(req, 200, "OK", data);
    eg__archive_search_reply__free_unpacked(r, NULL);
    return 200;
}

/* ---- export ---- */

/* One CSV cell: quoted when it holds a separator, a quote or a line break; an apostrophe first
 * when a spreadsheet would take it for a formula (not for a valid E.164 number). */
static void csv_cell(eg_buf_t *b, const char *s, bool last)
{
    bool formula = (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' || s[0] == '\t' ||
                    s[0] == '\r') &&
                   !eg_phone_valid(s);
    bool quote = formula || strpbrk(s, ",\"\r\n") != NULL;
    if (quote)
        eg_buf_puts(b, "\"");
    if (formula)
        eg_buf_puts(b, "'");
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            eg_buf_puts(b, "\"\"");
        else
            eg_buf_append(b, p, 1);
    }
    if (quote)
        eg_buf_puts(b, "\"");
    eg_buf_puts(b, last ? "\r\n" : ",");
}

static void csv_row(eg_buf_t *b, const Eg__Callback *cb)
{
    char desired[EG_ISO_LEN + 1], created[EG_ISO_LEN + 1], updated[EG_ISO_LEN + 1], att[16];
    eg_time_format_iso(cb->desired_time_ms, desired);
    eg_time_format_iso(cb->created_ms, created);
    eg_time_format_iso(cb->updated_ms, updated);
    snprintf(att, sizeof att, "%u", cb->attempts);
    csv_cell(b, cb->id, false);
    csv_cell(b, cb->service, false);
    csv_cell(b, cb->phone, false);
    csv_cell(b, desired, false);
    csv_cell(b, created, false);
    csv_cell(b, updated, false);
    csv_cell(b, eg_state_name(cb->state), false);
    csv_cell(b, cb->state == EG__STATE__STATE_COMPLETED ? eg_reason_name(cb->reason) : "", false);
    csv_cell(b, att, true);
}

static int export(api_t *api, eg_http_req_t *req, const api_identity_t *who)
{
    filters_t f;
    char format[16] = "csv", *cursor_id = NULL;
    int code = 0;
    eg_status_t fs = eg_http_query_param(req, "format", format, sizeof format);
    if (fs == EG_ENOTFOUND || (fs == EG_OK && !format[0]))
        snprintf(format, sizeof format, "csv");
    bool csv = strcmp(format, "csv") == 0;
    if (!csv && strcmp(format, "json") != 0)
        return bad_request(req, "format: csv or json");
    if (!read_filters(req, who, &f))
        return 400;

    eg_buf_t b;
    eg_buf_init(&b, EXPORT_BUF_MAX);
    eg_buf_puts(&b, csv ? CSV_HEADER : "[");
    size_t rows = 0;
    bool truncated = false;
    for (;;) {
        Eg__ArchiveSearchReply *r = NULL;
        /* Past EXPORT_MAX, one more row tells whether the export was cut. */
        int want = rows < EXPORT_MAX
                       ? (int)(EXPORT_MAX - rows < EXPORT_PAGE ? EXPORT_MAX - rows : EXPORT_PAGE)
                       : 1;
        f.q.limit = want;
        if (search_once(api, req, &f.q, &r, &code) != EG_OK) {
            eg_buf_free(&b);
            free(cursor_id);
            return code;
        }
        if (rows >= EXPORT_MAX) {
            truncated = r->n_callbacks > 0;
            eg__archive_search_reply__free_unpacked(r, NULL);
            break;
        }
        for (size_t i = 0; i < r->n_callbacks; i++) {
            if (csv) {
                csv_row(&b, r->callbacks[i]);
            } else {
                eg_json_t *o = callback_json(r->callbacks[i]);
                char *text = eg_json_dump(o, NULL);
                eg_buf_puts(&b, rows + i > 0 ? ",\n" : "\n");
                eg_buf_puts(&b, text);
                free(text);
                eg_json_free(o);
            }
        }
        rows += r->n_callbacks;
        bool more = r->n_callbacks == (size_t)want;
        if (more) {
            const Eg__Callback *last = r->callbacks[r->n_callbacks - 1];
            free(cursor_id);
            cursor_id = eg_xstrdup(last->id);
            f.q.before_created_ms = last->created_ms;
            f.q.before_id = cursor_id;
        }
        eg__archive_search_reply__free_unpacked(r, NULL);
        if (!more)
            break;
    }
    free(cursor_id);
    if (!csv)
        eg_buf_puts(&b, rows > 0 ? "\n]\n" : "]\n");
    char count[24];
    snprintf(count, sizeof count, "%zu", rows);
    eg_http_add_header(req, "X-Engage-Export-Rows", count);
    if (truncated)
        eg_http_add_header(req, "X-Engage-Export-Truncated", "true");
    eg_http_add_header(req, "Content-Disposition",
                       csv ? "attachment; filename=\"callbacks.csv\""
                           : "attachment; filename=\"callbacks.json\"");
    eg_http_reply(req, 200, csv ? "text/csv; charset=utf-8" : "application/json", b.data, b.len);
    eg_log_info("export of %zu callback(s) as %s%s", rows, format, truncated ? " (truncated)" : "");
    eg_buf_free(&b);
    return 200;
}

int admin_callbacks(api_t *api, eg_http_req_t *req, const api_identity_t *who, const char *sub)
{
    bool exp = strcmp(sub, "/export") == 0;
    if (!exp && *sub) {
        char msg[160];
        snprintf(msg, sizeof msg, "no such endpoint: %s %.100s", eg_http_method(req),
                 eg_http_path(req));
        eg_http_reply_error(req, EG_ENOTFOUND, msg);
        return 404;
    }
    if (strcmp(eg_http_method(req), "GET") != 0) {
        eg_http_add_header(req, "Allow", "GET");
        eg_http_reply_envelope(req, 405, "method not allowed: use GET", NULL);
        return 405;
    }
    return exp ? export(api, req, who) : search(api, req, who);
}

/* ---- GDPR ---- */

/* {"phoneNumber": "+..."} into phone. False after a 400. */
static bool read_phone(eg_http_req_t *req, char *phone, size_t len)
{
    const char *body;
    size_t blen;
    char jerr[128];
    if (eg_http_body(req, &body, &blen) != EG_OK) {
        bad_request(req, "body: could not be read or is over 256 KiB");
        return false;
    }
    eg_json_t *j = eg_json_parse(body, blen, API_MAX_JSON_DEPTH, jerr, sizeof jerr);
    const char *p = eg_json_str(eg_json_get(j, "phoneNumber"));
    bool ok = p != NULL && eg_phone_valid(p) && strlen(p) < len, parsed = j != NULL;
    if (ok)
        snprintf(phone, len, "%s", p);
    eg_json_free(j);
    if (!ok)
        bad_request(req, !parsed ? "body: must be a JSON object with phoneNumber"
                                 : "phoneNumber: required, an E.164 number ('+' then 8 to 15 "
                                   "digits)");
    return ok;
}

static eg_json_t *json_or_string(const char *text)
{
    char err[64];
    eg_json_t *v = text && *text ? eg_json_parse(text, strlen(text), 64, err, sizeof err) : NULL;
    return v ? v : eg_json_string(text ? text : "");
}

static eg_json_t *record_json(const Eg__HistoryRecord *rec)
{
    static const char *const origins[] = {"api", "ui", "ivr", "call-in"};
    const Eg__Callback *cb = rec->callback;
    eg_json_t *o = callback_json(cb);
    eg_json_set_bool(o, "live", rec->active);
    if (rec->active) {
        eg_json_set_int(o, "priority", cb->priority);
        if (cb->virtual_queue[0])
            eg_json_set_str(o, "virtualQueue", cb->virtual_queue);
        if ((unsigned)cb->origin < sizeof origins / sizeof *origins)
            eg_json_set_str(o, "origin", origins[cb->origin]);
    }
    if (cb->user_data_json[0])
        eg_json_set(o, "userData", json_or_string(cb->user_data_json));
    if (cb->n_attempt_log > 0) {
        eg_json_t *log = eg_json_array();
        for (size_t i = 0; i < cb->n_attempt_log; i++) {
            const Eg__Attempt *a = cb->attempt_log[i];
            eg_json_t *x = eg_json_object();
            eg_json_set_int(x, "attempt", a->number);
            if (a->dialed_ms)
                set_time(x, "dialedTime", a->dialed_ms);
            if (a->ended_ms)
                set_time(x, "endedTime", a->ended_ms);
            eg_json_set_str(x, "result", a->result);
            eg_json_set_bool(x, "answered", a->answered);
            eg_json_append(log, x);
        }
        eg_json_set(o, "attemptLog", log);
    }
    eg_json_t *events = eg_json_array();
    for (size_t i = 0; i < rec->n_events; i++) {
        const Eg__HistoryEvent *e = rec->events[i];
        eg_json_t *x = eg_json_object();
        eg_json_set_str(x, "eventId", e->event_id);
        eg_json_set_str(x, "state", e->state);
        if (e->reason[0])
            eg_json_set_str(x, "reason", e->reason);
        set_time(x, "at", e->at_ms);
        eg_json_set_int(x, "attempt", e->attempt);
        if (e->detail_json[0])
            eg_json_set(x, "detail", json_or_string(e->detail_json));
        eg_json_append(events, x);
    }
    eg_json_set(o, "events", events);
    return o;
}

int admin_gdpr(api_t *api, eg_http_req_t *req, const api_identity_t *who, const char *op)
{
    bool erase = strcmp(op, "erase") == 0;
    char phone[40];
    if (!erase && strcmp(op, "export") != 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "no such endpoint: %s %.100s", eg_http_method(req),
                 eg_http_path(req));
        eg_http_reply_error(req, EG_ENOTFOUND, msg);
        return 404;
    }
    if (strcmp(eg_http_method(req), "POST") != 0) {
        eg_http_add_header(req, "Allow", "POST");
        eg_http_reply_envelope(req, 405, "method not allowed: use POST", NULL);
        return 405;
    }
    if (!read_phone(req, phone, sizeof phone))
        return 400;
    Eg__GdprRequest gr = EG__GDPR_REQUEST__INIT;
    gr.tenant_id = (char *)who->tenant;
    gr.phone = phone;
    gr.actor = (char *)who->key_id;
    uint8_t buf[256];
    size_t n = eg__gdpr_request__get_packed_size(&gr);
    if (n > sizeof buf) {
        eg_http_reply_error(req, EG_EINTERNAL, "internal error");
        return 500;
    }
    eg__gdpr_request__pack(&gr, buf);
    void *raw = NULL;
    size_t raw_len = 0;
    if (archive_call(api, erase ? EG_SUBJ_ARCHIVE_GDPR_ERASE : EG_SUBJ_ARCHIVE_GDPR_EXPORT, buf, n,
                     eg_http_corr_id(req), GDPR_TIMEOUT_MS, &raw, &raw_len) != EG_OK) {
        eg_http_reply_error(req, EG_EUNAVAIL, "history temporarily unavailable; retry");
        return 503;
    }
    int code = 200;
    if (erase) {
        Eg__GdprEraseReply *r = eg__gdpr_erase_reply__unpack(NULL, raw_len, raw);
        if (r == NULL || r->status == NULL) {
            code = 500;
            eg_http_reply_error(req, EG_EINTERNAL, "internal error");
        } else if (r->status->code != EG_OK) {
            eg_status_t st = (eg_status_t)r->status->code;
            code = eg_status_http(st);
            eg_http_reply_error(req, st, r->status->message);
        } else {
            eg_json_t *data = eg_json_object(), *rows = eg_json_object();
            eg_json_set_int(data, "callbacks", r->callbacks);
            eg_json_set_int(data, "cancelled", r->cancelled);
            eg_json_set_int(data, "redisDeleted", r->redis_deleted);
            eg_json_set_int(rows, "callbacks", r->rows_callbacks);
            eg_json_set_int(rows, "callbackData", r->rows_data);
            eg_json_set_int(rows, "callbackEvents", r->rows_events);
            eg_json_set(data, "rows", rows);
            eg_http_reply_envelope(req, 200, "Erased", data);
        }
        eg__gdpr_erase_reply__free_unpacked(r, NULL);
    } else {
        Eg__GdprExportReply *r = eg__gdpr_export_reply__unpack(NULL, raw_len, raw);
        if (r == NULL || r->status == NULL) {
            code = 500;
            eg_http_reply_error(req, EG_EINTERNAL, "internal error");
        } else if (r->status->code != EG_OK) {
            eg_status_t st = (eg_status_t)r->status->code;
            code = eg_status_http(st);
            eg_http_reply_error(req, st, r->status->message);
        } else {
            eg_json_t *data = eg_json_object(), *list = eg_json_array();
            eg_json_set_str(data, "phoneNumber", phone);
            set_time(data, "exportedAt", eg_now_ms());
            for (size_t i = 0; i < r->n_records; i++)
                eg_json_append(list, record_json(r->records[i]));
            eg_json_set(data, "callbacks", list);
            eg_http_reply_envelope(req, 200, "OK", data);
        }
        eg__gdpr_export_reply__free_unpacked(r, NULL);
    }
    free(raw);
    return code;
}
