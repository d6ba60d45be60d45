/* fake-consul: a small stand-in for a Consul agent, for tests and the dev stack.
 *
 * Consul has no package on these machines, so tests run the real client (lib/consul.c) against
 * this subset of the agent HTTP API, built only on Engage's own lib:
 *   PUT    /v1/agent/service/register          store a service by ID (with its HTTP check)
 *   PUT    /v1/agent/service/deregister/{id}
 *   GET    /v1/agent/services                  {id: {ID, Service, Address, Port, Tags}}
 *   GET    /v1/agent/checks                    {checkId: {CheckID, Name, Status, ...}}
 *   GET    /v1/health/service/{name}[?passing] [{Node, Service, Checks}]
 *   PUT    /v1/kv/{key}                        raw body; answers true
 *   GET    /v1/kv/{key}[?recurse]              [{Key, Value (base64), ...}]; 404 when absent
 *   DELETE /v1/kv/{key}[?recurse]
 *
 * Like the real agent, a registered HTTP check starts "critical"; a poller thread calls every
 * check URL once a second and marks it "passing" on a 2xx answer, "critical" otherwise.
 * Usage: fake-consul --port P [--state-file F]. Port 0 picks a free port; the port is printed
 * as "PORT=<n>" on stdout. With a state file, the state is loaded at start and rewritten after
 * every change, so a restarted fake keeps its services and keys. SIGTERM or SIGINT stops it.
 *
 * Threading: HTTP handlers run on the server's workers and the poller on its own thread; one
 * mutex guards all state. Check URLs are fetched outside it. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engage/buf.h"
#include "engage/http.h"
#include "engage/httpclient.h"
#include "engage/json.h"
#include "engage/log.h"
#include "engage/mem.h"

#define CHECK_TIMEOUT_MS 2000L
#define NODE_NAME "fake-consul"

struct service {
    char *id;
    char *name;
    char *address;
    int port;
    char *check_http; /* NULL when registered without a check */
    char *status;     /* "passing", "critical" */
    char *output;
    struct service *next;
};

struct kv {
    char *key;
    char *value;
    size_t len;
    int64_t create_index;
    int64_t modify_index;
    struct kv *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct service *services;
static struct kv *kvs;
static int64_t raft_index = 1;
static const char *state_file;
static atomic_bool stopping;

/* ---- helpers ---- */

static void set_str(char **dst, const char *s)
{
    free(*dst);
    *dst = eg_xstrdup(s);
}

static void b64_encode(eg_buf_t *b, const unsigned char *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        char out[4];
        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        out[0] = tab[(v >> 18) & 63];
        out[1] = tab[(v >> 12) & 63];
        out[2] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[3] = i + 2 < n ? tab[v & 63] : '=';
        eg_buf_append(b, out, 4);
    }
}

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

static char *b64_decode(const char *s, size_t *len)
{
    size_t n = strlen(s);
    char *out = eg_xmalloc(n / 4 * 3 + 4);
    unsigned acc = 0;
    int bits = 0;
    size_t k = 0;

    for (size_t i = 0; i < n && s[i] != '='; i++) {
        int v = b64_val(s[i]);
        if (v < 0)
            continue;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[k++] = (char)((acc >> bits) & 0xFF);
        }
    }
    out[k] = '\0';
    *len = k;
    return out;
}

static struct service *find_service(const char *id)
{
    for (struct service *s = services; s; s = s->next)
        if (strcmp(s->id, id) == 0)
            return s;
    return NULL;
}

