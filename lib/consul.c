/* Consul, through the agent's HTTP API (over our libcurl client).
 *
 * At start a service registers itself with the local agent, together with an HTTP check on
 * its /readyz, so Consul takes an unready instance out of rotation and reaps one that stays
 * critical (DeregisterCriticalServiceAfter). At stop it deregisters. KV reads give run-time
 * overrides of configuration; Consul returns values base64-encoded inside a JSON array, which
 * is decoded here. Without an agent address everything is a no-op, so the dev stack runs with
 * no Consul at all.
 *
 * Every call is a single blocking request with a short timeout; a failing agent is logged
 * once here (with the HTTP status) and reported as a status, never retried behind the
 * caller's back. */
#include "engage/consul.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage/buf.h"
#include "engage/httpclient.h"
#include "engage/json.h"
#include "engage/log.h"
#include "engage/mem.h"

#define TIMEOUT_MS 5000L
#define TOKEN_HEADER_LEN 512

struct eg_consul {
    char *addr; /* without a trailing slash */
    char *token;
    char *service_id;
};

static char *base_url(const char *addr)
{
    size_t len = strlen(addr);

    while (len > 0 && addr[len - 1] == '/')
        len--;
    return eg_xstrndup(addr, len);
}

/* Percent-encode s into b as a URL path; '/' is kept when keep_slash (KV keys are paths). */
static void put_path(eg_buf_t *b, const char *s, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";

    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~' ||
                     (keep_slash && *p == '/');
        if (plain) {
            eg_buf_append(b, p, 1);
        } else {
            char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            eg_buf_append(b, esc, 3);
        }
    }
}

/* One request to the agent. A non-2xx answer is EG_EIO (EG_ENOTFOUND for a 404 when
 * notfound_ok), logged with its status; the response is returned in resp on EG_OK. */
static eg_status_t call(const char *method, const char *url, const char *token, const char *body,
                        bool notfound_ok, eg_http_resp_t *resp)
{
    char tokhdr[TOKEN_HEADER_LEN];
    const char *headers[3] = {NULL, NULL, NULL};
    size_t nh = 0;
    eg_status_t st;

    headers[nh++] = "Content-Type: application/json";
    if (token && *token) {
        snprintf(tokhdr, sizeof tokhdr, "X-Consul-Token: %s", token);
        headers[nh++] = tokhdr;
    }
    st = eg_http_fetch(method, url, headers, body, body ? strlen(body) : 0, TIMEOUT_MS, resp);
    if (st != EG_OK) {
        eg_log_warn("consul: %s %s failed: %s", method, url, eg_status_str(st));
        goto out;
    }
    if (resp->status == 404 && notfound_ok) {
        st = EG_ENOTFOUND;
    } else if (resp->status < 200 || resp->status > 299) {
        eg_log_warn("consul: %s %s answered %d: %.200s", method, url, resp->status,
                    resp->body ? resp->body : "");
        st = EG_EIO;
    }
    if (st != EG_OK)
        eg_http_resp_free(resp);
out:
    return st;
}

eg_status_t eg_consul_register(eg_consul_t **out, const eg_consul_opts_t *opts)
{
    eg_consul_t *c = NULL;
    eg_json_t *reg = NULL;
    eg_json_t *check;
    eg_http_resp_t resp;
    eg_buf_t url;
    char text[512];
    const char *address;
    char *body = NULL;
    eg_status_t st = EG_OK;

    *out = NULL;
    eg_buf_init(&url, 4096);
    if (opts->addr == NULL || opts->addr[0] == '\0')
        goto out;
    if (opts->service_name == NULL || opts->service_name[0] == '\0' || opts->port <= 0 ||
        opts->port > 65535) {
        st = EG_EINVAL;
        goto out;
    }
    c = eg_xcalloc(1, sizeof *c);
    c->addr = base_url(opts->addr);
    c->token = eg_xstrdup(opts->token);
    c->service_id =
        eg_xstrdup(opts->service_id && *opts->service_id ? opts->service_id : opts->service_name);
    address = opts->address && *opts->address ? opts->address : "127.0.0.1";

    reg = eg_json_object();
    eg_json_set_str(reg, "ID", c->service_id);
    eg_json_set_str(reg, "Name", opts->service_name);
    eg_json_set_str(reg, "Address", address);
    eg_json_set_int(reg, "Port", opts->port);
    check = eg_json_object();
    snprintf(text, sizeof text, "http://%s:%d%s", address, opts->port,
             opts->check_path && *opts->check_path ? opts->check_path : "/readyz");
    eg_json_set_str(check, "HTTP", text);
    snprintf(text, sizeof text, "%ds", opts->check_interval_s > 0 ? opts->check_interval_s : 10);
    eg_json_set_str(check, "Interval", text);
    eg_json_set_str(check, "Timeout", "2s");
    snprintf(text, sizeof text, "%ds",
             opts->deregister_after_s > 0 ? opts->deregister_after_s : 60);
    eg_json_set_str(check, "DeregisterCriticalServiceAfter", text);
    eg_json_set(reg, "Check", check);
    body = eg_json_dump(reg, NULL);

    eg_buf_printf(&url, "%s/v1/agent/service/register", c->addr);
    st = call("PUT", url.data, c->token, body, false, &resp);
    if (st != EG_OK)
        goto out;
    eg_http_resp_free(&resp);
    eg_log_info("consul: registered %s (%s) at %s:%d", c->service_id, opts->service_name, address,
                opts->port);
out:
    if (st != EG_OK) {
        eg_consul_free(c);
        c = NULL;
    }
    *out = c;
    free(body);
    eg_json_free(reg);
    eg_buf_free(&url);
    return st;
}

