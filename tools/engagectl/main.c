/* engagectl: the admin command line of Engage.
 *
 *   engagectl tenant create NAME [--json]      bootstrap: writes to PostgreSQL directly
 *   engagectl service put NAME FILE.json       through the admin API with an admin key
 *   engagectl service get NAME
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
#include "engage/pg.h"

typedef struct {
    bool json;
    const char *admin_key;
    const char *url;
    const char *args[8];
    int nargs;
} opts_t;

static int usage(void)
{
    fprintf(stderr,
            "usage: engagectl [--json] [--admin-key K] [--url URL] COMMAND\n"
            "  tenant create NAME          create a tenant with an api key and an admin key\n"
            "  service put NAME FILE.json  create or update a callback service\n"
            "  service get NAME            show a callback service's configuration\n");
    return 2;
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

/* Print the outcome of an admin API call; returns the exit code. */
static int report(const opts_t *o, const eg_http_resp_t *resp)
{
    char err[160];
    eg_json_t *env = eg_json_parse(resp->body, resp->len, 0, err, sizeof err);
    eg_json_t *status = eg_json_get(env, "status");
    const char *msg = eg_json_str(eg_json_get(status, "message"));
    bool ok = resp->status >= 200 && resp->status < 300;
    if (o->json) {
        printf("%s\n", resp->body);
    } else if (ok) {
        eg_json_t *data = eg_json_get(env, "data");
        char *text = data ? eg_json_dump(data, NULL) : NULL;
        printf("%d %s\n%s\n", resp->status, msg ? msg : "", text ? text : "");
        free(text);
    } else {
        fprintf(stderr, "engagectl: %d %s\n", resp->status, msg ? msg : resp->body);
    }
    eg_json_free(env);
    return ok ? 0 : 1;
}

static int service_cmd(const opts_t *o)
{
    bool put = o->nargs == 4 && strcmp(o->args[1], "put") == 0;
    bool get = o->nargs == 3 && strcmp(o->args[1], "get") == 0;
    if (!put && !get)
        return usage();
    if (!o->admin_key) {
        fprintf(stderr, "engagectl: no admin key (--admin-key or ENGAGE_ADMIN_KEY)\n");
        return 2;
    }
    size_t len = 0;
    char *body = NULL;
    if (put) {
        body = read_file(o->args[3], &len);
        if (!body) {
            fprintf(stderr, "engagectl: cannot read %s (or it is over 1 MiB)\n", o->args[3]);
            return 2;
        }
    }
    char url[1024], key_header[256];
    snprintf(url, sizeof url, "%s/ges/api/v1/services/%s", o->url, o->args[2]);
    snprintf(key_header, sizeof key_header, "x-api-key: %s", o->admin_key);
    const char *headers[] = {key_header, "Content-Type: application/json", NULL};
    eg_http_resp_t resp;
    eg_status_t st = eg_http_fetch(put ? "PUT" : "GET", url, headers, body, len, 10000, &resp);
    free(body);
    if (st != EG_OK) {
        fprintf(stderr, "engagectl: cannot reach %s: %s\n", o->url, eg_status_str(st));
        return 1;
    }
    int rc = report(o, &resp);
    eg_http_resp_free(&resp);
    return rc;
}

int main(int argc, char **argv)
{
    opts_t o = {.admin_key = eg_config_str("ENGAGE_ADMIN_KEY", NULL),
                .url = eg_config_str("ENGAGE_URL", "http://127.0.0.1:8080")};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            o.json = true;
        else if (strcmp(argv[i], "--admin-key") == 0 && i + 1 < argc)
            o.admin_key = argv[++i];
        else if (strcmp(argv[i], "--url") == 0 && i + 1 < argc)
            o.url = argv[++i];
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
        rc = service_cmd(&o);
    else
        rc = usage();
    eg_httpc_global_cleanup();
    return rc;
}
