/* lib/http.c (with lib/httpclient.c as the client, and lib/health.c's endpoints): a real server
 * on a free loopback port per test, called over HTTP the way a client would. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "engage/health.h"
#include "engage/http.h"
#include "engage/httpclient.h"
#include "engage/ids.h"
#include "engage/json.h"
#include "engage/log.h"
#include "engage/metrics.h"

#define MAX_BODY 1024

static eg_http_server_t *srv;
static char base[64];

/* ---- handlers ---- */

/* Answers "<arg> <decoded path>" as text. */
static int h_name(eg_http_req_t *req, void *arg)
{
    char text[512];

    snprintf(text, sizeof text, "%s %s", (const char *)arg, eg_http_path(req));
    eg_http_reply(req, 200, "text/plain", text, strlen(text));
    return 200;
}

/* The envelope with data {"x":1,"logCorr":<the thread's log correlation id>}. */
static int h_envelope(eg_http_req_t *req, void *arg)
{
    eg_json_t *data = eg_json_object();

    (void)arg;
    eg_json_set_int(data, "x", 1);
    eg_json_set_str(data, "logCorr", eg_log_corr());
    eg_http_reply_envelope(req, 200, "ok", data);
    return 200;
}

static int h_echo(eg_http_req_t *req, void *arg)
{
    const char *body;
    size_t len;
    eg_status_t st = eg_http_body(req, &body, &len);

    (void)arg;
    if (st != EG_OK) {
        eg_http_reply_error(req, st, "cannot read the body");
        return eg_status_http(st);
    }
    eg_http_reply(req, 200, "application/octet-stream", body, len);
    return 200;
}

static void put_param(eg_json_t *o, eg_http_req_t *req, const char *name, size_t outlen)
{
    char val[256];
    eg_status_t st = eg_http_query_param(req, name, val, outlen);

    eg_json_set_str(o, name, st == EG_OK ? val : eg_status_str(st));
}

static int h_query(eg_http_req_t *req, void *arg)
{
    eg_json_t *o = eg_json_object();
    char small[4];

    (void)arg;
    put_param(o, req, "name", 256);
    put_param(o, req, "empty", 256);
    put_param(o, req, "flag", 256);
    put_param(o, req, "missing", 256);
    eg_json_set_str(o, "small", eg_status_str(eg_http_query_param(req, "name", small, 4)));
    eg_json_set_str(o, "raw", eg_http_query(req) ? eg_http_query(req) : "(null)");
    eg_json_set_str(o, "path", eg_http_path(req));
    eg_http_reply_json(req, 200, o);
    eg_json_free(o);
    return 200;
}

static int h_header(eg_http_req_t *req, void *arg)
{
    const char *a = eg_http_header(req, "x-api-key");
    const char *b = eg_http_header(req, "X-API-KEY");
    const char *c = eg_http_header(req, "x-not-sent");
    char text[256];

    (void)arg;
    snprintf(text, sizeof text, "%s|%s|%s", a ? a : "(none)", b ? b : "(none)", c ? c : "(none)");
    eg_http_reply(req, 200, "text/plain", text, strlen(text));
    return 200;
}

static int h_noreply(eg_http_req_t *req, void *arg)
{
    (void)req;
    (void)arg;
    return 200;
}

static int h_full(eg_http_req_t *req, void *arg)
{
    (void)arg;
    eg_http_add_header(req, "Retry-After", "7");
    eg_http_reply_error(req, EG_EFULL, "slot is full");
    return 429;
}

/* What eg_http_status_sent said before the reply, after it, and after a refused second one. */
static atomic_int seen_before = -1, seen_after = -1, seen_after_second = -1;

/* Sends 429 but returns 200: the status sent is the one the request records. */
static int h_status(eg_http_req_t *req, void *arg)
{
    (void)arg;
    atomic_store(&seen_before, eg_http_status_sent(req));
    eg_http_reply_error(req, EG_EFULL, "slot is full");
    atomic_store(&seen_after, eg_http_status_sent(req));
    eg_http_reply(req, 200, "text/plain", "again", 5);
    atomic_store(&seen_after_second, eg_http_status_sent(req));
    return 200;
}