eg_status_t eg_consul_deregister(eg_consul_t *c)
{
    eg_http_resp_t resp;
    eg_buf_t url;
    eg_status_t st = EG_OK;

    if (c == NULL)
        return EG_OK;
    eg_buf_init(&url, 4096);
    eg_buf_printf(&url, "%s/v1/agent/service/deregister/", c->addr);
    put_path(&url, c->service_id, false);
    st = call("PUT", url.data, c->token, NULL, false, &resp);
    if (st != EG_OK)
        goto out;
    eg_http_resp_free(&resp);
    eg_log_info("consul: deregistered %s", c->service_id);
out:
    eg_buf_free(&url);
    return st;
}

void eg_consul_free(eg_consul_t *c)
{
    if (c == NULL)
        return;
    free(c->addr);
    free(c->token);
    free(c->service_id);
    free(c);
}

static int b64val(char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+' || ch == '-')
        return 62;
    if (ch == '/' || ch == '_')
        return 63;
    return -1;
}

/* Decode standard (or URL-safe) base64, padded or not, ignoring line breaks. The result is
 * NUL-terminated. False on a character outside the alphabet or a dangling 6-bit group. */
static bool b64_decode(const char *in, size_t n, char **out, size_t *outlen)
{
    unsigned char *o = eg_xmalloc(n / 4 * 3 + 4);
    size_t k = 0;
    unsigned acc = 0;
    int bits = 0;
    int groups = 0;
    bool ok = true;

    for (size_t i = 0; i < n; i++) {
        int v;
        if (in[i] == '=')
            break;
        if (in[i] == '\r' || in[i] == '\n')
            continue;
        v = b64val(in[i]);
        if (v < 0) {
            ok = false;
            goto out;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        groups++;
        if (bits >= 8) {
            bits -= 8;
            o[k++] = (unsigned char)((acc >> bits) & 0xFF);
        }
    }
    if (groups % 4 == 1)
        ok = false;
out:
    if (!ok) {
        free(o);
        return false;
    }
    o[k] = '\0';
    *out = (char *)o;
    *outlen = k;
    return true;
}

eg_status_t eg_consul_kv_get(const char *addr, const char *token, const char *key, char **value,
                             size_t *len)
{
    eg_http_resp_t resp;
    eg_json_t *doc = NULL;
    eg_json_t *v;
    char *base = NULL;
    eg_buf_t url;
    char err[160];
    size_t ignored;
    eg_status_t st;
    bool have_resp = false;

    *value = NULL;
    if (len)
        *len = 0;
    eg_buf_init(&url, 4096);
    if (addr == NULL || addr[0] == '\0' || key == NULL) {
        st = EG_EINVAL;
        goto out;
    }
    base = base_url(addr);
    eg_buf_printf(&url, "%s/v1/kv/", base);
    put_path(&url, key[0] == '/' ? key + 1 : key, true);
    st = call("GET", url.data, token, NULL, true, &resp);
    if (st != EG_OK)
        goto out;
    have_resp = true;
    doc = eg_json_parse(resp.body, resp.len, 0, err, sizeof err);
    if (doc == NULL || !eg_json_is_array(doc) || eg_json_array_size(doc) == 0) {
        eg_log_warn("consul: GET %s: unexpected answer: %s", url.data, doc ? "not an array" : err);
        st = EG_EPROTO;
        goto out;
    }
    v = eg_json_get(eg_json_array_get(doc, 0), "Value");
    if (v == NULL || eg_json_is_null(v)) {
        /* A key that exists with no value. */
        *value = eg_xstrdup("");
        goto out;
    }
    if (!eg_json_is_string(v) ||
        !b64_decode(eg_json_str(v), eg_json_str_len(v), value, len ? len : &ignored)) {
        eg_log_warn("consul: GET %s: Value is not base64", url.data);
        st = EG_EPROTO;
        goto out;
    }
out:
    if (have_resp)
        eg_http_resp_free(&resp);
    eg_json_free(doc);
    free(base);
    eg_buf_free(&url);
    return st;
}