static struct kv *find_kv(const char *key)
{
    for (struct kv *e = kvs; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static void free_service(struct service *s)
{
    free(s->id);
    free(s->name);
    free(s->address);
    free(s->check_http);
    free(s->status);
    free(s->output);
    free(s);
}

static void free_kv(struct kv *e)
{
    free(e->key);
    free(e->value);
    free(e);
}

static void reply_text(eg_http_req_t *req, int code, const char *text)
{
    eg_http_reply(req, code, "text/plain; charset=utf-8", text, strlen(text));
}

static void reply_json(eg_http_req_t *req, eg_json_t *v)
{
    eg_http_reply_json(req, 200, v);
    eg_json_free(v);
}

static bool method_is(eg_http_req_t *req, const char *m)
{
    return strcmp(eg_http_method(req), m) == 0;
}

/* The rest of the path after prefix and one '/', or NULL when empty. */
static const char *path_tail(eg_http_req_t *req, const char *prefix)
{
    const char *p = eg_http_path(req) + strlen(prefix);

    if (*p == '/')
        p++;
    return *p ? p : NULL;
}

/* ---- JSON views of the state (mu held) ---- */

static eg_json_t *service_json(const struct service *s)
{
    eg_json_t *o = eg_json_object();

    eg_json_set_str(o, "ID", s->id);
    eg_json_set_str(o, "Service", s->name);
    eg_json_set_str(o, "Address", s->address);
    eg_json_set_int(o, "Port", s->port);
    eg_json_set(o, "Tags", eg_json_array());
    return o;
}

static eg_json_t *check_json(const struct service *s)
{
    eg_json_t *o = eg_json_object();
    char id[512];

    snprintf(id, sizeof id, "service:%s", s->id);
    eg_json_set_str(o, "Node", NODE_NAME);
    eg_json_set_str(o, "CheckID", id);
    eg_json_set_str(o, "Name", "Service check");
    eg_json_set_str(o, "Status", s->status);
    eg_json_set_str(o, "Output", s->output ? s->output : "");
    eg_json_set_str(o, "ServiceID", s->id);
    eg_json_set_str(o, "ServiceName", s->name);
    eg_json_set_str(o, "Type", "http");
    return o;
}

static eg_json_t *kv_json(const struct kv *e)
{
    eg_json_t *o = eg_json_object();
    eg_buf_t b;

    eg_buf_init(&b, SIZE_MAX / 2);
    b64_encode(&b, (const unsigned char *)e->value, e->len);
    eg_json_set_str(o, "Key", e->key);
    eg_json_set_int(o, "Flags", 0);
    eg_json_set_str(o, "Value", b.data ? b.data : "");
    eg_json_set_int(o, "LockIndex", 0);
    eg_json_set_int(o, "CreateIndex", e->create_index);
    eg_json_set_int(o, "ModifyIndex", e->modify_index);
    eg_buf_free(&b);
    return o;
}

/* Rewrite the state file (mu held): services with their check URL, and keys base64-encoded. */
static void save_state(void)
{
    eg_json_t *root;
    eg_json_t *svcs;
    eg_json_t *keys;
    char tmp[4096];
    char *text;
    size_t len = 0;
    FILE *f;

    if (state_file == NULL)
        return;
    root = eg_json_object();
    svcs = eg_json_array();
    keys = eg_json_array();
    for (struct service *s = services; s; s = s->next) {
        eg_json_t *o = service_json(s);
        if (s->check_http)
            eg_json_set_str(o, "CheckHTTP", s->check_http);
        eg_json_append(svcs, o);
    }
    for (struct kv *e = kvs; e; e = e->next)
        eg_json_append(keys, kv_json(e));
    eg_json_set(root, "services", svcs);
    eg_json_set(root, "kv", keys);
    text = eg_json_dump(root, &len);
    snprintf(tmp, sizeof tmp, "%s.tmp", state_file);
    f = fopen(tmp, "w");
    if (f == NULL || fwrite(text, 1, len, f) != len || fclose(f) != 0 ||
        rename(tmp, state_file) != 0)
        eg_log_warn("fake-consul: cannot write %s", state_file);
    free(text);
    eg_json_free(root);
}

static void load_state(void)
{
    FILE *f = fopen(state_file, "r");
    eg_buf_t b;
    char chunk[4096];
    char err[160];
    eg_json_t *root = NULL;
    eg_json_t *arr;
    size_t n;

    eg_buf_init(&b, 64u * 1024 * 1024);
    if (f == NULL)
        goto out;
    for (;;) {
        n = fread(chunk, 1, sizeof chunk, f);
        if (n == 0)
            break;
        eg_buf_append(&b, chunk, n);
    }
    fclose(f);
    root = eg_json_parse(b.data ? b.data : "", b.len, 0, err, sizeof err);
    if (root == NULL) {
        eg_log_warn("fake-consul: ignoring %s: %s", state_file, err);
        goto out;
    }
    arr = eg_json_get(root, "services");
    for (size_t i = 0; i < eg_json_array_size(arr); i++) {
        eg_json_t *o = eg_json_array_get(arr, i);
        struct service *s = eg_xcalloc(1, sizeof *s);
        s->id = eg_xstrdup(eg_json_str(eg_json_get(o, "ID")));
        s->name = eg_xstrdup(eg_json_str(eg_json_get(o, "Service")));
        s->address = eg_xstrdup(eg_json_str(eg_json_get(o, "Address")));
        s->port = (int)eg_json_int(eg_json_get(o, "Port"));
        s->check_http = eg_xstrdup(eg_json_str(eg_json_get(o, "CheckHTTP")));
        s->status = eg_xstrdup(s->check_http ? "critical" : "passing");
        if (s->id == NULL || s->name == NULL) {
            free_service(s);
            continue;
        }
        if (s->address == NULL)
            s->address = eg_xstrdup("");
        s->next = services;
        services = s;
    }
    arr = eg_json_get(root, "kv");
    for (size_t i = 0; i < eg_json_array_size(arr); i++) {
        eg_json_t *o = eg_json_array_get(arr, i);
        const char *key = eg_json_str(eg_json_get(o, "Key"));
        const char *val = eg_json_str(eg_json_get(o, "Value"));
        struct kv *e;
        if (key == NULL)
            continue;
        e = eg_xcalloc(1, sizeof *e);
        e->key = eg_xstrdup(key);
        e->value = b64_decode(val ? val : "", &e->len);
        e->create_index = e->modify_index = ++raft_index;
        e->next = kvs;
        kvs = e;
    }
out:
    eg_json_free(root);
    eg_buf_free(&b);
}

/* ---- agent endpoints ---- */

static int h_register(eg_http_req_t *req, void *arg)
{
    const char *body;
    size_t len;
    char err[160];
    eg_json_t *doc = NULL;
    eg_json_t *check;
    const char *id;
    const char *name;
    const char *http;
    const char *address;
    struct service *s;
    int code = 200;

    (void)arg;
    if (!method_is(req, "PUT")) {
        code = 405;
        reply_text(req, code, "method not allowed");
        goto out;
    }
    if (eg_http_body(req, &body, &len) != EG_OK) {
        code = 413;
        reply_text(req, code, "body too large");
        goto out;
    }
    doc = eg_json_parse(body, len, 0, err, sizeof err);
    name = eg_json_str(eg_json_get(doc, "Name"));
    if (doc == NULL || name == NULL || name[0] == '\0') {
        code = 400;
        reply_text(req, code, doc ? "Missing service name" : err);
        goto out;
    }
    id = eg_json_str(eg_json_get(doc, "ID"));
    if (id == NULL || id[0] == '\0')
        id = name;
    check = eg_json_get(doc, "Check");
    http = eg_json_str(eg_json_get(check, "HTTP"));
    address = eg_json_str(eg_json_get(doc, "Address"));

    pthread_mutex_lock(&mu);
    s = find_service(id);
    if (s == NULL) {
        s = eg_xcalloc(1, sizeof *s);
        s->id = eg_xstrdup(id);
        s->next = services;
        services = s;
    }
    set_str(&s->name, name);
    set_str(&s->address, address ? address : "");
    s->port = (int)eg_json_int(eg_json_get(doc, "Port"));
    set_str(&s->check_http, http);
    set_str(&s->status, http ? "critical" : "passing");
    set_str(&s->output, "");
    raft_index++;
    save_state();
    pthread_mutex_unlock(&mu);
    eg_log_info("fake-consul: registered %s (%s) port %d", id, name, s->port);
    reply_text(req, code, "");
out:
    eg_json_free(doc);
    return code;
}

static int h_deregister(eg_http_req_t *req, void *arg)
{
    const char *id = path_tail(req, "/v1/agent/service/deregister");
    struct service **pp;
    int code = 404;

    (void)arg;
    if (!method_is(req, "PUT")) {
        reply_text(req, 405, "method not allowed");
        return 405;
    }
    pthread_mutex_lock(&mu);
    for (pp = &services; id && *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->id, id) == 0) {
            struct service *dead = *pp;
            *pp = dead->next;
            free_service(dead);
            code = 200;
            raft_index++;
            save_state();
            break;
        }
    }
    pthread_mutex_unlock(&mu);
    reply_text(req, code, code == 200 ? "" : "Unknown service ID");
    return code;
}