static int h_slow(eg_http_req_t *req, void *arg)
{
    struct timespec ts = {1, 500 * 1000000L};

    (void)arg;
    nanosleep(&ts, NULL);
    eg_http_reply(req, 200, "text/plain", "late", 4);
    return 200;
}

/* ---- fixture ---- */

static void start(bool keep_alive)
{
    eg_http_opts_t opts = {.port = 0, .threads = 4, .max_body = MAX_BODY, .keep_alive = keep_alive};

    eg_httpc_global_init();
    cr_assert_eq(eg_http_start(&srv, &opts), EG_OK);
    cr_assert_gt(eg_http_port(srv), 0);
    snprintf(base, sizeof base, "http://127.0.0.1:%d", eg_http_port(srv));
    eg_http_route(srv, "/a", h_name, "a");
    eg_http_route(srv, "/a/b", h_name, "ab");
    eg_http_route(srv, "/env", h_envelope, NULL);
    eg_http_route(srv, "/echo", h_echo, NULL);
    eg_http_route(srv, "/q", h_query, NULL);
    eg_http_route(srv, "/hdr", h_header, NULL);
    eg_http_route(srv, "/noreply", h_noreply, NULL);
    eg_http_route(srv, "/full", h_full, NULL);
    eg_http_route(srv, "/slow", h_slow, NULL);
    eg_http_route(srv, "/status", h_status, NULL);
}

static void setup(void)
{
    start(false);
}

static void setup_keepalive(void)
{
    start(true);
}

static void teardown(void)
{
    eg_http_stop(srv);
    srv = NULL;
    eg_httpc_global_cleanup();
}

/* ---- client helpers ---- */

static eg_http_resp_t get_h(const char *path, const char *const *headers)
{
    char url[512];
    eg_http_resp_t r;

    snprintf(url, sizeof url, "%s%s", base, path);
    cr_assert_eq(eg_http_fetch("GET", url, headers, NULL, 0, 5000, &r), EG_OK, "GET %s", path);
    return r;
}

static eg_http_resp_t get(const char *path)
{
    return get_h(path, NULL);
}

static eg_http_resp_t post(const char *path, const char *const *headers, const char *body,
                           size_t len)
{
    char url[512];
    eg_http_resp_t r;

    snprintf(url, sizeof url, "%s%s", base, path);
    cr_assert_eq(eg_http_fetch("POST", url, headers, body, len, 5000, &r), EG_OK, "POST %s", path);
    return r;
}

static eg_json_t *parse(const eg_http_resp_t *r)
{
    char err[160];
    eg_json_t *v = eg_json_parse(r->body, r->len, 0, err, sizeof err);

    cr_assert_not_null(v, "not JSON (%s): %s", err, r->body);
    return v;
}

static const char *jstr(const eg_json_t *o, const char *key)
{
    const char *s = eg_json_str(eg_json_get(o, key));

    cr_assert_not_null(s, "no string member %s", key);
    return s;
}

static void header(const eg_http_resp_t *r, const char *name, char *out, size_t outlen)
{
    cr_assert_eq(eg_http_resp_header(r, name, out, outlen), EG_OK, "no %s header in:\n%s", name,
                 r->headers);
}

/* ---- routing ---- */

Test(http, longest_prefix_wins_on_whole_segments, .init = setup, .fini = teardown)
{
    static const struct {
        const char *path;
        int code;
        const char *body;
    } cases[] = {
        {"/a", 200, "a /a"},
        {"/a/", 200, "a /a/"},
        {"/a/x", 200, "a /a/x"},
        {"/a/b", 200, "ab /a/b"},
        {"/a/b/c/d", 200, "ab /a/b/c/d"},
        {"/a/bc", 200, "a /a/bc"},
        {"/ab", 404, NULL},
        {"/", 404, NULL},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        eg_http_resp_t r = get(cases[i].path);
        cr_expect_eq(r.status, cases[i].code, "%s: %d", cases[i].path, r.status);
        if (cases[i].body)
            cr_expect_str_eq(r.body, cases[i].body, "%s", cases[i].path);
        eg_http_resp_free(&r);
    }
}

