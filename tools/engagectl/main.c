/* engagectl: the admin command line of Engage.
 *
 *   engagectl tenant create NAME [--json]      bootstrap: writes to PostgreSQL directly
 *   engagectl key create [--role api|admin] [--rate-limit N] [--name LABEL]
 *   engagectl key list | key revoke KEYID       API keys, through the admin API
 *   engagectl service put NAME FILE.json       through the admin API with an admin key
 *   engagectl service get NAME
 *   engagectl service delete NAME
 *   engagectl callin-group put NAME FILE.json  call-in groups, through the admin API
 *   engagectl callin-group get|delete NAME
 *   engagectl gdpr erase --phone N             GDPR: cancel and delete everything of a number
 *   engagectl gdpr export --phone N            GDPR: everything of a number, as JSON
 *   engagectl sizing --callbacks-per-day N --user-data-kb K [--scheduled-days D] [--tenants T]
 *                                              Redis, PostgreSQL and commands beside GES's
 *
 * It reads the same ENGAGE_* variables as the services (make run writes them to
 * .run/engage.env). --json makes a command print one JSON object. Exit 0 on success, 1 on a
 * failure the server reported, 2 on bad usage. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage/buf.h"
#include "engage/config.h"
#include "engage/httpclient.h"
#include "engage/ids.h"
#include "engage/json.h"
#include "engage/keys.h"
#include "engage/names.h"
#include "engage/pg.h"
#include "engage/sizing.h"

typedef struct {
    bool json;
    const char *admin_key;
    const char *url;
    const char *role;       /* key create --role */
    const char *rate_limit; /* key create --rate-limit */
    const char *name;       /* key create --name */
    const char *phone;      /* gdpr --phone */
    const char *args[8];
    int nargs;
} opts_t;

static int usage(void)
{
    fprintf(stderr,
            "usage: engagectl [--json] [--admin-key K] [--url URL] COMMAND\n"
            "  tenant create NAME          create a tenant with an api key and an admin key\n"
            "  key create [--role api|admin] [--rate-limit N] [--name LABEL]\n"
            "                              create an API key (shown once; N requests/s,\n"
            "                              default 2000, 0 = unlimited)\n"
            "  key list                    list the tenant's API keys (never their secrets)\n"
            "  key revoke KEYID            revoke an API key (effective within a second)\n"
            "  service put NAME FILE.json  create or update a callback service\n"
            "  service get NAME            show a callback service's configuration\n"
            "  service delete NAME         delete a callback service (none may be pending)\n"
            "  callin-group put NAME FILE.json  create or update a call-in group\n"
            "  callin-group get NAME       show a call-in group's configuration\n"
            "  callin-group delete NAME    delete a call-in group\n"
            "  gdpr erase --phone N        cancel and delete every callback of number N\n"
            "                              (Redis and PostgreSQL; an audit row without N)\n"
            "  gdpr export --phone N       every callback of number N with its events, as JSON\n"
            "  sizing --callbacks-per-day N --user-data-kb K [--scheduled-days D] [--tenants T]\n"
            "                              Redis memory, PostgreSQL disk, Redis commands and\n"
            "                              nodes for a load, Engage's beside GES's (offline)\n");
    return 2;
}

/* Print a JSON value on one line. */
static void print_json(const eg_json_t *v)
{
    char *text = eg_json_dump(v, NULL);
    printf("%s\n", text);
    free(text);
}

static eg_status_t insert_key(eg_pg_t *pg, const char *pepper, const char *tenant, const char *role,
                              char key[EG_KEY_LEN + 1])
{
    char id[EG_KEY_ID_LEN + 1], idx[EG_KEY_ID_LEN + 1], secret[EG_KEY_SECRET_LEN + 1];
    char hash[EG_KEY_HASH_HEX_LEN + 1];
    eg_key_generate(key, id);
    eg_status_t st = eg_key_split(key, idx, secret);
    if (st == EG_OK)
        st = eg_key_hash_hex(pepper, secret, hash);
    if (st != EG_OK)
        return st;
    const char *params[] = {id, tenant, hash, role};
    return eg_pg_exec(pg,
                      "INSERT INTO api_keys (key_id, tenant_id, secret_hash, role) VALUES ($1, "
                      "$2::uuid, $3, $4)",
                      4, params, NULL);
}

