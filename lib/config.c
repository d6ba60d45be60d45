/* Configuration from ENGAGE_* environment variables. Every setting has a default that works
 * on a developer machine, so a service started with no environment at all still runs. */
#include "engage/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "engage/log.h"
#include "engage/mem.h"

const char *eg_config_str(const char *name, const char *def)
{
    const char *v = getenv(name);
    return (v && *v) ? v : def;
}

long eg_config_int(const char *name, long def, long min, long max)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return def;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || *end || n < min || n > max) {
        eg_log_warn("%s=%s is not an integer in [%ld, %ld]; using %ld", name, v, min, max, def);
        return def;
    }
    return n;
}

bool eg_config_bool(const char *name, bool def)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return def;
    return strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 ||
           strcasecmp(v, "on") == 0;
}

/* The credentials part ("[user]:password@") of a redis:// URL, or "" (malloc'd). */
static char *url_credentials(const char *url)
{
    const char *p = url ? strstr(url, "://") : NULL;
    if (!p)
        return eg_xstrdup("");
    p += 3;
    const char *at = NULL;
    for (const char *c = p; *c && *c != '/' && *c != '?'; c++)
        if (*c == '@')
            at = c;
    return at ? eg_xstrndup(p, (size_t)(at - p + 1)) : eg_xstrdup("");
}

char *eg_config_redis_target(const char *prefix, const char *def)
{
    char name[96], cluster[96], sentinels[96], master[96], minrep[96], wait[96];
    snprintf(name, sizeof name, "%s_URL", prefix);
    snprintf(cluster, sizeof cluster, "%s_CLUSTER", prefix);
    snprintf(sentinels, sizeof sentinels, "%s_SENTINELS", prefix);
    snprintf(master, sizeof master, "%s_MASTER", prefix);
    snprintf(minrep, sizeof minrep, "%s_MIN_REPLICAS", prefix);
    snprintf(wait, sizeof wait, "%s_WAIT_MS", prefix);
    const char *url = eg_config_str(name, NULL);
    const char *seeds = eg_config_str(cluster, NULL);
    const char *sent = eg_config_str(sentinels, NULL);
    if (!url && !seeds && !sent && def)
        return eg_xstrdup(def);
    /* The voice platform's Redis takes Engage's replica settings unless it has its own. */
    const char *mr = eg_config_str(minrep, eg_config_str("ENGAGE_REDIS_MIN_REPLICAS", NULL));
    const char *wm = eg_config_str(wait, eg_config_str("ENGAGE_REDIS_WAIT_MS", NULL));
    char query[160] = "";
    if (mr)
        snprintf(query, sizeof query, "min_replicas=%s", mr);
    if (wm) {
        size_t n = strlen(query);
        snprintf(query + n, sizeof query - n, "%swait_ms=%s", n ? "&" : "", wm);
    }
    char *creds = url_credentials(url);
    char *out;
    size_t cap;
    if (seeds) {
        cap = strlen(creds) + strlen(seeds) + strlen(query) + 32;
        out = eg_xmalloc(cap);
        snprintf(out, cap, "redis-cluster://%s%s%s%s", creds, seeds, query[0] ? "?" : "", query);
    } else if (sent) {
        const char *m = eg_config_str(master, "engage");
        cap = strlen(creds) + strlen(sent) + strlen(m) + strlen(query) + 48;
        out = eg_xmalloc(cap);
        snprintf(out, cap, "redis-sentinel://%s%s?master=%s%s%s", creds, sent, m,
                 query[0] ? "&" : "", query);
    } else {
        const char *u = url ? url : "redis://127.0.0.1:6379";
        cap = strlen(u) + strlen(query) + 4;
        out = eg_xmalloc(cap);
        snprintf(out, cap, "%s%s%s", u, query[0] && !strchr(u, '?') ? "?" : (query[0] ? "&" : ""),
                 query);
    }
    free(creds);
    return out;
}

