/* Integration tests of lib/store.c against a real redis-server (ENGAGE_REDIS_URL).
 *
 * Criterion runs each test in its own forked process, in parallel, so every key carries the
 * test's pid and every script source a pid comment (SCRIPT FLUSH here is server-wide, and the
 * other tests' scripts recover from it through the NOSCRIPT reload being tested). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "engage/config.h"
#include "engage/store.h"

static const char *redis_url(void)
{
    const char *url = getenv("ENGAGE_REDIS_URL");
    if (url == NULL || url[0] == '\0') {
        cr_assert_fail("ENGAGE_REDIS_URL is not set: the integration tests need a running "
                       "redis-server (e.g. ENGAGE_REDIS_URL=redis://127.0.0.1:6379)");
    }
    return url;
}

/* A URL to the same server, with another password/db part. */
static void url_variant(char *out, size_t outlen, const char *userinfo, int db)
{
    eg_redis_url_t u;
    cr_assert_eq(eg_redis_url_parse(redis_url(), &u), EG_OK, "cannot parse ENGAGE_REDIS_URL");
    snprintf(out, outlen, "redis://%s%s:%d/%d", userinfo, u.host, u.port, db);
    eg_redis_url_free(&u);
}

static eg_store_t *open_store(void)
{
    eg_store_t *s = NULL;
    eg_status_t st = eg_store_open(&s, redis_url(), 2000);
    cr_assert_eq(st, EG_OK, "eg_store_open(%s): %s", redis_url(), eg_status_str(st));
    cr_assert_not_null(s);
    return s;
}

static void key(char *out, size_t outlen, const char *name)
{
    snprintf(out, outlen, "test:store:{%ld}:%s", (long)getpid(), name); /* one slot per process */
}

/* Run a command from NUL-terminated strings and return its reply (asserting EG_OK). */
static eg_reply_t *cmd(eg_store_t *s, int argc, const char **argv)
{
    eg_reply_t *r = NULL;
    eg_status_t st = eg_store_command(s, argc, argv, NULL, &r);
    cr_assert_eq(st, EG_OK, "%s: %s (%s)", argv[0], eg_status_str(st), eg_store_error(s));
    cr_assert_not_null(r);
    return r;
}

static long long client_id(eg_store_t *s)
{
    const char *argv[] = {"CLIENT", "ID"};
    eg_reply_t *r = cmd(s, 2, argv);
    cr_assert_eq(r->type, EG_REPLY_INTEGER);
    long long id = r->integer;
    eg_reply_free(r);
    return id;
}

static void kill_client(long long id)
{
    eg_store_t *killer = open_store();
    char ids[32];
    snprintf(ids, sizeof(ids), "%lld", id);
    const char *argv[] = {"CLIENT", "KILL", "ID", ids};
    eg_reply_t *r = cmd(killer, 4, argv);
    cr_assert_eq(r->type, EG_REPLY_INTEGER);
    cr_assert_eq(r->integer, 1, "CLIENT KILL ID %s killed %lld clients", ids, r->integer);
    eg_reply_free(r);
    eg_store_close(killer);
}

static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);

    cr_assert_geq(fd, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd); /* bound but never listened: nothing accepts on it now */
    return ntohs(sa.sin_port);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

Test(store, ping)
{
    eg_store_t *s = open_store();
    cr_expect_eq(eg_store_ping(s), EG_OK, "%s", eg_store_error(s));
    eg_store_close(s);
}

Test(store, close_accepts_null)
{
    eg_store_close(NULL);
    eg_reply_free(NULL);
}