static int tenant_create(const opts_t *o)
{
    if (o->nargs != 3)
        return usage();
    const char *name = o->args[2];
    const char *dsn = eg_config_str("ENGAGE_PG_DSN", "host=127.0.0.1 dbname=engage");
    const char *pepper = eg_config_str("ENGAGE_KEY_PEPPER", NULL);
    if (!pepper) {
        fprintf(stderr, "engagectl: ENGAGE_KEY_PEPPER is not set (source .run/engage.env)\n");
        return 1;
    }
    if (strlen(name) < 1 || strlen(name) > 128) {
        fprintf(stderr, "engagectl: NAME must be 1-128 characters\n");
        return 2;
    }
    eg_pg_t *pg = NULL;
    int rc = 1;
    char tenant[EG_UUID_STR_LEN + 1], api_key[EG_KEY_LEN + 1], admin_key[EG_KEY_LEN + 1];
    eg_status_t st = eg_pg_open(&pg, dsn);
    if (st == EG_OK)
        st = eg_pg_migrate(pg, NULL);
    if (st != EG_OK) {
        fprintf(stderr, "engagectl: PostgreSQL: %s\n", pg ? eg_pg_error(pg) : eg_status_str(st));
        goto out;
    }
    eg_uuid_v7_str(tenant);
    const char *params[] = {tenant, name};
    if ((st = eg_pg_begin(pg)) != EG_OK)
        goto fail;
    st = eg_pg_exec(pg, "INSERT INTO tenants (id, name) VALUES ($1::uuid, $2)", 2, params, NULL);
    if (st == EG_ECONFLICT) {
        eg_pg_rollback(pg);
        fprintf(stderr, "engagectl: a tenant named '%s' exists already\n", name);
        goto out;
    }
    if (st == EG_OK)
        st = insert_key(pg, pepper, tenant, "api", api_key);
    if (st == EG_OK)
        st = insert_key(pg, pepper, tenant, "admin", admin_key);
    if (st == EG_OK) {
        const char *audit[] = {tenant, name};
        st = eg_pg_exec(pg,
                        "INSERT INTO audit_log (tenant_id, actor, action, detail) VALUES "
                        "($1::uuid, 'engagectl', 'tenant.create', jsonb_build_object('name', "
                        "$2::text))",
                        2, audit, NULL);
    }
    if (st == EG_OK)
        st = eg_pg_commit(pg);
fail:
    if (st != EG_OK) {
        eg_pg_rollback(pg);
        fprintf(stderr, "engagectl: could not create the tenant: %s\n", eg_pg_error(pg));
        goto out;
    }
    if (o->json)
        printf("{\"tenantId\":\"%s\",\"apiKey\":\"%s\",\"adminKey\":\"%s\"}\n", tenant, api_key,
               admin_key);
    else
        printf("tenant %s created (%s)\napi key:   %s\nadmin key: %s\n"
               "Keys are shown once; only their hashes are stored.\n",
               name, tenant, api_key, admin_key);
    rc = 0;
out:
    eg_pg_close(pg);
    return rc;
}

/* ---- admin API commands (service, callin-group, key, gdpr): HTTP with the admin key ---- */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    eg_buf_t b;
    eg_buf_init(&b, 1024 * 1024);
    char chunk[4096];
    size_t n;
    bool ok = true;
    while (ok && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        ok = eg_buf_append(&b, chunk, n) == EG_OK;
    fclose(f);
    if (!ok) {
        eg_buf_free(&b);
        return NULL;
    }
    return eg_buf_steal(&b, len);
}

/* Print {"name": value} on one line; value is borrowed. */
static void print_json_as(const char *name, eg_json_t *value)
{
    eg_json_t *out = eg_json_object();
    eg_json_set(out, name, eg_json_ref(value));
    print_json(out);
    eg_json_free(out);
}

/* False, after saying so, when the command has no admin key to call the admin API with. */
static bool have_admin_key(const opts_t *o)
{
    if (o->admin_key)
        return true;
    fprintf(stderr, "engagectl: no admin key (--admin-key or ENGAGE_ADMIN_KEY)\n");
    return false;
}

/* How a command prints the data of a successful answer (borrowed, valid during the call). */
typedef void (*show_fn)(const opts_t *o, eg_json_t *data);

/* Print the outcome of an admin API call; returns the exit code. With show, a 2xx answer
 * holding data is a success and show prints it. Without, any 2xx answer is, and it is printed
 * as it came: with --json its body (on a failure too), otherwise its status line and data.
 * A failure prints the server's message on stderr. */
