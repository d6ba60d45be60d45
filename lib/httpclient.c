/* The HTTP client, over libcurl's easy interface.
 *
 * Every call builds its own easy handle, so calls from many threads never share state (curl's
 * own rule: one handle per thread at a time). The body is collected in a bounded buffer
 * (16 MiB: nothing we talk to answers more) and the header block in a smaller one; when a
 * redirect or an interim "100 Continue" precedes the final answer, only the final response's
 * headers are kept. CURLOPT_NOSIGNAL keeps curl's resolver timeouts away from SIGALRM, which
 * would otherwise hit whichever thread the kernel picks. curl's error codes map to the few
 * statuses a caller acts on: could not connect (EG_EUNAVAIL), too slow (EG_ETIMEOUT), too big
 * (EG_ETOOBIG), bad URL (EG_EINVAL), anything else (EG_EIO). */
#include "engage/httpclient.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <stdlib.h>

#include "engage/buf.h"
#include "engage/log.h"

#define MAX_BODY (16u * 1024 * 1024)
#define MAX_HEADERS (64u * 1024)
#define DEFAULT_TIMEOUT_MS 30000L

struct sink {
    eg_buf_t buf;
    bool overflow;
};

void eg_httpc_global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void eg_httpc_global_cleanup(void)
{
    curl_global_cleanup();
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct sink *s = userdata;
    size_t n = size * nmemb;

    if (eg_buf_append(&s->buf, ptr, n) != EG_OK) {
        s->overflow = true;
        return 0;
    }
    return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct sink *s = userdata;
    size_t n = size * nmemb;

    /* A new status line starts a new response (after 100 Continue or a redirect). */
    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0)
        eg_buf_reset(&s->buf);
    if (eg_buf_append(&s->buf, ptr, n) != EG_OK) {
        s->overflow = true;
        return 0;
    }
    return n;
}

static eg_status_t map_code(CURLcode rc, bool overflow)
{
    if (overflow)
        return EG_ETOOBIG;
    switch (rc) {
    case CURLE_OK:
        return EG_OK;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return EG_EUNAVAIL;
    case CURLE_OPERATION_TIMEDOUT:
        return EG_ETIMEOUT;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return EG_EINVAL;
    default:
        return EG_EIO;
    }
}

eg_status_t eg_http_fetch(const char *method, const char *url, const char *const *headers,
                          const char *body, size_t len, long timeout_ms, eg_http_resp_t *out)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hl = NULL;
    struct sink bsink;
    struct sink hsink;
    char errbuf[CURL_ERROR_SIZE] = "";
    long code = 0;
    CURLcode rc;
    eg_status_t st = EG_OK;

    memset(out, 0, sizeof *out);
    memset(&bsink, 0, sizeof bsink);
    memset(&hsink, 0, sizeof hsink);
    eg_buf_init(&bsink.buf, MAX_BODY);
    eg_buf_init(&hsink.buf, MAX_HEADERS);
    if (h == NULL) {
        st = EG_EINTERNAL;
        goto out;
    }
    if (timeout_ms <= 0)
        timeout_ms = DEFAULT_TIMEOUT_MS;

    for (size_t i = 0; headers && headers[i]; i++)
        hl = curl_slist_append(hl, headers[i]);
    /* No "Expect: 100-continue" round trip before large bodies: our servers answer at once. */
    hl = curl_slist_append(hl, "Expect:");

    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &bsink);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &hsink);

    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") == 0 && body == NULL) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        /* POSTFIELDS with an explicit size sends Content-Length (0 for a bodiless PUT) and
         * lets the body hold NUL bytes; CUSTOMREQUEST then names the method. */
        if (body || strcmp(method, "GET") != 0) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
        }
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }

    rc = curl_easy_perform(h);
    st = map_code(rc, bsink.overflow || hsink.overflow);
    if (st != EG_OK) {
        eg_log_debug("httpc: %s %s: %s", method, url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    out->status = (int)code;
    out->body = eg_buf_steal(&bsink.buf, &out->len);
    out->headers = eg_buf_steal(&hsink.buf, NULL);
out:
    eg_buf_free(&bsink.buf);
    eg_buf_free(&hsink.buf);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    return st;
}

eg_status_t eg_http_resp_header(const eg_http_resp_t *resp, const char *name, char *out,
                                size_t outlen)
{
    size_t nlen = strlen(name);
    const char *p = resp->headers;
    eg_status_t st = EG_ENOTFOUND;

    if (outlen > 0)
        out[0] = '\0';
    while (p && *p) {
        const char *eol = strchr(p, '\n');
        size_t llen = eol ? (size_t)(eol - p) : strlen(p);

        if (llen > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
            const char *v = p + nlen + 1;
            const char *end = p + llen;
            size_t vlen;

            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            while (end > v && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
                end--;
            vlen = (size_t)(end - v);
            if (vlen + 1 > outlen) {
                st = EG_ETOOBIG;
                goto out;
            }
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            st = EG_OK;
            goto out;
        }
        p = eol ? eol + 1 : NULL;
    }
out:
    return st;
}

void eg_http_resp_free(eg_http_resp_t *resp)
{
    if (resp == NULL)
        return;
    free(resp->body);
    free(resp->headers);
    memset(resp, 0, sizeof *resp);
}