Test(http, path_is_decoded_query_is_raw, .init = setup, .fini = teardown)
{
    eg_http_resp_t r = get("/q/hello%20world?x=%41");
    eg_json_t *o = parse(&r);

    cr_assert_str_eq(jstr(o, "path"), "/q/hello world");
    cr_assert_str_eq(jstr(o, "raw"), "x=%41");
    eg_json_free(o);
    eg_http_resp_free(&r);
}

Test(http, unknown_route_is_a_404_envelope, .init = setup, .fini = teardown)
{
    eg_http_resp_t r = get("/nowhere/at/all");
    char corr[64];
    char ctype[64];
    eg_json_t *o = parse(&r);
    eg_json_t *st = eg_json_get(o, "status");

    cr_assert_eq(r.status, 404);
    header(&r, "Content-Type", ctype, sizeof ctype);
    cr_assert_str_eq(ctype, "application/json");
    header(&r, "x-correlation-id", corr, sizeof corr);
    cr_assert_eq(eg_json_int(eg_json_get(st, "code")), 404);
    cr_assert_str_eq(jstr(st, "subCode"), "EG_ENOTFOUND");
    cr_assert_str_eq(jstr(st, "corrId"), corr);
    cr_assert_gt(strlen(jstr(st, "message")), 0);
    cr_assert_null(eg_json_get(o, "data"), "errors carry no data");
    eg_json_free(o);
    eg_http_resp_free(&r);
}

/* ---- envelope and correlation id ---- */

Test(http, envelope_is_exact_and_corr_id_matches_header, .init = setup, .fini = teardown)
{
    eg_http_resp_t r = get("/env");
    char corr[64];
    char want[256];
    char clen[32];

    cr_assert_eq(r.status, 200);
    header(&r, "X-Correlation-Id", corr, sizeof corr);
    cr_assert(eg_uuid_valid(corr), "not a UUID: %s", corr);
    cr_assert_eq(corr[14], '7', "fresh ids are UUIDv7: %s", corr);
    snprintf(want, sizeof want,
             "{\"status\":{\"code\":200,\"message\":\"ok\",\"corrId\":\"%s\"},"
             "\"data\":{\"x\":1,\"logCorr\":\"%s\"}}",
             corr, corr);
    cr_assert_str_eq(r.body, want);
    header(&r, "Content-Length", clen, sizeof clen);
    cr_assert_eq((size_t)atol(clen), r.len);
    eg_http_resp_free(&r);
}

Test(http, every_request_gets_its_own_corr_id, .init = setup, .fini = teardown)
{
    eg_http_resp_t r1 = get("/env");
    eg_http_resp_t r2 = get("/env");
    char c1[64];
    char c2[64];

    header(&r1, "X-Correlation-Id", c1, sizeof c1);
    header(&r2, "X-Correlation-Id", c2, sizeof c2);
    cr_assert_str_neq(c1, c2);
    eg_http_resp_free(&r1);
    eg_http_resp_free(&r2);
}

Test(http, valid_incoming_corr_id_is_reused, .init = setup, .fini = teardown)
{
    const char *id = "0F8FAD5B-D9CB-469F-A165-70867728950E";
    const char *hdrs[] = {"X-Correlation-Id: 0F8FAD5B-D9CB-469F-A165-70867728950E", NULL};
    eg_http_resp_t r = get_h("/env", hdrs);
    char corr[64];
    eg_json_t *o = parse(&r);

    header(&r, "X-Correlation-Id", corr, sizeof corr);
    cr_assert_str_eq(corr, id);
    cr_assert_str_eq(jstr(eg_json_get(o, "status"), "corrId"), id);
    cr_assert_str_eq(jstr(eg_json_get(o, "data"), "logCorr"), id);
    eg_json_free(o);
    eg_http_resp_free(&r);
}

Test(http, invalid_incoming_corr_id_is_replaced, .init = setup, .fini = teardown)
{
    const char *hdrs[] = {"X-Correlation-Id: not-a-uuid\"<script>", NULL};
    eg_http_resp_t r = get_h("/env", hdrs);
    char corr[64];

    header(&r, "X-Correlation-Id", corr, sizeof corr);
    cr_assert(eg_uuid_valid(corr), "%s", corr);
    cr_assert_null(strstr(r.body, "script"));
    eg_http_resp_free(&r);
}