static int report(const opts_t *o, const eg_http_resp_t *resp, show_fn show)
{
    char err[160];
    eg_json_t *env = eg_json_parse(resp->body, resp->len, 0, err, sizeof err);
    eg_json_t *data = eg_json_get(env, "data");
    const char *msg = eg_json_str(eg_json_get(eg_json_get(env, "status"), "message"));
    bool ok = resp->status >= 200 && resp->status < 300 && (data || !show);
    if (!show && o->json) {
        printf("%s\n", resp->body);
    } else if (ok && show) {
        show(o, data);
    } else if (ok) {
        char *text = data ? eg_json_dump(data, NULL) : NULL;
        printf("%d %s\n%s\n", resp->status, msg ? msg : "", text ? text : "");
        free(text);
    } else {
        fprintf(stderr, "engagectl: %d %s\n", resp->status, msg ? msg : resp->body);
    }
    eg_json_free(env);
    return ok ? 0 : 1;
}

/* One admin API call with the admin key: method on o->url + path, with len bytes of body
 * (borrowed; NULL for none), its outcome printed by report(). Returns the exit code: 0, or 1
 * when the server could not be reached or answered a failure. */
static int admin_request(const opts_t *o, const char *method, const char *path, const char *body,
                         size_t len, show_fn show)
{
    char url[1024], key_header[256];
    snprintf(url, sizeof url, "%s%s", o->url, path);
    snprintf(key_header, sizeof key_header, "x-api-key: %s", o->admin_key);
    const char *headers[] = {key_header, "Content-Type: application/json", NULL};
    eg_http_resp_t resp;
    eg_status_t st = eg_http_fetch(method, url, headers, body, len, 10000, &resp);
    if (st != EG_OK) {
        fprintf(stderr, "engagectl: cannot reach %s: %s\n", o->url, eg_status_str(st));
        return 1;
    }
    int rc = report(o, &resp, show);
    eg_http_resp_free(&resp);
    return rc;
}

/* service|callin-group put NAME FILE.json | get NAME | delete NAME. collection is the admin
 * API's path segment of the command: "services" or "call-in-groups". */
static int config_cmd(const opts_t *o, const char *collection)
{
    const char *verb = o->args[1];
    bool put = o->nargs == 4 && strcmp(verb, "put") == 0;
    bool get = o->nargs == 3 && strcmp(verb, "get") == 0;
    bool del = o->nargs == 3 && strcmp(verb, "delete") == 0;
    if (!put && !get && !del)
        return usage();
    /* The server applies the same rule; checking it here also keeps a name like "../keys" from
     * turning into another path of the admin API. */
    if (!eg_name_valid(o->args[2])) {
        fprintf(stderr, "engagectl: NAME must be " EG_NAME_RULE "\n");
        return 2;
    }
    if (!have_admin_key(o))
        return 2;
    size_t len = 0;
    char *body = NULL;
    if (put) {
        body = read_file(o->args[3], &len);
        if (!body) {
            fprintf(stderr, "engagectl: cannot read %s (or it is over 1 MiB)\n", o->args[3]);
            return 2;
        }
    }
    char path[1024];
    snprintf(path, sizeof path, "/ges/api/v1/%s/%s", collection, o->args[2]);
    int rc = admin_request(o, put ? "PUT" : (del ? "DELETE" : "GET"), path, body, len, NULL);
    free(body);
    return rc;
}

/* key create: the new key, which the server shows this once. */
static void show_key_created(const opts_t *o, eg_json_t *data)
{
    const char *id = eg_json_str(eg_json_get(data, "keyId"));
    const char *key = eg_json_str(eg_json_get(data, "apiKey"));
    const char *role = eg_json_str(eg_json_get(data, "role"));
    int64_t rate = eg_json_int(eg_json_get(data, "rateLimit"));
    if (o->json) {
        eg_json_t *out = eg_json_object();
        eg_json_set_str(out, "keyId", id ? id : "");
        eg_json_set_str(out, "apiKey", key ? key : "");
        eg_json_set_str(out, "role", role ? role : "");
        eg_json_set_int(out, "rateLimit", rate);
        print_json(out);
        eg_json_free(out);
        return;
    }
    char rate_text[32] = "unlimited";
    if (rate)
        snprintf(rate_text, sizeof rate_text, "%lld/s", (long long)rate);
    printf("key %s created (role %s, rate limit %s)\napi key: %s\n"
           "The key is shown once; only its hash is stored.\n",
           id ? id : "?", role ? role : "?", rate_text, key ? key : "?");
}