eg_status_t eg_config_load(eg_config_t *cfg, const char *service)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->service = eg_xstrdup(service);
    cfg->nats_url = eg_xstrdup(eg_config_str("ENGAGE_NATS_URL", "nats://127.0.0.1:4222"));
    cfg->redis_url = eg_config_redis_target("ENGAGE_REDIS", NULL);
    cfg->voice_redis_url = eg_config_redis_target("ENGAGE_VOICE_REDIS", cfg->redis_url);
    cfg->pg_dsn = eg_xstrdup(eg_config_str("ENGAGE_PG_DSN", "host=127.0.0.1 dbname=engage"));
    cfg->pg_read_dsn = eg_xstrdup(eg_config_str("ENGAGE_PG_READ_DSN", cfg->pg_dsn));
    cfg->http_addr = eg_xstrdup(eg_config_str("ENGAGE_HTTP_ADDR", "127.0.0.1"));
    long def_port = strcmp(service, "api") == 0 ? 8080 : 0;
    cfg->http_port = (int)eg_config_int("ENGAGE_HTTP_PORT", def_port, 0, 65535);
    cfg->http_threads = (int)eg_config_int("ENGAGE_HTTP_THREADS", 16, 1, 1024);
    cfg->consul_addr = eg_xstrdup(eg_config_str("ENGAGE_CONSUL_ADDR", NULL));
    cfg->advertise_addr = eg_xstrdup(eg_config_str("ENGAGE_ADVERTISE_ADDR", cfg->http_addr));
    const char *inst = eg_config_str("ENGAGE_INSTANCE_ID", NULL);
    if (inst) {
        cfg->instance_id = eg_xstrdup(inst);
    } else {
        char host[128] = "host", id[256];
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        snprintf(id, sizeof id, "%s-%s-%ld", service, host, (long)getpid());
        cfg->instance_id = eg_xstrdup(id);
    }
    cfg->key_pepper = eg_xstrdup(eg_config_str("ENGAGE_KEY_PEPPER", NULL));
    cfg->log_level = eg_xstrdup(eg_config_str("ENGAGE_LOG_LEVEL", "info"));
    cfg->voice_events_stream =
        eg_xstrdup(eg_config_str("ENGAGE_VOICE_EVENTS_STREAM", "engage:voice:events"));
    cfg->voice_commands_stream =
        eg_xstrdup(eg_config_str("ENGAGE_VOICE_COMMANDS_STREAM", "engage:voice:commands"));
    cfg->voice_deadletter_stream =
        eg_xstrdup(eg_config_str("ENGAGE_VOICE_DEADLETTER_STREAM", "engage:voice:deadletter"));
    cfg->workers = (int)eg_config_int("ENGAGE_WORKERS", 4, 1, 256);
    return EG_OK;
}

void eg_config_free(eg_config_t *cfg)
{
    if (!cfg)
        return;
    char **fields[] = {&cfg->service,
                       &cfg->nats_url,
                       &cfg->redis_url,
                       &cfg->voice_redis_url,
                       &cfg->pg_dsn,
                       &cfg->pg_read_dsn,
                       &cfg->http_addr,
                       &cfg->consul_addr,
                       &cfg->advertise_addr,
                       &cfg->instance_id,
                       &cfg->key_pepper,
                       &cfg->log_level,
                       &cfg->voice_events_stream,
                       &cfg->voice_commands_stream,
                       &cfg->voice_deadletter_stream};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        free(*fields[i]);
        *fields[i] = NULL;
    }
}

eg_status_t eg_redis_url_parse(const char *url, eg_redis_url_t *out)
{
    memset(out, 0, sizeof *out);
    const char *prefix = "redis://";
    eg_status_t st = EG_EINVAL;
    if (!url || strncmp(url, prefix, strlen(prefix)) != 0)
        goto out;
    const char *p = url + strlen(prefix);
    /* The last '@' ends the credentials: a password may itself contain '@'. */
    const char *at = strrchr(p, '@');
    if (at) {
        /* [user]:password@ — Redis 6 ACL users are accepted and ignored beyond the password. */
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon)
            goto out;
        out->password = eg_xstrndup(colon + 1, (size_t)(at - colon - 1));
        p = at + 1;
    }
    const char *end = p + strcspn(p, ":/");
    if (end == p)
        goto out;
    out->host = eg_xstrndup(p, (size_t)(end - p));
    out->port = 6379;
    p = end;
    if (*p == ':') {
        char *e;
        if (p[1] < '0' || p[1] > '9')
            goto out;
        long port = strtol(p + 1, &e, 10);
        if (e == p + 1 || port < 1 || port > 65535)
            goto out;
        out->port = (int)port;
        p = e;
    }
    if (*p == '/') {
        if (p[1]) {
            char *e;
            if (p[1] < '0' || p[1] > '9')
                goto out;
            long db = strtol(p + 1, &e, 10);
            if (e == p + 1 || *e || db < 0 || db > 1000)
                goto out;
            out->db = (int)db;
        }
    } else if (*p) {
        goto out;
    }
    st = EG_OK;
out:
    if (st != EG_OK)
        eg_redis_url_free(out);
    return st;
}

void eg_redis_url_free(eg_redis_url_t *u)
{
    if (!u)
        return;
    free(u->host);
    free(u->password);
    u->host = NULL;
    u->password = NULL;
}