Test(store, script_add_and_eval)
{
    eg_store_t *s = open_store();
    char k[128];
    int h = -1, h2 = -1;
    eg_reply_t *r = NULL;

    key(k, sizeof(k), "script");
    cr_assert_eq(eg_store_script_add(s,
                                     "redis.call('SET', KEYS[1], ARGV[1])\n"
                                     "return {KEYS[1], redis.call('GET', KEYS[1]), "
                                     "tonumber(ARGV[2]) + 1}",
                                     &h),
                 EG_OK, "%s", eg_store_error(s));
    cr_assert_geq(h, 0);
    /* Same source again: the same handle. */
    cr_assert_eq(eg_store_script_add(s,
                                     "redis.call('SET', KEYS[1], ARGV[1])\n"
                                     "return {KEYS[1], redis.call('GET', KEYS[1]), "
                                     "tonumber(ARGV[2]) + 1}",
                                     &h2),
                 EG_OK);
    cr_assert_eq(h2, h);

    const char *argv[] = {k, "hello", "41"};
    cr_assert_eq(eg_store_eval(s, h, 1, 3, argv, NULL, &r), EG_OK, "%s", eg_store_error(s));
    cr_assert_eq(r->type, EG_REPLY_ARRAY);
    cr_assert_eq(r->elements, 3);
    cr_assert_eq(r->element[0]->type, EG_REPLY_STRING);
    cr_assert_str_eq(r->element[0]->str, k);
    cr_assert_eq(r->element[1]->type, EG_REPLY_STRING);
    cr_assert_str_eq(r->element[1]->str, "hello");
    cr_assert_eq(r->element[1]->len, 5);
    cr_assert_eq(r->element[2]->type, EG_REPLY_INTEGER);
    cr_assert_eq(r->element[2]->integer, 42);
    eg_reply_free(r);

    const char *del[] = {"DEL", k};
    eg_reply_free(cmd(s, 2, del));
    eg_store_close(s);
}

Test(store, eval_rejects_bad_arguments)
{
    eg_store_t *s = open_store();
    eg_reply_t *r = NULL;
    int h = -1;
    const char *argv[] = {"a"};

    cr_assert_eq(eg_store_eval(s, 0, 0, 0, NULL, NULL, &r), EG_EINVAL); /* no scripts yet */
    cr_assert_null(r);
    cr_assert_eq(eg_store_script_add(s, "return 1", &h), EG_OK);
    cr_assert_eq(eg_store_eval(s, h + 1, 0, 0, NULL, NULL, &r), EG_EINVAL);
    cr_assert_eq(eg_store_eval(s, h, 2, 1, argv, NULL, &r), EG_EINVAL); /* nkeys > argc */
    cr_assert_eq(eg_store_eval(s, h, 0, 0, NULL, NULL, &r), EG_OK);
    cr_assert_eq(r->type, EG_REPLY_INTEGER);
    cr_assert_eq(r->integer, 1);
    eg_reply_free(r);
    eg_store_close(s);
}

Test(store, eval_reloads_after_script_flush)
{
    eg_store_t *s = open_store();
    char src[128], sha[41];
    int h = -1;
    eg_reply_t *r = NULL;

    /* A source unique to this process, so no parallel test loads the same SHA. */
    snprintf(src, sizeof(src), "-- pid %ld\nreturn ARGV[1] .. '!'", (long)getpid());
    cr_assert_eq(eg_store_script_add(s, src, &h), EG_OK, "%s", eg_store_error(s));

    const char *load[] = {"SCRIPT", "LOAD", src};
    r = cmd(s, 3, load);
    cr_assert_eq(r->type, EG_REPLY_STRING);
    cr_assert_eq(r->len, 40);
    memcpy(sha, r->str, 41);
    eg_reply_free(r);

    const char *flush[] = {"SCRIPT", "FLUSH"};
    eg_reply_free(cmd(s, 2, flush));
    const char *exists[] = {"SCRIPT", "EXISTS", sha};
    r = cmd(s, 3, exists);
    cr_assert_eq(r->type, EG_REPLY_ARRAY);
    cr_assert_eq(r->element[0]->integer, 0, "the flush did not remove the script");
    eg_reply_free(r);

    const char *argv[] = {"hi"};
    cr_assert_eq(eg_store_eval(s, h, 0, 1, argv, NULL, &r), EG_OK, "%s", eg_store_error(s));
    cr_assert_eq(r->type, EG_REPLY_STRING);
    cr_assert_str_eq(r->str, "hi!");
    eg_reply_free(r);

    r = cmd(s, 3, exists);
    cr_assert_eq(r->element[0]->integer, 1, "eval did not load the script again");
    eg_reply_free(r);
    eg_store_close(s);
}