/* key list: one line a key. */
static void show_key_list(const opts_t *o, eg_json_t *data)
{
    if (o->json) {
        print_json_as("keys", data);
        return;
    }
    printf("%-16s  %-5s  %10s  %-24s  %s\n", "KEY ID", "ROLE", "RATE/S", "CREATED", "STATUS");
    for (size_t i = 0; i < eg_json_array_size(data); i++) {
        eg_json_t *k = eg_json_array_get(data, i);
        int64_t rate = eg_json_int(eg_json_get(k, "rateLimit"));
        char rate_text[24];
        if (rate)
            snprintf(rate_text, sizeof rate_text, "%lld", (long long)rate);
        else
            snprintf(rate_text, sizeof rate_text, "unlimited");
        printf("%-16s  %-5s  %10s  %-24s  %s\n", eg_json_str(eg_json_get(k, "keyId")),
               eg_json_str(eg_json_get(k, "role")), rate_text,
               eg_json_str(eg_json_get(k, "createdAt")),
               eg_json_true(eg_json_get(k, "revoked")) ? "revoked" : "active");
    }
}

/* key revoke KEYID */
static void show_key_revoked(const opts_t *o, eg_json_t *data)
{
    if (o->json)
        print_json_as("key", data);
    else
        printf("key %s revoked\n", o->args[2]);
}

/* key create [--role api|admin] [--rate-limit N] [--name LABEL] | key revoke KEYID | key list */
static int key_cmd(const opts_t *o)
{
    const char *verb = o->args[1];
    bool create = o->nargs == 2 && strcmp(verb, "create") == 0;
    bool list = o->nargs == 2 && strcmp(verb, "list") == 0;
    bool revoke = o->nargs == 3 && strcmp(verb, "revoke") == 0;
    if (!create && !list && !revoke)
        return usage();
    if (!have_admin_key(o))
        return 2;
    if (list)
        return admin_request(o, "GET", "/ges/api/v1/keys", NULL, 0, show_key_list);
    if (revoke) {
        char path[256];
        snprintf(path, sizeof path, "/ges/api/v1/keys/%.64s", o->args[2]);
        return admin_request(o, "DELETE", path, NULL, 0, show_key_revoked);
    }
    eg_json_t *b = eg_json_object();
    if (o->role)
        eg_json_set_str(b, "role", o->role);
    if (o->rate_limit) {
        char *end;
        long long v = strtoll(o->rate_limit, &end, 10);
        if (end == o->rate_limit || *end) {
            eg_json_free(b);
            fprintf(stderr, "engagectl: --rate-limit must be an integer (0 = unlimited)\n");
            return 2;
        }
        eg_json_set_int(b, "rateLimit", v);
    }
    if (o->name)
        eg_json_set_str(b, "name", o->name);
    char *body = eg_json_dump(b, NULL);
    eg_json_free(b);
    int rc = admin_request(o, "POST", "/ges/api/v1/keys", body, strlen(body), show_key_created);
    free(body);
    return rc;
}

/* gdpr erase|export: export prints the answer's data as JSON, erase a summary (or the data
 * with --json). */
static void show_gdpr(const opts_t *o, eg_json_t *data)
{
    if (o->json || strcmp(o->args[1], "export") == 0) {
        print_json(data);
        return;
    }
    eg_json_t *rows = eg_json_get(data, "rows");
    printf("erased %lld callback(s): %lld cancelled, %lld Redis record(s), PostgreSQL rows "
           "%lld/%lld/%lld (callbacks/data/events)\n",
           (long long)eg_json_int(eg_json_get(data, "callbacks")),
           (long long)eg_json_int(eg_json_get(data, "cancelled")),
           (long long)eg_json_int(eg_json_get(data, "redisDeleted")),
           (long long)eg_json_int(eg_json_get(rows, "callbacks")),
           (long long)eg_json_int(eg_json_get(rows, "callbackData")),
           (long long)eg_json_int(eg_json_get(rows, "callbackEvents")));
}