static int h_services(eg_http_req_t *req, void *arg)
{
    eg_json_t *o = eg_json_object();

    (void)arg;
    pthread_mutex_lock(&mu);
    for (struct service *s = services; s; s = s->next)
        eg_json_set(o, s->id, service_json(s));
    pthread_mutex_unlock(&mu);
    reply_json(req, o);
    return 200;
}

static int h_checks(eg_http_req_t *req, void *arg)
{
    eg_json_t *o = eg_json_object();
    char id[512];

    (void)arg;
    pthread_mutex_lock(&mu);
    for (struct service *s = services; s; s = s->next) {
        if (s->check_http == NULL)
            continue;
        snprintf(id, sizeof id, "service:%s", s->id);
        eg_json_set(o, id, check_json(s));
    }
    pthread_mutex_unlock(&mu);
    reply_json(req, o);
    return 200;
}

static int h_health_service(eg_http_req_t *req, void *arg)
{
    const char *name = path_tail(req, "/v1/health/service");
    char flag[8];
    bool passing_only = eg_http_query_param(req, "passing", flag, sizeof flag) != EG_ENOTFOUND;
    eg_json_t *arr = eg_json_array();

    (void)arg;
    pthread_mutex_lock(&mu);
    for (struct service *s = services; name && s; s = s->next) {
        eg_json_t *entry;
        eg_json_t *node;
        eg_json_t *checks;
        if (strcmp(s->name, name) != 0)
            continue;
        if (passing_only && strcmp(s->status, "passing") != 0)
            continue;
        entry = eg_json_object();
        node = eg_json_object();
        eg_json_set_str(node, "Node", NODE_NAME);
        eg_json_set_str(node, "Address", "127.0.0.1");
        eg_json_set(entry, "Node", node);
        eg_json_set(entry, "Service", service_json(s));
        checks = eg_json_array();
        if (s->check_http)
            eg_json_append(checks, check_json(s));
        eg_json_set(entry, "Checks", checks);
        eg_json_append(arr, entry);
    }
    pthread_mutex_unlock(&mu);
    reply_json(req, arr);
    return 200;
}