Test(store, reconnects_after_client_kill)
{
    eg_store_t *s = NULL;
    char url[256], k[128];
    eg_reply_t *r = NULL;

    /* Database 3, so the test also proves SELECT is sent again on the new connection. */
    url_variant(url, sizeof(url), "", 3);
    cr_assert_eq(eg_store_open(&s, url, 2000), EG_OK);
    key(k, sizeof(k), "reconnect");
    const char *set[] = {"SET", k, "db3", "EX", "60"};
    eg_reply_free(cmd(s, 5, set));

    long long id = client_id(s);
    kill_client(id);

    const char *get[] = {"GET", k};
    cr_assert_eq(eg_store_command(s, 2, get, NULL, &r), EG_OK, "%s", eg_store_error(s));
    cr_assert_eq(r->type, EG_REPLY_STRING, "key not found: SELECT 3 was not redone");
    cr_assert_str_eq(r->str, "db3");
    eg_reply_free(r);
    cr_assert_neq(client_id(s), id, "still the old connection");

    /* And once more, through a script. */
    int h = -1;
    cr_assert_eq(eg_store_script_add(s, "return redis.call('GET', KEYS[1])", &h), EG_OK);
    kill_client(client_id(s));
    const char *argv[] = {k};
    cr_assert_eq(eg_store_eval(s, h, 1, 1, argv, NULL, &r), EG_OK, "%s", eg_store_error(s));
    cr_assert_str_eq(r->str, "db3");
    eg_reply_free(r);

    const char *del[] = {"DEL", k};
    eg_reply_free(cmd(s, 2, del));
    eg_store_close(s);
}

Test(store, error_reply_is_eproto)
{
    eg_store_t *s = open_store();
    eg_reply_t *r = NULL;
    char k[128];
    int h = -1;

    const char *bad[] = {"NO-SUCH-COMMAND", "x"};
    cr_assert_eq(eg_store_command(s, 2, bad, NULL, &r), EG_EPROTO);
    cr_assert_not_null(r);
    cr_assert_eq(r->type, EG_REPLY_ERROR);
    cr_assert(strncmp(r->str, "ERR", 3) == 0, "error text: %s", r->str);
    cr_assert(strlen(eg_store_error(s)) > 0);
    eg_reply_free(r);
    /* reply == NULL is allowed. */
    cr_assert_eq(eg_store_command(s, 2, bad, NULL, NULL), EG_EPROTO);

    /* A script's runtime error: INCR on a non-integer value. */
    key(k, sizeof(k), "eproto");
    const char *set[] = {"SET", k, "not-a-number", "EX", "60"};
    eg_reply_free(cmd(s, 5, set));
    cr_assert_eq(eg_store_script_add(s, "return redis.call('INCR', KEYS[1])", &h), EG_OK);
    const char *argv[] = {k};
    r = NULL;
    cr_assert_eq(eg_store_eval(s, h, 1, 1, argv, NULL, &r), EG_EPROTO);
    cr_assert_not_null(r);
    cr_assert_eq(r->type, EG_REPLY_ERROR);
    cr_assert(strstr(r->str, "not an integer") != NULL, "error text: %s", r->str);
    eg_reply_free(r);

    /* A script that returns an error on purpose. */
    cr_assert_eq(eg_store_script_add(s, "return redis.error_reply('CONFLICT version')", &h), EG_OK);
    r = NULL;
    cr_assert_eq(eg_store_eval(s, h, 0, 0, NULL, NULL, &r), EG_EPROTO);
    cr_assert_eq(r->type, EG_REPLY_ERROR);
    cr_assert_str_eq(r->str, "CONFLICT version");
    eg_reply_free(r);

    /* A syntax error is refused at SCRIPT LOAD. */
    cr_assert_eq(eg_store_script_add(s, "return (", &h), EG_EPROTO);
    cr_assert_eq(h, -1);

    /* The connection is still good after all of that. */
    cr_assert_eq(eg_store_ping(s), EG_OK);
    const char *del[] = {"DEL", k};
    eg_reply_free(cmd(s, 2, del));
    eg_store_close(s);
}