/* gdpr erase|export --phone N */
static int gdpr_cmd(const opts_t *o)
{
    bool erase = o->nargs == 2 && strcmp(o->args[1], "erase") == 0;
    bool exp = o->nargs == 2 && strcmp(o->args[1], "export") == 0;
    if ((!erase && !exp) || !o->phone)
        return usage();
    if (!have_admin_key(o))
        return 2;
    eg_json_t *b = eg_json_object();
    eg_json_set_str(b, "phoneNumber", o->phone);
    char *body = eg_json_dump(b, NULL);
    eg_json_free(b);
    int rc = admin_request(o, "POST", erase ? "/ges/api/v1/gdpr/erase" : "/ges/api/v1/gdpr/export",
                           body, strlen(body), show_gdpr);
    free(body);
    return rc;
}

/* ---- sizing (lib/sizing.c; no server needed) ---- */

/* "1.5 GiB", "20.0 MiB", "512 B": 1 kB = 1024 B. */
static void human_bytes(double b, char *out, size_t outlen)
{
    const char *units[] = {"B", "kB", "MiB", "GiB", "TiB"};
    size_t u = 0;
    while (b >= 1024.0 && u + 1 < sizeof units / sizeof *units) {
        b /= 1024.0;
        u++;
    }
    snprintf(out, outlen, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
}

static bool sizing_number(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}

static bool sizing_requested(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "sizing") == 0)
            return true;
    return false;
}

static void sizing_json(eg_json_t *o, const eg_sizing_result_t *r, bool range)
{
    if (range) {
        eg_json_set_int(o, "redisBytesLow", (int64_t)(r->redis_bytes_low + 0.5));
        eg_json_set_int(o, "pgBytesLow", (int64_t)(r->pg_bytes_low + 0.5));
    }
    eg_json_set_int(o, range ? "redisBytesHigh" : "redisBytes",
                    (int64_t)(r->redis_bytes_high + 0.5));
    eg_json_set_int(o, range ? "pgBytesHigh" : "pgBytes", (int64_t)(r->pg_bytes_high + 0.5));
    eg_json_set_int(o, "redisCmdsPerMin", (int64_t)(r->redis_cmds_per_min + 0.5));
    eg_json_set_int(o, "nodes", r->nodes);
}

static int sizing_usage(void)
{
    fprintf(stderr,
            "usage: engagectl sizing --callbacks-per-day N --user-data-kb K "
            "[--scheduled-days D] [--tenants T] [--json]\n"
            "  N 0-1e9 callbacks a day; K 0-100 kB of user data each; D 0-14 days booked\n"
            "  ahead (0 = immediate callbacks); T tenants (GES pays idle cost per tenant)\n");
    return 2;
}