Test(http, error_reply_maps_status_and_keeps_added_headers, .init = setup, .fini = teardown)
{
    eg_http_resp_t r = get("/full");
    char retry[16];
    eg_json_t *o = parse(&r);
    eg_json_t *st = eg_json_get(o, "status");

    cr_assert_eq(r.status, 429);
    header(&r, "Retry-After", retry, sizeof retry);
    cr_assert_str_eq(retry, "7");
    cr_assert_eq(eg_json_int(eg_json_get(st, "code")), 429);
    cr_assert_str_eq(jstr(st, "subCode"), "EG_EFULL");
    cr_assert_str_eq(jstr(st, "message"), "slot is full");
    eg_json_free(o);
    eg_http_resp_free(&r);
}

/* The request records the status it was answered with; metrics (services/api/main.c) read it
 * there, so what they count is what the client got, whatever the handler returns. */
Test(http, the_status_sent_is_recorded_in_the_request, .init = setup, .fini = teardown)
{
    eg_http_resp_t r = get("/status");
    cr_assert_eq(r.status, 429);
    eg_http_resp_free(&r);
    /* The client may have its answer before the handler has returned: wait for it. */
    for (int i = 0; i < 200 && atomic_load(&seen_after_second) == -1; i++) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    cr_assert_eq(atomic_load(&seen_before), 0, "a status before any reply");
    cr_assert_eq(atomic_load(&seen_after), 429);
    cr_assert_eq(atomic_load(&seen_after_second), 429, "the refused second reply overwrote it");
}

Test(http, handler_without_reply_gets_a_500_envelope, .init = setup, .fini = teardown)
{
    eg_http_resp_t r = get("/noreply");
    eg_json_t *o = parse(&r);
    eg_json_t *st = eg_json_get(o, "status");

    cr_assert_eq(r.status, 500);
    cr_assert_eq(eg_json_int(eg_json_get(st, "code")), 500);
    cr_assert_str_eq(jstr(st, "subCode"), "EG_EINTERNAL");
    eg_json_free(o);
    eg_http_resp_free(&r);
}

/* ---- bodies ---- */

Test(http, body_within_limit_is_read_whole, .init = setup, .fini = teardown)
{
    char body[MAX_BODY];
    eg_http_resp_t r;

    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (char)('a' + i % 26);
    body[100] = '\0'; /* bodies are bytes, not strings */
    r = post("/echo", NULL, body, sizeof body);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.len, sizeof body);
    cr_assert_eq(memcmp(r.body, body, sizeof body), 0);
    eg_http_resp_free(&r);
}

Test(http, body_over_limit_is_refused_413, .init = setup, .fini = teardown)
{
    char body[MAX_BODY + 1];
    eg_http_resp_t r;
    eg_json_t *o;

    memset(body, 'x', sizeof body);
    r = post("/echo", NULL, body, sizeof body);
    cr_assert_eq(r.status, 413);
    o = parse(&r);
    cr_assert_str_eq(jstr(eg_json_get(o, "status"), "subCode"), "EG_ETOOBIG");
    eg_json_free(o);
    eg_http_resp_free(&r);
}

Test(http, chunked_body_over_limit_is_refused_413, .init = setup, .fini = teardown)
{
    const char *hdrs[] = {"Transfer-Encoding: chunked", NULL};
    char big[3 * MAX_BODY];
    eg_http_resp_t r;

    memset(big, 'y', sizeof big);
    r = post("/echo", hdrs, big, 100);
    cr_assert_eq(r.status, 200, "a small chunked body is fine");
    cr_assert_eq(r.len, 100);
    eg_http_resp_free(&r);
    r = post("/echo", hdrs, big, sizeof big);
    cr_assert_eq(r.status, 413);
    eg_http_resp_free(&r);
}

/* ---- query and headers ---- */

Test(http, query_params_are_form_decoded, .init = setup, .fini = teardown)
{
    eg_http_resp_t r = get("/q?_=1700000000000&name=J%C3%B6rg+M%26M%3d1&empty=&flag&bad=%zz");
    eg_json_t *o = parse(&r);

    cr_assert_str_eq(jstr(o, "name"), "J\xc3\xb6rg M&M=1");
    cr_assert_str_eq(jstr(o, "empty"), "");
    cr_assert_str_eq(jstr(o, "flag"), "");
    cr_assert_str_eq(jstr(o, "missing"), "EG_ENOTFOUND");
    cr_assert_str_eq(jstr(o, "small"), "EG_ETOOBIG");
    eg_json_free(o);
    eg_http_resp_free(&r);
}