Test(store, binary_safe_round_trip)
{
    eg_store_t *s = open_store();
    eg_reply_t *r = NULL;
    char k[128];
    static const char val[] = {'a', '\0', 'b', '\0', '\xff', '\n', '\r', 'z'};
    size_t klen;

    /* The key itself holds a NUL as well. */
    key(k, sizeof(k), "bin");
    klen = strlen(k);
    k[klen] = '\0';
    k[klen + 1] = 'x';
    klen += 2;

    const char *set[] = {"SET", k, val, "EX", "60"};
    size_t setlen[] = {3, klen, sizeof(val), 2, 2};
    cr_assert_eq(eg_store_command(s, 5, set, setlen, &r), EG_OK, "%s", eg_store_error(s));
    cr_assert_eq(r->type, EG_REPLY_STATUS);
    cr_assert_str_eq(r->str, "OK");
    eg_reply_free(r);

    const char *get[] = {"GET", k};
    size_t getlen[] = {3, klen};
    cr_assert_eq(eg_store_command(s, 2, get, getlen, &r), EG_OK);
    cr_assert_eq(r->type, EG_REPLY_STRING);
    cr_assert_eq(r->len, sizeof(val));
    cr_assert(memcmp(r->str, val, sizeof(val)) == 0, "value changed on the round trip");
    cr_assert_eq(r->str[r->len], '\0', "string not NUL-terminated");
    eg_reply_free(r);

    /* Without the NUL the key is another key, which does not exist. */
    const char *get2[] = {"GET", k};
    size_t get2len[] = {3, klen - 2};
    cr_assert_eq(eg_store_command(s, 2, get2, get2len, &r), EG_OK);
    cr_assert_eq(r->type, EG_REPLY_NIL);
    eg_reply_free(r);

    /* Through a script too. */
    int h = -1;
    cr_assert_eq(eg_store_script_add(s, "return redis.call('GET', KEYS[1])", &h), EG_OK);
    cr_assert_eq(eg_store_eval(s, h, 1, 1, get + 1, getlen + 1, &r), EG_OK);
    cr_assert_eq(r->len, sizeof(val));
    cr_assert(memcmp(r->str, val, sizeof(val)) == 0);
    eg_reply_free(r);

    const char *del[] = {"DEL", k};
    size_t dellen[] = {3, klen};
    cr_assert_eq(eg_store_command(s, 2, del, dellen, NULL), EG_OK);
    eg_store_close(s);
}

