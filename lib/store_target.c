/* The Redis target URLs of engage/store.h: redis://, redis-sentinel:// and redis-cluster://,
 * parsed into an eg_store_target_t.
 *
 *   scheme://[[user]:password@]hostport[,hostport...][/db][?name=value&...]
 *
 * A hostport is host[:port] (6379 by default; 26379 for sentinels). The last '@' ends the
 * credentials, so a password may hold '@'; a Redis 6 ACL user name is accepted and ignored
 * beyond the password (AUTH password). Query parameters: master (sentinel, required),
 * min_replicas (0..16), wait_ms (1..60000, default 1000). Anything else is EG_EINVAL. */
#include <stdlib.h>
#include <string.h>

#include "engage/mem.h"
#include "engage/store.h"

#define TARGET_MAX_HOSTS 64
#define TARGET_DEFAULT_WAIT_MS 1000

static bool parse_long(const char *p, size_t n, long min, long max, long *out)
{
    char buf[24];
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, p, n);
    buf[n] = '\0';
    char *end;
    long v = strtol(buf, &end, 10);
    if (*end || buf[0] < '0' || buf[0] > '9' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool add_host(eg_store_target_t *t, const char *p, size_t n, int def_port)
{
    const char *colon = memchr(p, ':', n);
    size_t hl = colon ? (size_t)(colon - p) : n;
    long port = def_port;
    if (hl == 0 || t->nhosts == TARGET_MAX_HOSTS)
        return false;
    if (colon && !parse_long(colon + 1, n - hl - 1, 1, 65535, &port))
        return false;
    t->host = eg_xrealloc(t->host, (t->nhosts + 1) * sizeof *t->host);
    t->port = eg_xrealloc(t->port, (t->nhosts + 1) * sizeof *t->port);
    t->host[t->nhosts] = eg_xstrndup(p, hl);
    t->port[t->nhosts] = (int)port;
    t->nhosts++;
    return true;
}

static bool parse_query(eg_store_target_t *t, const char *q)
{
    while (*q) {
        size_t n = strcspn(q, "&");
        const char *eq = memchr(q, '=', n);
        if (!eq)
            return false;
        size_t kl = (size_t)(eq - q), vl = n - kl - 1;
        long v;
        if (kl == 6 && memcmp(q, "master", 6) == 0 && vl > 0 && !t->master) {
            t->master = eg_xstrndup(eq + 1, vl);
        } else if (kl == 12 && memcmp(q, "min_replicas", 12) == 0 &&
                   parse_long(eq + 1, vl, 0, 16, &v)) {
            t->min_replicas = (int)v;
        } else if (kl == 7 && memcmp(q, "wait_ms", 7) == 0 &&
                   parse_long(eq + 1, vl, 1, 60000, &v)) {
            t->wait_ms = (int)v;
        } else {
            return false;
        }
        q += n;
        if (*q == '&')
            q++;
    }
    return true;
}

eg_status_t eg_store_target_parse(const char *url, eg_store_target_t *out)
{
    static const struct {
        const char *scheme;
        eg_store_mode_t mode;
        int port;
    } schemes[] = {{"redis://", EG_STORE_SINGLE, 6379},
                   {"redis-sentinel://", EG_STORE_SENTINEL, 26379},
                   {"redis-cluster://", EG_STORE_CLUSTER, 6379}};
    memset(out, 0, sizeof *out);
    out->wait_ms = TARGET_DEFAULT_WAIT_MS;
    if (!url)
        return EG_EINVAL;
    const char *p = NULL;
    int def_port = 6379;
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        size_t n = strlen(schemes[i].scheme);
        if (strncmp(url, schemes[i].scheme, n) == 0) {
            p = url + n;
            out->mode = schemes[i].mode;
            def_port = schemes[i].port;
        }
    }
    if (!p)
        goto bad;
    /* Credentials end at the last '@' before the path or query. */
    size_t auth_span = strcspn(p, "/?");
    const char *at = NULL;
    for (const char *c = p; c < p + auth_span; c++)
        if (*c == '@')
            at = c;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon)
            goto bad;
        out->password = eg_xstrndup(colon + 1, (size_t)(at - colon - 1));
        p = at + 1;
    }
    size_t hosts_len = strcspn(p, "/?");
    const char *hend = p + hosts_len;
    while (p < hend) {
        size_t n = strcspn(p, ",");
        if (p + n > hend)
            n = (size_t)(hend - p);
        if (!add_host(out, p, n, def_port))
            goto bad;
        p += n;
        if (*p == ',')
            p++;
    }
    if (out->nhosts == 0 || (out->mode == EG_STORE_SINGLE && out->nhosts != 1))
        goto bad;
    if (*p == '/') {
        size_t n = strcspn(p + 1, "?");
        long db = 0;
        if (n > 0 && !parse_long(p + 1, n, 0, 1000, &db))
            goto bad;
        out->db = (int)db;
        p += 1 + n;
    }
    if (*p == '?' && !parse_query(out, p + 1))
        goto bad;
    if ((out->mode == EG_STORE_SENTINEL) != (out->master != NULL))
        goto bad;
    if (out->mode == EG_STORE_CLUSTER && out->db != 0)
        goto bad;
    return EG_OK;
bad:
    eg_store_target_free(out);
    return EG_EINVAL;
}

void eg_store_target_free(eg_store_target_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nhosts; i++)
        free(t->host[i]);
    free(t->host);
    free(t->port);
    free(t->password);
    free(t->master);
    memset(t, 0, sizeof *t);
}