Test(http, no_query_string, .init = setup, .fini = teardown)
{
    eg_http_resp_t r = get("/q");
    eg_json_t *o = parse(&r);

    cr_assert_str_eq(jstr(o, "raw"), "(null)");
    cr_assert_str_eq(jstr(o, "name"), "EG_ENOTFOUND");
    eg_json_free(o);
    eg_http_resp_free(&r);
}

Test(http, header_lookup_ignores_case, .init = setup, .fini = teardown)
{
    const char *hdrs[] = {"X-Api-Key: k1.secret", NULL};
    eg_http_resp_t r = get_h("/hdr", hdrs);

    cr_assert_str_eq(r.body, "k1.secret|k1.secret|(none)");
    eg_http_resp_free(&r);
}

/* ---- connections ---- */

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    struct timeval tv = {5, 0};

    cr_assert_geq(fd, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)eg_http_port(srv));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void send_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        cr_assert_gt(w, 0);
        s += w;
        n -= (size_t)w;
    }
}

/* Read one response (headers + Content-Length body) into buf. Returns its status, or -1 when
 * the server closed the connection before a whole response arrived. */
static int read_response(int fd, char *buf, size_t cap)
{
    size_t have = 0;
    char *eoh = NULL;
    size_t need = 0;

    for (;;) {
        ssize_t n;
        if (eoh == NULL) {
            buf[have] = '\0';
            eoh = strstr(buf, "\r\n\r\n");
            if (eoh) {
                const char *cl = strstr(buf, "Content-Length: ");
                cr_assert_not_null(cl);
                need = (size_t)(eoh + 4 - buf) + (size_t)atol(cl + 16);
            }
        }
        if (eoh && have >= need)
            break;
        cr_assert_lt(have, cap - 1);
        n = read(fd, buf + have, need && need < cap - 1 ? need - have : cap - 1 - have);
        if (n <= 0)
            return -1;
        have += (size_t)n;
    }
    buf[have] = '\0';
    return atoi(buf + 9);
}

Test(http, keep_alive_serves_several_requests_on_one_connection, .init = setup_keepalive,
     .fini = teardown)
{
    const char *req = "GET /a/b HTTP/1.1\r\nHost: t\r\n\r\n";
    char over[MAX_BODY + 200];
    char buf[8192];
    int fd = dial();
    int n;

    send_all(fd, req, strlen(req));
    cr_assert_eq(read_response(fd, buf, sizeof buf), 200);
    cr_assert_not_null(strstr(buf, "Connection: keep-alive"), "%s", buf);
    cr_assert_not_null(strstr(buf, "\r\n\r\nab /a/b"));

    /* A refused body is drained, so the connection stays usable after the 413. */
    n = snprintf(over, sizeof over, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n",
                 MAX_BODY + 10);
    memset(over + n, 'z', MAX_BODY + 10);
    send_all(fd, over, (size_t)n + MAX_BODY + 10);
    cr_assert_eq(read_response(fd, buf, sizeof buf), 413);

    send_all(fd, req, strlen(req));
    cr_assert_eq(read_response(fd, buf, sizeof buf), 200);
    cr_assert_not_null(strstr(buf, "\r\n\r\nab /a/b"));
    close(fd);
}

Test(http, without_keep_alive_the_server_closes, .init = setup, .fini = teardown)
{
    const char *req = "GET /a HTTP/1.1\r\nHost: t\r\n\r\n";
    char buf[8192];
    int fd = dial();

    send_all(fd, req, strlen(req));
    cr_assert_eq(read_response(fd, buf, sizeof buf), 200);
    cr_assert_not_null(strstr(buf, "Connection: close"), "%s", buf);
    /* A second request on the same connection gets no answer: the server hung up. */
    send(fd, req, strlen(req), MSG_NOSIGNAL);
    cr_assert_eq(read_response(fd, buf, sizeof buf), -1);
    close(fd);
}