Test(store, pipeline_of_three)
{
    eg_store_t *s = open_store();
    eg_reply_t *rs[3] = {NULL, NULL, NULL};
    char k[128];

    key(k, sizeof(k), "pipe");
    const char *c0[] = {"SET", k, "1", "EX", "60"};
    const char *c1[] = {"INCRBY", k, "41"};
    const char *c2[] = {"GET", k};
    const char *const *cmds[] = {c0, c1, c2};
    int argcs[] = {5, 3, 2};

    cr_assert_eq(eg_store_pipeline(s, 3, argcs, cmds, rs), EG_OK, "%s", eg_store_error(s));
    cr_assert_eq(rs[0]->type, EG_REPLY_STATUS);
    cr_assert_str_eq(rs[0]->str, "OK");
    cr_assert_eq(rs[1]->type, EG_REPLY_INTEGER);
    cr_assert_eq(rs[1]->integer, 42);
    cr_assert_eq(rs[2]->type, EG_REPLY_STRING);
    cr_assert_str_eq(rs[2]->str, "42");
    for (int i = 0; i < 3; i++) {
        eg_reply_free(rs[i]);
        rs[i] = NULL;
    }

    /* One failing command does not fail the batch: its reply says so. */
    const char *c3[] = {"INCR", k, "extra-arg"};
    const char *const *cmds2[] = {c2, c3, c2};
    int argcs2[] = {2, 3, 2};
    cr_assert_eq(eg_store_pipeline(s, 3, argcs2, cmds2, rs), EG_OK);
    cr_assert_str_eq(rs[0]->str, "42");
    cr_assert_eq(rs[1]->type, EG_REPLY_ERROR);
    cr_assert_str_eq(rs[2]->str, "42");
    for (int i = 0; i < 3; i++) {
        eg_reply_free(rs[i]);
        rs[i] = NULL;
    }

    /* After a dropped connection the batch is sent again. */
    kill_client(client_id(s));
    cr_assert_eq(eg_store_pipeline(s, 3, argcs, cmds, rs), EG_OK, "%s", eg_store_error(s));
    cr_assert_eq(rs[1]->integer, 42);
    for (int i = 0; i < 3; i++) {
        eg_reply_free(rs[i]);
    }

    const char *del[] = {"DEL", k};
    eg_reply_free(cmd(s, 2, del));
    eg_store_close(s);
}

Test(store, wrong_port_is_unavailable)
{
    eg_store_t *s = (eg_store_t *)1;
    char url[64];

    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", closed_port());
    cr_assert_eq(eg_store_open(&s, url, 1000), EG_EUNAVAIL);
    cr_assert_null(s);
}

Test(store, bad_url_is_einval)
{
    eg_store_t *s = (eg_store_t *)1;

    cr_assert_eq(eg_store_open(&s, "http://127.0.0.1:6379", 1000), EG_EINVAL);
    cr_assert_null(s);
    cr_assert_eq(eg_store_open(&s, "redis://127.0.0.1:notaport", 1000), EG_EINVAL);
}

Test(store, password_refused_is_eauth)
{
    eg_store_t *s = (eg_store_t *)1;
    char url[256];

    /* The test server has no password, so AUTH is refused. */
    url_variant(url, sizeof(url), ":wrong-secret@", 0);
    cr_assert_eq(eg_store_open(&s, url, 1000), EG_EAUTH);
    cr_assert_null(s);
}

Test(store, command_timeout_then_recovers)
{
    eg_store_t *s = NULL;
    char k[128];
    eg_reply_t *r = NULL;

    cr_assert_eq(eg_store_open(&s, redis_url(), 300), EG_OK);
    key(k, sizeof(k), "blpop");
    /* BLPOP waits 5 s on an empty list; the 300 ms command timeout must cut it short (once,
     * then once more after the reconnect). */
    const char *argv[] = {"BLPOP", k, "5"};
    double t0 = now_s();
    cr_assert_eq(eg_store_command(s, 3, argv, NULL, &r), EG_EUNAVAIL);
    double took = now_s() - t0;
    cr_assert_null(r);
    cr_assert_lt(took, 2.0, "the command timeout was not applied (took %.2f s)", took);
    cr_assert_eq(eg_store_ping(s), EG_OK, "%s", eg_store_error(s));
    eg_store_close(s);
}

/* A fake server that answers every command with -LOADING, as a restarted redis-server does
 * while it reads its AOF. It serves one connection (what eg_store_open makes) until it closes. */
static void *loading_server(void *arg)
{
    int lfd = *(int *)arg;
    int fd = accept(lfd, NULL, NULL);
    char buf[4096];
    ssize_t n;
    static const char loading[] = "-LOADING Redis is loading the dataset in memory\r\n";

    while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0) {
        /* One reply per command: each command of the test is one RESP array ('*'), and no
         * argument holds a '*'. */
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '*' && write(fd, loading, sizeof(loading) - 1) < 0) {
                break;
            }
        }
    }
    if (fd >= 0) {
        close(fd);
    }
    return NULL;
}