/* sizing --callbacks-per-day N --user-data-kb K [--scheduled-days D] [--tenants T] [--json] */
static int sizing_cmd(int argc, char **argv)
{
    eg_sizing_input_t in = {.tenants = 1};
    bool json = false, have_n = false, have_k = false;
    double tenants = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (strcmp(a, "sizing") == 0)
            continue;
        if (strcmp(a, "--json") == 0)
            json = true;
        else if (strcmp(a, "--callbacks-per-day") == 0 && v)
            ok = have_n = sizing_number(argv[++i], 0, 1e9, &in.callbacks_per_day);
        else if (strcmp(a, "--user-data-kb") == 0 && v)
            ok = have_k = sizing_number(argv[++i], 0, 100, &in.user_data_kb);
        else if (strcmp(a, "--scheduled-days") == 0 && v)
            ok = sizing_number(argv[++i], 0, 14, &in.scheduled_days);
        else if (strcmp(a, "--tenants") == 0 && v)
            ok = sizing_number(argv[++i], 1, 100000, &tenants);
        else
            ok = false;
        if (!ok)
            return sizing_usage();
    }
    if (!have_n || !have_k)
        return sizing_usage();
    in.tenants = (int)tenants;
    eg_sizing_result_t e, g;
    eg_sizing_compute(&eg_sizing_engage, &in, &e);
    eg_sizing_compute(&eg_sizing_ges, &in, &g);
    if (json) {
        eg_json_t *out = eg_json_object(), *input = eg_json_object(), *je = eg_json_object(),
                  *jg = eg_json_object();
        eg_json_set(input, "callbacksPerDay", eg_json_real(in.callbacks_per_day));
        eg_json_set(input, "userDataKb", eg_json_real(in.user_data_kb));
        eg_json_set(input, "scheduledDays", eg_json_real(in.scheduled_days));
        eg_json_set_int(input, "tenants", in.tenants);
        eg_json_set(out, "input", input);
        eg_json_set_int(out, "residentCallbacks", (int64_t)(e.resident_callbacks + 0.5));
        sizing_json(je, &e, false);
        sizing_json(jg, &g, true);
        eg_json_set(out, "engage", je);
        eg_json_set(out, "ges", jg);
        print_json(out);
        eg_json_free(out);
        return 0;
    }
    char a[32], b[32], c[32], mode[48] = "immediate";
    if (in.scheduled_days > 0)
        snprintf(mode, sizeof mode, "booked %g days ahead", in.scheduled_days);
    printf("%.0f callbacks a day, %g kB of user data each, %s, %d tenant%s: %.0f callbacks held "
           "at once (kept %g days past their time)\n\n",
           in.callbacks_per_day, in.user_data_kb, mode, in.tenants, in.tenants == 1 ? "" : "s",
           e.resident_callbacks, EG_SIZING_RETENTION_DAYS);
    printf("%-26s %-22s %-26s %s\n", "", "Engage (measured)", "GES (published)", "GES / Engage");
    human_bytes(e.redis_bytes_high, a, sizeof a);
    human_bytes(g.redis_bytes_low, b, sizeof b);
    human_bytes(g.redis_bytes_high, c, sizeof c);
    printf("%-26s %-22s %-12s - %-11s %.1fx\n", "Redis memory", a, b, c,
           e.redis_bytes_high > 0 ? g.redis_bytes_low / e.redis_bytes_high : 0);
    human_bytes(e.pg_bytes_high, a, sizeof a);
    human_bytes(g.pg_bytes_low, b, sizeof b);
    human_bytes(g.pg_bytes_high, c, sizeof c);
    printf("%-26s %-22s %-12s - %-11s %.1fx\n", "PostgreSQL disk", a, b, c,
           e.pg_bytes_high > 0 ? g.pg_bytes_low / e.pg_bytes_high : 0);
    printf("%-26s %-22.0f %-26.0f %.1fx\n", "Redis commands a minute", e.redis_cmds_per_min,
           g.redis_cmds_per_min,
           e.redis_cmds_per_min > 0 ? g.redis_cmds_per_min / e.redis_cmds_per_min : 0);
    printf("%-26s %-22d %-26d\n", "2 GiB nodes (Redis data)", e.nodes, g.nodes);
    printf(
        "\nEngage's figures are those of the last full `make bench` (docs/benchmarks.md); GES's\n"
        "are its published costs, including 50 commands/s per idle node and tenant.\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (sizing_requested(argc, argv))
        return sizing_cmd(argc, argv);
    opts_t o = {.admin_key = eg_config_str("ENGAGE_ADMIN_KEY", NULL),
                .url = eg_config_str("ENGAGE_URL", "http://127.0.0.1:8080")};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            o.json = true;
        else if (strcmp(argv[i], "--admin-key") == 0 && i + 1 < argc)
            o.admin_key = argv[++i];
        else if (strcmp(argv[i], "--url") == 0 && i + 1 < argc)
            o.url = argv[++i];
        else if (strcmp(argv[i], "--role") == 0 && i + 1 < argc)
            o.role = argv[++i];
        else if (strcmp(argv[i], "--rate-limit") == 0 && i + 1 < argc)
            o.rate_limit = argv[++i];
        else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            o.name = argv[++i];
        else if (strcmp(argv[i], "--phone") == 0 && i + 1 < argc)
            o.phone = argv[++i];
        else if (argv[i][0] == '-' && argv[i][1] == '-')
            return usage();
        else if (o.nargs < 8)
            o.args[o.nargs++] = argv[i];
    }
    if (o.nargs < 2)
        return usage();
    eg_httpc_global_init();
    int rc;
    if (strcmp(o.args[0], "tenant") == 0 && strcmp(o.args[1], "create") == 0)
        rc = tenant_create(&o);
    else if (strcmp(o.args[0], "service") == 0)
        rc = config_cmd(&o, "services");
    else if (strcmp(o.args[0], "key") == 0)
        rc = key_cmd(&o);
    else if (strcmp(o.args[0], "callin-group") == 0)
        rc = config_cmd(&o, "call-in-groups");
    else if (strcmp(o.args[0], "gdpr") == 0)
        rc = gdpr_cmd(&o);
    else
        rc = usage();
    eg_httpc_global_cleanup();
    return rc;
}