Test(http, busy_port_is_unavailable, .init = setup, .fini = teardown)
{
    eg_http_opts_t opts = {.port = eg_http_port(srv), .threads = 1};
    eg_http_server_t *other = NULL;

    cr_assert_eq(eg_http_start(&other, &opts), EG_EUNAVAIL);
    cr_assert_null(other);
}

/* ---- the client's failure statuses ---- */

Test(httpclient, refused_connection_is_unavailable, .init = setup, .fini = teardown)
{
    char url[128];
    eg_http_resp_t r;

    snprintf(url, sizeof url, "%s/a", base);
    eg_http_stop(srv);
    srv = NULL;
    cr_assert_eq(eg_http_fetch("GET", url, NULL, NULL, 0, 2000, &r), EG_EUNAVAIL);
    cr_assert_null(r.body);
}

Test(httpclient, slow_server_times_out, .init = setup, .fini = teardown)
{
    char url[128];
    eg_http_resp_t r;

    snprintf(url, sizeof url, "%s/slow", base);
    cr_assert_eq(eg_http_fetch("GET", url, NULL, NULL, 0, 300, &r), EG_ETIMEOUT);
}

Test(httpclient, any_http_status_is_returned_with_body_and_headers, .init = setup, .fini = teardown)
{
    char url[128];
    char v[64];
    eg_http_resp_t r;

    snprintf(url, sizeof url, "%s/full", base);
    cr_assert_eq(eg_http_fetch("DELETE", url, NULL, NULL, 0, 2000, &r), EG_OK);
    cr_assert_eq(r.status, 429);
    cr_assert_eq(strlen(r.body), r.len);
    cr_assert_eq(eg_http_resp_header(&r, "retry-after", v, sizeof v), EG_OK);
    cr_assert_str_eq(v, "7");
    cr_assert_eq(eg_http_resp_header(&r, "X-Nope", v, sizeof v), EG_ENOTFOUND);
    cr_assert_eq(eg_http_resp_header(&r, "Retry-After", v, 1), EG_ETOOBIG);
    eg_http_resp_free(&r);
    eg_http_resp_free(&r); /* freeing twice is harmless: the first free cleared it */
}

/* ---- health endpoints ---- */

static eg_status_t check_ok(void *arg, char *why, size_t whylen)
{
    (void)arg;
    (void)why;
    (void)whylen;
    return EG_OK;
}

static eg_status_t check_down(void *arg, char *why, size_t whylen)
{
    snprintf(why, whylen, "%s", (const char *)arg);
    return EG_EUNAVAIL;
}

Test(health, healthz_readyz_and_metrics, .init = setup, .fini = teardown)
{
    eg_health_t *h = eg_health_new();
    eg_metrics_t *m = eg_metrics_new();
    eg_http_resp_t r;
    char ctype[128];

    eg_counter_add(eg_metrics_counter(m, "demo_requests_total", "Requests.", "code=\"200\""), 3);
    eg_health_add_check(h, "redis", check_ok, NULL);
    eg_health_mount(h, srv, m);

    r = get("/healthz");
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "{\"status\":\"ok\"}");
    eg_http_resp_free(&r);

    r = get("/readyz");
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "{\"ready\":true,\"checks\":{\"redis\":\"ok\"}}");
    eg_http_resp_free(&r);

    eg_health_add_check(h, "nats", check_down, "connection refused");
    r = get("/readyz");
    cr_assert_eq(r.status, 503);
    cr_assert_str_eq(
        r.body, "{\"ready\":false,\"checks\":{\"redis\":\"ok\",\"nats\":\"connection refused\"}}");
    eg_http_resp_free(&r);

    r = get("/metrics");
    cr_assert_eq(r.status, 200);
    header(&r, "Content-Type", ctype, sizeof ctype);
    cr_assert_eq(strncmp(ctype, "text/plain; version=0.0.4", 25), 0, "%s", ctype);
    cr_assert_not_null(strstr(r.body, "\ndemo_requests_total{code=\"200\"} 3\n"), "%s", r.body);
    eg_http_resp_free(&r);

    eg_http_stop(srv);
    srv = NULL;
    eg_health_free(h);
    eg_metrics_free(m);
}