Test(store, loading_is_unavailable)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    pthread_t t;
    char url[64];
    eg_store_t *s = NULL;
    eg_reply_t *r = (eg_reply_t *)1;
    eg_reply_t *replies[2] = {(eg_reply_t *)1, (eg_reply_t *)1};

    cr_assert_geq(lfd, 0);
    cr_assert_eq(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(lfd, 1), 0);
    cr_assert_eq(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
    cr_assert_eq(pthread_create(&t, NULL, loading_server, &lfd), 0);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", ntohs(a.sin_port));
    cr_assert_eq(eg_store_open(&s, url, 2000), EG_OK);

    /* An outage, like a refused connection: not EG_EPROTO, and no reply handed out. */
    const char *get[] = {"GET", "k"};
    cr_assert_eq(eg_store_command(s, 2, get, NULL, &r), EG_EUNAVAIL);
    cr_assert_null(r);
    cr_assert_eq(eg_store_ping(s), EG_EUNAVAIL);
    const char *set[] = {"SET", "k", "v"};
    const char *const *cmds[] = {set, get};
    const int argcs[] = {3, 2};
    cr_assert_eq(eg_store_pipeline(s, 2, argcs, cmds, replies), EG_EUNAVAIL);
    cr_assert_null(replies[0]);
    cr_assert_null(replies[1]);

    eg_store_close(s);
    pthread_join(t, NULL);
    close(lfd);
}

Test(store, eval_then_sends_commands_behind_the_script_in_one_round_trip)
{
    eg_store_t *s = open_store();
    char list[96], set[96], src[160];
    int h = -1;
    key(list, sizeof list, "then-list");
    key(set, sizeof set, "then-set");
    /* A source unique to this process (SCRIPT FLUSH below must not disturb other tests). */
    snprintf(src, sizeof src, "-- then %ld\nredis.call('RPUSH', KEYS[1], ARGV[1])\nreturn 7",
             (long)getpid());
    cr_assert_eq(eg_store_script_add(s, src, &h), EG_OK, "%s", eg_store_error(s));
    const char *keys_argv[] = {list, "from-script"};
    const char *push[] = {"RPUSH", list, "after"};
    const char *sadd[] = {"SADD", set, "m"};
    const char *const *cmds[] = {push, sadd};
    int argcs[] = {3, 3};

    for (int round = 0; round < 2; round++) {
        if (round == 1) { /* the server lost its scripts: loaded again, everything resent */
            const char *flush[] = {"SCRIPT", "FLUSH"};
            eg_reply_free(cmd(s, 2, flush));
            const char *del[] = {"DEL", list};
            eg_reply_free(cmd(s, 2, del));
        }
        eg_reply_t *r = NULL, *after[2] = {NULL, NULL};
        cr_assert_eq(eg_store_eval_then(s, h, 1, 2, keys_argv, NULL, &r, 2, argcs, cmds, after),
                     EG_OK, "%s", eg_store_error(s));
        cr_expect_eq(r->integer, 7, "the script's reply");
        cr_expect_eq(after[0]->type, EG_REPLY_INTEGER);
        cr_expect_eq(after[1]->type, EG_REPLY_INTEGER);
        eg_reply_free(r);
        eg_reply_free(after[0]);
        eg_reply_free(after[1]);
        const char *range[] = {"LRANGE", list, "0", "-1"};
        r = cmd(s, 4, range);
        /* Round 1: the first send met NOSCRIPT (the script did nothing, the command ran), then
         * everything went again: the command ran twice, once after the script. */
        size_t want = round == 0 ? 2 : 3;
        cr_assert_eq(r->elements, want, "round %d: %zu entries", round, r->elements);
        cr_expect_str_eq(r->element[want - 2]->str, "from-script", "the script runs once");
        cr_expect_str_eq(r->element[want - 1]->str, "after", "and the command after it");
        eg_reply_free(r);
    }
    const char *del[] = {"DEL", list, set};
    eg_reply_free(cmd(s, 3, del));
    eg_store_close(s);
}