/* ---- KV ---- */

static bool key_selected(const char *key, const char *want, bool recurse)
{
    return recurse ? strncmp(key, want, strlen(want)) == 0 : strcmp(key, want) == 0;
}

static int h_kv(eg_http_req_t *req, void *arg)
{
    const char *key = path_tail(req, "/v1/kv");
    char flag[8];
    bool recurse = eg_http_query_param(req, "recurse", flag, sizeof flag) != EG_ENOTFOUND;
    const char *body;
    size_t len;
    int code = 200;

    (void)arg;
    if (key == NULL && !recurse) {
        code = 400;
        reply_text(req, code, "Missing key name");
        goto out;
    }
    if (key == NULL)
        key = "";
    if (method_is(req, "PUT")) {
        struct kv *e;
        if (eg_http_body(req, &body, &len) != EG_OK) {
            code = 413;
            reply_text(req, code, "Value exceeds size limit");
            goto out;
        }
        pthread_mutex_lock(&mu);
        e = find_kv(key);
        if (e == NULL) {
            e = eg_xcalloc(1, sizeof *e);
            e->key = eg_xstrdup(key);
            e->create_index = raft_index + 1;
            e->next = kvs;
            kvs = e;
        }
        free(e->value);
        e->value = eg_xstrndup(body, len);
        e->len = len;
        e->modify_index = ++raft_index;
        save_state();
        pthread_mutex_unlock(&mu);
        reply_text(req, code, "true");
    } else if (method_is(req, "GET")) {
        eg_json_t *arr = eg_json_array();
        pthread_mutex_lock(&mu);
        for (struct kv *e = kvs; e; e = e->next)
            if (key_selected(e->key, key, recurse))
                eg_json_append(arr, kv_json(e));
        pthread_mutex_unlock(&mu);
        if (eg_json_array_size(arr) == 0) {
            eg_json_free(arr);
            code = 404;
            reply_text(req, code, "");
            goto out;
        }
        reply_json(req, arr);
    } else if (method_is(req, "DELETE")) {
        pthread_mutex_lock(&mu);
        for (struct kv **pp = &kvs; *pp;) {
            if (key_selected((*pp)->key, key, recurse)) {
                struct kv *dead = *pp;
                *pp = dead->next;
                free_kv(dead);
            } else {
                pp = &(*pp)->next;
            }
        }
        raft_index++;
        save_state();
        pthread_mutex_unlock(&mu);
        reply_text(req, code, "true");
    } else {
        code = 405;
        reply_text(req, code, "method not allowed");
    }
out:
    return code;
}

