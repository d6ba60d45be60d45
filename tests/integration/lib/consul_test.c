/* lib/consul.c against the build's fake Consul agent (tests/fakes/consul), started as a child
 * process on a free port for each test; and against a recording server for the exact request. */
#include <criterion/criterion.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engage/consul.h"
#include "engage/health.h"
#include "engage/http.h"
#include "engage/httpclient.h"
#include "engage/json.h"

static pid_t fake_pid = -1;
static char agent[64];

/* ---- the fake agent as a child process ---- */

static void fake_path(char *out, size_t outlen)
{
    const char *dir = getenv("ENGAGE_BIN_DIR");
    char self[PATH_MAX];
    ssize_t n;
    char *slash;

    if (dir && *dir) {
        snprintf(out, outlen, "%s/fake-consul", dir);
        return;
    }
    /* The test binary lives in <build>/tests/integration/, the fake in <build>/bin/. */
    n = readlink("/proc/self/exe", self, sizeof self - 1);
    cr_assert_gt(n, 0);
    self[n] = '\0';
    slash = strrchr(self, '/');
    cr_assert_not_null(slash);
    *slash = '\0';
    snprintf(out, outlen, "%s/../../bin/fake-consul", self);
}

static void start_fake(void)
{
    char path[PATH_MAX + 32];
    char line[64] = "";
    size_t have = 0;
    int fds[2];

    fake_path(path, sizeof path);
    cr_assert_eq(access(path, X_OK), 0, "no fake-consul at %s (set ENGAGE_BIN_DIR)", path);
    cr_assert_eq(pipe(fds), 0);
    fake_pid = fork();
    cr_assert_geq(fake_pid, 0);
    if (fake_pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execl(path, "fake-consul", "--port", "0", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    /* Wait (at most 10 s) for its "PORT=<n>" line. */
    while (strchr(line, '\n') == NULL) {
        struct pollfd pfd = {fds[0], POLLIN, 0};
        ssize_t n;
        cr_assert_gt(poll(&pfd, 1, 10000), 0, "fake-consul printed no port");
        n = read(fds[0], line + have, sizeof line - 1 - have);
        cr_assert_gt(n, 0, "fake-consul exited before printing its port");
        have += (size_t)n;
        line[have] = '\0';
    }
    close(fds[0]);
    cr_assert_eq(strncmp(line, "PORT=", 5), 0, "unexpected first line: %s", line);
    cr_assert_gt(atoi(line + 5), 0);
    snprintf(agent, sizeof agent, "http://127.0.0.1:%d", atoi(line + 5));
}

static void setup(void)
{
    eg_httpc_global_init();
    start_fake();
}

static void teardown(void)
{
    int status = 0;

    if (fake_pid > 0) {
        kill(fake_pid, SIGTERM);
        cr_assert_eq(waitpid(fake_pid, &status, 0), fake_pid);
        /* A clean exit on SIGTERM (under ASan this also means no leaks in the fake). */
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fake-consul status %d", status);
        fake_pid = -1;
    }
    eg_httpc_global_cleanup();
}

/* ---- agent queries ---- */

static eg_json_t *agent_get(const char *path, int want_status)
{
    char url[256];
    char err[160];
    eg_http_resp_t r;
    eg_json_t *v;

    snprintf(url, sizeof url, "%s%s", agent, path);
    cr_assert_eq(eg_http_fetch("GET", url, NULL, NULL, 0, 5000, &r), EG_OK);
    cr_assert_eq(r.status, want_status, "GET %s: %d %s", path, r.status, r.body);
    v = eg_json_parse(r.body, r.len, 0, err, sizeof err);
    cr_assert_not_null(v, "GET %s: %s", path, err);
    eg_http_resp_free(&r);
    return v;
}

static void unique_id(char *out, size_t outlen, const char *what)
{
    snprintf(out, outlen, "%s-%ld-%ld", what, (long)getpid(), (long)time(NULL));
}

Test(consul, register_shows_the_service_and_deregister_removes_it, .init = setup, .fini = teardown)
{
    char id[64];
    eg_consul_opts_t opts = {.addr = agent,
                             .service_name = "engage-api",
                             .address = "127.0.0.1",
                             .port = 18080,
                             .check_path = "/readyz"};
    eg_consul_t *c = NULL;
    eg_json_t *svcs;
    eg_json_t *s;

    unique_id(id, sizeof id, "api");
    opts.service_id = id;
    cr_assert_eq(eg_consul_register(&c, &opts), EG_OK);
    cr_assert_not_null(c);

    svcs = agent_get("/v1/agent/services", 200);
    s = eg_json_get(svcs, id);
    cr_assert_not_null(s, "service %s not registered", id);
    cr_assert_str_eq(eg_json_str(eg_json_get(s, "Service")), "engage-api");
    cr_assert_str_eq(eg_json_str(eg_json_get(s, "Address")), "127.0.0.1");
    cr_assert_eq(eg_json_int(eg_json_get(s, "Port")), 18080);
    eg_json_free(svcs);

    cr_assert_eq(eg_consul_deregister(c), EG_OK);
    svcs = agent_get("/v1/agent/services", 200);
    cr_assert_null(eg_json_get(svcs, id), "still registered after deregister");
    eg_json_free(svcs);

    /* The agent no longer knows it: a second deregister is an error the caller sees. */
    cr_assert_eq(eg_consul_deregister(c), EG_EIO);
    eg_consul_free(c);
}

/* ---- the registered check really points at /readyz ---- */

static atomic_int ready_flag = 1;

static eg_status_t check_flag(void *arg, char *why, size_t whylen)
{
    (void)arg;
    if (atomic_load(&ready_flag))
        return EG_OK;
    snprintf(why, whylen, "redis: connection refused");
    return EG_EUNAVAIL;
}

/* Poll the agent's view of the service until its check has status want (at most 6 s). */
static bool wait_check(const char *name, const char *want)
{
    char path[128];

    snprintf(path, sizeof path, "/v1/health/service/%s", name);
    for (int i = 0; i < 60; i++) {
        struct timespec ts = {0, 100 * 1000000L};
        eg_json_t *arr = agent_get(path, 200);
        eg_json_t *checks = eg_json_get(eg_json_array_get(arr, 0), "Checks");
        const char *status = eg_json_str(eg_json_get(eg_json_array_get(checks, 0), "Status"));
        bool done = status && strcmp(status, want) == 0;
        eg_json_free(arr);
        if (done)
            return true;
        nanosleep(&ts, NULL);
    }
    return false;
}

Test(consul, agent_marks_the_service_by_its_readyz, .init = setup, .fini = teardown)
{
    eg_http_opts_t hopts = {.port = 0, .threads = 2};
    eg_http_server_t *srv = NULL;
    eg_health_t *h = eg_health_new();
    char name[64];
    eg_consul_opts_t opts = {
        .addr = agent, .address = "127.0.0.1", .check_path = "/readyz", .check_interval_s = 1};
    eg_consul_t *c = NULL;

    cr_assert_eq(eg_http_start(&srv, &hopts), EG_OK);
    eg_health_add_check(h, "redis", check_flag, NULL);
    eg_health_mount(h, srv, NULL);
    unique_id(name, sizeof name, "svc");
    opts.service_name = name;
    opts.service_id = name;
    opts.port = eg_http_port(srv);
    cr_assert_eq(eg_consul_register(&c, &opts), EG_OK);

    cr_assert(wait_check(name, "passing"), "check never passed");
    atomic_store(&ready_flag, 0);
    cr_assert(wait_check(name, "critical"), "check never went critical");

    cr_assert_eq(eg_consul_deregister(c), EG_OK);
    eg_consul_free(c);
    eg_http_stop(srv);
    eg_health_free(h);
}

/* ---- KV ---- */

static void kv_put(const char *key, const char *value, size_t len)
{
    char url[256];
    eg_http_resp_t r;

    snprintf(url, sizeof url, "%s/v1/kv/%s", agent, key);
    cr_assert_eq(eg_http_fetch("PUT", url, NULL, value, len, 5000, &r), EG_OK);
    cr_assert_eq(r.status, 200);
    eg_http_resp_free(&r);
}

Test(consul, kv_round_trip, .init = setup, .fini = teardown)
{
    static const char bin[] = "level=debug\n\x01\x02\xff tail \xc3\xbc";
    char *v = NULL;
    size_t len = 0;

    kv_put("engage/config/log_level", "debug", 5);
    cr_assert_eq(eg_consul_kv_get(agent, NULL, "engage/config/log_level", &v, &len), EG_OK);
    cr_assert_eq(len, 5);
    cr_assert_str_eq(v, "debug");
    free(v);

    /* Binary-safe, and lengths that exercise every base64 padding. */
    for (size_t n = sizeof bin - 4; n < sizeof bin; n++) {
        kv_put("engage/bin", bin, n);
        cr_assert_eq(eg_consul_kv_get(agent, NULL, "engage/bin", &v, &len), EG_OK);
        cr_assert_eq(len, n);
        cr_assert_eq(memcmp(v, bin, n), 0);
        cr_assert_eq(v[n], '\0');
        free(v);
    }

    kv_put("engage/empty", "", 0);
    cr_assert_eq(eg_consul_kv_get(agent, NULL, "engage/empty", &v, &len), EG_OK);
    cr_assert_eq(len, 0);
    cr_assert_str_eq(v, "");
    free(v);
}

Test(consul, kv_missing_key_is_not_found, .init = setup, .fini = teardown)
{
    char *v = (char *)"unchanged";
    size_t len = 7;

    cr_assert_eq(eg_consul_kv_get(agent, NULL, "engage/nope", &v, &len), EG_ENOTFOUND);
    cr_assert_null(v);
}

/* ---- no agent ---- */

Test(consul, no_address_is_a_no_op)
{
    eg_consul_opts_t opts = {.addr = NULL, .service_name = "engage-api", .port = 1};
    eg_consul_t *c = (eg_consul_t *)&opts;

    cr_assert_eq(eg_consul_register(&c, &opts), EG_OK);
    cr_assert_null(c);
    opts.addr = "";
    cr_assert_eq(eg_consul_register(&c, &opts), EG_OK);
    cr_assert_null(c);
    cr_assert_eq(eg_consul_deregister(NULL), EG_OK);
    eg_consul_free(NULL);
}

Test(consul, unreachable_agent_is_unavailable)
{
    eg_http_opts_t hopts = {.port = 0, .threads = 1};
    eg_http_server_t *srv = NULL;
    char addr[64];
    eg_consul_opts_t opts = {
        .addr = addr, .service_name = "engage-api", .service_id = "x", .port = 1};
    eg_consul_t *c = NULL;
    char *v = NULL;

    eg_httpc_global_init();
    /* A port that was just free: bind it, then let it go. */
    cr_assert_eq(eg_http_start(&srv, &hopts), EG_OK);
    snprintf(addr, sizeof addr, "http://127.0.0.1:%d", eg_http_port(srv));
    eg_http_stop(srv);
    cr_assert_eq(eg_consul_register(&c, &opts), EG_EUNAVAIL);
    cr_assert_null(c);
    cr_assert_eq(eg_consul_kv_get(addr, NULL, "k", &v, NULL), EG_EUNAVAIL);
    eg_httpc_global_cleanup();
}

/* ---- the exact request, seen by a recording server ---- */

static char seen_token[128];
static char seen_body[2048];
static char seen_path[256];
static int answer_code = 200;

static int recorder(eg_http_req_t *req, void *arg)
{
    const char *tok = eg_http_header(req, "X-Consul-Token");
    const char *body;
    size_t len;

    (void)arg;
    snprintf(seen_token, sizeof seen_token, "%s", tok ? tok : "(none)");
    snprintf(seen_path, sizeof seen_path, "%s %s", eg_http_method(req), eg_http_path(req));
    if (eg_http_body(req, &body, &len) == EG_OK)
        snprintf(seen_body, sizeof seen_body, "%.*s", (int)len, body);
    eg_http_reply(req, answer_code, "text/plain", "", 0);
    return answer_code;
}

Test(consul, register_sends_the_documented_request)
{
    eg_http_opts_t hopts = {.port = 0, .threads = 1};
    eg_http_server_t *srv = NULL;
    char addr[64];
    eg_consul_opts_t opts = {.addr = addr,
                             .token = "s3cr3t",
                             .service_name = "engage-api",
                             .service_id = "engage-api-1",
                             .address = "10.0.0.7",
                             .port = 8080,
                             .check_path = "/readyz"};
    eg_consul_t *c = NULL;
    char err[160];
    eg_json_t *doc;
    eg_json_t *check;

    eg_httpc_global_init();
    cr_assert_eq(eg_http_start(&srv, &hopts), EG_OK);
    eg_http_route(srv, "/", recorder, NULL);
    snprintf(addr, sizeof addr, "http://127.0.0.1:%d/", eg_http_port(srv));

    cr_assert_eq(eg_consul_register(&c, &opts), EG_OK);
    cr_assert_str_eq(seen_path, "PUT /v1/agent/service/register");
    cr_assert_str_eq(seen_token, "s3cr3t");
    doc = eg_json_parse(seen_body, strlen(seen_body), 0, err, sizeof err);
    cr_assert_not_null(doc, "%s", seen_body);
    cr_assert_str_eq(eg_json_str(eg_json_get(doc, "ID")), "engage-api-1");
    cr_assert_str_eq(eg_json_str(eg_json_get(doc, "Name")), "engage-api");
    cr_assert_str_eq(eg_json_str(eg_json_get(doc, "Address")), "10.0.0.7");
    cr_assert_eq(eg_json_int(eg_json_get(doc, "Port")), 8080);
    check = eg_json_get(doc, "Check");
    cr_assert_str_eq(eg_json_str(eg_json_get(check, "HTTP")), "http://10.0.0.7:8080/readyz");
    cr_assert_str_eq(eg_json_str(eg_json_get(check, "Interval")), "10s");
    cr_assert_str_eq(eg_json_str(eg_json_get(check, "Timeout")), "2s");
    cr_assert_str_eq(eg_json_str(eg_json_get(check, "DeregisterCriticalServiceAfter")), "60s");
    eg_json_free(doc);

    cr_assert_eq(eg_consul_deregister(c), EG_OK);
    cr_assert_str_eq(seen_path, "PUT /v1/agent/service/deregister/engage-api-1");
    eg_consul_free(c);

    /* An agent that refuses (here 500, e.g. an ACL or a bad check) is EG_EIO. */
    answer_code = 500;
    cr_assert_eq(eg_consul_register(&c, &opts), EG_EIO);
    cr_assert_null(c);

    eg_http_stop(srv);
    eg_httpc_global_cleanup();
}