static int h_unknown(eg_http_req_t *req, void *arg)
{
    (void)arg;
    reply_text(req, 404, "fake-consul: not implemented");
    return 404;
}

/* ---- the check poller ---- */

struct probe {
    char *id;
    char *url;
};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

static void poll_checks(void)
{
    struct probe *probes = NULL;
    size_t n = 0;
    size_t cap = 0;

    pthread_mutex_lock(&mu);
    for (struct service *s = services; s; s = s->next) {
        if (s->check_http == NULL)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            probes = eg_xrealloc(probes, cap * sizeof *probes);
        }
        probes[n].id = eg_xstrdup(s->id);
        probes[n].url = eg_xstrdup(s->check_http);
        n++;
    }
    pthread_mutex_unlock(&mu);

    for (size_t i = 0; i < n; i++) {
        eg_http_resp_t resp;
        char output[256];
        eg_status_t st =
            eg_http_fetch("GET", probes[i].url, NULL, NULL, 0, CHECK_TIMEOUT_MS, &resp);
        bool ok = st == EG_OK && resp.status >= 200 && resp.status <= 299;
        struct service *s;

        if (st == EG_OK)
            snprintf(output, sizeof output, "HTTP GET %s: %d Output: %.120s", probes[i].url,
                     resp.status, resp.body);
        else
            snprintf(output, sizeof output, "HTTP GET %s: %s", probes[i].url, eg_status_str(st));
        eg_http_resp_free(&resp);
        pthread_mutex_lock(&mu);
        s = find_service(probes[i].id);
        if (s && s->check_http && strcmp(s->check_http, probes[i].url) == 0) {
            set_str(&s->status, ok ? "passing" : "critical");
            set_str(&s->output, output);
        }
        pthread_mutex_unlock(&mu);
        free(probes[i].id);
        free(probes[i].url);
    }
    free(probes);
}

static void *poller(void *arg)
{
    (void)arg;
    while (!atomic_load(&stopping)) {
        poll_checks();
        for (int i = 0; i < 10 && !atomic_load(&stopping); i++)
            sleep_ms(100);
    }
    return NULL;
}

/* ---- main ---- */

static void usage(void)
{
    fprintf(stderr, "usage: fake-consul --port P [--state-file F]\n");
}

int main(int argc, char **argv)
{
    eg_http_server_t *srv = NULL;
    eg_http_opts_t opts = {.addr = "127.0.0.1", .threads = 8, .max_body = 512 * 1024};
    pthread_t poll_thread;
    bool poll_started = false;
    sigset_t sigs;
    int sig = 0;
    int rc = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            opts.port = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--state-file") == 0 && i + 1 < argc) {
            state_file = argv[++i];
        } else {
            usage();
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    eg_log_init("fake-consul", NULL);
    eg_httpc_global_init();

    /* Block the stop signals before any thread starts, so every thread inherits the mask and
     * sigwait below is the one place that receives them. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    if (state_file)
        load_state();
    if (eg_http_start(&srv, &opts) != EG_OK) {
        fprintf(stderr, "fake-consul: cannot listen on port %d\n", opts.port);
        goto out;
    }
    eg_http_route(srv, "/", h_unknown, NULL);
    eg_http_route(srv, "/v1/agent/service/register", h_register, NULL);
    eg_http_route(srv, "/v1/agent/service/deregister", h_deregister, NULL);
    eg_http_route(srv, "/v1/agent/services", h_services, NULL);
    eg_http_route(srv, "/v1/agent/checks", h_checks, NULL);
    eg_http_route(srv, "/v1/health/service", h_health_service, NULL);
    eg_http_route(srv, "/v1/kv", h_kv, NULL);
    if (pthread_create(&poll_thread, NULL, poller, NULL) == 0)
        poll_started = true;

    printf("PORT=%d\n", eg_http_port(srv));
    sigwait(&sigs, &sig);
    eg_log_info("fake-consul: stopping on signal %d", sig);
    rc = 0;
out:
    atomic_store(&stopping, true);
    if (poll_started)
        pthread_join(poll_thread, NULL);
    eg_http_stop(srv);
    while (services) {
        struct service *s = services;
        services = s->next;
        free_service(s);
    }
    while (kvs) {
        struct kv *e = kvs;
        kvs = e->next;
        free_kv(e);
    }
    eg_httpc_global_cleanup();
    return rc;
}
